/* SPDX-License-Identifier: MIT */
/*
 * The virtqueue's private state and what virtq.c (the layout-independent
 * face) needs from each layout. Every layout function has a _split twin
 * (split_device.c, split_driver.c) and a _packed twin (packed_device.c,
 * packed_driver.c); virtq.c checks role and fault and dispatches, the
 * layouts do the work (a driver's per-buffer calls: one load of
 * driver_door does both, and the packed ones run packed_driver_fast.h
 * inline). Nothing outside src/core reads these fields except tests that
 * lay rings out by hand.
 */
#ifndef VIO_VIRTQ_INTERNAL_H
#define VIO_VIRTQ_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>

#include "mem_internal.h"
#include "vio/virtq.h"

/* Device side of a split queue. */
struct vio_virtq_split {
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	/* device side */
	uint16_t last_avail_idx;  /* next avail ring entry to read (free-running) */
	uint16_t used_idx_shadow; /* our used idx, published once per burst */
	uint16_t signalled_used;  /* used idx at the last notify decision */
	uint16_t avail_idx_seen;  /* avail->idx as last read: entries before it need no new read */
	/* driver side */
	uint16_t avail_idx_shadow;
	uint16_t kicked_avail;    /* avail idx at the last kick decision */
	uint16_t last_used_idx;   /* next used ring entry to read */
	uint16_t used_idx_seen;   /* used->idx as last read: entries before it need no new read */
	uint16_t free_head;       /* free list head; IN_ORDER: next descriptor in ring order */
	uint16_t avail_flags_shadow;
	uint16_t batch_left;      /* IN_ORDER: buffers left in the used entry being reaped */
	uint32_t batch_len;       /* IN_ORDER: len of that entry (its last buffer's) */
	bool started;             /* device side: indices were set up by the first resolve */
};

struct vio_virtq_packed {
	struct pvirtq_desc *desc;
	struct pvirtq_event_suppress *driver_event;
	struct pvirtq_event_suppress *device_event;
	/* device side */
	uint16_t last_avail_idx; /* next slot to read */
	uint16_t used_idx;       /* next slot to write used */
	bool avail_wrap;         /* wrap counter of last_avail_idx */
	bool used_wrap;          /* wrap counter of used_idx */
	bool pos_valid;          /* indices set (first resolve or set_pos) */
	uint16_t signalled_used; /* used_idx at the last notify decision */
	bool signalled_wrap;
	uint16_t device_flags_shadow;
	/* driver side */
	uint16_t next_avail;     /* next slot to fill */
	bool avail_wrap_drv;
	uint16_t last_used;      /* next slot to reap */
	uint16_t used_bits_drv;  /* AVAIL/USED bits of a used slot at last_used (the driver's used wrap) */
	uint16_t kicked_avail;   /* next_avail at the last kick decision */
	bool kicked_wrap;
	uint16_t pending_slot;   /* first slot added but not yet published */
	uint16_t pending_flags;  /* the flags its head descriptor will get; 0: nothing pending */
	bool in_batch;           /* in-order: reaping buffers covered by one used descriptor */
	uint16_t batch_id;       /* the id that used descriptor carried */
	uint32_t batch_len;      /* and its length */
	uint16_t free_id;        /* head of the buffer id free list */
	uint16_t driver_flags_shadow;
};

/* Driver side, per buffer id (split: head descriptor index; packed: buffer id). */
struct vio_virtq_drv_state {
	void *cookie;    /* NULL when free */
	uint16_t ndesc;  /* ring slots it took */
	uint16_t next;   /* free list link / last descriptor of the chain */
};

enum vio_virtq_role { VIO_VQ_DEVICE, VIO_VQ_DRIVER };

/*
 * Restart support, device side. A transport that keeps a record of the
 * chains in flight outside the process (vhost-user's inflight region) sets
 * a tracker: the queue calls it on its owner thread around every pop and
 * push, so no device type has to know the record exists. Each call returns
 * false when the record can no longer be kept (it is shared with the peer):
 * the queue then faults with VIO_VQ_BAD_INFLIGHT.
 *   popped:  chains[0, n) were just taken from the ring, in ring order;
 *            packed: the first one starts at slot first_slot (read the
 *            descriptors with vio_virtq_read_slots_packed now, before any
 *            push can overwrite them).
 *   pushing: elems[0, n) are about to be published used.
 *   pushed:  they are published.
 */
struct vio_virtq_tracker {
	bool (*popped)(void *opaque, const struct vio_chain *chains, unsigned n,
		       uint16_t first_slot);
	bool (*pushing)(void *opaque, const struct vio_used_elem *elems, unsigned n);
	bool (*pushed)(void *opaque, const struct vio_used_elem *elems, unsigned n);
};

/*
 * A chain a previous device took from the ring and never returned, to be
 * popped again before anything new. Split: head is the head descriptor
 * index (the descriptor table still holds the chain: the driver cannot
 * reuse it before it is used). Packed: descs[0, ndesc) are copies of the
 * ring slots the chain had (later used descriptors may have overwritten
 * the ring), in order, the buffer id in the last one.
 */
struct vio_virtq_redo {
	uint16_t head;
	uint16_t ndesc;
	const struct pvirtq_desc *descs;
};

/* The redo list a queue serves first, copied in by vio_virtq_set_redo. */
struct vio_virtq_redo_list {
	unsigned n, next;       /* chains queued, the next to serve */
	uint16_t *head;         /* split: per chain */
	uint32_t *start;        /* packed: per chain, first of its descriptors in descs */
	uint16_t *ndesc;        /* packed: per chain */
	struct pvirtq_desc *descs;
};

struct vio_dirty_log;

#define VIO_VIRTQ_NAME_MAX 64

/* vq->driver_door: VQ_DRIVER_CHECK sends a call through the full checks. */
enum vio_virtq_driver_door { VQ_DRIVER_CHECK, VQ_DRIVER_SPLIT, VQ_DRIVER_PACKED };

struct vio_virtq {
	uint64_t features;
	uint16_t size;
	bool packed, event_idx, indirect, in_order;
	/*
	 * Driver side: which layout a healthy driver queue has, in the one
	 * byte virtq.c's per-buffer driver calls test instead of role, fault
	 * and layout (enum vio_virtq_driver_door). Set at init, VQ_DRIVER_CHECK
	 * from the first fault on; the owner thread's loads are relaxed.
	 */
	_Atomic uint8_t driver_door;
	enum vio_virtq_role role;
	/*
	 * Sticky; VIO_VQ_OK while healthy. Written once by the owner thread,
	 * read by any thread (vio_virtq_is_broken): atomic.
	 */
	_Atomic int fault;
	unsigned index; /* reported to the fault handler */
	struct vio_virtq_addrs addrs;
	vio_virtq_fault_fn *on_fault;
	void *fault_opaque;
	char name[VIO_VIRTQ_NAME_MAX];

	/* device side, restart support (both NULL / empty unless a transport set them) */
	const struct vio_virtq_tracker *tracker;
	void *tracker_opaque;
	struct vio_virtq_redo_list redo;

	/* device side, live migration: where ring and buffer writes are logged (dirty_log.h) */
	const struct vio_dirty_log *dlog;

	/*
	 * Counters (struct vio_virtq_stats): written by the owner thread only,
	 * as plain relaxed stores (no locked add on the data path), read by any.
	 */
	_Atomic uint64_t st_buffers, st_notifies, st_suppressed;
	/* Owner thread: the last pop stopped at an IOTLB miss (sleep until kicked). */
	bool iotlb_wait;

	/* driver side, both layouts */
	uint16_t num_free;
	uint16_t indirect_max;     /* descriptors per indirect table, 0 = none */
	void *indirect_host;       /* size tables of indirect_max descriptors */
	uint64_t indirect_gpa;
	struct vio_virtq_drv_state *drv; /* per buffer id: cookie, ndesc, next free; malloc'd */

	union {
		struct vio_virtq_split split;
		struct vio_virtq_packed packed;
	} l;
};

/*
 * In-place set-up for a queue the caller embeds (tests that lay rings out
 * by hand); vio_virtq_device_new / driver_new are these plus an allocation.
 * vio_virtq_fini frees what driver_init allocated; safe on a zeroed queue.
 */
int vio_virtq_device_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  const struct vio_virtq_addrs *addrs, const struct vio_mem *mem);
int vio_virtq_driver_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  uint16_t indirect_max, void *area, uint64_t area_gpa, size_t area_len,
			  struct vio_virtq_addrs *addrs_out);
void vio_virtq_fini(struct vio_virtq *vq);

/*
 * Mark the queue broken (the first reason sticks): log it once by name and
 * tell the owner once. The layouts, vio_virtq_remap and the tracker doors
 * in virtq.c call it; nothing else does.
 */
void vio_virtq_set_fault(struct vio_virtq *vq, enum vio_virtq_fault why);

/* Add to a counter only the owner thread writes: a load and a store, never a locked add. */
#define VQ_STAT_ADD(field, n)                                                                   \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)

/* A notification decision was made (there was progress to tell): count it, return it. */
static inline bool vio_virtq_decided(struct vio_virtq *vq, bool want)
{
	if (want)
		VQ_STAT_ADD(vq->st_notifies, 1);
	else
		VQ_STAT_ADD(vq->st_suppressed, 1);
	return want;
}

static inline bool vio_virtq_faulted(const struct vio_virtq *vq)
{
	return atomic_load_explicit(&vq->fault, memory_order_relaxed) != VIO_VQ_OK;
}

/*
 * Filling a popped chain's iovecs: the walkers and the one-descriptor fast
 * paths go only through these two. vio_chain_room says whether one more
 * iovec fits; when it does not, it marks the chain -ENOBUFS (cut short) and
 * the caller stops translating.
 */
static inline bool vio_chain_room(struct vio_chain *c)
{
	if (__builtin_expect(c->nout + c->nin < c->iov_cap, 1))
		return true;
	c->status = -ENOBUFS;
	return false;
}

static inline void vio_chain_append(struct vio_chain *c, void *host, uint32_t len, bool writable)
{
	struct iovec *v = &c->iov[c->nout + c->nin];

	v->iov_base = host;
	v->iov_len = len;
	if (writable) {
		c->nin++;
		c->in_bytes += len;
	} else {
		c->nout++;
		c->out_bytes += len;
	}
}

/* Start filling a chain (ids and ndesc are set by the walker when it ends). */
/*
 * Not a fault: a buffer's IOVA is not in the IOTLB yet. The walker stops
 * there without consuming the chain (the miss went to the front-end) and
 * pop returns what it took before it; the queue tries again later.
 */
#define VIO_VQ_IOTLB_WAIT ((enum vio_virtq_fault)0x100)

/*
 * Append one buffer [addr, addr + len) to c, translated for the access the
 * device makes (a writable buffer needs write rights, a readable one read
 * rights): one iovec, or several when an IOTLB maps it in pieces that are
 * not contiguous here. Sets *full and stops when c has no more room.
 * Returns VIO_VQ_OK, VIO_VQ_BAD_ADDR or VIO_VQ_IOTLB_WAIT.
 */
static inline enum vio_virtq_fault vio_chain_add_buf(struct vio_chain *c, const struct vio_mem *mem,
						     uint64_t addr, uint32_t len, bool writable,
						     bool *full)
{
	unsigned perm = writable ? VIO_MEM_WRITE : VIO_MEM_READ;

	while (len) {
		uint64_t got;
		void *p;

		if (!vio_chain_room(c)) {
			*full = true;
			return VIO_VQ_OK;
		}
		p = vio_mem_translate_part_inl(mem, addr, len, perm, &got);
		if (!p)
			return vio_mem_why(mem, addr, len, perm, false) == -EAGAIN ? VIO_VQ_IOTLB_WAIT
									  : VIO_VQ_BAD_ADDR;
		vio_chain_append(c, p, (uint32_t)got, writable);
		addr += got;
		len -= (uint32_t)got;
	}
	return VIO_VQ_OK;
}

static inline void vio_chain_reset(struct vio_chain *c)
{
	c->nout = c->nin = 0;
	c->out_bytes = c->in_bytes = 0;
	c->status = 0;
}

/*
 * Most descriptors one indirect table may hold: the queue size (the spec
 * bounds a chain by it, as Linux's vhost does), but never below what a
 * virtio-blk request of VIO_BLK_SEG_MAX segments needs, since Linux's
 * driver builds tables of seg_max + 2 whatever the queue size. Bounds the
 * work one request can cost a data-plane thread.
 */
#define VIO_VIRTQ_INDIRECT_FLOOR 256u
static inline uint32_t vio_virtq_indirect_max(const struct vio_virtq *vq)
{
	return vq->size > VIO_VIRTQ_INDIRECT_FLOOR ? vq->size : VIO_VIRTQ_INDIRECT_FLOOR;
}

/*
 * Ring fields shared with the peer are read and written through these, so
 * that every access to memory the other side can change is a single atomic
 * load/store the compiler cannot tear, repeat or elide.
 */
#define VQ_LOAD_ACQ(p) atomic_load_explicit((_Atomic __typeof__(*(p)) *)(p), memory_order_acquire)
#define VQ_LOAD(p) atomic_load_explicit((_Atomic __typeof__(*(p)) *)(p), memory_order_relaxed)
#define VQ_STORE_REL(p, v) \
	atomic_store_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_release)
#define VQ_STORE(p, v) atomic_store_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_relaxed)
/* Orders our published index before reading the peer's event index (and the reverse). */
#define VQ_FULL_FENCE() atomic_thread_fence(memory_order_seq_cst)

#define VIO_LAYOUT_FNS(sfx)                                                                    \
	int vio_virtq_resolve_##sfx(struct vio_virtq *vq, const struct vio_mem *mem);          \
	void vio_virtq_get_pos_##sfx(const struct vio_virtq *vq, struct vio_virtq_pos *pos);    \
	int vio_virtq_set_pos_##sfx(struct vio_virtq *vq, const struct vio_virtq_pos *pos);     \
	size_t vio_virtq_area_size_##sfx(uint16_t size);                                         \
	void vio_virtq_driver_layout_##sfx(struct vio_virtq *vq, void *area, uint64_t gpa);      \
	int vio_virtq_pop_burst_##sfx(struct vio_virtq *vq, const struct vio_mem *mem,           \
				      struct vio_chain *chains, unsigned n);                    \
	void vio_virtq_push_burst_##sfx(struct vio_virtq *vq, const struct vio_used_elem *elems,  \
					unsigned n);                                              \
	bool vio_virtq_device_should_notify_##sfx(struct vio_virtq *vq);                         \
	void vio_virtq_device_disable_notify_##sfx(struct vio_virtq *vq);                        \
	bool vio_virtq_device_enable_notify_##sfx(struct vio_virtq *vq);                         \
	bool vio_virtq_device_has_avail_##sfx(struct vio_virtq *vq);                             \
	int vio_virtq_add_##sfx(struct vio_virtq *vq, const struct vio_mem *mem,                 \
				const struct iovec *iov, unsigned nout, unsigned nin, void *cookie); \
	bool vio_virtq_kick_prepare_##sfx(struct vio_virtq *vq);                                 \
	void vio_virtq_publish_##sfx(struct vio_virtq *vq);                                      \
	int vio_virtq_get_used_burst_##sfx(struct vio_virtq *vq, void **cookies, uint32_t *lens, \
					   unsigned n);                                           \
	void vio_virtq_driver_disable_cb_##sfx(struct vio_virtq *vq);                            \
	bool vio_virtq_driver_enable_cb_##sfx(struct vio_virtq *vq);                             \
	bool vio_virtq_driver_enable_cb_after_##sfx(struct vio_virtq *vq, uint16_t after);      \
	void vio_virtq_driver_resume_pos_##sfx(const struct vio_virtq *vq, struct vio_virtq_pos *pos);

VIO_LAYOUT_FNS(split)
VIO_LAYOUT_FNS(packed)

/* Pop one chain of the redo list through the layout's one walker. */
enum vio_virtq_fault vio_virtq_repop_split(struct vio_virtq *vq, const struct vio_mem *mem,
					   unsigned i, struct vio_chain *c);
enum vio_virtq_fault vio_virtq_repop_packed(struct vio_virtq *vq, const struct vio_mem *mem,
					    unsigned i, struct vio_chain *c);

/*
 * Restart support for transports (device side, control thread, queue not
 * being polled):
 * vio_virtq_set_tracker: set (or clear, t NULL) the tracker.
 * vio_virtq_set_redo: the chains to pop again first (copied; replaces any
 *   list not yet served). Split heads must be below the queue size; packed
 *   chains need 1..size descriptors each. 0, -EINVAL, -ENOMEM.
 * vio_virtq_read_slots_packed: copy n ring slots from slot on (wrapping),
 *   each field read once; for a tracker's popped call.
 * vio_virtq_slot_avail_packed: does slot hold an available descriptor for
 *   wrap counter wrap? (a restarted transport asks whether a used write it
 *   did not record was published).
 */
void vio_virtq_set_tracker(struct vio_virtq *vq, const struct vio_virtq_tracker *t, void *opaque);
/*
 * Driver side, for a front-end that reconnects to a restarted device: the
 * position a device should resume from when it has nothing better (split:
 * the used index the device published, as QEMU restores it; packed: the
 * next used slot the driver would reap). 0, -EINVAL for a device queue.
 */
int vio_virtq_driver_resume_pos(const struct vio_virtq *vq, struct vio_virtq_pos *pos);
int vio_virtq_set_redo(struct vio_virtq *vq, const struct vio_virtq_redo *r, unsigned n);
void vio_virtq_read_slots_packed(const struct vio_virtq *vq, uint16_t slot, uint16_t n,
				 struct pvirtq_desc *out);
bool vio_virtq_slot_avail_packed(const struct vio_virtq *vq, uint16_t slot, bool wrap);

#endif
