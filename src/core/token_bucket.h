/* SPDX-License-Identifier: MIT */
/*
 * A token bucket (a rate per second and a burst) shared by the threads of
 * one device's queues with atomics only: the one rate limiter of libvio,
 * used by virtio-blk (IOPS, bytes per second) and by net ports (frames and
 * bits per second into the switch). It never sleeps and never allocates;
 * callers decide what waits and for how long (vio_bucket_wait_ns).
 */
#ifndef VIO_CORE_TOKEN_BUCKET_H
#define VIO_CORE_TOKEN_BUCKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vio_bucket {
	_Atomic uint64_t rate;    /* tokens per second; 0: unlimited */
	_Atomic uint64_t burst;   /* most tokens it holds */
	_Atomic int64_t tokens;   /* may go below 0 after vio_bucket_charge: a debt */
	_Atomic uint64_t last_ns; /* when tokens were last added */
};

/* Set rate and burst (burst 0: a tenth of a second's worth); the bucket starts full. */
void vio_bucket_set(struct vio_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);

static inline bool vio_bucket_limited(const struct vio_bucket *b)
{
	return atomic_load_explicit(&b->rate, memory_order_relaxed) != 0;
}

/* Take n tokens if there are (n above the burst: once it is full): true; false takes none. */
bool vio_bucket_take(struct vio_bucket *b, uint64_t n, uint64_t now_ns);

/* Return n tokens taken by a vio_bucket_take whose work did not go ahead. */
void vio_bucket_give_back(struct vio_bucket *b, uint64_t n);

/*
 * Tokens there are now (after refilling), INT64_MAX when unlimited. For
 * work whose cost is known only after it is done: go while this is > 0,
 * then vio_bucket_charge what it cost.
 */
int64_t vio_bucket_avail(struct vio_bucket *b, uint64_t now_ns);

/* Take n tokens unconditionally (the bucket may go into debt). */
void vio_bucket_charge(struct vio_bucket *b, uint64_t n);

/* Nanoseconds until n tokens (at most a burst; n 0: any token) are there; 0: now. */
uint64_t vio_bucket_wait_ns(const struct vio_bucket *b, uint64_t n, uint64_t now_ns);

#endif
