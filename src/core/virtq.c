/* SPDX-License-Identifier: MIT */
/*
 * The layout-independent face of a virtqueue: allocation, argument checks,
 * the role check and the fault latch at every door, and a one-line dispatch
 * per call to the split or packed files. Never touches a ring itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirty_log.h"
#include "log.h"
#include "packed_driver_fast.h"
#include "virtq_internal.h"

#define DISPATCH(vq, fn, ...) ((vq)->packed ? fn##_packed(__VA_ARGS__) : fn##_split(__VA_ARGS__))

/*
 * The door every data-path call passes: the right role and not broken, else
 * the call's documented result for a misuse or for a broken queue.
 */
#define DOOR(vq, want_role, misuse, broken) \
	do { \
		if (__builtin_expect((vq)->role != (want_role), 0)) \
			return (misuse); \
		if (__builtin_expect(vio_virtq_faulted(vq), 0)) \
			return (broken); \
	} while (0)
#define DEVICE_DOOR(vq, misuse, broken) DOOR(vq, VIO_VQ_DEVICE, misuse, broken)
#define DRIVER_DOOR(vq, misuse, broken) DOOR(vq, VIO_VQ_DRIVER, misuse, broken)

/* A healthy driver queue's layout (VQ_DRIVER_SPLIT, _PACKED), else VQ_DRIVER_CHECK. */
static inline enum vio_virtq_driver_door driver_door(const struct vio_virtq *vq)
{
	return (enum vio_virtq_driver_door)atomic_load_explicit(&vq->driver_door,
							       memory_order_relaxed);
}

/*
 * A queue on cache lines of its own: the driver and the device side of one
 * ring are written by two threads on every buffer, and two queues sharing a
 * line would make each side pay for the other's stores.
 */
#define VQ_ALIGN 64
static struct vio_virtq *vq_alloc(void)
{
	size_t len = (sizeof(struct vio_virtq) + VQ_ALIGN - 1) & ~(size_t)(VQ_ALIGN - 1);

	return aligned_alloc(VQ_ALIGN, len);
}

static bool has(uint64_t features, unsigned bit)
{
	return (features >> bit) & 1;
}

static void set_features(struct vio_virtq *vq, uint64_t features, uint16_t size)
{
	vq->features = features;
	vq->size = size;
	vq->packed = has(features, VIRTIO_F_RING_PACKED);
	vq->event_idx = has(features, VIRTIO_F_EVENT_IDX);
	vq->indirect = has(features, VIRTIO_F_INDIRECT_DESC);
	vq->in_order = has(features, VIRTIO_F_IN_ORDER);
	snprintf(vq->name, sizeof(vq->name), "virtq");
}

static bool size_ok(bool packed, uint32_t size)
{
	if (size == 0 || size > VIO_VIRTQ_MAX_SIZE)
		return false;
	return packed || (size & (size - 1)) == 0;
}

size_t vio_virtq_area_size(bool packed, uint16_t size)
{
	return packed ? vio_virtq_area_size_packed(size) : vio_virtq_area_size_split(size);
}

int vio_virtq_device_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  const struct vio_virtq_addrs *addrs, const struct vio_mem *mem)
{
	bool packed = has(features, VIRTIO_F_RING_PACKED);
	uint16_t da = packed ? PVIRTQ_DESC_ALIGN : VIRTQ_DESC_ALIGN;
	uint16_t dra = packed ? PVIRTQ_EVENT_ALIGN : VIRTQ_AVAIL_ALIGN;
	uint16_t dva = packed ? PVIRTQ_EVENT_ALIGN : VIRTQ_USED_ALIGN;

	memset(vq, 0, sizeof(*vq));
	if (!size_ok(packed, size))
		return -EINVAL;
	if (addrs->desc % da || addrs->driver % dra || addrs->device % dva)
		return -EINVAL;
	set_features(vq, features, size);
	vq->role = VIO_VQ_DEVICE;
	vq->addrs = *addrs;
	return DISPATCH(vq, vio_virtq_resolve, vq, mem);
}

int vio_virtq_device_new(uint64_t features, uint16_t size, const struct vio_virtq_addrs *addrs,
			 const struct vio_mem *mem, struct vio_virtq **out)
{
	struct vio_virtq *vq = vq_alloc();
	int r;

	*out = NULL;
	if (!vq)
		return -ENOMEM;
	r = vio_virtq_device_init(vq, features, size, addrs, mem);
	if (r) {
		free(vq);
		return r;
	}
	*out = vq;
	return 0;
}

int vio_virtq_remap(struct vio_virtq *vq, const struct vio_mem *mem)
{
	int r;

	if (vq->role != VIO_VQ_DEVICE)
		return -EINVAL;
	if (vio_virtq_faulted(vq))
		return -EIO;
	r = DISPATCH(vq, vio_virtq_resolve, vq, mem);
	if (r)
		vio_virtq_set_fault(vq, VIO_VQ_RINGS_GONE);
	return r;
}

void vio_virtq_set_owner(struct vio_virtq *vq, const char *name, unsigned index,
			 vio_virtq_fault_fn *fn, void *opaque)
{
	if (name)
		snprintf(vq->name, sizeof(vq->name), "%s", name);
	vq->index = index;
	vq->on_fault = fn;
	vq->fault_opaque = opaque;
}

int vio_virtq_get_pos(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	if (vq->role != VIO_VQ_DEVICE)
		return -EINVAL;
	DISPATCH(vq, vio_virtq_get_pos, vq, pos);
	return 0;
}

int vio_virtq_set_pos(struct vio_virtq *vq, const struct vio_virtq_pos *pos)
{
	if (vq->role != VIO_VQ_DEVICE)
		return -EINVAL;
	if (vio_virtq_faulted(vq))
		return -EIO;
	return DISPATCH(vq, vio_virtq_set_pos, vq, pos);
}

size_t vio_virtq_driver_area_size(uint64_t features, uint16_t size, uint16_t indirect_max)
{
	size_t rings = vio_virtq_area_size(has(features, VIRTIO_F_RING_PACKED), size);

	if (!has(features, VIRTIO_F_INDIRECT_DESC))
		indirect_max = 0;
	return rings + (size_t)indirect_max * 16u * size;
}

int vio_virtq_driver_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  uint16_t indirect_max, void *area, uint64_t area_gpa, size_t area_len,
			  struct vio_virtq_addrs *addrs_out)
{
	bool packed = has(features, VIRTIO_F_RING_PACKED);
	size_t rings;

	memset(vq, 0, sizeof(*vq));
	if (!size_ok(packed, size) || ((uintptr_t)area % 16) || area_gpa % 16)
		return -EINVAL;
	if (area_len < vio_virtq_driver_area_size(features, size, indirect_max))
		return -EINVAL;
	set_features(vq, features, size);
	vq->role = VIO_VQ_DRIVER;
	atomic_store_explicit(&vq->driver_door, packed ? VQ_DRIVER_PACKED : VQ_DRIVER_SPLIT,
			      memory_order_relaxed);
	vq->indirect_max = vq->indirect ? indirect_max : 0;
	rings = vio_virtq_area_size(packed, size);
	memset(area, 0, vio_virtq_driver_area_size(features, size, indirect_max));
	if (vq->indirect_max) {
		vq->indirect_host = (char *)area + rings;
		vq->indirect_gpa = area_gpa + rings;
	}
	vq->drv = calloc(size, sizeof(*vq->drv));
	if (!vq->drv)
		return -ENOMEM;
	vq->num_free = size;
	DISPATCH(vq, vio_virtq_driver_layout, vq, area, area_gpa);
	*addrs_out = vq->addrs;
	return 0;
}

int vio_virtq_driver_new(uint64_t features, uint16_t size, uint16_t indirect_max, void *area,
			 uint64_t area_gpa, size_t area_len, struct vio_virtq_addrs *addrs_out,
			 struct vio_virtq **out)
{
	struct vio_virtq *vq = vq_alloc();
	int r;

	*out = NULL;
	if (!vq)
		return -ENOMEM;
	r = vio_virtq_driver_init(vq, features, size, indirect_max, area, area_gpa, area_len,
				  addrs_out);
	if (r) {
		vio_virtq_fini(vq);
		free(vq);
		return r;
	}
	*out = vq;
	return 0;
}

static void redo_free(struct vio_virtq_redo_list *l)
{
	free(l->head);
	free(l->start);
	free(l->ndesc);
	free(l->descs);
	memset(l, 0, sizeof(*l));
}

void vio_virtq_fini(struct vio_virtq *vq)
{
	free(vq->drv);
	vq->drv = NULL;
	redo_free(&vq->redo);
}

void vio_virtq_free(struct vio_virtq *vq)
{
	if (!vq)
		return;
	vio_virtq_fini(vq);
	free(vq);
}

/* ---- state ---- */

bool vio_virtq_is_broken(const struct vio_virtq *vq)
{
	return vio_virtq_faulted(vq);
}

enum vio_virtq_fault vio_virtq_fault_reason(const struct vio_virtq *vq)
{
	return (enum vio_virtq_fault)atomic_load_explicit(&vq->fault, memory_order_relaxed);
}

const char *vio_virtq_fault_str(enum vio_virtq_fault why)
{
	switch (why) {
	case VIO_VQ_OK: return "ok";
	case VIO_VQ_BAD_HEAD: return "head index or buffer id beyond the queue size";
	case VIO_VQ_BAD_NEXT: return "next descriptor index beyond its table";
	case VIO_VQ_AVAIL_TOO_FAR: return "available index more than the queue size ahead";
	case VIO_VQ_CHAIN_TOO_LONG: return "descriptor chain longer than the queue (loop)";
	case VIO_VQ_BAD_ADDR: return "address outside guest memory";
	case VIO_VQ_NESTED_INDIRECT: return "nested indirect descriptor";
	case VIO_VQ_INDIRECT_NEXT: return "indirect descriptor chained to others";
	case VIO_VQ_BAD_INDIRECT: return "malformed, oversized or unnegotiated indirect table";
	case VIO_VQ_READ_AFTER_WRITE: return "readable descriptor after a writable one";
	case VIO_VQ_LEN_OVERFLOW: return "chain length overflows 32 bits";
	case VIO_VQ_BAD_USED: return "used buffer id not in flight";
	case VIO_VQ_RINGS_GONE: return "rings no longer inside guest memory";
	case VIO_VQ_BAD_INFLIGHT: return "record of chains in flight corrupt";
	}
	return "unknown";
}

uint16_t vio_virtq_size(const struct vio_virtq *vq)
{
	return vq->size;
}

unsigned vio_virtq_index(const struct vio_virtq *vq)
{
	return vq->index;
}

const char *vio_virtq_name(const struct vio_virtq *vq)
{
	return vq->name;
}

bool vio_virtq_is_packed(const struct vio_virtq *vq)
{
	return vq->packed;
}

void vio_virtq_get_stats(const struct vio_virtq *vq, struct vio_virtq_stats *st)
{
	st->buffers = atomic_load_explicit(&vq->st_buffers, memory_order_relaxed);
	st->notifies = atomic_load_explicit(&vq->st_notifies, memory_order_relaxed);
	st->suppressed = atomic_load_explicit(&vq->st_suppressed, memory_order_relaxed);
}


void vio_virtq_set_fault(struct vio_virtq *vq, enum vio_virtq_fault why)
{
	int expected = VIO_VQ_OK;

	if (!atomic_compare_exchange_strong(&vq->fault, &expected, (int)why))
		return;
	atomic_store_explicit(&vq->driver_door, VQ_DRIVER_CHECK, memory_order_relaxed);
	vio_warn(vq->name, "%s queue broken: %s; it stays stopped until reset",
		 vq->role == VIO_VQ_DEVICE ? "device" : "driver", vio_virtq_fault_str(why));
	if (vq->on_fault)
		vq->on_fault(vq->fault_opaque, vq->index, why);
}

/* ---- device side ---- */

/* ---- restart support (transports only; see virtq_internal.h) ---- */

void vio_virtq_set_tracker(struct vio_virtq *vq, const struct vio_virtq_tracker *t, void *opaque)
{
	vq->tracker = t;
	vq->tracker_opaque = opaque;
}

int vio_virtq_set_redo(struct vio_virtq *vq, const struct vio_virtq_redo *r, unsigned n)
{
	struct vio_virtq_redo_list l = { .n = n };
	uint32_t total = 0;

	if (vq->role != VIO_VQ_DEVICE || n > vq->size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (vq->packed ? (r[i].ndesc == 0 || r[i].ndesc > vq->size || !r[i].descs)
			       : r[i].head >= vq->size)
			return -EINVAL;
		total += r[i].ndesc;
	}
	if (n && !vq->packed) {
		l.head = malloc(n * sizeof(*l.head));
		if (!l.head)
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++)
			l.head[i] = r[i].head;
	} else if (n) {
		l.start = malloc(n * sizeof(*l.start));
		l.ndesc = malloc(n * sizeof(*l.ndesc));
		l.descs = malloc(total * sizeof(*l.descs));
		if (!l.start || !l.ndesc || !l.descs) {
			redo_free(&l);
			return -ENOMEM;
		}
		total = 0;
		for (unsigned i = 0; i < n; i++) {
			l.start[i] = total;
			l.ndesc[i] = r[i].ndesc;
			memcpy(l.descs + total, r[i].descs, r[i].ndesc * sizeof(*l.descs));
			total += r[i].ndesc;
		}
	}
	redo_free(&vq->redo);
	vq->redo = l;
	return 0;
}

static inline bool redo_pending(const struct vio_virtq *vq)
{
	return vq->redo.next < vq->redo.n;
}

/*
 * pop_burst with restart support: first the chains a previous device left
 * in flight (already in the transport's record), then new ones, which the
 * tracker records before anyone can see them.
 */
static __attribute__((noinline)) int pop_tracked(struct vio_virtq *vq, const struct vio_mem *mem,
						 struct vio_chain *chains, unsigned n)
{
	struct vio_virtq_pos pos;
	unsigned k = 0;
	int got;

	for (; k < n && redo_pending(vq); k++) {
		enum vio_virtq_fault why =
			DISPATCH(vq, vio_virtq_repop, vq, mem, vq->redo.next, &chains[k]);

		if (why == VIO_VQ_IOTLB_WAIT) {
			vq->iotlb_wait = true;
			return (int)k;
		}
		if (why != VIO_VQ_OK) {
			vio_virtq_set_fault(vq, why);
			return k ? (int)k : -EIO;
		}
		vq->redo.next++;
	}
	if (!redo_pending(vq) && vq->redo.n)
		redo_free(&vq->redo);
	if (k == n)
		return (int)k;
	DISPATCH(vq, vio_virtq_get_pos, vq, &pos);
	got = DISPATCH(vq, vio_virtq_pop_burst, vq, mem, chains + k, n - k);
	if (got > 0 && vq->tracker &&
	    !vq->tracker->popped(vq->tracker_opaque, chains + k, (unsigned)got, pos.avail_idx)) {
		vio_virtq_set_fault(vq, VIO_VQ_BAD_INFLIGHT);
		return -EIO;
	}
	if (got < 0)
		return k ? (int)k : got;
	return (int)k + got;
}

int vio_virtq_pop_burst(struct vio_virtq *vq, const struct vio_mem *mem, struct vio_chain *chains,
			unsigned n)
{
	int r;

	DEVICE_DOOR(vq, -EINVAL, -EIO);
	vq->iotlb_wait = false;
	if (__builtin_expect(vq->tracker != NULL || vq->redo.n, 0))
		r = pop_tracked(vq, mem, chains, n);
	else
		r = DISPATCH(vq, vio_virtq_pop_burst, vq, mem, chains, n);
	if (r > 0)
		VQ_STAT_ADD(vq->st_buffers, (unsigned)r);
	return r;
}

int vio_virtq_push_burst(struct vio_virtq *vq, const struct vio_used_elem *elems, unsigned n)
{
	const struct vio_virtq_tracker *t = vq->tracker;
	uint16_t first;

	DEVICE_DOOR(vq, -EINVAL, -EIO);
	if (!n)
		return 0;
	if (__builtin_expect(t != NULL, 0) && !t->pushing(vq->tracker_opaque, elems, n)) {
		vio_virtq_set_fault(vq, VIO_VQ_BAD_INFLIGHT);
		return -EIO;
	}
	first = vq->packed ? vq->l.packed.used_idx : vq->l.split.used_idx_shadow;
	DISPATCH(vq, vio_virtq_push_burst, vq, elems, n);
	if (__builtin_expect(vq->dlog != NULL, 0))
		vio_dirty_log_used(vq, first, elems, n);
	if (__builtin_expect(t != NULL, 0) && !t->pushed(vq->tracker_opaque, elems, n))
		vio_virtq_set_fault(vq, VIO_VQ_BAD_INFLIGHT);
	return (int)n;
}

bool vio_virtq_device_should_notify(struct vio_virtq *vq)
{
	DEVICE_DOOR(vq, false, false);
	return DISPATCH(vq, vio_virtq_device_should_notify, vq);
}

int vio_virtq_device_disable_notify(struct vio_virtq *vq)
{
	DEVICE_DOOR(vq, -EINVAL, -EIO);
	DISPATCH(vq, vio_virtq_device_disable_notify, vq);
	if (__builtin_expect(vq->dlog != NULL, 0))
		vio_dirty_log_notify(vq);
	return 0;
}

bool vio_virtq_device_enable_notify(struct vio_virtq *vq)
{
	DEVICE_DOOR(vq, false, false);
	/* Chains to pop again need no kick: nobody will send one for them. */
	if (__builtin_expect(redo_pending(vq), 0))
		return !vq->iotlb_wait;
	if (__builtin_expect(vq->dlog != NULL, 0)) {
		bool more = DISPATCH(vq, vio_virtq_device_enable_notify, vq);

		vio_dirty_log_notify(vq);
		return more && !vq->iotlb_wait;
	}
	/*
	 * A pop stopped at an IOTLB miss: buffers are there, but sleep until
	 * a kick (the transport kicks once the front-end's update arrives).
	 */
	return DISPATCH(vq, vio_virtq_device_enable_notify, vq) && !vq->iotlb_wait;
}

bool vio_virtq_device_has_avail(struct vio_virtq *vq)
{
	DEVICE_DOOR(vq, false, false);
	if (__builtin_expect(redo_pending(vq), 0))
		return true;
	return DISPATCH(vq, vio_virtq_device_has_avail, vq);
}

/* ---- driver side ---- */

int vio_virtq_driver_resume_pos(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	if (vq->role != VIO_VQ_DRIVER)
		return -EINVAL;
	DISPATCH(vq, vio_virtq_driver_resume_pos, vq, pos);
	return 0;
}

int vio_virtq_add(struct vio_virtq *vq, const struct vio_mem *mem, const struct iovec *iov,
		  unsigned nout, unsigned nin, void *cookie)
{
	const enum vio_virtq_driver_door door = driver_door(vq);
	unsigned total = nout + nin;
	int r;

	/* The common call, checked: one iovec on a healthy queue (each iovec 1..UINT32_MAX bytes). */
	if (__builtin_expect(door != VQ_DRIVER_CHECK && total == 1 && cookie &&
			     iov[0].iov_len - 1 < UINT32_MAX, 1)) {
		r = door == VQ_DRIVER_PACKED ? add_one_packed(vq, mem, iov, nout == 0, cookie)
					     : vio_virtq_add_split(vq, mem, iov, nout, nin, cookie);
		goto added;
	}
	DRIVER_DOOR(vq, -EINVAL, -EIO);
	if (total == 0 || total > VIO_VIRTQ_MAX_SIZE || !cookie)
		return -EINVAL;
	/* Each iovec 1..UINT32_MAX bytes: len - 1 wraps for 0. */
	if (iov[0].iov_len - 1 >= UINT32_MAX)
		return -EINVAL;
	for (unsigned i = 1; i < total; i++)
		if (iov[i].iov_len - 1 >= UINT32_MAX)
			return -EINVAL;
	r = DISPATCH(vq, vio_virtq_add, vq, mem, iov, nout, nin, cookie);
added:
	if (r == 0)
		VQ_STAT_ADD(vq->st_buffers, 1);
	return r;
}

bool vio_virtq_kick_prepare(struct vio_virtq *vq)
{
	DRIVER_DOOR(vq, false, false);
	return DISPATCH(vq, vio_virtq_kick_prepare, vq);
}

int vio_virtq_publish(struct vio_virtq *vq)
{
	switch (driver_door(vq)) {
	case VQ_DRIVER_PACKED:
		publish_packed(vq);
		return 0;
	case VQ_DRIVER_SPLIT:
		vio_virtq_publish_split(vq);
		return 0;
	case VQ_DRIVER_CHECK:
		break;
	}
	DRIVER_DOOR(vq, -EINVAL, -EIO);
	DISPATCH(vq, vio_virtq_publish, vq);
	return 0;
}

int vio_virtq_get_used_burst(struct vio_virtq *vq, void **cookies, uint32_t *lens, unsigned n)
{
	switch (driver_door(vq)) {
	case VQ_DRIVER_PACKED:
		return get_used_packed(vq, cookies, lens, n);
	case VQ_DRIVER_SPLIT:
		return vio_virtq_get_used_burst_split(vq, cookies, lens, n);
	case VQ_DRIVER_CHECK:
		break;
	}
	DRIVER_DOOR(vq, -EINVAL, -EIO);
	return DISPATCH(vq, vio_virtq_get_used_burst, vq, cookies, lens, n);
}

unsigned vio_virtq_num_free(const struct vio_virtq *vq)
{
	DRIVER_DOOR(vq, 0u, 0u);
	return vq->num_free;
}

int vio_virtq_driver_disable_cb(struct vio_virtq *vq)
{
	DRIVER_DOOR(vq, -EINVAL, -EIO);
	DISPATCH(vq, vio_virtq_driver_disable_cb, vq);
	return 0;
}

bool vio_virtq_driver_enable_cb(struct vio_virtq *vq)
{
	DRIVER_DOOR(vq, false, false);
	return DISPATCH(vq, vio_virtq_driver_enable_cb, vq);
}

bool vio_virtq_driver_enable_cb_after(struct vio_virtq *vq, uint16_t after)
{
	DRIVER_DOOR(vq, false, false);
	return DISPATCH(vq, vio_virtq_driver_enable_cb_after, vq, after);
}
