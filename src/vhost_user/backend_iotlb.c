/* SPDX-License-Identifier: MIT */
/*
 * The backend's side of the vIOMMU (VIRTIO_F_ACCESS_PLATFORM): IOTLB_MSG
 * updates and invalidations from the front-end, misses sent back on the
 * backend request channel, and the rings and queues that wait for them.
 * Owns b->iotlb (src/core/iotlb.c holds the table and the lookup). Never
 * waits for the front-end: a miss is sent without blocking and the queue
 * that needs it sleeps until an update kicks it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend_internal.h"

/* The same miss, with the IOTLB unchanged, is asked again only after this long. */
#define MISS_REPEAT_NS 20000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool vhu_iotlb_on(const struct vio_vhu_backend *b)
{
	return (b->features >> VIRTIO_F_ACCESS_PLATFORM) & 1;
}

/* Any thread (the data path finds most misses): ask the front-end, at most once per 20 ms per address. */
static void on_miss(void *opaque, uint64_t iova, unsigned perm)
{
	struct vio_vhu_backend *b = opaque;
	struct vio_vhu_iotlb_msg m = { .iova = iova, .perm = (uint8_t)perm,
				       .type = VHOST_IOTLB_MISS };
	uint64_t t = now_ns();
	int r;

	uint64_t gen = atomic_load(&b->iotlb_gen);

	atomic_store(&b->iotlb_waiting, true);
	/*
	 * Only a repeat with nothing changed since is held back: an answer is
	 * still on its way then. After any update or invalidation (which may
	 * have taken the answer away again) the miss is sent anew.
	 */
	if (atomic_load(&b->miss_iova) == iova && atomic_load(&b->miss_gen) == gen &&
	    t - atomic_load(&b->miss_ns) < MISS_REPEAT_NS)
		return;
	atomic_store(&b->miss_iova, iova);
	atomic_store(&b->miss_gen, gen);
	atomic_store(&b->miss_ns, t);
	r = vhu_channel_send(b, VHOST_USER_BACKEND_IOTLB_MSG, &m, sizeof(m));
	if (r)
		vio_dbg(b->name, "IOTLB miss at 0x%llx not sent: %s", (unsigned long long)iova,
			strerror(-r));
	else
		atomic_fetch_add(&b->miss_sent, 1);
	vio_dbg(b->name, "IOTLB miss 0x%llx perm %u sent at %llu us", (unsigned long long)iova,
		perm, (unsigned long long)(t / 1000));
}

void vhu_iotlb_init(struct vio_vhu_backend *b)
{
	vio_iotlb_init(&b->iotlb, b->o.iotlb_max);
	vio_iotlb_set_miss_fn(&b->iotlb, on_miss, b);
}

void vhu_iotlb_fini(struct vio_vhu_backend *b)
{
	vio_iotlb_destroy(&b->iotlb);
}

void vhu_iotlb_attach(struct vio_vhu_backend *b)
{
	/*
	 * Entries hold pointers into the mapped regions: whenever the map or
	 * the features change (queues paused), forget them all; the front-end
	 * answers the misses that follow.
	 */
	vio_iotlb_flush(&b->iotlb);
	atomic_fetch_add(&b->iotlb_gen, 1);
	b->mem.iotlb = vhu_iotlb_on(b) ? &b->iotlb : NULL;
	/* The table's memory, the first time a front-end agrees (then kept: it may come back). */
	if (b->mem.iotlb && vio_iotlb_alloc(&b->iotlb))
		vio_err(b->name, "no memory for the IOTLB: every IOVA will miss");
}

/* The front-end address range as a pointer here: inside one region, or NULL. */
static void *uaddr_to_host(const struct vio_vhu_backend *b, uint64_t uaddr, uint64_t len)
{
	for (unsigned i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		if (vio_mem_inside(uaddr, len, r->uaddr, r->r.size))
			return (char *)r->r.host + (uaddr - r->uaddr);
	}
	return NULL;
}

/* Queues that stopped at a miss sleep until kicked: kick them (their kick eventfd). */
static void wake_waiting(struct vio_vhu_backend *b)
{
	uint64_t one = 1;

	if (!atomic_exchange(&b->iotlb_waiting, false))
		return;
	for (unsigned i = 0; i < b->max_queues; i++) {
		struct vhu_queue *q = &b->q[i];

		/* kick_fd changes only on this thread, with the queue paused. */
		if (q->running && q->kick_fd >= 0 && write(q->kick_fd, &one, sizeof(one)) < 0)
			vio_dbg(q->name, "kick after IOTLB update failed");
	}
}

static int iotlb_update(struct vio_vhu_backend *b, const struct vio_vhu_iotlb_msg *m)
{
	void *host;
	int r;

	if (m->size == 0 || m->iova + (m->size - 1) < m->iova || m->uaddr + (m->size - 1) < m->uaddr)
		return -EINVAL;
	/* The spec: update ranges lie inside the memory table (by user address). */
	host = uaddr_to_host(b, m->uaddr, m->size);
	if (!host)
		return -EFAULT;
	r = vio_iotlb_update(&b->iotlb, m->iova, m->size, host, m->perm);
	if (r)
		return r;
	/* Rings that waited for this can start; popping queues try again. */
	vhu_start_all(b);
	wake_waiting(b);
	return 0;
}

/*
 * Forgetting more than asked is always safe, so an invalidation is never
 * refused for its range: size 0 or a range past the top of the space means
 * everything from iova up. QEMU 7.2 sends size 0 for a guest's global
 * device-IOTLB flush (its 2^64 mask + 1 wraps to 0).
 */
static uint64_t invalidate_size(const struct vio_vhu_iotlb_msg *m)
{
	if (m->size == 0 || m->iova + (m->size - 1) < m->iova)
		return m->iova ? 0 - m->iova : UINT64_MAX;
	return m->size;
}

static int iotlb_apply(struct vio_vhu_backend *b, const struct vio_vhu_iotlb_msg *m)
{
	if (!vhu_iotlb_on(b))
		return -ENOTSUP; /* only with VIRTIO_F_ACCESS_PLATFORM agreed */
	switch (m->type) {
	case VHOST_IOTLB_UPDATE:
		if (m->perm < VIO_IOTLB_RO || m->perm > VIO_IOTLB_RW)
			return -EINVAL;
		return iotlb_update(b, m);
	case VHOST_IOTLB_INVALIDATE:
		/*
		 * Chains already popped keep their pointers: the driver unmaps
		 * a buffer only after the device returned it. Rings stay mapped
		 * while the queue runs (the driver frees them after a reset).
		 */
		if (m->iova == 0 && invalidate_size(m) == UINT64_MAX) {
			atomic_fetch_add(&b->iotlb.invalidates, 1);
			vio_iotlb_flush(&b->iotlb); /* the whole space, its last byte included */
			return 0;
		}
		return vio_iotlb_invalidate(&b->iotlb, m->iova, invalidate_size(m));
	default:
		return -EINVAL; /* MISS and ACCESS_FAIL go the other way */
	}
}

enum vhu_result vhu_h_iotlb_msg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_iotlb_msg im;
	int r;

	memset(&im, 0, sizeof(im));
	memcpy(&im, m->p.raw, m->size < sizeof(im) ? m->size : sizeof(im));
	vio_dbg(b->name, "IOTLB type %u iova 0x%llx size 0x%llx perm %u at %llu us", im.type,
		(unsigned long long)im.iova, (unsigned long long)im.size, im.perm,
		(unsigned long long)(now_ns() / 1000));
	atomic_fetch_add(&b->iotlb_gen, 1); /* before: a miss from here on is sent anew */
	r = iotlb_apply(b, &im);
	if (r) {
		atomic_fetch_add(&b->iotlb_refused, 1);
		vio_warn(b->name, "IOTLB message type %u perm %u iova 0x%llx size 0x%llx refused: %s",
			 im.type, im.perm, (unsigned long long)im.iova, (unsigned long long)im.size,
			 strerror(-r));
	}
	/* Always answered (a u64 status), and a refusal never drops the connection. */
	m->p.u64 = r ? 1 : 0;
	m->size = sizeof(uint64_t);
	return VHU_REPLY;
}

void vhu_iotlb_ring_missing(struct vio_vhu_backend *b, const struct vio_virtq_addrs *a,
			    uint64_t desc_len, uint64_t drv_len, uint64_t dev_len, bool packed)
{
	/* Each call reports the first piece of each part that is missing (vio_mem_why). */
	vio_mem_why(&b->mem, a->desc, desc_len, packed ? VIO_MEM_RW : VIO_MEM_READ, true);
	vio_mem_why(&b->mem, a->driver, drv_len, VIO_MEM_READ, true);
	vio_mem_why(&b->mem, a->device, dev_len, VIO_MEM_RW, true);
}

int vio_vhu_backend_iotlb_stats(const struct vio_vhu_backend *b, struct vio_vhu_iotlb_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->enabled = vhu_iotlb_on(b);
	st->entries = vio_iotlb_count(&b->iotlb);
	st->misses = atomic_load(&b->iotlb.misses);
	st->miss_msgs = atomic_load(&b->miss_sent);
	st->updates = atomic_load(&b->iotlb.updates);
	st->invalidates = atomic_load(&b->iotlb.invalidates);
	st->evictions = atomic_load(&b->iotlb.evictions);
	st->refused = atomic_load(&b->iotlb_refused);
	return 0;
}
