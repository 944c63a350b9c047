/* SPDX-License-Identifier: MIT */
/*
 * Backing-store engines for the virtio-blk device. An engine owns the
 * store (one per device) and a per-queue context (one per virtqueue, used
 * by that queue's owner thread only). It sees byte offsets and host iovecs,
 * already validated by blk_device.c: it never parses a request itself.
 */
#ifndef VIO_BLK_ENGINE_H
#define VIO_BLK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* A submit call returns this when the result will come later through reap. */
#define BLK_ENGINE_QUEUED 1

struct blk_engine;
struct blk_engine_queue;

struct blk_engine_cpl {
	void *tag;  /* what was given to submit */
	int result; /* negative errno, or bytes moved (rw: the device compares), 0 (flush, dwz) */
};

/* One discard or write-zeroes range, already checked against the size. */
struct blk_engine_range {
	uint64_t off, len;
	bool unmap; /* write-zeroes: the range may be deallocated (reads back zeroes) */
};

/* Ranges one dwz call takes at most (the device's segment limit). */
#define BLK_ENGINE_MAX_RANGES 16

struct blk_engine_ops {
	const char *name;
	/*
	 * Per-queue context able to hold `depth` requests in flight; *depth_out
	 * may be lower (ring capped). 0 or negative errno.
	 */
	int (*queue_open)(struct blk_engine *e, unsigned depth, struct blk_engine_queue **out,
			  unsigned *depth_out);
	/*
	 * Each submit returns BLK_ENGINE_QUEUED (a completion carrying tag comes
	 * from reap later), or the final result now: 0 (all done) or a negative
	 * errno. niov <= IOV_MAX; ranges lie inside size.
	 */
	int (*rw)(struct blk_engine_queue *q, bool write, const struct iovec *iov, unsigned niov,
		  uint64_t off, void *tag);
	int (*flush)(struct blk_engine_queue *q, void *tag);
	/*
	 * Discard (a hint: a store that cannot deallocate succeeds) or write
	 * zeroes over ranges[0, n), n <= BLK_ENGINE_MAX_RANGES (copied). Like
	 * rw: queued (result 0 when every range is done) or final now. Never
	 * runs long on the caller's thread.
	 */
	int (*dwz)(struct blk_engine_queue *q, bool discard, const struct blk_engine_range *ranges,
		   unsigned n, void *tag);
	/*
	 * Start what was queued since the last call, once per burst: hand it
	 * to the kernel, or do it here (its completions are then ready for the
	 * reap that follows).
	 */
	void (*commit)(struct blk_engine_queue *q);
	/* Up to n completions; wait: block until at least one is there. Count or -errno. */
	int (*reap)(struct blk_engine_queue *q, struct blk_engine_cpl *out, unsigned n, bool wait);
	/* Readable when reap has something (an eventfd the waiter reads), or -1. */
	int (*wait_fd)(struct blk_engine_queue *q);
	/* Only once nothing is in flight. */
	void (*queue_close)(struct blk_engine_queue *q);
	/*
	 * Optional: grow the store to bytes (a file: ftruncate); size then
	 * follows. Control thread, queues may run (their ranges were inside
	 * the old size). 0 or negative errno.
	 */
	int (*resize)(struct blk_engine *e, uint64_t bytes);
	void (*close)(struct blk_engine *e);
};

/* What every engine exposes to the device. */
struct blk_engine {
	const struct blk_engine_ops *ops;
	const char *owner;      /* the device's name, for log lines (set by the device) */
	uint64_t size;          /* bytes, a multiple of 512 */
	uint32_t lbs;           /* logical block size (512 or the device's) */
	uint32_t pbs;           /* physical block size, >= lbs */
	uint32_t dio_mem_align; /* 0, or O_DIRECT buffer alignment */
	uint32_t dio_off_align; /* 0, or O_DIRECT offset/length alignment */
	bool zeroes_may_unmap;
	uint32_t max_dwz_sectors; /* per discard / write-zeroes range; 0: the device's limit */
};

int blk_engine_ram_open(uint64_t size, struct blk_engine **out);

/* Stores nothing: reads return zeroes (for measuring the request path). */
int blk_engine_null_open(uint64_t size, struct blk_engine **out);

/* -ENOTSUP when libvio was built without liburing. */
/*
 * The lock a file engine takes on [off, off + len) of its file (len 0: to
 * the end and beyond), exclusive unless shared: -EBUSY when another open
 * of the file holds a conflicting one.
 */
struct blk_lock {
	bool shared;
	uint64_t off, len;
};
int blk_engine_uring_open(const char *path, bool readonly, bool direct,
			  const struct blk_lock *lock, struct blk_engine **out);

#endif
