/* SPDX-License-Identifier: MIT */
/*
 * Virtqueues: split and packed layouts, each with a driver side (posts
 * buffers, reaps used ones) and a device side (pops descriptor chains as
 * iovecs, pushes them back used). One face for both layouts; the layout is
 * chosen by VIRTIO_F_RING_PACKED in the negotiated features.
 *
 * A queue keeps indices and pointers to its rings only; descriptor addresses
 * are translated through the struct vio_mem passed to each call. A queue is
 * owned by one thread at a time per side: the driver side and the device side
 * of one queue may run in two threads (they share only the rings). No call
 * blocks, allocates on the data path, or trusts a value read from the ring.
 */
#ifndef VIO_VIRTQ_H
#define VIO_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vio/mem.h"
#include "vio/virtio_spec.h"

#define VIO_VIRTQ_MAX_SIZE 32768

/* Guest addresses of the three areas of a queue. */
struct vio_virtq_addrs {
	uint64_t desc;   /* split: descriptor table; packed: descriptor ring */
	uint64_t driver; /* split: available ring; packed: driver event suppression */
	uint64_t device; /* split: used ring; packed: device event suppression */
};

/* A chain popped by the device: iov[0, nout) readable, iov[nout, nout + nin) writable. */
struct vio_chain {
	uint16_t id;        /* split: head index; packed: buffer id */
	uint16_t ndesc;     /* ring slots the chain used (an indirect table counts 1) */
	uint16_t nout, nin; /* iovec counts */
	uint32_t out_bytes, in_bytes;
	int status;         /* 0, or -ENOBUFS: chain longer than iov_cap, iovecs incomplete */
	uint16_t iov_cap;   /* set by the caller: room in iov */
	struct iovec *iov;  /* set by the caller */
};

/* A used buffer as the device returns it. */
struct vio_used_elem {
	uint16_t id;
	uint16_t ndesc; /* from the popped chain (packed needs it to advance) */
	uint32_t len;   /* bytes written into the writable part */
};

/* Why a queue stopped (first fault wins, it is sticky until reset). */
enum vio_virtq_fault {
	VIO_VQ_OK = 0,
	VIO_VQ_BAD_HEAD,        /* head/descriptor index >= queue size */
	VIO_VQ_AVAIL_TOO_FAR,   /* available index more than queue size ahead */
	VIO_VQ_CHAIN_TOO_LONG,  /* more descriptors than the queue (or indirect table) holds: a loop */
	VIO_VQ_BAD_ADDR,        /* a descriptor or ring outside the memory map */
	VIO_VQ_NESTED_INDIRECT, /* an indirect descriptor inside an indirect table */
	VIO_VQ_INDIRECT_NEXT,   /* an indirect descriptor with NEXT set */
	VIO_VQ_BAD_INDIRECT,    /* indirect table length 0, not a multiple of 16, or feature not negotiated */
	VIO_VQ_READ_AFTER_WRITE,/* a readable descriptor after a writable one */
	VIO_VQ_LEN_OVERFLOW,    /* chain total length does not fit 32 bits */
	VIO_VQ_BAD_USED,        /* (driver side) device returned an id not in flight, or a bad length */
};

typedef void vio_virtq_fault_fn(void *opaque, unsigned queue_index, enum vio_virtq_fault why);

/*
 * Layout-private state. Each struct is owned by its file (src/core/split.c,
 * src/core/packed.c); nothing else reads it.
 */
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
	bool pos_valid;          /* indices set (first resolve or set_base) */
	uint16_t signalled_used; /* used_idx at the last notify decision */
	bool signalled_wrap;
	uint16_t device_flags_shadow;
	/* driver side */
	uint16_t next_avail;     /* next slot to fill */
	bool avail_wrap_drv;
	uint16_t last_used;      /* next slot to reap */
	bool used_wrap_drv;
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

/* Fields are private to src/core; the struct is public so it can be embedded. */
struct vio_virtq {
	uint64_t features;
	uint16_t size;
	bool packed, event_idx, indirect, in_order;
	bool is_driver;
	unsigned index; /* reported to the fault callback */
	struct vio_virtq_addrs addrs;
	vio_virtq_fault_fn *on_fault;
	void *fault_opaque;
	enum vio_virtq_fault fault; /* sticky; VIO_VQ_OK while healthy */

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

/* Driver side, per buffer id (split: head descriptor index; packed: buffer id). */
struct vio_virtq_drv_state {
	void *cookie;    /* NULL when free */
	uint16_t ndesc;  /* ring slots it took */
	uint16_t next;   /* free list link / last descriptor of the chain */
};

/* ---- sizing and setup ---- */

/* Bytes of the three areas for a queue of this size and layout, each rounded to its alignment. */
size_t vio_virtq_area_size(bool packed, uint16_t size);

/*
 * Device side: check cfg (size 1..32768, power of two for split; alignment),
 * resolve the rings through mem and start with indices at zero. The fault
 * callback (may be NULL) is called once when the driver breaks a rule.
 * Returns 0, -EINVAL for a bad size or alignment, -EFAULT for rings outside mem.
 */
int vio_virtq_device_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  const struct vio_virtq_addrs *addrs, const struct vio_mem *mem);

/* Resolve the rings again after the memory map changed; -EFAULT if they are gone. */
int vio_virtq_remap(struct vio_virtq *vq, const struct vio_mem *mem);

void vio_virtq_set_fault_handler(struct vio_virtq *vq, unsigned index, vio_virtq_fault_fn *fn,
				 void *opaque);

/*
 * Ring position for hand-over (vhost-user SET/GET_VRING_BASE). Split: the
 * next available index to read. Packed: bits 0-14 next slot to read, bit 15
 * its wrap counter; bits 16-30 the next used slot, bit 31 its wrap counter.
 */
uint32_t vio_virtq_get_base(const struct vio_virtq *vq);
int vio_virtq_set_base(struct vio_virtq *vq, uint32_t base);

/*
 * Driver side: lay the rings out in area (host pointer + its gpa, len at
 * least vio_virtq_area_size plus indirect_max * 16 * size if INDIRECT_DESC
 * is negotiated and indirect_max > 0), zero them, fill addrs_out.
 * Allocates per-descriptor state: free it with vio_virtq_fini.
 */
int vio_virtq_driver_init(struct vio_virtq *vq, uint64_t features, uint16_t size,
			  uint16_t indirect_max, void *area, uint64_t area_gpa, size_t area_len,
			  struct vio_virtq_addrs *addrs_out);

/* Bytes a driver area needs (rings + indirect tables). */
size_t vio_virtq_driver_area_size(uint64_t features, uint16_t size, uint16_t indirect_max);

/* Free what init allocated; the queue is unusable after. Safe on a zeroed queue. */
void vio_virtq_fini(struct vio_virtq *vq);

/* ---- state ---- */

bool vio_virtq_is_broken(const struct vio_virtq *vq);
enum vio_virtq_fault vio_virtq_fault_reason(const struct vio_virtq *vq);
const char *vio_virtq_fault_str(enum vio_virtq_fault why);

/* ---- device side ---- */

/*
 * Pop up to n chains. Returns how many (0 when nothing is available), or
 * -EIO if the queue is broken (now or before). A chain whose iovecs do not
 * fit its iov_cap is still popped, with status -ENOBUFS: push it back.
 */
int vio_virtq_pop_burst(struct vio_virtq *vq, const struct vio_mem *mem, struct vio_chain *chains,
			unsigned n);

/* Return n used buffers, publishing the used index once. */
void vio_virtq_push_burst(struct vio_virtq *vq, const struct vio_used_elem *elems, unsigned n);

/* After pushes: does the driver want an interrupt now? Serialised with pushes. */
bool vio_virtq_device_should_notify(struct vio_virtq *vq);

/* Ask the driver not to kick (we are polling). */
void vio_virtq_device_disable_notify(struct vio_virtq *vq);

/*
 * Ask the driver to kick on new buffers. Returns true if buffers arrived
 * meanwhile (pop again before sleeping), false if it is safe to sleep.
 */
bool vio_virtq_device_enable_notify(struct vio_virtq *vq);

/* True if a chain is available (no side effects). */
bool vio_virtq_device_has_avail(struct vio_virtq *vq);

/* ---- driver side ---- */

/*
 * Post one buffer: iov[0, nout) readable by the device, iov[nout, nout+nin)
 * writable. Uses an indirect table when negotiated and more than one iovec.
 * Not visible to the device until vio_virtq_kick_prepare or vio_virtq_publish.
 * Returns 0, -ENOSPC when the ring is full, -EFAULT for memory outside mem,
 * -EINVAL for no iovec or an empty one.
 */
int vio_virtq_add(struct vio_virtq *vq, const struct vio_mem *mem, const struct iovec *iov,
		  unsigned nout, unsigned nin, void *cookie);

/* Publish what was added; true if the device wants a kick. */
bool vio_virtq_kick_prepare(struct vio_virtq *vq);

/*
 * Publish what was added without asking whether the device wants a kick:
 * for a driver that polls and never notifies. No full fence, no read of the
 * device's event suppression. A later kick_prepare still counts these
 * buffers in its decision. Same caller rules as vio_virtq_add.
 */
void vio_virtq_publish(struct vio_virtq *vq);

/* Reap up to n used buffers: cookies and written lengths. Returns how many; -EIO if broken. */
int vio_virtq_get_used_burst(struct vio_virtq *vq, void **cookies, uint32_t *lens, unsigned n);

/* Free descriptors. */
unsigned vio_virtq_num_free(const struct vio_virtq *vq);

void vio_virtq_driver_disable_cb(struct vio_virtq *vq);

/* Ask for interrupts again; false if used buffers are already pending (reap first). */
bool vio_virtq_driver_enable_cb(struct vio_virtq *vq);

/*
 * Ask for an interrupt only once `after` more buffers have been used (event
 * index / packed descriptor-specific mode; falls back to enable_cb without).
 */
bool vio_virtq_driver_enable_cb_after(struct vio_virtq *vq, uint16_t after);

#endif
