/* SPDX-License-Identifier: MIT */
/**
 * @file vhost_user.h
 * The vhost-user transport in both roles.
 *
 * Backend: serves one device (struct vio_vdev) to a vhost-user front-end
 * (QEMU, cloud-hypervisor, DPDK virtio-user, vio's own frontend) over a unix
 * socket, as server (listens) or client (connects, reconnects). The
 * application owns the loop: it waits for vio_vhu_backend_fd() to become
 * readable and calls vio_vhu_backend_dispatch(); it also owns the data path:
 * the backend hands it each started queue through hooks.start_queue and takes
 * it back with hooks.stop_queue. All backend calls and all hooks except
 * queue_fault run on the one control thread that calls dispatch.
 *
 * Frontend: drives any vhost-user backend with no VM: guest memory is a
 * memfd it allocates, its queues are driver-side virtqueues in that memory,
 * exposed as struct vio_drv_ctx for a driver-side device type (blk client).
 */
#ifndef VIO_VHOST_USER_H
#define VIO_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vio/export.h"
#include "vio/mem.h"
#include "vio/vdev.h"
#include "vio/virtq.h"

/** Queues one backend or frontend serves at most (vhost-user puts the index in 8 bits). */
#define VIO_VHU_MAX_QUEUES 64
/** Memory slots a backend accepts (GET_MAX_MEM_SLOTS). */
#define VIO_VHU_MAX_MEM_SLOTS 32
/** Guest memory one front-end may map by default: 1 TiB. */
#define VIO_VHU_DEFAULT_MAX_MEM (1ull << 40)

/* ------------------------------------------------------------------ backend */

struct vio_vhu_backend;

struct vio_vhu_backend_hooks {
	/**
	 * Queue q is running: the vdev's queue_start has been called. From now
	 * on the application polls it (vdev ops queue_poll) on the thread it
	 * chooses, sleeping on kick_fd (-1: the front-end asked for polling)
	 * and on ops->queue_wait_fd; vq is the device-side queue (to re-enable
	 * notifications before sleeping). Non-zero: the queue stays stopped.
	 * NULL: nobody polls (tests of the control path).
	 */
	int (*start_queue)(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd);
	/**
	 * Synchronous: when it returns, no application thread touches q any
	 * more; the backend then calls the vdev's queue_stop. The kick fd
	 * given to start_queue may be closed right after.
	 */
	void (*stop_queue)(void *opaque, unsigned q);
	/** Optional: a front-end connected (true) or went away (false). */
	void (*connection)(void *opaque, bool connected);
	/**
	 * Optional: the driver broke queue q's rules; the device reports
	 * NEEDS_RESET and the queue stays stopped until the front-end resets
	 * the device or sets the ring up again (SET_VRING_*). Called on the data-path thread that found the fault:
	 * keep it short and thread-safe.
	 */
	void (*queue_fault)(void *opaque, unsigned q, enum vio_virtq_fault why);
};

struct vio_vhu_backend_opts {
	const char *socket_path;
	const char *name;      /**< owner of this backend's log lines (NULL: socket_path) */
	bool client;           /**< connect to a listening front-end instead of listening */
	struct vio_vdev vdev;  /**< the device served; must outlive the backend */
	struct vio_vhu_backend_hooks hooks;
	void *hooks_opaque;
	/** Client mode: reconnect delay doubles from 50 ms up to this (0: 2000 ms). */
	unsigned reconnect_max_ms;
	/** A message must arrive whole within this many ms of its first byte (0: 2000). */
	unsigned msg_timeout_ms;
	/** Guest memory one front-end may have mapped at once (0: VIO_VHU_DEFAULT_MAX_MEM). */
	uint64_t max_mem_bytes;
	/** Memory regions one front-end may have (0 or more than VIO_VHU_MAX_MEM_SLOTS: all). */
	unsigned max_regions;
	/** Largest ring size accepted (0: VIO_VIRTQ_MAX_SIZE). */
	unsigned max_queue_size;
	/** Server mode: permissions of the socket file (0: 0600, owner only). */
	unsigned socket_mode;
	/**
	 * Offer VIRTIO_F_ACCESS_PLATFORM: when the front-end agrees (a guest
	 * behind a vIOMMU), every ring and buffer address is an I/O virtual
	 * address the front-end's IOTLB updates map, with access rights.
	 */
	bool access_platform;
	/** IOTLB entries kept at most (0: 2048); past it the oldest give way. */
	unsigned iotlb_max;
};

/**
 * Create a backend: server mode binds and listens on socket_path (a stale
 * socket file there is removed first); client mode tries to connect at the
 * first dispatch. 0, or negative errno (-EINVAL for bad options).
 */
VIO_API int vio_vhu_backend_new(const struct vio_vhu_backend_opts *o, struct vio_vhu_backend **out);

/** Drop any front-end (queues stopped through the hooks), close the socket, remove its file. */
VIO_API void vio_vhu_backend_free(struct vio_vhu_backend *b);

/**
 * The fd to wait on for readability: the connection while a front-end is
 * connected, else the listening socket (server) or a reconnect timer
 * (client). It changes across dispatch calls: ask again after each.
 */
VIO_API int vio_vhu_backend_fd(const struct vio_vhu_backend *b);

/**
 * Handle the fd being readable: accept a front-end, or handle one message,
 * or (client) try to connect. A misbehaving or vanished front-end is
 * dropped and the backend made ready for the next: that is not an error.
 * Returns 0, or a negative errno only when the backend itself cannot go on.
 */
VIO_API int vio_vhu_backend_dispatch(struct vio_vhu_backend *b);

/** Wait up to timeout_ms (-1: forever) for the fd, then dispatch. 0 on timeout too. */
VIO_API int vio_vhu_backend_run_once(struct vio_vhu_backend *b, int timeout_ms);

VIO_API bool vio_vhu_backend_connected(const struct vio_vhu_backend *b);

/** Drop the current front-end, if any (stops its queues through the hooks). */
VIO_API void vio_vhu_backend_disconnect(struct vio_vhu_backend *b);

/** Device status as the front-end sees it (NEEDS_RESET included). */
VIO_API uint8_t vio_vhu_backend_status(struct vio_vhu_backend *b);

/**
 * Install a process-wide SIGBUS handler that keeps a front-end from killing
 * the process by shrinking the file behind guest memory (an unsealed memfd,
 * a tmpfs or hugetlbfs file): a fault inside such a mapping swaps it for
 * zero pages and fails only that device (NEEDS_RESET, logged); any other
 * SIGBUS goes to the previous handler or kills the process as before. Call
 * once, before threads start; without it, unsealed guest memory is accepted
 * with a warning. 0 or negative errno.
 */
VIO_API int vio_vhu_guard_sigbus(void);

/**
 * Tell the front-end the device's config space changed (a disk resized):
 * a CONFIG_CHANGE message on the backend request channel, sent without
 * waiting. 0; -ENOTCONN with no front-end or no channel; -ENOTSUP when the
 * front-end did not agree to BACKEND_REQ and CONFIG; -EAGAIN if the channel
 * is full (the front-end does not read it). Control thread.
 */
VIO_API int vio_vhu_backend_config_changed(struct vio_vhu_backend *b);

/** IOTLB traffic of one backend (VIRTIO_F_ACCESS_PLATFORM). */
struct vio_vhu_iotlb_stats {
	bool enabled;         /**< agreed with the current front-end */
	uint32_t entries;     /**< held now */
	uint64_t misses;      /**< lookups that found nothing (the queue waited) */
	uint64_t miss_msgs;   /**< MISS messages sent on the backend channel */
	uint64_t updates;     /**< UPDATEs applied */
	uint64_t invalidates; /**< INVALIDATEs applied */
	uint64_t evictions;   /**< entries dropped to stay within iotlb_max */
	uint64_t refused;     /**< IOTLB messages refused (malformed, outside memory) */
};

/** Read the IOTLB counters; any thread. 0. */
VIO_API int vio_vhu_backend_iotlb_stats(const struct vio_vhu_backend *b,
					struct vio_vhu_iotlb_stats *st);

/** Number of queues running now (started and handed to the application). */
VIO_API unsigned vio_vhu_backend_running_queues(const struct vio_vhu_backend *b);

/* ----------------------------------------------------------------- frontend */

struct vio_vhu_frontend;

struct vio_vhu_frontend_opts {
	const char *socket_path;
	const char *name;       /**< owner of this frontend's log lines (NULL: socket_path) */
	uint64_t mem_size;      /**< shared guest memory, bytes (rings + data buffers) */
	uint64_t features;      /**< virtio features wanted; VIRTIO_F_VERSION_1 is always asked */
	unsigned nqueues;       /**< 1..VIO_VHU_MAX_QUEUES */
	uint16_t queue_size;    /**< 0: 256 */
	uint16_t indirect_max;  /**< descriptors per indirect table when INDIRECT_DESC is agreed */
	int timeout_ms;         /**< per reply from the backend; 0: 5000 */
};

/**
 * Connect and set everything up: negotiate features and protocol features
 * (MQ, REPLY_ACK, CONFIG, STATUS, RESET_DEVICE, CONFIGURE_MEM_SLOTS), share
 * the memory, start nqueues queues, set DRIVER_OK. 0 or negative errno
 * (-ENOTSUP: the backend lacks VERSION_1 or has too few queues).
 * Not thread-safe; each queue's drv ctx may then be used by one thread.
 */
VIO_API int vio_vhu_frontend_connect(const struct vio_vhu_frontend_opts *o, struct vio_vhu_frontend **out);

/** Negotiated virtio features (without VHOST_USER_F_PROTOCOL_FEATURES). */
VIO_API uint64_t vio_vhu_frontend_features(const struct vio_vhu_frontend *f);
VIO_API uint64_t vio_vhu_frontend_protocol_features(const struct vio_vhu_frontend *f);
VIO_API unsigned vio_vhu_frontend_nqueues(const struct vio_vhu_frontend *f);

/** Queue q's driver-side context (kick writes the kick eventfd), or NULL. */
VIO_API const struct vio_drv_ctx *vio_vhu_frontend_queue(struct vio_vhu_frontend *f, unsigned q);

/** The shared memory map (one region at guest address 0). */
VIO_API const struct vio_mem *vio_vhu_frontend_mem(const struct vio_vhu_frontend *f);

/** Bump-allocate shared memory for data buffers (align: power of two); NULL when full. */
VIO_API void *vio_vhu_frontend_alloc(struct vio_vhu_frontend *f, size_t size, size_t align);

/** Config space (needs PROTOCOL_F_CONFIG): -ENOTSUP without it, -EIO if the backend refuses. */
VIO_API int vio_vhu_frontend_get_config(struct vio_vhu_frontend *f, uint32_t off, void *buf, uint32_t len);
VIO_API int vio_vhu_frontend_set_config(struct vio_vhu_frontend *f, uint32_t off, const void *buf,
				uint32_t len);

/** Device status (needs PROTOCOL_F_STATUS). */
VIO_API int vio_vhu_frontend_get_status(struct vio_vhu_frontend *f, uint8_t *status);
VIO_API int vio_vhu_frontend_set_status(struct vio_vhu_frontend *f, uint8_t status);

/** Stop queue q in the backend (GET_VRING_BASE) and return its ring position. */
VIO_API int vio_vhu_frontend_stop_queue(struct vio_vhu_frontend *f, unsigned q, uint32_t *base);

/** Start queue q again from ring position base (after stop_queue). */
VIO_API int vio_vhu_frontend_start_queue(struct vio_vhu_frontend *f, unsigned q, uint32_t base);

/**
 * Clean disconnect: stop every running queue (waiting at most 500 ms for
 * each answer; a backend that does not answer is simply dropped), then close
 * the socket. Memory stays mapped.
 */
VIO_API int vio_vhu_frontend_disconnect(struct vio_vhu_frontend *f);

/** Close the socket (if still open), unmap the memory, close every fd, free. NULL is fine. */
VIO_API void vio_vhu_frontend_close(struct vio_vhu_frontend *f);

/**
 * Is the backend still there? 0 while connected, -ENOTCONN once it closed
 * its end (the socket is then closed; the rings and memory stay). Never
 * blocks. Call it from the thread that owns the frontend's control calls.
 */
VIO_API int vio_vhu_frontend_check(struct vio_vhu_frontend *f);

/**
 * Connect again to the same socket (a restarted backend) and resume: the
 * same features (else -EPROTO), the same memory, the inflight region kept
 * from the first connection (so the backend resubmits what it had taken
 * and not completed), every queue restarted where its ring stands, and
 * DRIVER_OK. The rings, buffers and eventfds are untouched: threads
 * driving the queues may keep polling meanwhile. One attempt; 0 or
 * negative errno (-ECONNREFUSED / -ENOENT: nobody listens yet, retry).
 * Same thread rule as vio_vhu_frontend_check.
 */
VIO_API int vio_vhu_frontend_reconnect(struct vio_vhu_frontend *f);

/* ------------------------------------------- frontend: live migration */

/** Granule of the dirty bitmap: bit n of word w stands for guest page 64 w + n of this size. */
#define VIO_VHU_LOG_PAGE 4096u

/**
 * Start dirty logging, as a VMM does when a migration begins: a bitmap
 * (a sealed memfd, one bit per VIO_VHU_LOG_PAGE of guest memory) handed
 * over with SET_LOG_BASE, VHOST_F_LOG_ALL on, and every running ring set
 * again with VHOST_VRING_F_LOG. From then on the backend marks each page it
 * writes. 0; -ENOTSUP when the backend lacks LOG_ALL or LOG_SHMFD; other
 * negative errno. Control calls are not thread-safe (one thread).
 */
VIO_API int vio_vhu_frontend_log_start(struct vio_vhu_frontend *f);

/** Turn LOG_ALL off again (the bitmap stays, for a later start). 0 or negative errno. */
VIO_API int vio_vhu_frontend_log_stop(struct vio_vhu_frontend *f);

/** Words (uint64_t) a bitmap covering this frontend's guest memory has. */
VIO_API size_t vio_vhu_frontend_log_words(const struct vio_vhu_frontend *f);

/**
 * Read and clear the dirty bitmap: each word is taken with an atomic
 * exchange (the backend keeps setting bits) and ORed into bitmap[0, words).
 * Returns the number of dirty pages taken (0 before log_start). Any thread
 * may call it while the queues run.
 */
VIO_API uint64_t vio_vhu_frontend_log_collect(struct vio_vhu_frontend *f, uint64_t *bitmap,
					      size_t words);

/**
 * Prepare the destination of a migration: connect to the backend at
 * socket_path (a second device on the same disk) and allocate its guest
 * memory (a new memfd of the same size, mapped apart). The source keeps
 * running. 0 or negative errno (-ECONNREFUSED / -ENOENT: nobody listens).
 */
VIO_API int vio_vhu_frontend_migrate_prepare(struct vio_vhu_frontend *f, const char *socket_path);

/** Copy guest memory [gpa, gpa + len) from the source to the destination. 0, -EFAULT, -EINVAL. */
VIO_API int vio_vhu_frontend_migrate_copy(struct vio_vhu_frontend *f, uint64_t gpa, uint64_t len);

/** Copy every page marked in bitmap[0, words) (as log_collect fills it); returns pages copied. */
VIO_API uint64_t vio_vhu_frontend_migrate_copy_pages(struct vio_vhu_frontend *f,
						     const uint64_t *bitmap, size_t words);

/**
 * Copy what this process's driver side wrote into the rings (the backend's
 * log covers only what the backend wrote): split, the descriptor tables and
 * available rings; packed, the descriptor rings and driver event areas;
 * indirect tables. Call it with the driver side quiet (after stopping the
 * queues, before migrate_finish). 0 or -EFAULT.
 */
VIO_API int vio_vhu_frontend_migrate_copy_rings(struct vio_vhu_frontend *f);

/**
 * Switch over: every queue must be stopped (vio_vhu_frontend_stop_queue,
 * which returns only once the source backend completed what it had taken,
 * gives its base). The destination's memory replaces the source's at the
 * same address (every pointer into guest memory stays valid), the source's
 * connection is closed, and the destination backend starts each queue q at
 * bases[q], with the same eventfds; then DRIVER_OK. The driver side must
 * not touch guest memory between the last copy and this call. 0; -EBUSY if
 * a queue still runs; -EINVAL without migrate_prepare; other negative errno
 * (the frontend is then disconnected).
 */
VIO_API int vio_vhu_frontend_migrate_finish(struct vio_vhu_frontend *f, const uint32_t *bases);

#endif
