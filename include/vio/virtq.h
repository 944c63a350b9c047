/* SPDX-License-Identifier: MIT */
/**
 * @file virtq.h
 * Virtqueues: split and packed layouts, each with a driver side (posts
 * buffers, reaps used ones) and a device side (pops descriptor chains as
 * iovecs, pushes them back used). One face for both layouts; the layout is
 * chosen by VIRTIO_F_RING_PACKED in the negotiated features.
 *
 * A queue is an opaque handle. It keeps indices and pointers to its rings
 * only; descriptor addresses are translated through the struct vio_mem
 * passed to each call. A queue has one role (device or driver) for its
 * whole life; a call made for the other role returns -EINVAL (or false /
 * nothing, for calls that return no errno).
 *
 * Threads: each side of a queue is owned by one thread at a time. Every
 * call below may be made only by that owner, except the read-only state
 * calls (vio_virtq_is_broken, vio_virtq_fault_reason, vio_virtq_size,
 * vio_virtq_index, vio_virtq_name), which any thread may make. No call
 * blocks, allocates on the data path, or trusts a value read from the ring.
 *
 * Broken is inert: once the peer has broken a rule (or the queue's rings
 * left guest memory), the queue latches a fault (vio_virtq_fault_reason),
 * logs it once by name, tells the fault handler once, and from then on
 * every data-path call does nothing and returns its documented inert
 * result: -EIO for calls that return an errno, false for calls that return
 * a decision. No loop of the form "while (enable_notify) poll" can spin on
 * a broken queue.
 */
#ifndef VIO_VIRTQ_H
#define VIO_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vio/export.h"
#include "vio/mem.h"
#include "vio/virtio_spec.h"

/** Largest queue size the spec allows (both layouts). */
#define VIO_VIRTQ_MAX_SIZE 32768

/** An opaque virtqueue, one side of it. */
struct vio_virtq;

/** Guest addresses of the three areas of a queue. */
struct vio_virtq_addrs {
	uint64_t desc;   /**< split: descriptor table; packed: descriptor ring */
	uint64_t driver; /**< split: available ring; packed: driver event suppression */
	uint64_t device; /**< split: used ring; packed: device event suppression */
};

/**
 * A chain popped by the device: iov[0, nout) readable, iov[nout, nout + nin)
 * writable. The caller sets iov and iov_cap before popping.
 */
struct vio_chain {
	uint16_t id;        /**< split: head index; packed: buffer id */
	uint16_t ndesc;     /**< ring slots the chain used (an indirect table counts 1) */
	uint16_t nout, nin; /**< iovec counts */
	uint32_t out_bytes, in_bytes; /**< bytes described by the iovecs filled */
	int status;         /**< 0, or -ENOBUFS: more buffers than iov_cap, iovecs cut short */
	uint16_t iov_cap;   /**< set by the caller: room in iov */
	struct iovec *iov;  /**< set by the caller */
};

/** A used buffer as the device returns it. */
struct vio_used_elem {
	uint16_t id;
	uint16_t ndesc; /**< from the popped chain (packed needs it to advance) */
	uint32_t len;   /**< bytes written into the writable part */
};

/**
 * A ring position, for handing a queue from one device to the next (a
 * restarted backend, a migration destination). Split: avail_idx is the next
 * available-ring entry to read (free running, 16 bits) and used_idx the
 * next used-ring entry to write; the wrap counters are unused. Packed:
 * slots with their wrap counters.
 */
struct vio_virtq_pos {
	uint16_t avail_idx;
	uint16_t used_idx;
	bool avail_wrap;
	bool used_wrap;
};

/** Why a queue stopped (the first fault wins; it is sticky until the queue is freed). */
enum vio_virtq_fault {
	VIO_VQ_OK = 0,
	VIO_VQ_BAD_HEAD,        /**< head index (split) or buffer id (packed) >= queue size */
	VIO_VQ_BAD_NEXT,        /**< a descriptor's next index beyond its table */
	VIO_VQ_AVAIL_TOO_FAR,   /**< available index more than queue size ahead */
	VIO_VQ_CHAIN_TOO_LONG,  /**< more descriptors than the queue (or indirect table) holds: a loop */
	VIO_VQ_BAD_ADDR,        /**< a descriptor outside the memory map */
	VIO_VQ_NESTED_INDIRECT, /**< an indirect descriptor inside an indirect table */
	VIO_VQ_INDIRECT_NEXT,   /**< an indirect descriptor with NEXT set, or not alone (packed) */
	VIO_VQ_BAD_INDIRECT,    /**< indirect table empty, not a multiple of 16, too large, or not negotiated */
	VIO_VQ_READ_AFTER_WRITE,/**< a readable descriptor after a writable one */
	VIO_VQ_LEN_OVERFLOW,    /**< chain total length does not fit 32 bits */
	VIO_VQ_BAD_USED,        /**< (driver side) the device returned an id not in flight */
	VIO_VQ_RINGS_GONE,      /**< the rings are no longer inside guest memory */
	VIO_VQ_BAD_INFLIGHT,    /**< the transport's record of chains in flight is corrupt */
};

/**
 * Called once, on the thread that found it, when the queue faults. Keep it
 * short and thread-safe: it typically raises the device's NEEDS_RESET.
 */
typedef void vio_virtq_fault_fn(void *opaque, unsigned queue_index, enum vio_virtq_fault why);

/* ---- sizing and setup ------------------------------------------------- */

/** Bytes of the three areas for a queue of this size and layout, each rounded to its alignment. */
VIO_API size_t vio_virtq_area_size(bool packed, uint16_t size);

/** Bytes a driver area needs (rings + indirect tables, see vio_virtq_driver_new). */
VIO_API size_t vio_virtq_driver_area_size(uint64_t features, uint16_t size, uint16_t indirect_max);

/**
 * Device side: check the size (1..32768, power of two for split) and the
 * ring alignment, resolve the rings through mem and start at position zero
 * (or at the positions the ring itself records, see vio_virtq_set_pos).
 * @return 0 with *out set, -EINVAL for a bad size or alignment, -EFAULT
 * for rings outside mem, -ENOMEM.
 */
VIO_API int vio_virtq_device_new(uint64_t features, uint16_t size,
				 const struct vio_virtq_addrs *addrs, const struct vio_mem *mem,
				 struct vio_virtq **out);

/**
 * Driver side: lay the rings out in area (host pointer and its guest
 * address, 16-byte aligned, at least vio_virtq_driver_area_size bytes;
 * indirect tables of indirect_max descriptors follow the rings when
 * VIRTIO_F_INDIRECT_DESC is negotiated), zero them, fill addrs_out.
 * @return 0 with *out set, -EINVAL, -ENOMEM.
 */
VIO_API int vio_virtq_driver_new(uint64_t features, uint16_t size, uint16_t indirect_max,
				 void *area, uint64_t area_gpa, size_t area_len,
				 struct vio_virtq_addrs *addrs_out, struct vio_virtq **out);

/** Free a queue of either role. NULL is fine. */
VIO_API void vio_virtq_free(struct vio_virtq *vq);

/**
 * Device side: resolve the rings again after the memory map changed.
 * @return 0; -EFAULT if they are no longer inside mem, -EINVAL if they are
 * misaligned there: the queue is then broken (VIO_VQ_RINGS_GONE) and never
 * touches the old pointers; -EIO if it was broken already; -EINVAL on a
 * driver queue.
 */
VIO_API int vio_virtq_remap(struct vio_virtq *vq, const struct vio_mem *mem);

/**
 * Name the queue for log lines (typically "<device name> q<index>"; copied,
 * truncated to 63 bytes) and set the fault handler (fn may be NULL).
 */
VIO_API void vio_virtq_set_owner(struct vio_virtq *vq, const char *name, unsigned index,
				 vio_virtq_fault_fn *fn, void *opaque);

/** Device side: the ring position, for handing the queue over. */
VIO_API int vio_virtq_get_pos(const struct vio_virtq *vq, struct vio_virtq_pos *pos);

/**
 * Device side, before the first pop: continue from pos. Split takes
 * avail_idx and reads the used index from the ring itself (the driver
 * cannot have moved it); packed takes all four fields.
 * @return 0, -EINVAL for a slot beyond the queue or the wrong role, -EIO if
 * the queue is broken.
 */
VIO_API int vio_virtq_set_pos(struct vio_virtq *vq, const struct vio_virtq_pos *pos);

/* ---- state (any thread) ----------------------------------------------- */

VIO_API bool vio_virtq_is_broken(const struct vio_virtq *vq);
VIO_API enum vio_virtq_fault vio_virtq_fault_reason(const struct vio_virtq *vq);
/** The fault's name, e.g. "descriptor index beyond the queue size". */
VIO_API const char *vio_virtq_fault_str(enum vio_virtq_fault why);
VIO_API uint16_t vio_virtq_size(const struct vio_virtq *vq);
VIO_API unsigned vio_virtq_index(const struct vio_virtq *vq);
VIO_API const char *vio_virtq_name(const struct vio_virtq *vq);
VIO_API bool vio_virtq_is_packed(const struct vio_virtq *vq);

/**
 * A queue's counters, kept by its owner thread. Device side: chains popped,
 * interrupts the driver wanted (should_notify true) and interrupts it had
 * suppressed (should_notify false). Driver side: buffers added, kicks the
 * device wanted (kick_prepare true) and kicks it had suppressed.
 */
struct vio_virtq_stats {
	uint64_t buffers;
	uint64_t notifies;
	uint64_t suppressed;
};

/** Read a queue's counters (any thread; each value is read atomically, the set is not a snapshot). */
VIO_API void vio_virtq_get_stats(const struct vio_virtq *vq, struct vio_virtq_stats *st);

/* ---- device side ------------------------------------------------------- */

/**
 * Pop up to n chains. A chain whose buffers do not fit its iov_cap is still
 * popped, with status -ENOBUFS (its iovecs cut short): push it back.
 * @return how many (0 when nothing is available), -EIO if the queue is
 * broken (now or before), -EINVAL on a driver queue.
 */
VIO_API int vio_virtq_pop_burst(struct vio_virtq *vq, const struct vio_mem *mem,
				struct vio_chain *chains, unsigned n);

/**
 * Return n used buffers, publishing the used index once.
 * @return n, -EIO if broken (nothing written), -EINVAL on a driver queue.
 */
VIO_API int vio_virtq_push_burst(struct vio_virtq *vq, const struct vio_used_elem *elems,
				 unsigned n);

/** After pushes: does the driver want an interrupt now? false if broken or wrong role. */
VIO_API bool vio_virtq_device_should_notify(struct vio_virtq *vq);

/** Ask the driver not to kick (we are polling). 0, -EIO, -EINVAL. */
VIO_API int vio_virtq_device_disable_notify(struct vio_virtq *vq);

/**
 * Ask the driver to kick on new buffers.
 * @return true if buffers arrived meanwhile (pop again before sleeping),
 * false if it is safe to sleep, and always false on a broken queue.
 */
VIO_API bool vio_virtq_device_enable_notify(struct vio_virtq *vq);

/** True if a chain is available (no side effects); false if broken or wrong role. */
VIO_API bool vio_virtq_device_has_avail(struct vio_virtq *vq);

/**
 * Device side, live migration: true while the transport wants every guest
 * page the device writes logged (set while the queue is stopped, so it
 * holds from queue start to stop: a device may read it once at start).
 */
VIO_API bool vio_virtq_logging(const struct vio_virtq *vq);

/**
 * Device side: the device wrote into iov[0, n) (host addresses from chains
 * this queue popped; empty iovecs are skipped). While logging, the guest
 * pages they cover are marked dirty; otherwise nothing happens. Call it
 * after writing and before pushing the buffers used. The queue logs its own
 * ring writes.
 */
VIO_API void vio_virtq_log_write(struct vio_virtq *vq, const struct iovec *iov, unsigned n);

/* ---- driver side ------------------------------------------------------- */

/**
 * Post one buffer: iov[0, nout) readable by the device, iov[nout, nout+nin)
 * writable. Uses an indirect table when negotiated and more than one iovec.
 * Not visible to the device until vio_virtq_kick_prepare or vio_virtq_publish.
 * @return 0, -ENOSPC when the ring is full, -EFAULT for memory outside mem,
 * -EINVAL for no iovec, an empty one, or a device queue, -EIO if broken.
 */
VIO_API int vio_virtq_add(struct vio_virtq *vq, const struct vio_mem *mem,
			  const struct iovec *iov, unsigned nout, unsigned nin, void *cookie);

/** Publish what was added; true if the device wants a kick (false if broken). */
VIO_API bool vio_virtq_kick_prepare(struct vio_virtq *vq);

/**
 * Publish what was added without asking whether the device wants a kick:
 * for a driver that polls and never notifies. A later kick_prepare still
 * counts these buffers in its decision. 0, -EIO, -EINVAL.
 */
VIO_API int vio_virtq_publish(struct vio_virtq *vq);

/**
 * Reap up to n used buffers: cookies and written lengths.
 * @return how many, -EIO if broken, -EINVAL on a device queue.
 */
VIO_API int vio_virtq_get_used_burst(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				     unsigned n);

/** Free descriptors (0 if broken or wrong role). */
VIO_API unsigned vio_virtq_num_free(const struct vio_virtq *vq);

/** Ask the device not to interrupt. 0, -EIO, -EINVAL. */
VIO_API int vio_virtq_driver_disable_cb(struct vio_virtq *vq);

/**
 * Ask for interrupts again.
 * @return true if it is safe to sleep, false if used buffers are already
 * pending (reap first) or the queue is broken / the wrong role.
 */
VIO_API bool vio_virtq_driver_enable_cb(struct vio_virtq *vq);

/**
 * Ask for an interrupt only once `after` more buffers have been used (event
 * index / packed descriptor-specific mode; falls back to enable_cb
 * without). Same result as vio_virtq_driver_enable_cb.
 */
VIO_API bool vio_virtq_driver_enable_cb_after(struct vio_virtq *vq, uint16_t after);

#endif
