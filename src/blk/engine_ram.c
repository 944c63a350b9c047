/* SPDX-License-Identifier: MIT */
/*
 * RAM engine: the disk is an anonymous private mapping. Reads and writes
 * are queued by submit and copied by reap, a few at a time, each copy
 * prefetching the next ones' lines so that cache misses overlap (a random
 * 4 KiB block of a large disk is never in cache); everything else
 * completes inside its submit call. Copying a few per reap rather than a
 * whole burst per commit hands completions back while the rest are copied:
 * the driver refills the ring meanwhile instead of the two sides taking
 * turns. Trusts the ranges it is given (the device checked them against
 * the size); never blocks.
 * The store sits on huge pages where the machine gives them (reserved
 * hugetlb pages, else transparent huge pages): a random 4 KiB copy out of a
 * large disk then costs no TLB miss walking 4 KiB page tables. Writes go
 * into it with streaming (non-temporal) stores: a written block is not read
 * again soon, and a cached store would first load every line it overwrites.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blk_engine.h"
#include "util/stream_copy.h"

/* Bytes one discard or write-zeroes range may cover (work done inline, see ram_dwz). */
#define RAM_DWZ_MAX (16u << 20)
#define HUGE_PAGE (2u << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Bytes of a coming copy prefetched while the current one runs. */
#define PREFETCH_BYTES 4096u
#define PREFETCH_AHEAD 2u
/* Bytes of every other queued copy asked for at commit. */
#define PREFETCH_HEAD 256u
#define CACHE_LINE 64u
/* Copies per reap call: completions go back to the driver in steps this size. */
#define RAM_CHUNK 8u

struct ram_engine {
	struct blk_engine e;
	uint8_t *base;
	size_t page;
};

/* A read or write waiting for reap. Its iovecs belong to the device until completion. */
struct ram_op {
	const struct iovec *iov;
	unsigned niov;
	bool write;
	uint8_t *p; /* the store at the request's offset */
	void *tag;
};

/* Per queue: the copies not yet made, oldest first, in a ring of cap. */
struct ram_queue {
	struct ram_engine *re;
	unsigned cap, head, n;
	struct ram_op *ops;
};

static struct ram_queue *rq_of(struct blk_engine_queue *q)
{
	return (struct ram_queue *)q;
}

static int ram_queue_open(struct blk_engine *e, unsigned depth, struct blk_engine_queue **out,
			  unsigned *depth_out)
{
	struct ram_queue *rq = calloc(1, sizeof(*rq));

	if (depth == 0)
		depth = 1;
	if (!rq)
		return -ENOMEM;
	rq->re = (struct ram_engine *)e;
	rq->cap = depth;
	rq->ops = calloc(depth, sizeof(*rq->ops));
	if (!rq->ops) {
		free(rq);
		return -ENOMEM;
	}
	*out = (struct blk_engine_queue *)rq;
	*depth_out = depth;
	return 0;
}

/* Copy op's bytes; returns how many. */
static size_t ram_copy(const struct ram_op *op)
{
	uint8_t *p = op->p;

	for (unsigned i = 0; i < op->niov; i++) {
		if (op->write)
			stream_copy(p, op->iov[i].iov_base, op->iov[i].iov_len);
		else
			memcpy(op->iov[i].iov_base, p, op->iov[i].iov_len);
		p += op->iov[i].iov_len;
	}
	return (size_t)(p - op->p);
}

/*
 * Start loading the lines op reads: the store for a read, the guest's
 * buffer for a write (a write never loads the store's lines it replaces).
 */
static void ram_prefetch(const struct ram_op *op)
{
	const uint8_t *src = op->write ? op->iov[0].iov_base : op->p;
	size_t len = op->write ? op->iov[0].iov_len : PREFETCH_BYTES;

	if (len > PREFETCH_BYTES)
		len = PREFETCH_BYTES;
	for (size_t off = 0; off < len; off += CACHE_LINE)
		__builtin_prefetch(src + off, 0);
}

static struct ram_op *op_at(struct ram_queue *rq, unsigned i)
{
	unsigned k = rq->head + i;

	return &rq->ops[k >= rq->cap ? k - rq->cap : k];
}

static int ram_rw(struct blk_engine_queue *q, bool write, const struct iovec *iov, unsigned niov,
		  uint64_t off, void *tag)
{
	struct ram_queue *rq = rq_of(q);
	struct ram_op op = { .iov = iov, .niov = niov, .write = write, .p = rq->re->base + off,
			     .tag = tag };

	/* The device holds at most cap requests: a full queue cannot happen, but copy now if so. */
	if (rq->n == rq->cap) {
		ram_copy(&op);
		stream_fence();
		return 0;
	}
	*op_at(rq, rq->n++) = op;
	return BLK_ENGINE_QUEUED;
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
		ram_unmap(rq_of(q)->re, r[i].off, r[i].len, !discard);
	return 0;
}

/*
 * Nothing to start, only lines to ask for: the first copies' whole sources,
 * and the first lines of every other one, so that many blocks' misses are
 * under way at once (the core's stream prefetcher follows on from those
 * lines when the copy reaches them).
 */
static void ram_commit(struct blk_engine_queue *q)
{
	struct ram_queue *rq = rq_of(q);

	for (unsigned i = 0; i < rq->n; i++) {
		const struct ram_op *op = op_at(rq, i);
		const uint8_t *src = op->write ? op->iov[0].iov_base : op->p;

		if (i < PREFETCH_AHEAD) {
			ram_prefetch(op);
			continue;
		}
		for (unsigned off = 0; off < PREFETCH_HEAD; off += CACHE_LINE)
			__builtin_prefetch(src + off, 0);
	}
}

/* The oldest copies, at most RAM_CHUNK and n, each overlapping the next ones' cache misses. */
static int ram_reap(struct blk_engine_queue *q, struct blk_engine_cpl *out, unsigned n, bool wait)
{
	struct ram_queue *rq = rq_of(q);
	unsigned got = rq->n < n ? rq->n : n;

	if (got > RAM_CHUNK)
		got = RAM_CHUNK;
	if (!got)
		return wait ? -EAGAIN : 0;
	for (unsigned i = 0; i < got; i++) {
		const struct ram_op *op = op_at(rq, i);

		/*
		 * The next PREFETCH_AHEAD copies (past this chunk too), asked
		 * again at each step: a prefetch the core drops while its miss
		 * buffers are full is issued anew (measured alone: 2 ahead beat
		 * 1 ahead by 20-50%).
		 */
		for (unsigned a = 1; a <= PREFETCH_AHEAD && i + a < rq->n; a++)
			ram_prefetch(op_at(rq, i + a));
		out[i] = (struct blk_engine_cpl){ .tag = op->tag, .result = (int)ram_copy(op) };
	}
	stream_fence();
	rq->head = (rq->head + got) % rq->cap;
	rq->n -= got;
	return (int)got;
}

static int ram_wait_fd(struct blk_engine_queue *q)
{
	return -1;
}

static void ram_queue_close(struct blk_engine_queue *q)
{
	struct ram_queue *rq = rq_of(q);

	free(rq->ops);
	free(rq);
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

/* Fault every page in now (MADV_POPULATE_WRITE, or a write per page on older kernels). */
static void populate(uint8_t *p, size_t len, size_t page)
{
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < len; off += page)
		((volatile uint8_t *)p)[off] = 0;
}

/*
 * Map the store: reserved hugetlb pages when there are enough (size a
 * multiple of 2 MiB), else 4 KiB pages the kernel may back with transparent
 * huge pages (MADV_HUGEPAGE, asked before the first fault). *page: the unit
 * the kernel can take back (ram_unmap).
 */
static void *map_store(uint64_t size, size_t *page)
{
	void *p;

	if (size % HUGE_PAGE == 0) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
		if (p != MAP_FAILED) {
			*page = HUGE_PAGE;
			return p;
		}
	}
	*page = (size_t)sysconf(_SC_PAGESIZE);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_HUGEPAGE); /* a hint: THP may be off */
	populate(p, size, *page);
	return p;
}

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
	p = map_store(size, &re->page);
	if (!p) {
		free(re);
		return -ENOMEM;
	}
	re->base = p;
	re->e = (struct blk_engine){ .ops = &ram_ops, .size = size, .lbs = 512, .pbs = 512,
				     .zeroes_may_unmap = true, .max_dwz_sectors = RAM_DWZ_MAX >> 9 };
	*out = &re->e;
	return 0;
}
