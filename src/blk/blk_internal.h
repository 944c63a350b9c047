/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk device's private state, shared by blk_device.c (the
 * device as a vdev: config, queues, polling), blk_request.c (one request
 * from chain to status byte) and blk_qos.c (rate limits). A queue's state
 * belongs to the one thread that polls it; the device's counters and limits
 * are read and set by the control thread with atomics.
 */
#ifndef VIO_BLK_INTERNAL_H
#define VIO_BLK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "blk_engine.h"
#include "core/token_bucket.h"
#include "vio/blk.h"
#include "vio/virtio_spec.h"

#define BLK_BURST 32
#define BLK_IOV_CAP (VIO_BLK_SEG_MAX + 2) /* data segments + header + status */
/* Requests in flight per queue. The ring may be larger; the rest wait in the ring. */
#define BLK_MAX_SLOTS 256
#define SECTOR_SHIFT 9

struct blk_req {
	struct vio_chain chain;
	uint8_t *status;   /* last writable byte */
	uint32_t data_len; /* IN/OUT bytes expected from the engine */
	uint32_t wlen;     /* written length to report on success */
	uint64_t start_ns; /* when it was popped (latency histogram) */
	uint8_t kind;      /* enum blk_kind, for the counters */
};

/* Counters every queue keeps; its thread writes them, anyone reads (relaxed). */
struct blk_counters {
	_Atomic uint64_t ops[VIO_BLK_OP_COUNT];
	_Atomic uint64_t read_bytes, write_bytes;
	_Atomic uint64_t errors[VIO_BLK_ERR_COUNT];
	_Atomic uint64_t throttled;
	_Atomic uint64_t latency[VIO_BLK_LAT_BUCKETS];
	_Atomic uint64_t latency_sum_ns;
};

struct blk_queue {
	char name[VIO_BLK_NAME_MAX + 16]; /* "<device> q<N>": owner of its log lines */
	bool started;
	bool logged; /* the data path logs a misbehaving driver once per queue */
	uint64_t features; /* negotiated: requests of features not agreed are refused */
	struct vio_vq_ctx ctx;
	struct blk_engine_queue *eq;
	unsigned nslots, nfree, inflight;
	struct blk_req *reqs;
	uint16_t *free_stack;
	struct iovec *iovs;
	struct vio_used_elem *used;
	unsigned nused;
	/* Requests the rate limits hold back, oldest first (a ring of slot indices). */
	uint16_t *held;
	unsigned held_head, held_n;
	uint64_t now_ns; /* the clock as last read by this queue's thread */
	struct blk_counters ctr;
	struct vio_chain chains[BLK_BURST];
	struct blk_engine_cpl cpls[BLK_BURST];
};

struct vio_blk {
	char name[VIO_BLK_NAME_MAX];
	struct blk_engine *eng;
	struct virtio_blk_config cfg;  /* control thread: GET_CONFIG */
	_Atomic uint64_t capacity;     /* sectors; read by every queue's thread */
	uint64_t base;                 /* bytes: where the device's window starts in the store */
	uint64_t window;               /* bytes: its length (0: to the store's end); never outgrown */
	uint64_t features;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct vio_bucket iops, bps;   /* rate limits (qos) */
	_Atomic bool limited;          /* either bucket has a rate */
	unsigned nqueues;
	struct blk_queue queues[];
};

/* Add to a counter only its queue's thread writes: a load and a store, never a locked add. */
#define BLK_CTR_ADD(field, n)                                                                   \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)

/* blk_request.c */
void blk_handle_chain(struct vio_blk *blk, struct blk_queue *bq, struct blk_req *req);
void blk_engine_done(struct blk_queue *bq, const struct blk_engine_cpl *c);
void blk_push_used(struct blk_queue *bq);
/* Reap completions without waiting; returns how many. */
int blk_reap(struct vio_blk *blk, struct blk_queue *bq);
/* Bytes a request's data moves, as its chain says (for the byte rate limit). */
uint32_t blk_req_bytes(const struct blk_req *req);

/* blk_qos.c */
/* Take n tokens if every limit has them: true, or false (nothing taken). */
bool blk_qos_take(struct vio_blk *blk, uint32_t bytes, uint64_t now_ns);
/* Nanoseconds until a request of `bytes` could be taken (0: now). */
uint64_t blk_qos_wait_ns(const struct vio_blk *blk, uint32_t bytes, uint64_t now_ns);

uint64_t blk_now_ns(void);

#endif
