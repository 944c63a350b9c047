/* SPDX-License-Identifier: MIT */
/*
 * io_uring engine: a raw image file or a block device, buffered or O_DIRECT.
 * One ring per queue (owned by that queue's thread), completions signalled
 * on an eventfd. Reads, writes, flushes, and discard / write-zeroes as
 * fallocate (one range after the other, with zero-buffer writes where the
 * store cannot zero in place) go through the ring; the exception is a read,
 * write or flush on a memory filesystem (tmpfs, ramfs) on a machine without
 * swap, a copy the kernel cannot make wait for a device: it is done on the
 * caller's thread (see inline_rw_ok). Never checks request bounds itself
 * (the device did) and never blocks except in reap(wait).
 * With O_DIRECT every read and write goes to the kernel as soon as it is
 * queued, as fio does, rather than a burst per commit: the disk starts on
 * the first while the rest are parsed, and a burst's requests do not all
 * reach it (and come back from it) in one lump. Measured on a virtual disk
 * at iodepth 32: 0.70-0.85x of fio's IOPS with a burst per submit,
 * 0.88-1.00x this way. Buffered I/O keeps a burst per submit (page-cache
 * hits complete inside it; one system call serves them all).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "blk_engine.h"
#include "core/log.h"

#define URING_MAX_DEPTH 256
/* Write-zeroes by writing: chunks of this many bytes of one shared zero buffer. */
#define ZERO_BUF_LEN (1u << 20)
/* Internal operations carry this bit in their user_data (tags are aligned pointers). */
#define OP_BIT 1u

#define TMPFS_MAGIC_ 0x01021994u /* linux/magic.h */
#define RAMFS_MAGIC_ 0x858458f6u

#ifndef FALLOC_FL_NO_HIDE_STALE
#define FALLOC_FL_NO_HIDE_STALE 0x04 /* block devices: a real discard (linux/falloc.h) */
#endif

struct uring_engine {
	struct blk_engine e;
	int fd;
	int lock_fd;    /* the image lock's own open of the file (never given to io_uring) */
	bool blockdev;
	bool inline_rw; /* reads and writes are copies from memory: done inline (inline_rw_ok) */
	bool direct;    /* O_DIRECT: reads and writes are submitted one by one (see above) */
	void *zero_buf; /* aligned zeroes for the write-zeroes fallback, made on first need */
};

/* A discard or write-zeroes request in flight: its ranges, done one after the other. */
struct dwz_op {
	void *tag;     /* the request's; NULL while the op is free */
	bool discard;
	bool writing;  /* the current range is being zeroed by writes */
	unsigned n, i; /* ranges, the current one */
	uint64_t done; /* bytes of it written so far (writing) */
	struct blk_engine_range r[BLK_ENGINE_MAX_RANGES];
};

struct uring_queue {
	struct uring_engine *ue;
	struct io_uring ring;
	int efd;
	unsigned sqe_flags; /* IOSQE_FIXED_FILE when the file is registered (index 0) */
	int sqe_fd;         /* what SQEs name the file by: 0 (registered) or the fd */
	bool submit_err_logged;
	unsigned nops;
	struct dwz_op *ops; /* one per request the queue may hold */
};

static struct uring_queue *uq_of(struct blk_engine_queue *q)
{
	return (struct uring_queue *)q;
}

static int uring_queue_open(struct blk_engine *e, unsigned depth, struct blk_engine_queue **out,
			    unsigned *depth_out)
{
	struct uring_queue *uq = calloc(1, sizeof(*uq));
	int rc;

	if (!uq)
		return -ENOMEM;
	if (depth > URING_MAX_DEPTH)
		depth = URING_MAX_DEPTH;
	if (depth == 0)
		depth = 1;
	uq->ue = (struct uring_engine *)e;
	uq->ops = calloc(depth, sizeof(*uq->ops));
	if (!uq->ops) {
		rc = -ENOMEM;
		goto err_free;
	}
	uq->nops = depth;
	/*
	 * COOP_TASKRUN: a completion that needs this thread's context (the
	 * kernel posts it through task work) waits for the thread's next entry
	 * into the kernel instead of interrupting a busy poller with an IPI;
	 * TASKRUN_FLAG tells reap when to enter for it. Older kernels: plain.
	 */
	rc = io_uring_queue_init(depth, &uq->ring, IORING_SETUP_COOP_TASKRUN |
				 IORING_SETUP_TASKRUN_FLAG);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(depth, &uq->ring, 0);
	if (rc < 0)
		goto err_free;
	/* A registered file spares the kernel a file-table lookup and reference per request. */
	uq->sqe_fd = uq->ue->fd;
	if (io_uring_register_files(&uq->ring, &uq->ue->fd, 1) == 0) {
		uq->sqe_fd = 0;
		uq->sqe_flags = IOSQE_FIXED_FILE;
	}
	uq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (uq->efd < 0) {
		rc = -errno;
		goto err_ring;
	}
	rc = io_uring_register_eventfd(&uq->ring, uq->efd);
	if (rc < 0)
		goto err_efd;
	*out = (struct blk_engine_queue *)uq;
	*depth_out = depth;
	return 0;
err_efd:
	close(uq->efd);
err_ring:
	io_uring_queue_exit(&uq->ring);
err_free:
	free(uq->ops);
	free(uq);
	return rc;
}

/* The device never has more in flight than the ring's depth, so a missing SQE is a bug upstream. */
static struct io_uring_sqe *get_sqe(struct uring_queue *uq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);

	if (!sqe && io_uring_submit(&uq->ring) >= 0)
		sqe = io_uring_get_sqe(&uq->ring);
	return sqe;
}

/* A copy to or from a memory filesystem: the whole request now, or an error. */
static int inline_rw(struct uring_engine *ue, bool write, const struct iovec *iov,
		     unsigned niov, uint64_t off)
{
	size_t want = 0;
	ssize_t got;

	for (unsigned i = 0; i < niov; i++)
		want += iov[i].iov_len;
	got = write ? pwritev(ue->fd, iov, (int)niov, (off_t)off) :
		      preadv(ue->fd, iov, (int)niov, (off_t)off);
	if (got < 0)
		return -errno;
	return (size_t)got == want ? 0 : -EIO; /* short: the file shrank under us */
}

static void uring_commit(struct blk_engine_queue *q);

static int uring_rw(struct blk_engine_queue *q, bool write, const struct iovec *iov,
		    unsigned niov, uint64_t off, void *tag)
{
	struct uring_queue *uq = uq_of(q);
	struct io_uring_sqe *sqe;

	if (uq->ue->inline_rw)
		return inline_rw(uq->ue, write, iov, niov, off);
	sqe = get_sqe(uq);
	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_writev(sqe, uq->sqe_fd, iov, niov, off);
	else
		io_uring_prep_readv(sqe, uq->sqe_fd, iov, niov, off);
	sqe->flags |= uq->sqe_flags;
	io_uring_sqe_set_data(sqe, tag);
	if (uq->ue->direct)
		uring_commit(q);
	return BLK_ENGINE_QUEUED;
}

static int uring_flush(struct blk_engine_queue *q, void *tag)
{
	struct uring_queue *uq = uq_of(q);
	struct io_uring_sqe *sqe;

	/* Memory filesystem: nothing to write back, and no worker thread for saying so. */
	if (uq->ue->inline_rw)
		return fdatasync(uq->ue->fd) ? -errno : 0;
	sqe = get_sqe(uq);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, uq->sqe_fd, IORING_FSYNC_DATASYNC);
	sqe->flags |= uq->sqe_flags;
	io_uring_sqe_set_data(sqe, tag);
	return BLK_ENGINE_QUEUED;
}

/* The zero buffer the write fallback reads from, made once per device. */
static const void *zero_buf(struct uring_engine *ue)
{
	if (!ue->zero_buf) {
		ue->zero_buf = aligned_alloc(4096, ZERO_BUF_LEN);
		if (ue->zero_buf)
			memset(ue->zero_buf, 0, ZERO_BUF_LEN);
	}
	return ue->zero_buf;
}

/* Queue the next step of op: fallocate its current range, or write the next chunk of zeroes. */
static int dwz_submit(struct uring_queue *uq, struct dwz_op *op)
{
	struct uring_engine *ue = uq->ue;
	const struct blk_engine_range *r = &op->r[op->i];
	struct io_uring_sqe *sqe = get_sqe(uq);
	int mode;

	if (!sqe)
		return -EBUSY;
	if (op->writing) {
		uint64_t left = r->len - op->done;
		const void *z = zero_buf(ue);

		if (!z) {
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			return -ENOMEM;
		}
		io_uring_prep_write(sqe, uq->sqe_fd, z,
				    left < ZERO_BUF_LEN ? (unsigned)left : ZERO_BUF_LEN,
				    r->off + op->done);
	} else {
		if (op->discard)
			/* A file: deallocate. A block device: discard (NO_HIDE_STALE). */
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE |
			       (ue->blockdev ? FALLOC_FL_NO_HIDE_STALE : 0);
		else
			/* A punched hole reads back as zeroes, which is what unmap allows. */
			mode = (r->unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
			       FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, uq->sqe_fd, mode, (off_t)r->off, (off_t)r->len);
	}
	sqe->flags |= uq->sqe_flags;
	io_uring_sqe_set_data(sqe, (void *)((uintptr_t)op | OP_BIT));
	return 0;
}

static bool unsupported(int res)
{
	return res == -EOPNOTSUPP || res == -ENOTTY || res == -EINVAL;
}

/*
 * One step of op completed with res. Returns 1 when op is finished (its
 * result in *result), 0 when its next step is queued.
 */
static int dwz_step(struct uring_queue *uq, struct dwz_op *op, int res, int *result)
{
	if (op->writing) {
		if (res <= 0) {
			*result = res ? res : -EIO;
			return 1;
		}
		op->done += (uint64_t)res;
		if (op->done < op->r[op->i].len)
			goto next_step;
	} else if (res < 0) {
		if (!unsupported(res)) {
			*result = res;
			return 1;
		}
		/* Discard is a hint; zeroes the store cannot make in place are written. */
		if (!op->discard) {
			op->writing = true;
			op->done = 0;
			goto next_step;
		}
	}
	if (++op->i == op->n) {
		*result = 0;
		return 1;
	}
	op->writing = false;
next_step:
	res = dwz_submit(uq, op);
	if (res) {
		*result = res;
		return 1;
	}
	return 0;
}

static int uring_dwz(struct blk_engine_queue *q, bool discard, const struct blk_engine_range *r,
		     unsigned n, void *tag)
{
	struct uring_queue *uq = uq_of(q);
	struct dwz_op *op = NULL;
	int rc;

	if (n == 0)
		return 0;
	if (n > BLK_ENGINE_MAX_RANGES)
		return -EINVAL;
	for (unsigned i = 0; i < uq->nops && !op; i++)
		if (!uq->ops[i].tag)
			op = &uq->ops[i];
	if (!op)
		return -EBUSY; /* more in flight than the queue's depth: cannot happen */
	*op = (struct dwz_op){ .tag = tag, .discard = discard, .n = n };
	memcpy(op->r, r, n * sizeof(*r));
	rc = dwz_submit(uq, op);
	if (rc) {
		op->tag = NULL;
		return rc;
	}
	return BLK_ENGINE_QUEUED;
}

static void uring_commit(struct blk_engine_queue *q)
{
	struct uring_queue *uq = uq_of(q);
	int rc;

	if (!io_uring_sq_ready(&uq->ring))
		return;
	rc = io_uring_submit(&uq->ring);
	/* Unsubmitted SQEs stay in the ring; the next commit tries again. */
	if (rc < 0 && !uq->submit_err_logged) {
		uq->submit_err_logged = true;
		vio_warn(uq->ue->e.owner, "io_uring_submit: %s", strerror(-rc));
	}
}

static int uring_reap(struct blk_engine_queue *q, struct blk_engine_cpl *out, unsigned n,
		      bool wait)
{
	struct uring_queue *uq = uq_of(q);
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, got = 0;

	if (wait) {
		int rc = io_uring_submit_and_wait(&uq->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = io_uring_wait_cqe(&uq->ring, &cqe);
		if (rc < 0)
			return rc;
	} else if (!io_uring_cq_ready(&uq->ring) &&
		   (IO_URING_READ_ONCE(*uq->ring.sq.kflags) & IORING_SQ_TASKRUN)) {
		/* Completions wait for this thread to enter the kernel (COOP_TASKRUN). */
		io_uring_get_events(&uq->ring);
	}
	io_uring_for_each_cqe(&uq->ring, head, cqe) {
		uintptr_t data = (uintptr_t)io_uring_cqe_get_data(cqe);
		struct dwz_op *op = (struct dwz_op *)(data & ~(uintptr_t)OP_BIT);
		int result;

		if (got == n)
			break;
		seen++;
		if (!data)
			continue; /* a placeholder SQE */
		if (!(data & OP_BIT)) {
			out[got].tag = (void *)data;
			out[got++].result = cqe->res;
			continue;
		}
		if (!dwz_step(uq, op, cqe->res, &result))
			continue;
		out[got].tag = op->tag;
		out[got++].result = result;
		op->tag = NULL;
	}
	io_uring_cq_advance(&uq->ring, seen);
	/* Steps queued above go to the kernel now, not at the next burst. */
	if (io_uring_sq_ready(&uq->ring))
		uring_commit(q);
	return (int)got;
}

static int uring_wait_fd(struct blk_engine_queue *q)
{
	return uq_of(q)->efd;
}

static void uring_queue_close(struct blk_engine_queue *q)
{
	struct uring_queue *uq = uq_of(q);

	io_uring_unregister_eventfd(&uq->ring);
	io_uring_queue_exit(&uq->ring);
	close(uq->efd);
	free(uq->ops);
	free(uq);
}

static void uring_close(struct blk_engine *e)
{
	struct uring_engine *ue = (struct uring_engine *)e;

	close(ue->fd);
	close(ue->lock_fd);
	free(ue->zero_buf);
	free(ue);
}

/* A file grows to the size asked (a block device cannot). */
static int uring_resize(struct blk_engine *e, uint64_t bytes)
{
	struct uring_engine *ue = (struct uring_engine *)e;

	if (ue->blockdev)
		return -ENOSPC;
	if (ftruncate(ue->fd, (off_t)bytes) < 0)
		return -errno;
	e->size = bytes & ~(uint64_t)(e->lbs - 1);
	return 0;
}

static const struct blk_engine_ops uring_ops = {
	.name = "io_uring",
	.queue_open = uring_queue_open,
	.rw = uring_rw,
	.flush = uring_flush,
	.dwz = uring_dwz,
	.commit = uring_commit,
	.reap = uring_reap,
	.wait_fd = uring_wait_fd,
	.queue_close = uring_queue_close,
	.resize = uring_resize,
	.close = uring_close,
};

static bool pow2_at_least_512(uint64_t v)
{
	return v >= 512 && v <= (1u << 16) && (v & (v - 1)) == 0;
}

static int size_blockdev(struct uring_engine *ue)
{
	uint64_t bytes;
	int lbs = 512;
	unsigned int pbs = 512;

	if (ioctl(ue->fd, BLKGETSIZE64, &bytes))
		return -errno;
	if (ioctl(ue->fd, BLKSSZGET, &lbs) || !pow2_at_least_512((uint64_t)lbs))
		lbs = 512;
	if (ioctl(ue->fd, BLKPBSZGET, &pbs) || !pow2_at_least_512(pbs) || pbs < (unsigned)lbs)
		pbs = (unsigned)lbs;
	ue->e.size = bytes;
	ue->e.lbs = (uint32_t)lbs;
	ue->e.pbs = pbs;
	ue->e.dio_mem_align = (uint32_t)lbs;
	ue->e.dio_off_align = (uint32_t)lbs;
	return 0;
}

/*
 * A page of tmpfs or ramfs is memory the kernel holds, never a device's to
 * wait for, unless it was swapped out: with no swap on the machine when the
 * file is opened, a read or write is a copy as cheap as the ring's own
 * bookkeeping, and doing it inline spares the hand-off to an io_uring worker
 * thread that these filesystems (no RWF_NOWAIT support) would otherwise cost
 * every request. Swap turned on later makes a swapped-out page a wait on
 * the swap device for this thread.
 */
static bool inline_rw_ok(int fd)
{
	struct statfs sfs;
	struct sysinfo si;

	if (fstatfs(fd, &sfs) || sysinfo(&si))
		return false;
	if ((unsigned)sfs.f_type != TMPFS_MAGIC_ && (unsigned)sfs.f_type != RAMFS_MAGIC_)
		return false;
	return si.totalswap == 0;
}

static int size_file(struct uring_engine *ue, const struct stat *st, bool direct)
{
	struct statx stx;

	ue->e.size = (uint64_t)st->st_size;
	ue->e.lbs = 512;
	ue->e.pbs = pow2_at_least_512((uint64_t)st->st_blksize) ? (uint32_t)st->st_blksize : 512;
	ue->e.zeroes_may_unmap = true;
	if (!direct) {
		ue->inline_rw = inline_rw_ok(ue->fd);
		return 0;
	}
	ue->e.dio_mem_align = 512;
	ue->e.dio_off_align = 512;
	if (statx(ue->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (stx.stx_dio_offset_align == 0)
			return -EINVAL; /* the filesystem does not do O_DIRECT on this file */
		if (!pow2_at_least_512(stx.stx_dio_offset_align))
			return -EINVAL;
		ue->e.dio_off_align = stx.stx_dio_offset_align;
		ue->e.dio_mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
		ue->e.lbs = stx.stx_dio_offset_align;
		if (ue->e.pbs < ue->e.lbs)
			ue->e.pbs = ue->e.lbs;
	}
	return 0;
}

/*
 * Two devices writing one image unknowingly corrupt it: take an open file
 * description lock on the device's window of the file (devices serving
 * disjoint windows of one image do not conflict), exclusive unless the
 * caller shares the image on purpose (a migration's source and
 * destination). The lock is taken on an open of its own that io_uring
 * never sees: io_uring drops the files it holds some time after a killed
 * process is gone, and a device restarted at once on the image must not
 * find it still locked. It is per open, so two devices of one process
 * conflict too. Returns the lock's fd, or -EBUSY when another holder's lock
 * is in the way, or another negative errno.
 */
static int lock_image(int data_fd, bool readonly, const struct blk_lock *lk)
{
	struct flock fl = { .l_type = lk->shared ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)lk->off, .l_len = (off_t)lk->len };
	char self[64];
	int fd, r;

	/* A second open of the very file data_fd is (not of whatever the path names now). */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", data_fd);
	fd = open(self, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return fd;
	r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	close(fd);
	return r;
}

int blk_engine_uring_open(const char *path, bool readonly, bool direct,
			  const struct blk_lock *lock, struct blk_engine **out)
{
	struct uring_engine *ue = calloc(1, sizeof(*ue));
	struct stat st;
	int rc, flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);

	if (!ue)
		return -ENOMEM;
	ue->lock_fd = -1;
	ue->fd = open(path, flags);
	if (ue->fd < 0) {
		rc = -errno;
		goto err_free;
	}
	if (fstat(ue->fd, &st)) {
		rc = -errno;
		goto err_close;
	}
	rc = lock_image(ue->fd, readonly, lock);
	if (rc < 0)
		goto err_close;
	ue->lock_fd = rc;
	if (S_ISBLK(st.st_mode)) {
		ue->blockdev = true;
		rc = size_blockdev(ue);
	} else if (S_ISREG(st.st_mode)) {
		rc = size_file(ue, &st, direct);
	} else {
		rc = -EINVAL;
	}
	if (rc)
		goto err_close;
	ue->e.size &= ~(uint64_t)(ue->e.lbs - 1);
	if (ue->e.size == 0) {
		rc = -EINVAL;
		goto err_close;
	}
	ue->direct = direct;
	ue->e.ops = &uring_ops;
	*out = &ue->e;
	return 0;
err_close:
	close(ue->fd);
	if (ue->lock_fd >= 0)
		close(ue->lock_fd);
err_free:
	free(ue);
	return rc;
}
