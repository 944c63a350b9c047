/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's private state, shared by its four files:
 * backend.c (connection and public calls), backend_mem.c (the memory
 * table), backend_queue.c (queue lifecycle) and backend_handlers.c (one
 * handler per front-end request). Everything here runs on the one control
 * thread that calls vio_vhu_backend_dispatch, except where a field says so.
 */
#ifndef VIO_VHU_BACKEND_INTERNAL_H
#define VIO_VHU_BACKEND_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"
#include "core/dirty_log.h"
#include "core/log.h"
#include "core/iotlb_internal.h"
#include "core/mem_internal.h"
#include "guard.h"
#include "vio/virtio_spec.h"
#include "msg.h"
#include "vio/vhost_user.h"

#define VHU_NAME_MAX 128

/* A region as the front-end described it, and where we mapped it. */
struct vhu_region {
	struct vio_mem_region r; /* gpa, size, host: what the translate map holds */
	uint64_t uaddr;          /* the front-end's virtual address (ring addresses use it) */
	void *map;               /* what mmap returned */
	size_t map_len;
	struct vhu_guard *guard; /* SIGBUS guard record while installed (file not sealed) */
	unsigned extra_refs;     /* ADD_MEM_REG of this same region again, less REM_MEM_REG */
};

/* backend_inflight.c: one queue's part of the inflight region and what we keep of it. */
struct vhu_inflight_q {
	void *region;          /* this queue's part of the map; NULL: not tracked */
	struct vio_virtq *vq;  /* the ring being tracked */
	bool packed;
	uint16_t size;
	uint64_t counter;      /* stamp for the next chain taken */
	uint16_t batch_head;   /* split: head of the last used batch */
	/* packed: a private mirror of what we wrote, so the data path never reads the region */
	uint16_t free_head;
	uint16_t *next;        /* per entry: free list or chain link */
	uint16_t *last;        /* per head entry: its chain's last entry */
	uint16_t *head_of;     /* per buffer id: its head entry */
	struct pvirtq_desc *scratch; /* the slots of a chain being recorded */
};

/* The inflight region as SET_INFLIGHT_FD gave it (map NULL: none). */
struct vhu_inflight {
	void *map;
	size_t map_len, stride;
	uint16_t nqueues, qsize;
	bool packed;
};

struct vhu_queue {
	struct vio_vhu_backend *b;
	unsigned index;
	char name[VHU_NAME_MAX + 8]; /* "<backend name> q<index>" */
	uint16_t num;          /* 0 until SET_VRING_NUM */
	bool has_addr;
	struct vio_vhu_vring_addr addr; /* front-end virtual addresses */
	uint32_t base;         /* vhost-user ring base for the next (re)initialisation */
	bool base_set;         /* base came from SET_VRING_BASE or a stopped ring, else fresh */
	int kick_fd, call_fd, err_fd;
	bool kick_set;         /* SET_VRING_KICK seen (fd or polling) since the ring stopped */
	bool enabled;
	bool running;          /* vdev queue_start called and handed to the application */
	atomic_bool faulted;   /* set by the data-path thread, read by the control thread */
	struct vio_virtq *vq;  /* the ring, while its indices are live (NULL otherwise) */
	struct vio_vq_ctx ctx;
	struct vhu_inflight_q iq; /* touched by the control thread only while paused */
	struct vio_dirty_log dlog; /* backend_log.c: what the ring logs through while logging */
};

/* backend_log.c: the front-end's dirty bitmap (SET_LOG_BASE), one bit per 4 KiB page. */
struct vhu_log {
	struct vhu_region reg; /* the mapping (map NULL: no bitmap) and its SIGBUS guard */
	uint8_t *bits;      /* map + mmap_offset */
	uint64_t bytes;     /* bitmap bytes: pages [0, bytes * 8) */
	int fd;             /* SET_LOG_FD's eventfd, kept and never written; -1: none */
	atomic_bool outside_warned; /* a write beyond the bitmap was reported (data-path threads) */
	const char *owner;  /* the backend's name, for that one warning */
};

struct vio_vhu_backend {
	struct vio_vhu_backend_opts o;
	char *path;
	char name[VHU_NAME_MAX]; /* owner of every log line about this backend */
	int listen_fd, conn_fd;
	int chan_fd;             /* backend request channel (SET_BACKEND_REQ_FD), -1: none */
	pthread_mutex_t chan_lock; /* one sender at a time on chan_fd (any thread) */
	int timer_fd;            /* reconnect back-off (client) and message deadlines */
	int ep_fd;               /* what the application waits on: listen or conn, and timer */
	unsigned backoff_ms;
	struct vio_vhu_rx rx;    /* the request being assembled */
	uint64_t msg_deadline_ms; /* CLOCK_MONOTONIC ms by which rx must complete; 0: none */

	struct vio_device dev;   /* status and feature acceptance (config lives in the vdev) */
	uint64_t offered;        /* virtio features incl. VHOST_USER_F_PROTOCOL_FEATURES */
	uint64_t features;       /* last SET_FEATURES */
	uint64_t protocol;       /* agreed protocol features */
	unsigned max_queues;
	uint64_t unknown_logged; /* one warning per unknown request id (bit 63: ids >= 63) */
	int reply_fd;            /* an fd the current request's reply carries, or -1 */
	struct vhu_inflight inflight;
	struct vhu_log log;

	struct vio_mem mem;
	struct vio_iotlb iotlb;  /* backend_iotlb.c; b->mem.iotlb points here with ACCESS_PLATFORM */
	atomic_bool iotlb_waiting; /* a queue stopped at a miss: kick queues on the next update */
	_Atomic uint64_t iotlb_gen; /* one more per IOTLB message or flush */
	_Atomic uint64_t miss_iova, miss_ns, miss_gen; /* the last miss sent, at which gen */
	_Atomic uint64_t miss_sent, iotlb_refused;
	struct vhu_region regions[VIO_VHU_MAX_MEM_SLOTS];
	unsigned nregions;
	uint64_t mapped_bytes;   /* sum of the regions' mappings, bounded by o.max_mem_bytes */
	atomic_bool mem_lost;    /* the SIGBUS guard replaced a region the front-end shrank */
	int lost_fd;             /* eventfd the guard writes then; in ep_fd */
	bool lost_handled;       /* the device was failed for it (once per memory table) */
	bool unsealed_warned;
	struct vhu_queue q[VIO_VHU_MAX_QUEUES];
};

/* What a handler tells the dispatcher to answer. */
enum vhu_result {
	VHU_ERROR,      /* refused: nonzero ack if asked; a request owed a reply drops the peer */
	VHU_OK,         /* done: zero ack if asked */
	VHU_REPLY,      /* done, the handler filled the reply payload in the message */
	VHU_DISCONNECT, /* the front-end cannot be trusted any more */
};

typedef enum vhu_result vhu_handler(struct vio_vhu_backend *b, struct vio_vhu_msg *m);

/* backend_handlers.c: the dispatch table, generated from VIO_VHU_REQUESTS. */
extern vhu_handler *const vhu_handlers[VHOST_USER_MAX_REQUEST];

/* backend_channel.c: the backend request channel. */
enum vhu_result vhu_h_set_backend_req_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m);
/* Send one request on the channel without waiting: 0, -ENOTCONN (none), -EAGAIN, -errno. */
int vhu_channel_send(struct vio_vhu_backend *b, uint32_t request, const void *payload,
		     uint32_t size);
void vhu_channel_close(struct vio_vhu_backend *b);

/* backend_iotlb.c: the IOTLB (VIRTIO_F_ACCESS_PLATFORM). */
void vhu_iotlb_init(struct vio_vhu_backend *b);
void vhu_iotlb_fini(struct vio_vhu_backend *b);
bool vhu_iotlb_on(const struct vio_vhu_backend *b);
/* The map or the features changed (queues paused): empty the IOTLB, use it if agreed. */
void vhu_iotlb_attach(struct vio_vhu_backend *b);
enum vhu_result vhu_h_iotlb_msg(struct vio_vhu_backend *b, struct vio_vhu_msg *m);
/* A ring did not translate: ask the front-end for what is missing. */
void vhu_iotlb_ring_missing(struct vio_vhu_backend *b, const struct vio_virtq_addrs *a,
			    uint64_t desc_len, uint64_t drv_len, uint64_t dev_len, bool packed);

/* backend.c */
uint64_t vhu_virtio_features(const struct vio_vhu_backend *b);
void vhu_close_fd(int *fd);

/* backend_mem.c: the memory table. Callers pause the queues first (vhu_pause_all). */
/*
 * Map a region after checking its fd (a memory file), that it lies inside
 * the file, and that it fits the budget of bytes still allowed.
 */
int vhu_region_map(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d, int fd,
		   uint64_t budget, struct vhu_region *out);
void vhu_region_unmap(struct vhu_region *r);
/* Guard r's mapping of fd against SIGBUS unless seals forbid shrinking fd. */
int vhu_region_guard(struct vio_vhu_backend *b, int fd, struct vhu_region *r);
/* Replace the table with regs[0, n) (already mapped and checked). */
void vhu_mem_replace(struct vio_vhu_backend *b, const struct vhu_region *regs, unsigned n);
/* Check that regs[0, n) form a valid translate map (no overlap, no wrap). */
int vhu_mem_check(const struct vhu_region *regs, unsigned n);
int vhu_mem_add(struct vio_vhu_backend *b, const struct vhu_region *reg);
int vhu_mem_remove(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d);
/*
 * QEMU's vhost-user-net adds every region once per queue pair (one vhost
 * device each, one connection): an identical region takes a reference
 * (true), and a removal drops one while others remain (true).
 */
bool vhu_mem_ref(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d);
bool vhu_mem_unref(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d);
void vhu_mem_unmap_all(struct vio_vhu_backend *b);
/* The guard replaced a shrunk region: fail the device until a new memory table. */
void vhu_mem_check_lost(struct vio_vhu_backend *b);
/* A front-end virtual address range (ring addresses) as a guest address: 0 or -EFAULT. */
int vhu_uaddr_to_gpa(const struct vio_vhu_backend *b, uint64_t uaddr, uint64_t len,
		     uint64_t *gpa);

/* backend_queue.c: queue lifecycle. */
struct vhu_queue *vhu_queue_at(struct vio_vhu_backend *b, uint32_t index);
void vhu_queue_pause(struct vio_vhu_backend *b, struct vhu_queue *q);
void vhu_queue_invalidate(struct vhu_queue *q);
void vhu_queue_try_start(struct vio_vhu_backend *b, struct vhu_queue *q);
void vhu_queue_reset(struct vio_vhu_backend *b, struct vhu_queue *q);
void vhu_pause_all(struct vio_vhu_backend *b);
void vhu_start_all(struct vio_vhu_backend *b);
/* The memory map changed (queues paused): point every live ring at it, restart. */
void vhu_queues_remap(struct vio_vhu_backend *b);
/* Raise NEEDS_RESET for queues the data path found broken. */
void vhu_sync_faults(struct vio_vhu_backend *b);
void vhu_reset_device_state(struct vio_vhu_backend *b);

/*
 * backend_inflight.c: the inflight region. Its two request handlers are in
 * the dispatch table; vhu_inflight_queue_start restores a ring that has
 * just been set up (positions, chains to pop again) and starts tracking
 * it: 0, or negative errno when the region is unusable (the queue fails);
 * vhu_inflight_drop unmaps the region (queues paused).
 */
vhu_handler h_get_inflight_fd, h_set_inflight_fd;
int vhu_inflight_queue_start(struct vio_vhu_backend *b, struct vhu_queue *q);
void vhu_inflight_drop(struct vio_vhu_backend *b);
size_t vhu_inflight_stride(bool packed, uint16_t qsize);

/*
 * backend_log.c: dirty logging for live migration. Its two request
 * handlers are in the dispatch table. vhu_log_ready: a queue may run (not
 * logging, or logging with a bitmap to log into). vhu_log_queue_apply sets
 * or clears a stopped queue's log before it starts. vhu_log_drop unmaps the
 * bitmap (queues paused).
 */
vhu_handler h_set_log_base, h_set_log_fd;
bool vhu_log_ready(const struct vio_vhu_backend *b);
void vhu_log_queue_apply(struct vio_vhu_backend *b, struct vhu_queue *q);
void vhu_log_drop(struct vio_vhu_backend *b);

/* The vhost-user encoding of a ring position (GET/SET_VRING_BASE). */
uint32_t vhu_base_encode(bool packed, struct vio_virtq_pos pos);
int vhu_base_decode(bool packed, uint32_t base, uint16_t size, struct vio_virtq_pos *pos);

#endif
