/* SPDX-License-Identifier: MIT */
/**
 * @file vdev.h
 * A device type (virtio-blk, virtio-net) as every transport and every poller
 * sees it: its features, its config space, and per-queue start/poll/stop.
 * Device types implement these ops against the core's device-side queue API
 * and never learn which transport (vhost-user, in-process pair) feeds them.
 */
#ifndef VIO_VDEV_H
#define VIO_VDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vio/mem.h"
#include "vio/virtq.h"

/** What a device needs to run one queue. Owned by the transport; valid from start to stop. */
struct vio_vq_ctx {
	struct vio_virtq *vq;
	const struct vio_mem *mem;
	void (*notify)(void *opaque); /**< raise the driver's interrupt (vhost-user: call eventfd) */
	void *notify_opaque;
};

struct vio_vdev_ops {
	/** Device-specific and transport feature bits the device offers. */
	uint64_t (*get_features)(void *dev);
	/** Config space: its length, and reads/writes inside it (-EINVAL outside). */
	uint32_t (*config_len)(void *dev);
	int (*get_config)(void *dev, uint32_t off, void *buf, uint32_t len);
	int (*set_config)(void *dev, uint32_t off, const void *buf, uint32_t len);
	/** Largest number of queues the device serves. */
	unsigned (*max_queues)(void *dev);
	/**
	 * Queue q starts with the negotiated features. Called on the control
	 * thread before any queue_poll for q.
	 */
	int (*queue_start)(void *dev, unsigned q, const struct vio_vq_ctx *ctx, uint64_t features);
	/**
	 * Process what is available and what completed; called by the one thread
	 * that owns queue q. Returns the number of requests handled (0: idle), or
	 * a negative errno when the queue is broken.
	 */
	int (*queue_poll)(void *dev, unsigned q);
	/** An fd that becomes readable when queue_poll has completions to reap, or -1. */
	int (*queue_wait_fd)(void *dev, unsigned q);
	/**
	 * Optional: true while buffers waiting in q's ring make no progress by
	 * polling q: q holds as many requests in flight as it can (completions
	 * arrive on queue_wait_fd), or q is only ever filled from other queues'
	 * polls (a net receive queue). A poller then neither arms q's
	 * notifications nor spins on it. Called by the thread that owns q.
	 */
	bool (*queue_full)(void *dev, unsigned q);
	/**
	 * Optional: nanoseconds until q can go on with requests it holds back
	 * (rate limits) without any other event; 0 when it holds none. A poller
	 * sleeps at most that long. Called by the thread that owns q.
	 */
	uint64_t (*queue_wait_ns)(void *dev, unsigned q);
	/**
	 * Stop q: finish (or fail) everything in flight, push it used, then
	 * forget the queue. Called by the owner thread (or with it paused).
	 */
	void (*queue_stop)(void *dev, unsigned q);
	/**
	 * Optional, for devices whose queues reach one another (the net
	 * switch copies a frame from one port's TX queue straight into
	 * another port's RX queue): the thread that will poll q calls
	 * queue_attach(q) on itself before the first queue_poll(q), and
	 * queue_detach(q) after the last, before the queue is handed back
	 * to be stopped. Only between the two may the device touch q from
	 * a poll of another queue. NULL: nothing to do.
	 */
	void (*queue_attach)(void *dev, unsigned q);
	void (*queue_detach)(void *dev, unsigned q);
};

/**
 * What a driver-side device type (src/client: blk client, net client) needs
 * to run one queue, whatever connects it to the device (vhost-user frontend,
 * in-process pair). Buffers it posts must lie inside mem.
 */
struct vio_drv_ctx {
	struct vio_virtq *vq;          /**< driver side, initialised */
	const struct vio_mem *mem;
	void (*kick)(void *opaque);    /**< notify the device */
	void *kick_opaque;
	int call_fd;                   /**< eventfd the device signals on used buffers, or -1 */
};

struct vio_vdev {
	const struct vio_vdev_ops *ops;
	void *dev;
};

#endif
