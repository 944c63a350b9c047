/* SPDX-License-Identifier: MIT */
/**
 * @file service.h
 * Serving one device queue from the application's own loop, with the
 * notification protocol in one place: poll bursts with the driver's kicks
 * off, and when a poll finds nothing, re-arm the kicks and look once more
 * before sleeping, so no request that arrives in between is missed. An
 * embedder that calls vio_queue_service_run when a queue's fds fire never
 * re-derives that race, and a broken queue can never make it spin.
 *
 * A service belongs to the one thread that owns its queue.
 */
#ifndef VIO_SERVICE_H
#define VIO_SERVICE_H

#include <stdbool.h>

#include "vio/export.h"
#include "vio/vdev.h"
#include "vio/virtq.h"

struct vio_queue_service {
	struct vio_vdev vdev;  /**< the device the queue belongs to */
	unsigned q;            /**< its index in the device */
	struct vio_virtq *vq;  /**< the device-side queue */
	int kick_fd;           /**< the driver's kick eventfd, -1 if it never kicks */
	int wait_fd;           /**< the device's completion fd (queue_wait_fd), or -1 */
	bool armed;            /**< notifications are on: the driver kicks */
};

/** What vio_queue_service_run found. */
enum vio_service_state {
	VIO_SERVICE_IDLE = 0, /**< nothing to do, notifications armed: sleep on the fds */
	VIO_SERVICE_BUSY = 1, /**< the budget ran out with work left: call again, do not sleep */
};

/**
 * Set up a service for queue q of vdev, started (queue_start) on vq. The
 * device's completion fd is asked for here: call again after a restart.
 */
VIO_API void vio_queue_service_init(struct vio_queue_service *s, struct vio_vdev vdev,
				    unsigned q, struct vio_virtq *vq, int kick_fd);

/**
 * Serve the queue: drain its fds, then poll (the device's queue_poll) up to
 * budget times (0: no limit) while there is work, and once a poll finds
 * nothing, re-arm notifications and check again.
 * @param handled if not NULL, gets the number of requests handled.
 * @return VIO_SERVICE_IDLE, VIO_SERVICE_BUSY, or -EIO when the queue is
 * broken: stop watching it, it will never have work again.
 */
VIO_API int vio_queue_service_run(struct vio_queue_service *s, unsigned budget,
				  unsigned *handled);

/**
 * The fds to sleep on after VIO_SERVICE_IDLE (readable: call run again).
 * @return how many of fds[0..2) were set. 0 means the queue has no fd to
 * wake on (a driver that polls and never kicks): call run every millisecond
 * or so.
 */
VIO_API unsigned vio_queue_service_fds(const struct vio_queue_service *s, int fds[2]);

/**
 * Sleep until one of the queue's fds is readable or timeout_ms passes (-1:
 * no limit; a queue without fds sleeps at most 1 ms). 0, or -errno of poll.
 */
VIO_API int vio_queue_service_wait(const struct vio_queue_service *s, int timeout_ms);

#endif
