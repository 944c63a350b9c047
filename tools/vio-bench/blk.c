/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: an fio-like load on any vhost-user-blk backend (viod,
 * qemu-storage-daemon, SPDK) through vio's frontend and blk client, no VM.
 * This file owns the run and the load loop: one thread per queue keeps
 * --iodepth requests in flight on blocks of its own; the main thread prints
 * progress and the summary. With --verify every read of a block written in
 * this run is checked (blk_verify.c), and the written blocks are read back at
 * the end. It never has two requests on one block in flight, so the check is
 * exact. Options: blk_args.c; device set-up: blk_setup.c; output: blk_report.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "blk_bench.h"
#include "latency.h"
#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vio/log.h"
#include "vio/vhost_user.h"
#include "vio/virtio_spec.h"

#define BLK_SLEEP_MS 100              /* longest sleep on call_fd: stop and stall checks run */

volatile sig_atomic_t blk_interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	blk_interrupted = 1;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void io_done(void *opaque, int status, uint32_t len)
{
	struct io_slot *s = opaque;
	struct blk_job *j = s->job;
	struct blk_run *run = j->run;

	(void)len;
	j->inflight--;
	j->done[j->ndone++] = s;
	j->free[j->nfree++] = s;
	if (run->gen)
		run->gen[s->block] &= ~GEN_BUSY;
	if (status != VIRTIO_BLK_S_OK) {
		j->errors++;
		blk_note_event(&j->first_err, blk_block_sector(run, s->block), status, s->write, NULL);
		if (run->gen && s->write)
			run->gen[s->block] = GEN_UNKNOWN;
		return;
	}
	if (!s->write && s->gen)
		blk_check_read(j, s);
	if (!j->timed)
		return;
	/* One writer per counter: a relaxed load and store, no locked add. */
	atomic_store_explicit(&j->ops, atomic_load_explicit(&j->ops, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&j->bytes,
			      atomic_load_explicit(&j->bytes, memory_order_relaxed) + run->o.bs,
			      memory_order_relaxed);
}

/* The load's next block: random or sequential in this queue's range, never one in flight. */
static uint64_t pick_block(struct blk_job *j)
{
	const uint32_t *gen = j->run->gen;
	bool rnd = j->run->o.rw >= RW_RANDREAD;
	uint64_t off = rnd ? xorshift(&j->rng) % j->nblocks : j->cursor;

	/* The range holds more blocks than iodepth: a free one is near. */
	while (gen && (gen[j->first + off] & GEN_BUSY))
		off = (off + 1) % j->nblocks;
	if (!rnd)
		j->cursor = (off + 1) % j->nblocks;
	return j->first + off;
}

static bool pick_write(struct blk_job *j)
{
	switch (j->run->o.rw) {
	case RW_WRITE:
	case RW_RANDWRITE:
		return true;
	case RW_RANDRW:
		return xorshift(&j->rng) % 100 >= j->run->o.rwmixread;
	default:
		return false;
	}
}

/* The read-back's next block: one written in this run, from the cursor on. false: none left. */
static bool pick_readback(struct blk_job *j, uint64_t *block)
{
	const uint32_t *gen = j->run->gen;

	for (; j->cursor < j->nblocks; j->cursor++) {
		uint32_t g = gen[j->first + j->cursor];

		if (g && g != GEN_UNKNOWN) {
			*block = j->first + j->cursor;
			return true;
		}
	}
	return false;
}

/* Post one request on slot s. 0, 1 when the read-back has nothing left, or a negative errno. */
static int submit_one(struct blk_job *j, struct io_slot *s, bool readback)
{
	struct blk_run *run = j->run;
	struct vio_blk_client_req r = { .iov = s->iov, .niov = run->d.nseg };
	int rc;

	if (readback) {
		if (!pick_readback(j, &s->block))
			return 1;
		s->write = false;
	} else {
		s->write = pick_write(j);
		s->block = pick_block(j);
	}
	s->gen = 0;
	if (run->gen)
		blk_verify_prepare(run, s);
	r.type = s->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r.sector = blk_block_sector(run, s->block);
	rc = vio_blk_client_submit(run->c, j->q, &r, io_done, s);
	if (rc) {
		if (run->gen)
			run->gen[s->block] = s->gen_before;
		return rc;
	}
	if (readback)
		j->cursor++;
	j->wrote |= s->write;
	s->t0 = j->batch_ns;
	j->inflight++;
	return 0;
}

/* Fill every free slot. *more: false once the read-back ran out of blocks. */
static int fill_queue(struct blk_job *j, bool readback, bool *more)
{
	bool any = false;

	/* One clock read per batch: clock_gettime costs as much as a request here. */
	if (j->nfree)
		j->batch_ns = blk_now_ns();
	while (j->nfree) {
		int r = submit_one(j, j->free[j->nfree - 1], readback);

		if (r == 1) {
			*more = false;
			break;
		}
		if (r == -ENOSPC)
			break; /* descriptors run out before slots: poll, then go on */
		if (r)
			return r;
		j->nfree--;
		any = true;
	}
	if (any)
		vio_blk_client_kick(j->run->c, j->q);
	return 0;
}

/*
 * Sleep on the call eventfd until the device signals (at most BLK_SLEEP_MS).
 * Interrupts are armed first; if used buffers slipped in meanwhile we do not
 * sleep. The caller polls again after: a completion signalled before the
 * read that cleared the eventfd is reaped then, so no wakeup is lost.
 */
static void wait_completion(struct blk_job *j)
{
	const struct vio_drv_ctx *ctx = vio_vhu_frontend_queue(j->run->f, j->q);
	struct pollfd p = { .fd = ctx->call_fd, .events = POLLIN };
	uint64_t v;

	if (ctx->call_fd < 0 || !vio_virtq_driver_enable_cb(ctx->vq)) {
		vio_virtq_driver_disable_cb(ctx->vq);
		return;
	}
	if (poll(&p, 1, BLK_SLEEP_MS) > 0 && read(ctx->call_fd, &v, sizeof(v)) < 0)
		v = 0; /* non-blocking: another wakeup took the count; nothing to do */
	vio_virtq_driver_disable_cb(ctx->vq);
}

/* Nothing completed in this poll: spin a while, then sleep. 0, or -ETIMEDOUT. */
static int idle(struct blk_job *j)
{
	uint64_t t;

	/* A clock read every 32 empty polls keeps the spin cheap. */
	if (++j->idle_loops % 32)
		return 0;
	t = blk_now_ns();
	if (t - j->last_done_ns > BLK_STALL_NS)
		return -ETIMEDOUT;
	if (t - j->last_done_ns >= j->run->o.spin_us * 1000ull)
		wait_completion(j);
	else
		sched_yield(); /* a backend waiting for this CPU gets it now */
	return 0;
}

static bool job_should_stop(const struct blk_job *j, bool readback)
{
	return readback ? blk_interrupted != 0
			: atomic_load_explicit(&j->run->stop, memory_order_relaxed);
}

/* Run the load (until stop) or the read-back (until every written block is read), then drain. */
static int job_pump(struct blk_job *j, bool readback)
{
	bool more = true;
	int r;

	j->last_done_ns = blk_now_ns();
	for (;;) {
		int got;

		if (__builtin_expect(atomic_load_explicit(&j->run->pause, memory_order_acquire), 0))
			blk_job_park(j);
		if (more && job_should_stop(j, readback))
			more = false;
		if (more) {
			r = fill_queue(j, readback, &more);
			if (r)
				return r;
		}
		if (!more && !j->inflight)
			return 0;
		j->ndone = 0;
		got = vio_blk_client_poll(j->run->c, j->q);
		if (got < 0)
			return got;
		if (got == 0) {
			r = idle(j);
			if (r)
				return r;
			continue;
		}
		j->last_done_ns = blk_now_ns();
		j->idle_loops = 0;
		if (j->timed)
			for (unsigned i = 0; i < j->ndone; i++)
				lat_add(&j->lat, j->last_done_ns - j->done[i]->t0);
	}
}

static void *job_main(void *arg)
{
	struct blk_job *j = arg;
	const struct vio_drv_ctx *ctx = vio_vhu_frontend_queue(j->run->f, j->q);

	/* We poll; interrupts are armed only before sleeping. */
	vio_virtq_driver_disable_cb(ctx->vq);
	j->timed = true;
	j->fatal = job_pump(j, false);
	j->end_ns = blk_now_ns();
	j->timed = false;
	if (!j->fatal && j->run->gen && j->wrote) {
		j->cursor = 0;
		j->fatal = job_pump(j, true);
	}
	atomic_store_explicit(&j->finished, true, memory_order_release);
	return NULL;
}

static int start_jobs(struct blk_run *run, unsigned *started)
{
	sigset_t all, old;
	int err = 0;

	/* SIGINT goes to the main thread only: workers never see EINTR. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (*started = 0; *started < run->o.queues; ++*started) {
		err = pthread_create(&run->jobs[*started].tid, NULL, job_main, &run->jobs[*started]);
		if (err)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		fprintf(stderr, "vio-bench blk: cannot start a thread: %s\n", strerror(err));
	return -err;
}

/* After the load: make what was written durable (when the device caches writes). */
static int flush(struct blk_run *run)
{
	struct vio_blk_client_req r = { .type = VIRTIO_BLK_T_FLUSH };
	bool wrote = false;
	int st;

	for (unsigned q = 0; q < run->o.queues; q++)
		wrote |= run->jobs[q].wrote && !run->jobs[q].fatal;
	if (!wrote || !(run->d.features & BIT(VIRTIO_BLK_F_FLUSH)))
		return 0;
	st = vio_blk_client_sync(run->c, 0, &r, NULL, NULL, 10000, NULL);
	if (st == VIRTIO_BLK_S_OK)
		return 0;
	fprintf(stderr, "vio-bench blk: %s: flush failed: %s\n", run->o.socket,
		st < 0 ? strerror(-st) : st == VIRTIO_BLK_S_UNSUPP ? "unsupported" : "I/O error");
	return -EIO;
}

static int run_bench(struct blk_run *run)
{
	unsigned started = 0;
	uint64_t t0;
	int rc, r;

	r = blk_setup_jobs(run);
	if (r) {
		if (r != -EINVAL) /* -EINVAL: the options do not fit this disk (reported) */
			fprintf(stderr, "vio-bench blk: set-up failed: %s\n", strerror(-r));
		return 1;
	}
	r = blk_log_setup(run);
	if (r)
		return 1;
	t0 = blk_now_ns();
	r = start_jobs(run, &started);
	if (!r)
		blk_progress(run, t0);
	else
		atomic_store(&run->stop, true);
	for (unsigned q = 0; q < started; q++) {
		pthread_join(run->jobs[q].tid, NULL);
		run->stuck |= run->jobs[q].fatal == -ETIMEDOUT;
	}
	if (r)
		return 1;
	r = flush(run);
	rc = blk_report(run, t0);
	if (run->o.migrate_to && !run->migrated) {
		fprintf(stderr, "vio-bench blk: the device was not migrated to %s\n",
			run->o.migrate_to);
		rc = 1;
	}
	return r ? 1 : rc;
}

int vio_bench_blk(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	struct blk_run *run;
	int rc = 1, r;

	run = calloc(1, sizeof(*run));
	if (!run) {
		fprintf(stderr, "vio-bench blk: out of memory\n");
		return 1;
	}
	r = blk_parse_args(argc, argv, &run->o);
	if (r) {
		free(run);
		return r > 0 ? 0 : 2;
	}
	vio_log_set(vio_log_stderr, NULL, VIO_LOG_WARN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	if (blk_open_device(run))
		goto out;
	if (run->o.info) {
		blk_print_info(run);
		rc = 0;
		goto out;
	}
	rc = run_bench(run);
out:
	vio_blk_client_free(run->c);
	if (run->f) {
		if (!run->stuck)
			vio_vhu_frontend_disconnect(run->f);
		vio_vhu_frontend_close(run->f);
	}
	blk_free_jobs(run);
	blk_log_free(run);
	free(run->gen);
	free(run);
	return rc;
}
