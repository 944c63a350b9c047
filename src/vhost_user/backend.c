/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend: applies validated front-end requests to one
 * device's state (features, status, memory map, rings) and hands running
 * queues to the application. Never trusts a field the front-end sent (every
 * index, size, address and flag is checked here or by the codec), never
 * touches a queue the application is polling, and leaves no fd or mapping
 * behind when a front-end goes away.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "msg.h"
#include "socket.h"
#include "vio/device.h"
#include "vio/vhost_user.h"

#define VHU_RECONNECT_MIN_MS 50u

struct vhu_region {
	struct vio_mem_region r;
	void *map;      /* what mmap returned */
	size_t map_len;
	unsigned refs;  /* ADD_MEM_REG of this same region, less REM_MEM_REG (ADD/REM only) */
};

struct vhu_queue {
	struct vio_vhu_backend *b;
	unsigned index;
	uint16_t num;          /* 0 until SET_VRING_NUM */
	bool has_addr;
	struct vio_vhu_vring_addr addr; /* front-end virtual addresses */
	uint32_t base;         /* ring position for the next (re)initialisation */
	bool base_set;         /* base came from SET_VRING_BASE or a stopped ring, else fresh */
	int kick_fd, call_fd, err_fd;
	bool kick_set;         /* SET_VRING_KICK seen (fd or polling) since the ring stopped */
	bool enabled;
	bool vq_ready;         /* vq initialised from num/addr/base: its indices are live */
	bool running;          /* vdev queue_start called and handed to the application */
	atomic_bool faulted;
	struct vio_virtq vq;
	struct vio_vq_ctx ctx;
};

struct vio_vhu_backend {
	struct vio_vhu_backend_opts o;
	char *path;
	int listen_fd, conn_fd, timer_fd;
	unsigned backoff_ms;

	struct vio_device dev;   /* status and feature acceptance (config lives in the vdev) */
	uint64_t offered;        /* virtio features incl. VHOST_USER_F_PROTOCOL_FEATURES */
	uint64_t features;       /* last SET_FEATURES */
	uint64_t protocol;       /* agreed protocol features */
	unsigned max_queues;
	uint64_t unknown_logged; /* one warning per unknown request id (bit 63: ids >= 63) */

	struct vio_mem mem;
	struct vhu_region regions[VIO_VHU_MAX_MEM_SLOTS];
	unsigned nregions;
	struct vhu_queue q[VIO_VHU_MAX_QUEUES];
};

enum vhu_result {
	VHU_ERROR,      /* refused: nonzero ack if asked; a request owed a reply drops the peer */
	VHU_OK,         /* done: zero ack if asked */
	VHU_REPLY,      /* done, the handler filled the reply payload in the message */
	VHU_DISCONNECT, /* the front-end cannot be trusted any more */
};

typedef enum vhu_result vhu_handler(struct vio_vhu_backend *b, struct vio_vhu_msg *m);

static const struct vio_vdev_ops *ops(const struct vio_vhu_backend *b)
{
	return b->o.vdev.ops;
}

static void *vdev(const struct vio_vhu_backend *b)
{
	return b->o.vdev.dev;
}

static uint64_t virtio_features(const struct vio_vhu_backend *b)
{
	return b->features & ~VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Take fd i out of the message so the dispatcher does not close it. */
static int take_fd(struct vio_vhu_msg *m, unsigned i)
{
	int fd = m->fds[i];

	m->fds[i] = -1;
	return fd;
}

/* ------------------------------------------------------------ queue state */

static void notify_call(void *opaque)
{
	struct vhu_queue *vq = opaque;
	uint64_t one = 1;

	/* call_fd changes only while the queue is paused, so this read is stable. */
	if (vq->call_fd >= 0 && write(vq->call_fd, &one, sizeof(one)) < 0)
		return; /* a full eventfd counter already means "interrupt pending" */
}

/* Data-path thread: the driver broke queue rules. The control thread raises NEEDS_RESET. */
static void on_queue_fault(void *opaque, unsigned index, enum vio_virtq_fault why)
{
	struct vhu_queue *vq = opaque;
	struct vio_vhu_backend *b = vq->b;
	uint64_t one = 1;

	atomic_store(&vq->faulted, true);
	if (vq->err_fd >= 0 && write(vq->err_fd, &one, sizeof(one)) < 0)
		vio_dbg("vhost-user: queue %u: err eventfd write failed", index);
	if (b->o.hooks.queue_fault)
		b->o.hooks.queue_fault(b->o.hooks_opaque, index, why);
}

static void sync_faults(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++) {
		if (atomic_load(&b->q[i].faulted)) {
			if (!(vio_device_get_status(&b->dev) & VIRTIO_CONFIG_S_NEEDS_RESET))
				vio_warn("vhost-user: queue %u: %s: device needs reset", i,
					 vio_virtq_fault_str(vio_virtq_fault_reason(&b->q[i].vq)));
			vio_device_set_needs_reset(&b->dev);
		}
	}
}

/* Take queue q back from the application and the device; its ring state is kept. */
static void queue_pause(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	if (!q->running)
		return;
	if (b->o.hooks.stop_queue)
		b->o.hooks.stop_queue(b->o.hooks_opaque, q->index);
	ops(b)->queue_stop(vdev(b), q->index);
	q->running = false;
}

/* Forget the initialised ring, keeping its position for the next start. */
static void queue_invalidate(struct vhu_queue *q)
{
	if (q->vq_ready) {
		q->base = vio_virtq_get_base(&q->vq);
		q->base_set = true;
	}
	q->vq_ready = false;
	vio_virtq_fini(&q->vq);
}

static bool queue_can_run(const struct vio_vhu_backend *b, const struct vhu_queue *q)
{
	return b->conn_fd >= 0 && q->num && q->has_addr && q->kick_set && q->enabled &&
	       b->nregions > 0;
}

static int queue_init_ring(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	uint64_t f = virtio_features(b);
	bool packed = (f >> VIRTIO_F_RING_PACKED) & 1;
	uint64_t desc_len = 16ull * q->num;
	uint64_t drv_len = packed ? 4 : virtq_avail_bytes(q->num);
	uint64_t dev_len = packed ? 4 : virtq_used_bytes(q->num);
	struct vio_virtq_addrs a;
	int r;

	/* Ring addresses are front-end virtual addresses; descriptors carry guest addresses. */
	if (vio_mem_uaddr_to_gpa(&b->mem, q->addr.desc_user_addr, desc_len, &a.desc) ||
	    vio_mem_uaddr_to_gpa(&b->mem, q->addr.avail_user_addr, drv_len, &a.driver) ||
	    vio_mem_uaddr_to_gpa(&b->mem, q->addr.used_user_addr, dev_len, &a.device)) {
		vio_warn("vhost-user: queue %u: ring addresses outside the memory table", q->index);
		return -EFAULT;
	}
	r = vio_virtq_device_init(&q->vq, f, q->num, &a, &b->mem);
	/* Without a base the ring starts fresh (packed: wrap counters at 1, not base 0's 0). */
	if (r == 0 && q->base_set)
		r = vio_virtq_set_base(&q->vq, q->base);
	if (r) {
		vio_warn("vhost-user: queue %u: cannot set up ring (size %u): %s", q->index, q->num,
			 strerror(-r));
		return r;
	}
	vio_virtq_set_fault_handler(&q->vq, q->index, on_queue_fault, q);
	atomic_store(&q->faulted, false);
	q->vq_ready = true;
	return 0;
}

/* Start q if it has everything it needs; a failure leaves it stopped (logged). */
static void queue_try_start(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	int r;

	if (q->running || !queue_can_run(b, q))
		return;
	if (!q->vq_ready && queue_init_ring(b, q))
		return;
	q->ctx = (struct vio_vq_ctx){
		.vq = &q->vq, .mem = &b->mem, .notify = notify_call, .notify_opaque = q,
	};
	r = ops(b)->queue_start(vdev(b), q->index, &q->ctx, virtio_features(b));
	if (r) {
		vio_warn("vhost-user: queue %u: device refused to start: %s", q->index,
			 strerror(-r));
		return;
	}
	if (b->o.hooks.start_queue) {
		r = b->o.hooks.start_queue(b->o.hooks_opaque, q->index, &q->vq, q->kick_fd);
		if (r) {
			vio_warn("vhost-user: queue %u: application refused to start it", q->index);
			ops(b)->queue_stop(vdev(b), q->index);
			return;
		}
	}
	q->running = true;
}

static void pause_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		queue_pause(b, &b->q[i]);
}

static void start_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		queue_try_start(b, &b->q[i]);
}

/* Back to the state of a fresh connection: ring stopped, fds closed. */
static void queue_reset(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	queue_pause(b, q);
	vio_virtq_fini(&q->vq);
	close_fd(&q->kick_fd);
	close_fd(&q->call_fd);
	close_fd(&q->err_fd);
	memset(&q->vq, 0, sizeof(q->vq));
	q->num = 0;
	q->has_addr = false;
	q->base = 0;
	q->base_set = false;
	q->kick_set = false;
	q->enabled = false;
	q->vq_ready = false;
	atomic_store(&q->faulted, false);
}

static struct vhu_queue *queue_at(struct vio_vhu_backend *b, uint32_t index)
{
	if (index >= b->max_queues) {
		vio_warn("vhost-user: queue index %u beyond %u queues", index, b->max_queues);
		return NULL;
	}
	return &b->q[index];
}

/* ----------------------------------------------------------- memory table */

static void region_unmap(struct vhu_region *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	memset(r, 0, sizeof(*r));
}

static int region_map(const struct vio_vhu_mem_region *d, int fd, struct vhu_region *out)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t align = page > 0 ? (uint64_t)page : 4096;
	uint64_t map_off, lead, len;
	struct stat st;
	void *p;

	/* hugetlbfs wants offsets in whole huge pages: it reports that size as st_blksize. */
	if (fstat(fd, &st) == 0 && st.st_blksize > 0 && (uint64_t)st.st_blksize > align &&
	    !(st.st_blksize & (st.st_blksize - 1)))
		align = (uint64_t)st.st_blksize;
	if (d->memory_size == 0 || d->guest_phys_addr + d->memory_size - 1 < d->guest_phys_addr ||
	    d->userspace_addr + d->memory_size - 1 < d->userspace_addr)
		return -EINVAL;
	map_off = d->mmap_offset & ~(align - 1);
	lead = d->mmap_offset - map_off;
	len = d->memory_size + lead;
	if (len < d->memory_size || len + align - 1 < len || len > SIZE_MAX / 2)
		return -EINVAL;
	len = (len + align - 1) & ~(align - 1);
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		 (off_t)map_off);
	if (p == MAP_FAILED)
		return -errno;
	out->map = p;
	out->map_len = (size_t)len;
	out->refs = 1;
	out->r = (struct vio_mem_region){
		.gpa = d->guest_phys_addr,
		.size = d->memory_size,
		.host = (char *)p + lead,
		.uaddr = d->userspace_addr,
	};
	return 0;
}

/* Rebuild the translate map from the region list; checks overlaps and wrap-around. */
static int build_mem(struct vio_mem *m, const struct vhu_region *regs, unsigned n)
{
	vio_mem_init(m);
	for (unsigned i = 0; i < n; i++) {
		int r = vio_mem_add(m, &regs[i].r);

		if (r)
			return r;
	}
	return 0;
}

/* Queues paused: install the new map and point every ring at it again. */
static void mem_changed(struct vio_vhu_backend *b)
{
	if (build_mem(&b->mem, b->regions, b->nregions))
		vio_mem_init(&b->mem); /* cannot happen: every caller checked the same list */
	for (unsigned i = 0; i < b->max_queues; i++) {
		struct vhu_queue *q = &b->q[i];

		if (q->vq_ready && vio_virtq_remap(&q->vq, &b->mem))
			queue_invalidate(q);
	}
	start_all(b);
}

static void unmap_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->nregions; i++)
		region_unmap(&b->regions[i]);
	b->nregions = 0;
	vio_mem_init(&b->mem);
}

/* --------------------------------------------------------------- handlers */

static enum vhu_result h_unsupported(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	vio_warn("vhost-user: %s is not supported", vio_vhu_req_name(m->request));
	return VHU_ERROR;
}

static enum vhu_result reply_u64(struct vio_vhu_msg *m, uint64_t v)
{
	m->p.u64 = v;
	m->size = sizeof(uint64_t);
	return VHU_REPLY;
}

static enum vhu_result h_get_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, b->offered);
}

static enum vhu_result h_set_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	uint64_t f = m->p.u64;
	uint8_t st = vio_device_get_status(&b->dev);

	if (f & ~b->offered) {
		vio_warn("vhost-user: SET_FEATURES 0x%llx has bits never offered (0x%llx)",
			 (unsigned long long)f, (unsigned long long)(f & ~b->offered));
		return VHU_ERROR;
	}
	if (!(f & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES))) {
		/* Without protocol features rings have no enable message: they start enabled. */
		for (unsigned i = 0; i < b->max_queues; i++)
			b->q[i].enabled = true;
	}
	if (f != b->features) {
		/* Rings were laid out for the old features (split/packed, event index). */
		pause_all(b);
		for (unsigned i = 0; i < b->max_queues; i++)
			queue_invalidate(&b->q[i]);
		b->features = f;
	}
	if ((st & VIRTIO_CONFIG_S_DRIVER) && !(st & VIRTIO_CONFIG_S_FEATURES_OK))
		vio_device_set_features(&b->dev, virtio_features(b));
	start_all(b);
	return VHU_OK;
}

static enum vhu_result h_set_owner(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return VHU_OK;
}

static enum vhu_result h_reset_owner(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* Deprecated; the spec lets a backend ignore it, which keeps connection state sound. */
	vio_info("vhost-user: RESET_OWNER ignored");
	return VHU_OK;
}

static enum vhu_result h_get_protocol_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	uint64_t p = VHU_PROTOCOL_FEATURES;

	if (!ops(b)->get_config)
		p &= ~VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	return reply_u64(m, p);
}

static enum vhu_result h_set_protocol_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	if (m->p.u64 & ~VHU_PROTOCOL_FEATURES) {
		vio_warn("vhost-user: protocol features 0x%llx not offered",
			 (unsigned long long)(m->p.u64 & ~VHU_PROTOCOL_FEATURES));
		return VHU_ERROR;
	}
	b->protocol = m->p.u64;
	return VHU_OK;
}

static enum vhu_result h_get_queue_num(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, b->max_queues);
}

static enum vhu_result h_get_max_mem_slots(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, VIO_VHU_MAX_MEM_SLOTS);
}

static enum vhu_result h_set_mem_table(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	const struct vio_vhu_memory *mt = &m->p.memory;
	struct vhu_region regs[VHOST_MEMORY_BASELINE_NREGIONS];
	struct vio_mem check;
	unsigned n = 0;
	int r = 0;

	if (mt->nregions > VHOST_MEMORY_BASELINE_NREGIONS ||
	    m->size != VIO_VHU_MEM_HDR_SIZE + mt->nregions * sizeof(struct vio_vhu_mem_region) ||
	    m->nfds != mt->nregions) {
		vio_warn("vhost-user: SET_MEM_TABLE: %u regions, %u bytes, %u fds", mt->nregions,
			 m->size, m->nfds);
		return VHU_ERROR;
	}
	/* Map the whole new table before touching the old one, so a failure changes nothing. */
	for (; n < mt->nregions; n++) {
		r = region_map(&mt->regions[n], m->fds[n], &regs[n]);
		if (r)
			break;
	}
	if (!r)
		r = build_mem(&check, regs, n);
	if (r) {
		vio_warn("vhost-user: SET_MEM_TABLE: region %u refused: %s", n, strerror(-r));
		while (n)
			region_unmap(&regs[--n]);
		return VHU_ERROR;
	}
	pause_all(b);
	unmap_all(b);
	memcpy(b->regions, regs, n * sizeof(regs[0]));
	b->nregions = n;
	mem_changed(b);
	return VHU_OK;
}

static bool region_eq(const struct vio_mem_region *r, const struct vio_vhu_mem_region *d)
{
	return r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
	       r->uaddr == d->userspace_addr;
}

static enum vhu_result h_add_mem_reg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_region reg;
	struct vio_mem check;
	int r;

	/*
	 * QEMU's vhost-user-net runs one vhost device per queue pair on one
	 * connection, and each adds every region it knows: the same region
	 * again is the same memory, counted, not mapped twice.
	 */
	for (unsigned i = 0; i < b->nregions; i++) {
		if (region_eq(&b->regions[i].r, &m->p.mem1.region)) {
			b->regions[i].refs++;
			return VHU_OK;
		}
	}
	if (b->nregions == VIO_VHU_MAX_MEM_SLOTS) {
		vio_warn("vhost-user: ADD_MEM_REG: all %u slots used", VIO_VHU_MAX_MEM_SLOTS);
		return VHU_ERROR;
	}
	r = region_map(&m->p.mem1.region, m->fds[0], &reg);
	if (r) {
		vio_warn("vhost-user: ADD_MEM_REG: cannot map: %s", strerror(-r));
		return VHU_ERROR;
	}
	check = b->mem;
	r = vio_mem_add(&check, &reg.r);
	if (r) {
		vio_warn("vhost-user: ADD_MEM_REG: region refused: %s", strerror(-r));
		region_unmap(&reg);
		return VHU_ERROR;
	}
	pause_all(b);
	b->regions[b->nregions++] = reg;
	mem_changed(b);
	return VHU_OK;
}

static enum vhu_result h_rem_mem_reg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* A stray fd (allowed by the spec for old front-ends) is closed by the dispatcher. */
	for (unsigned i = 0; i < b->nregions; i++) {
		if (!region_eq(&b->regions[i].r, &m->p.mem1.region))
			continue;
		if (b->regions[i].refs > 1) {
			b->regions[i].refs--; /* another vhost device still uses it */
			return VHU_OK;
		}
		pause_all(b);
		region_unmap(&b->regions[i]);
		b->regions[i] = b->regions[--b->nregions];
		memset(&b->regions[b->nregions], 0, sizeof(b->regions[0]));
		mem_changed(b);
		return VHU_OK;
	}
	vio_warn("vhost-user: REM_MEM_REG: no such region");
	return VHU_ERROR;
}

static enum vhu_result h_set_vring_num(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = queue_at(b, m->p.state.index);

	if (!q)
		return VHU_ERROR;
	if (m->p.state.num == 0 || m->p.state.num > VIO_VIRTQ_MAX_SIZE) {
		vio_warn("vhost-user: queue %u: size %u", q->index, m->p.state.num);
		return VHU_ERROR;
	}
	queue_pause(b, q);
	queue_invalidate(q);
	q->num = (uint16_t)m->p.state.num; /* the ring code checks the power of two for split */
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_addr(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = queue_at(b, m->p.addr.index);

	if (!q)
		return VHU_ERROR;
	queue_pause(b, q);
	queue_invalidate(q);
	q->addr = m->p.addr;
	q->has_addr = true;
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_base(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = queue_at(b, m->p.state.index);

	if (!q)
		return VHU_ERROR;
	queue_pause(b, q);
	queue_invalidate(q);
	q->base = m->p.state.num; /* range checked by vio_virtq_set_base at start */
	q->base_set = true;
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_get_vring_base(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = queue_at(b, m->p.state.index);

	if (!q)
		return VHU_DISCONNECT; /* owed a reply we cannot give */
	/* GET_VRING_BASE stops the ring: it needs a new kick before it runs again. */
	queue_pause(b, q);
	queue_invalidate(q);
	close_fd(&q->kick_fd);
	q->kick_set = false;
	m->p.state.num = q->base;
	m->size = sizeof(m->p.state);
	return VHU_REPLY;
}

/* SET_VRING_KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8, nothing else. */
static struct vhu_queue *vring_fd_target(struct vio_vhu_backend *b, struct vio_vhu_msg *m,
					 int *fd)
{
	uint64_t v = m->p.u64;
	bool nofd = v & VHOST_USER_VRING_NOFD_MASK;
	struct vhu_queue *q;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
		vio_warn("vhost-user: %s with reserved bits 0x%llx", vio_vhu_req_name(m->request),
			 (unsigned long long)v);
		return NULL;
	}
	if (nofd != (m->nfds == 0)) {
		vio_warn("vhost-user: %s: NOFD flag %d with %u fds", vio_vhu_req_name(m->request),
			 nofd, m->nfds);
		return NULL;
	}
	q = queue_at(b, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
	if (q)
		*fd = nofd ? -1 : take_fd(m, 0);
	return q;
}

static enum vhu_result h_set_vring_kick(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int fd;
	struct vhu_queue *q = vring_fd_target(b, m, &fd);

	if (!q)
		return VHU_ERROR;
	queue_pause(b, q);
	close_fd(&q->kick_fd);
	q->kick_fd = fd;
	q->kick_set = true;
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_call(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int fd;
	struct vhu_queue *q = vring_fd_target(b, m, &fd);

	if (!q)
		return VHU_ERROR;
	/* The data path reads call_fd without a lock: swap it only while nobody polls. */
	queue_pause(b, q);
	close_fd(&q->call_fd);
	q->call_fd = fd;
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_err(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int fd;
	struct vhu_queue *q = vring_fd_target(b, m, &fd);

	if (!q)
		return VHU_ERROR;
	queue_pause(b, q);
	close_fd(&q->err_fd);
	q->err_fd = fd;
	queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_enable(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = queue_at(b, m->p.state.index);

	if (!q || m->p.state.num > 1)
		return VHU_ERROR;
	if (m->p.state.num) {
		q->enabled = true;
		queue_try_start(b, q);
	} else {
		queue_pause(b, q);
		q->enabled = false;
	}
	return VHU_OK;
}

static uint32_t config_len(const struct vio_vhu_backend *b)
{
	return ops(b)->config_len ? ops(b)->config_len(vdev(b)) : 0;
}

/* The config payload's own size must match the message and stay inside the config space. */
static bool config_msg_ok(const struct vio_vhu_backend *b, const struct vio_vhu_msg *m)
{
	const struct vio_vhu_config *c = &m->p.config;
	uint32_t len = config_len(b);

	return c->size <= VHOST_USER_MAX_CONFIG_SIZE &&
	       m->size == VIO_VHU_CONFIG_HDR_SIZE + c->size &&
	       c->offset <= len && c->size <= len - c->offset;
}

static enum vhu_result h_get_config(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_config *c = &m->p.config;

	if (!ops(b)->get_config || !config_msg_ok(b, m) ||
	    ops(b)->get_config(vdev(b), c->offset, c->region, c->size)) {
		vio_warn("vhost-user: GET_CONFIG refused (offset %u size %u)", c->offset, c->size);
		m->size = 0; /* the spec's way to say GET_CONFIG failed */
		return VHU_REPLY;
	}
	return VHU_REPLY;
}

static enum vhu_result h_set_config(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_config *c = &m->p.config;

	if (!ops(b)->set_config || !config_msg_ok(b, m) || c->flags > 1 ||
	    ops(b)->set_config(vdev(b), c->offset, c->region, c->size)) {
		vio_warn("vhost-user: SET_CONFIG refused (offset %u size %u)", c->offset, c->size);
		return VHU_ERROR;
	}
	return VHU_OK;
}

/*
 * Walk the status handshake in its order, so a front-end that sets several
 * bits at once (QEMU sets ACKNOWLEDGE|DRIVER|DRIVER_OK together) is judged
 * step by step against the features it gave in SET_FEATURES.
 */
static int apply_status(struct vio_vhu_backend *b, uint8_t want)
{
	static const uint8_t order[] = { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER,
					 VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER_OK };
	uint8_t st = vio_device_get_status(&b->dev) & ~VIRTIO_CONFIG_S_NEEDS_RESET;
	int r;

	if (want == 0) {
		vio_device_reset(&b->dev);
		return 0;
	}
	if (want & VIRTIO_CONFIG_S_DRIVER_OK)
		want |= VIRTIO_CONFIG_S_FEATURES_OK; /* implied: agreed in SET_FEATURES */
	if (want & VIRTIO_CONFIG_S_FEATURES_OK)
		want |= VIRTIO_CONFIG_S_DRIVER;
	if (want & VIRTIO_CONFIG_S_DRIVER)
		want |= VIRTIO_CONFIG_S_ACKNOWLEDGE;
	for (size_t i = 0; i < sizeof(order); i++) {
		if (!(want & order[i]) || (st & order[i]))
			continue;
		if (order[i] == VIRTIO_CONFIG_S_FEATURES_OK) {
			r = vio_device_set_features(&b->dev, virtio_features(b));
			if (r)
				return r;
		}
		st |= order[i];
		r = vio_device_set_status(&b->dev, st);
		if (r)
			return r;
	}
	return vio_device_set_status(&b->dev, want & ~VIRTIO_CONFIG_S_NEEDS_RESET);
}

static enum vhu_result h_set_status(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int r;

	if (m->p.u64 > UINT8_MAX) {
		vio_warn("vhost-user: SET_STATUS 0x%llx", (unsigned long long)m->p.u64);
		return VHU_ERROR;
	}
	r = apply_status(b, (uint8_t)m->p.u64);
	if (r) {
		vio_warn("vhost-user: status 0x%x refused: %s", (unsigned)m->p.u64, strerror(-r));
		return VHU_ERROR;
	}
	return VHU_OK;
}

static enum vhu_result h_get_status(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	sync_faults(b);
	return reply_u64(m, vio_device_get_status(&b->dev));
}

static void reset_device_state(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		queue_reset(b, &b->q[i]);
	b->features = 0;
	vio_device_init(&b->dev, b->dev.offered, NULL, 0);
}

static enum vhu_result h_reset_device(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* Rings and device state go; the connection, its protocol features and memory stay. */
	reset_device_state(b);
	return VHU_OK;
}

/* The dispatch table, generated from the one request list in msg.h. */
static vhu_handler *const handlers[VHOST_USER_MAX_REQUEST] = {
#define VHU_HANDLER(n, id, sz, fmin, fmax, rep, h) [id] = h_##h,
	VIO_VHU_REQUESTS(VHU_HANDLER)
#undef VHU_HANDLER
};

/* ------------------------------------------------------------- connection */

static void drop_connection(struct vio_vhu_backend *b)
{
	if (b->conn_fd < 0)
		return;
	reset_device_state(b);
	unmap_all(b);
	b->protocol = 0;
	close_fd(&b->conn_fd);
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, false);
	if (b->o.client) {
		b->backoff_ms = VHU_RECONNECT_MIN_MS;
		vio_vhu_timer_arm(b->timer_fd, b->backoff_ms);
	}
}

static void connected(struct vio_vhu_backend *b, int fd)
{
	unsigned ms = b->o.msg_timeout_ms ? b->o.msg_timeout_ms : 2000;

	if (vio_vhu_set_timeout(fd, ms))
		vio_warn("vhost-user: cannot bound socket waits");
	b->conn_fd = fd;
	b->unknown_logged = 0;
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, true);
}

static void log_unknown_once(struct vio_vhu_backend *b, uint32_t request)
{
	unsigned bit = request < 63 ? request : 63;

	if (b->unknown_logged & VIO_BIT(bit))
		return;
	b->unknown_logged |= VIO_BIT(bit);
	vio_warn("vhost-user: unknown request %u ignored", request);
}

/* Send what the handler's result says the front-end is owed. */
static int answer(struct vio_vhu_backend *b, struct vio_vhu_msg *m, enum vhu_result res)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(m->request);
	bool need_ack = (m->flags & VHOST_USER_NEED_REPLY_MASK) && ri->reply == VIO_VHU_REPLY_ACK;

	switch (res) {
	case VHU_REPLY:
		m->flags = VHOST_USER_REPLY_MASK;
		m->nfds = 0;
		return vio_vhu_msg_send(b->conn_fd, m);
	case VHU_OK:
		return need_ack ? vio_vhu_msg_reply_u64(b->conn_fd, m->request, 0) : 0;
	case VHU_ERROR:
		if (need_ack)
			return vio_vhu_msg_reply_u64(b->conn_fd, m->request, 1);
		/* A front-end waiting for a reply we cannot form would hang: let it see EOF. */
		return ri->reply == VIO_VHU_REPLY_ACK ? 0 : -EPROTO;
	case VHU_DISCONNECT:
		break;
	}
	return -EPROTO;
}

static int handle_message(struct vio_vhu_backend *b)
{
	struct vio_vhu_msg m;
	enum vhu_result res;
	int r = vio_vhu_msg_recv(b->conn_fd, &m);

	if (r == -ENOMSG) {
		log_unknown_once(b, m.request);
		if (m.flags & VHOST_USER_NEED_REPLY_MASK)
			r = vio_vhu_msg_reply_u64(b->conn_fd, m.request, 1);
		else
			r = 0;
		return r;
	}
	if (r)
		return r;
	sync_faults(b);
	vio_dbg("vhost-user: %s", vio_vhu_req_name(m.request));
	res = handlers[m.request](b, &m);
	vio_vhu_msg_close_fds(&m);
	return answer(b, &m, res);
}

int vio_vhu_backend_dispatch(struct vio_vhu_backend *b)
{
	int fd, r;

	if (b->conn_fd >= 0) {
		r = handle_message(b);
		if (r) {
			if (r == -ECONNRESET)
				vio_info("vhost-user: front-end disconnected");
			else
				vio_warn("vhost-user: dropping front-end: %s", strerror(-r));
			drop_connection(b);
		}
		return 0;
	}
	if (!b->o.client) {
		fd = vio_vhu_accept(b->listen_fd);
		if (fd == -EAGAIN || fd == -ECONNABORTED)
			return 0;
		if (fd < 0)
			return fd;
		connected(b, fd);
		return 0;
	}
	vio_vhu_timer_consume(b->timer_fd);
	fd = vio_vhu_connect(b->path);
	if (fd < 0) {
		unsigned max = b->o.reconnect_max_ms ? b->o.reconnect_max_ms : 2000;

		b->backoff_ms = b->backoff_ms * 2 > max ? max : b->backoff_ms * 2;
		return vio_vhu_timer_arm(b->timer_fd, b->backoff_ms);
	}
	b->backoff_ms = VHU_RECONNECT_MIN_MS;
	connected(b, fd);
	return 0;
}

int vio_vhu_backend_fd(const struct vio_vhu_backend *b)
{
	if (b->conn_fd >= 0)
		return b->conn_fd;
	return b->o.client ? b->timer_fd : b->listen_fd;
}

int vio_vhu_backend_run_once(struct vio_vhu_backend *b, int timeout_ms)
{
	struct pollfd pfd = { .fd = vio_vhu_backend_fd(b), .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);

	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	return vio_vhu_backend_dispatch(b);
}

bool vio_vhu_backend_connected(const struct vio_vhu_backend *b)
{
	return b->conn_fd >= 0;
}

void vio_vhu_backend_disconnect(struct vio_vhu_backend *b)
{
	drop_connection(b);
}

uint8_t vio_vhu_backend_status(struct vio_vhu_backend *b)
{
	sync_faults(b);
	return vio_device_get_status(&b->dev);
}

unsigned vio_vhu_backend_running_queues(const struct vio_vhu_backend *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->max_queues; i++)
		n += b->q[i].running;
	return n;
}

int vio_vhu_backend_new(const struct vio_vhu_backend_opts *o, struct vio_vhu_backend **out)
{
	const struct vio_vdev_ops *vo = o->vdev.ops;
	struct vio_vhu_backend *b;
	int r;

	*out = NULL;
	if (!o->socket_path || !vo || !vo->get_features || !vo->max_queues || !vo->queue_start ||
	    !vo->queue_stop)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *o;
	b->listen_fd = b->conn_fd = b->timer_fd = -1;
	b->path = strdup(o->socket_path);
	if (!b->path) {
		r = -ENOMEM;
		goto fail;
	}
	b->o.socket_path = b->path;
	b->max_queues = vo->max_queues(o->vdev.dev);
	if (b->max_queues == 0) {
		r = -EINVAL;
		goto fail;
	}
	if (b->max_queues > VIO_VHU_MAX_QUEUES)
		b->max_queues = VIO_VHU_MAX_QUEUES;
	for (unsigned i = 0; i < VIO_VHU_MAX_QUEUES; i++) {
		b->q[i].b = b;
		b->q[i].index = i;
		b->q[i].kick_fd = b->q[i].call_fd = b->q[i].err_fd = -1;
		atomic_init(&b->q[i].faulted, false);
	}
	b->offered = vo->get_features(o->vdev.dev) | VIO_BIT(VIRTIO_F_VERSION_1);
	vio_device_init(&b->dev, b->offered, NULL, 0);
	b->offered |= VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	vio_mem_init(&b->mem);
	if (o->client) {
		r = vio_vhu_timer_new();
		if (r < 0)
			goto fail;
		b->timer_fd = r;
		b->backoff_ms = VHU_RECONNECT_MIN_MS;
		r = vio_vhu_timer_arm(b->timer_fd, 0);
		if (r)
			goto fail;
	} else {
		r = vio_vhu_listen(b->path);
		if (r < 0)
			goto fail;
		b->listen_fd = r;
	}
	*out = b;
	return 0;
fail:
	close_fd(&b->timer_fd);
	free(b->path);
	free(b);
	return r;
}

void vio_vhu_backend_free(struct vio_vhu_backend *b)
{
	if (!b)
		return;
	drop_connection(b);
	if (b->listen_fd >= 0) {
		close_fd(&b->listen_fd);
		unlink(b->path);
	}
	close_fd(&b->timer_fd);
	free(b->path);
	free(b);
}
