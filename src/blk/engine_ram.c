/* SPDX-License-Identifier: MIT */
/*
 * RAM engine: the disk is an anonymous private mapping, every request
 * completes inside its submit call. Trusts the ranges it is given (the
 * device checked them against the size); never blocks, never queues.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blk_engine.h"

/* Bytes one discard or write-zeroes range may cover (work done inline, see ram_dwz). */
#define RAM_DWZ_MAX (16u << 20)

struct ram_engine {
	struct blk_engine e;
	uint8_t *base;
	size_t page;
};

/* RAM needs no per-queue state: a queue handle is the engine itself. */
static struct ram_engine *ram_of(struct blk_engine_queue *q)
{
	return (struct ram_engine *)q;
}

static int ram_queue_open(struct blk_engine *e, unsigned depth, struct blk_engine_queue **out,
			  unsigned *depth_out)
{
	*out = (struct blk_engine_queue *)e;
	*depth_out = depth;
	return 0;
}

static int ram_rw(struct blk_engine_queue *q, bool write, const struct iovec *iov, unsigned niov,
		  uint64_t off, void *tag)
{
	uint8_t *p = ram_of(q)->base + off;

	for (unsigned i = 0; i < niov; i++) {
		if (write)
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return 0;
}

static int ram_flush(struct blk_engine_queue *q, void *tag)
{
	return 0;
}

/* Give whole pages back to the kernel (they read as zeroes afterwards); zero the edges. */
static void ram_unmap(struct ram_engine *re, uint64_t off, uint64_t len, bool zero_edges)
{
	uint64_t start = (off + re->page - 1) & ~(uint64_t)(re->page - 1);
	uint64_t end = (off + len) & ~(uint64_t)(re->page - 1);

	if (start >= end) {
		if (zero_edges)
			memset(re->base + off, 0, len);
		return;
	}
	if (madvise(re->base + start, end - start, MADV_DONTNEED) != 0) {
		if (zero_edges)
			memset(re->base + start, 0, end - start);
	}
	if (zero_edges) {
		memset(re->base + off, 0, start - off);
		memset(re->base + end, 0, off + len - end);
	}
}

/*
 * Done within the submit call: the device caps a range at RAM_DWZ_MAX
 * bytes, so a request costs at most a few milliseconds of its thread.
 * Write-zeroes gives whole pages back too: a page of anonymous memory the
 * kernel takes back reads as zeroes, which is what "not unmapped" promises
 * for a RAM disk (the page comes back on the next write).
 */
static int ram_dwz(struct blk_engine_queue *q, bool discard, const struct blk_engine_range *r,
		   unsigned n, void *tag)
{
	for (unsigned i = 0; i < n; i++)
		ram_unmap(ram_of(q), r[i].off, r[i].len, !discard);
	return 0;
}

static void ram_commit(struct blk_engine_queue *q)
{
}

static int ram_reap(struct blk_engine_queue *q, struct blk_engine_cpl *out, unsigned n, bool wait)
{
	return wait ? -EAGAIN : 0;
}

static int ram_wait_fd(struct blk_engine_queue *q)
{
	return -1;
}

static void ram_queue_close(struct blk_engine_queue *q)
{
}

static void ram_close(struct blk_engine *e)
{
	struct ram_engine *re = (struct ram_engine *)e;

	munmap(re->base, e->size);
	free(re);
}

static const struct blk_engine_ops ram_ops = {
	.name = "ram",
	.queue_open = ram_queue_open,
	.rw = ram_rw,
	.flush = ram_flush,
	.dwz = ram_dwz,
	.commit = ram_commit,
	.reap = ram_reap,
	.wait_fd = ram_wait_fd,
	.queue_close = ram_queue_close,
	.close = ram_close,
};

int blk_engine_ram_open(uint64_t size, struct blk_engine **out)
{
	struct ram_engine *re;
	void *p;

	if (size == 0 || size % 512 || size > SIZE_MAX)
		return -EINVAL;
	re = calloc(1, sizeof(*re));
	if (!re)
		return -ENOMEM;
	/* Populated up front: no page fault in the data path, and a RAM disk the
	 * machine cannot hold fails here rather than at the guest's first write. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		 -1, 0);
	if (p == MAP_FAILED) {
		free(re);
		return -ENOMEM;
	}
	re->base = p;
	re->page = (size_t)sysconf(_SC_PAGESIZE);
	re->e = (struct blk_engine){ .ops = &ram_ops, .size = size, .lbs = 512, .pbs = 512,
				     .zeroes_may_unmap = true, .max_dwz_sectors = RAM_DWZ_MAX >> 9 };
	*out = &re->e;
	return 0;
}
