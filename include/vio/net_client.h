/* SPDX-License-Identifier: MIT */
/**
 * @file net_client.h
 * Driver side of virtio-net: sends and receives bursts of Ethernet frames
 * on one or more queue pairs (struct vio_drv_ctx: whatever connects them
 * to a device, the vhost-user frontend or an in-process pair), mergeable
 * receive buffers included, and runs control-queue commands. Buffers live
 * in an area of shared memory the caller provides (it must lie inside every
 * queue's mem).
 *
 * Each pair belongs to one thread at a time: send, recv and wait for pair
 * p must not run concurrently; different pairs may run in parallel. The
 * control queue is used by one thread at a time.
 */
#ifndef VIO_NET_CLIENT_H
#define VIO_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vio/export.h"
#include "vio/net.h"
#include "vio/vdev.h"

/* Receive buffers one frame may span (num_buffers above this is the device's error). */
#define VIO_NET_CLIENT_MAX_SEGS 64

struct vio_net_client_opts {
	const struct vio_drv_ctx *queues; /* 2 * pairs: pair i's receive queue at 2i, transmit at 2i+1 */
	unsigned pairs;
	const struct vio_drv_ctx *ctrl;   /* the control queue (needs CTRL_VQ), or NULL */
	uint64_t features;                /* negotiated; MRG_RXBUF decides the receive layout */
	/*
	 * Bytes per receive buffer, header included. 0: 2048 with MRG_RXBUF,
	 * else room for the largest frame (65562 with GUEST_TSO4/6, else 9030).
	 */
	uint32_t rx_buf_size;
	/* Largest frame sent, header included. 0: 65562 with HOST_TSO4/6, else 9030. */
	uint32_t tx_buf_size;
};

/* A frame to send: len bytes at data (copied), with this header (NULL: no offload). */
struct vio_net_tx {
	const void *data;
	uint32_t len;
	const struct virtio_net_hdr_v1 *hdr;
};

/*
 * A received frame, in place in the receive buffers (no copy): seg[0, nseg)
 * hold its len bytes after the virtio header. Valid until the next
 * vio_net_client_recv on the same pair, which gives the buffers back.
 */
struct vio_net_rx {
	struct virtio_net_hdr_v1 hdr;
	uint32_t len;
	unsigned nseg;
	struct iovec seg[VIO_NET_CLIENT_MAX_SEGS];
};

struct vio_net_client_stats {
	uint64_t tx_packets, tx_bytes;
	uint64_t rx_packets, rx_bytes;
	uint64_t tx_full;   /* frames send() could not queue: the ring was full */
	uint64_t rx_errors; /* used buffers the device got wrong (lengths, num_buffers): dropped */
	uint64_t raw_done;  /* raw chains (vio_net_client_post_raw) the device returned */
	uint32_t raw_last_len; /* the used length of the last one */
};

struct vio_net_client;

/** Shared-memory bytes the client needs for these options (queues at their current free count). */
VIO_API size_t vio_net_client_area_size(const struct vio_net_client_opts *o);

/**
 * Lay the buffers out in area (host pointer inside each queue's mem, at
 * least area_size bytes) and post every receive buffer. The queues must be
 * initialised and empty. Interrupts are left off (the client polls; see
 * vio_net_client_wait). 0, -EINVAL, -EFAULT (area outside mem), -ENOMEM.
 */
VIO_API int vio_net_client_new(const struct vio_net_client_opts *o, void *area, size_t area_len,
		       struct vio_net_client **out);

VIO_API void vio_net_client_free(struct vio_net_client *c);

/**
 * Copy up to n frames into transmit buffers of pair, publish them once and
 * kick the device if it wants. Completed buffers are reaped first. Returns
 * the frames queued (fewer when the ring is full), -EINVAL (a frame larger
 * than tx_buf_size - 12, a bad pair), -EIO (queue broken).
 */
VIO_API int vio_net_client_send(struct vio_net_client *c, unsigned pair, const struct vio_net_tx *tx,
			unsigned n);

/** Reap pair's completed transmit buffers; how many are still in flight. */
VIO_API int vio_net_client_tx_reap(struct vio_net_client *c, unsigned pair);

/**
 * Give back the buffers of the previous call, then reap up to n frames from
 * pair. Returns the frames (0: none waiting), or -EIO if the queue broke.
 */
VIO_API int vio_net_client_recv(struct vio_net_client *c, unsigned pair, struct vio_net_rx *rx,
			unsigned n);

/** Copy a received frame out: bytes copied (at most len). */
VIO_API size_t vio_net_rx_copy(const struct vio_net_rx *rx, void *dst, size_t len);

/**
 * Sleep until pair's receive queue has used buffers or timeout_ms passes
 * (on the queue's call fd; without one, a 100 us nap). 1: buffers wait,
 * 0: timeout.
 */
VIO_API int vio_net_client_wait(struct vio_net_client *c, unsigned pair, int timeout_ms);

/**
 * Run one control command: class, command, len bytes of data; the device
 * writes the ack. Between polls it calls progress(opaque) if given
 * (in-process tests run the device there), else sleeps on the control
 * queue's call fd. Returns the ack (VIRTIO_NET_OK / VIRTIO_NET_ERR),
 * -ENOTSUP (no control queue), -EINVAL (data over 4 KiB), -ETIMEDOUT,
 * -EIO (the device returned no ack, or the queue broke).
 */
VIO_API int vio_net_client_ctrl(struct vio_net_client *c, uint8_t cls, uint8_t cmd, const void *data,
			size_t len, int (*progress)(void *opaque), void *opaque,
			unsigned timeout_ms);

/**
 * Post exactly these iovecs (readable iov[0, nout), then writable) on
 * device queue index q (2p: receive, 2p + 1: transmit of pair p, 2 * pairs:
 * the control queue): for tests
 * that need misshaped chains. No header is added; the iovecs must lie in
 * shared memory. Completions are counted in raw_done, never returned.
 */
VIO_API int vio_net_client_post_raw(struct vio_net_client *c, unsigned q, const struct iovec *iov,
			    unsigned nout, unsigned nin);

/* Bytes of shared memory for the caller's own raw chains (inside the client's area). */
VIO_API void *vio_net_client_scratch(struct vio_net_client *c, size_t *len);

VIO_API void vio_net_client_stats(const struct vio_net_client *c, struct vio_net_client_stats *st);

#endif
