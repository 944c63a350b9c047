/* SPDX-License-Identifier: MIT */
/**
 * @file blk_client.h
 * Driver side of virtio-blk: posts requests on one or more driver-side
 * queues (struct vio_drv_ctx: whatever connects them to a device, the
 * vhost-user frontend or an in-process pair) and reaps their completions.
 * Request headers, segments and status bytes live in an area of shared
 * memory the caller provides (it must lie inside every queue's mem).
 *
 * Each queue q belongs to one thread at a time: submit, kick, poll and sync
 * for q must not run concurrently; different queues may run in parallel.
 */
#ifndef VIO_BLK_CLIENT_H
#define VIO_BLK_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vio/blk.h"
#include "vio/export.h"
#include "vio/vdev.h"

#define VIO_BLK_CLIENT_MAX_IOV 256

/**
 * Completion: status is the device's status byte (VIRTIO_BLK_S_*), or -EIO
 * when the device reported a used length of 0 (status byte not written).
 * len is the used length the device reported (data + status for IN).
 */
typedef void vio_blk_client_cb(void *opaque, int status, uint32_t len);

struct vio_blk_client_req {
	uint32_t type;           /**< VIRTIO_BLK_T_* (any value: tests send unknown ones) */
	uint64_t sector;         /**< IN / OUT (header field; sent as is for other types) */
	const struct iovec *iov; /**< data, host pointers inside mem: written by the device */
	unsigned niov;           /**< for IN and GET_ID, read by it for OUT; 0..MAX_IOV */
	/** DISCARD / WRITE_ZEROES: one segment {seg_sector, num_sectors, flags} */
	uint64_t seg_sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct vio_blk_client;

/** Shared-memory bytes the client needs for these queues (each at its current free count). */
VIO_API size_t vio_blk_client_area_size(const struct vio_drv_ctx *ctxs, unsigned nqueues);

/**
 * ctxs[0..nqueues) are copied; their queues must be initialised and empty.
 * area (host pointer, inside each ctx's mem) holds at least area_size bytes.
 * 0, -EINVAL, -EFAULT (area outside mem), -ENOMEM.
 */
VIO_API int vio_blk_client_new(const struct vio_drv_ctx *ctxs, unsigned nqueues, void *area,
		       size_t area_len, struct vio_blk_client **out);

/** Requests still in flight are forgotten (their callbacks never run). NULL is fine. */
VIO_API void vio_blk_client_free(struct vio_blk_client *c);

/**
 * Post a request on queue q; not visible to the device until
 * vio_blk_client_kick. 0, -ENOSPC (queue full: poll first), -EINVAL,
 * -EFAULT (data outside mem), -EIO (queue broken).
 */
VIO_API int vio_blk_client_submit(struct vio_blk_client *c, unsigned q, const struct vio_blk_client_req *r,
			  vio_blk_client_cb *cb, void *opaque);

/** Publish what was submitted on q (once per burst); kicks the device if it wants. */
VIO_API void vio_blk_client_kick(struct vio_blk_client *c, unsigned q);

/** Reap q's completions and run their callbacks. Count, or -EIO if the queue broke. */
VIO_API int vio_blk_client_poll(struct vio_blk_client *c, unsigned q);

VIO_API unsigned vio_blk_client_inflight(const struct vio_blk_client *c, unsigned q);

/**
 * Synchronous: submit, kick, then poll until done. Between polls it calls
 * progress(progress_opaque) if given (in-process tests run the device
 * there), else sleeps on the queue's call_fd. Returns the status
 * (VIRTIO_BLK_S_*), -ETIMEDOUT after timeout_ms (the request is abandoned:
 * its completion is dropped), or a submit error. *len gets the used length.
 */
VIO_API int vio_blk_client_sync(struct vio_blk_client *c, unsigned q, const struct vio_blk_client_req *r,
			int (*progress)(void *opaque), void *progress_opaque, unsigned timeout_ms,
			uint32_t *len);

#endif
