/* SPDX-License-Identifier: MIT */
/*
 * Null engine: a disk that stores nothing. Reads return zeroes, writes,
 * flushes and discards succeed at once. It measures the transport and the
 * request path alone, like qemu-storage-daemon's null-co (read-zeroes=on)
 * or SPDK's null bdev; never use it for data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk_engine.h"

static int null_queue_open(struct blk_engine *e, unsigned depth, struct blk_engine_queue **out,
			   unsigned *depth_out)
{
	*out = (struct blk_engine_queue *)e;
	*depth_out = depth;
	return 0;
}

static int null_rw(struct blk_engine_queue *q, bool write, const struct iovec *iov, unsigned niov,
		   uint64_t off, void *tag)
{
	if (!write)
		for (unsigned i = 0; i < niov; i++)
			memset(iov[i].iov_base, 0, iov[i].iov_len);
	return 0;
}

static int null_flush(struct blk_engine_queue *q, void *tag)
{
	return 0;
}

static int null_dwz(struct blk_engine_queue *q, bool discard, const struct blk_engine_range *r,
		    unsigned n, void *tag)
{
	return 0;
}

static void null_commit(struct blk_engine_queue *q)
{
}

static int null_reap(struct blk_engine_queue *q, struct blk_engine_cpl *out, unsigned n, bool wait)
{
	return wait ? -EAGAIN : 0;
}

static int null_wait_fd(struct blk_engine_queue *q)
{
	return -1;
}

static void null_queue_close(struct blk_engine_queue *q)
{
}

static void null_close(struct blk_engine *e)
{
	free(e);
}

static const struct blk_engine_ops null_ops = {
	.name = "null",
	.queue_open = null_queue_open,
	.rw = null_rw,
	.flush = null_flush,
	.dwz = null_dwz,
	.commit = null_commit,
	.reap = null_reap,
	.wait_fd = null_wait_fd,
	.queue_close = null_queue_close,
	.close = null_close,
};

int blk_engine_null_open(uint64_t size, struct blk_engine **out)
{
	struct blk_engine *e;

	if (size == 0 || size % 512)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*e = (struct blk_engine){.ops = &null_ops, .size = size, .lbs = 512, .pbs = 512,
				 .zeroes_may_unmap = true};
	*out = e;
	return 0;
}
