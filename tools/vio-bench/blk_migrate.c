/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk --log and --migrate-to: vio's frontend playing a VMM that
 * live-migrates a vhost-user-blk device. --log keeps dirty logging on for
 * the whole load (to measure its cost on the backend). --migrate-to copies
 * guest memory to a second backend while the load runs (everything once,
 * then the pages the backend logged and the pages our own threads wrote),
 * parks the job threads, stops the source's queues (each answers once its
 * requests completed), copies what changed last, and hands the rings to
 * the destination at the positions the source gave; the jobs go on there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk_bench.h"
#include "vio/vhost_user.h"

#define PRECOPY_ROUNDS 3
#define PRECOPY_GAP_US 100000

void blk_mark_cpu(struct blk_run *run, const void *p, size_t len)
{
	uint64_t gpa, first, last;

	if (!run->cpu_dirty || !len ||
	    vio_mem_host_to_gpa(vio_vhu_frontend_mem(run->f), p, len, &gpa))
		return;
	first = gpa / VIO_VHU_LOG_PAGE;
	last = (gpa + len - 1) / VIO_VHU_LOG_PAGE;
	for (uint64_t pg = first; pg <= last; pg++)
		__atomic_fetch_or(&run->cpu_dirty[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

void blk_job_park(struct blk_job *j)
{
	atomic_store_explicit(&j->paused, true, memory_order_release);
	while (atomic_load_explicit(&j->run->pause, memory_order_acquire))
		usleep(50);
	atomic_store_explicit(&j->paused, false, memory_order_relaxed);
	j->last_done_ns = blk_now_ns(); /* the switch-over is not a stall */
}

int blk_log_setup(struct blk_run *run)
{
	int r;

	if (!run->o.log && !run->o.migrate_to)
		return 0;
	run->log_words = vio_vhu_frontend_log_words(run->f);
	run->dirty = calloc(run->log_words, sizeof(uint64_t));
	/* Our own writes matter only to a migration (--log measures the backend alone). */
	if (run->o.migrate_to)
		run->cpu_dirty = calloc(run->log_words, sizeof(uint64_t));
	if (!run->dirty || (run->o.migrate_to && !run->cpu_dirty))
		return -ENOMEM;
	if (!run->o.log)
		return 0;
	r = vio_vhu_frontend_log_start(run->f);
	if (r)
		fprintf(stderr, "vio-bench blk: %s: cannot turn dirty logging on: %s\n",
			run->o.socket, strerror(-r));
	return r;
}

void blk_log_free(struct blk_run *run)
{
	free(run->dirty);
	free(run->cpu_dirty);
	run->dirty = run->cpu_dirty = NULL;
}

/* Take what the backend logged and what our threads wrote since the last round; copy it. */
static uint64_t copy_round(struct blk_run *run, uint64_t *logged)
{
	memset(run->dirty, 0, run->log_words * sizeof(uint64_t));
	*logged = vio_vhu_frontend_log_collect(run->f, run->dirty, run->log_words);
	for (size_t i = 0; i < run->log_words; i++)
		run->dirty[i] |= __atomic_exchange_n(&run->cpu_dirty[i], 0, __ATOMIC_ACQ_REL);
	return vio_vhu_frontend_migrate_copy_pages(run->f, run->dirty, run->log_words);
}

static void park_jobs(struct blk_run *run)
{
	atomic_store_explicit(&run->pause, true, memory_order_release);
	for (unsigned q = 0; q < run->o.queues; q++)
		while (!atomic_load_explicit(&run->jobs[q].paused, memory_order_acquire) &&
		       !atomic_load_explicit(&run->jobs[q].finished, memory_order_acquire))
			usleep(50);
}

static int migrate(struct blk_run *run)
{
	const struct vio_mem *mem = vio_vhu_frontend_mem(run->f);
	uint64_t size = 0, gpa, t0 = blk_now_ns(), tdown, tend, logged, copied[PRECOPY_ROUNDS];
	uint64_t final, final_logged;
	uint32_t bases[VIO_VHU_MAX_QUEUES];
	int r;

	r = vio_vhu_frontend_migrate_prepare(run->f, run->o.migrate_to);
	if (!r)
		r = vio_vhu_frontend_log_start(run->f);
	if (r) {
		fprintf(stderr, "vio-bench blk: migrate to %s: %s\n", run->o.migrate_to, strerror(-r));
		return r;
	}
	/* Round 0: all of guest memory (the one region at guest address 0). */
	while (vio_mem_translate(mem, 0, size + VIO_VHU_LOG_PAGE))
		size += VIO_VHU_LOG_PAGE;
	r = vio_vhu_frontend_migrate_copy(run->f, 0, size);
	for (unsigned i = 0; !r && i < PRECOPY_ROUNDS; i++) {
		usleep(PRECOPY_GAP_US); /* the load goes on and dirties pages meanwhile */
		copied[i] = copy_round(run, &logged);
	}
	if (r)
		return r;
	/* Stop and copy: the "vCPUs" park, the source completes what it took. */
	park_jobs(run);
	tdown = blk_now_ns();
	for (unsigned q = 0; !r && q < run->o.queues; q++)
		r = vio_vhu_frontend_stop_queue(run->f, q, &bases[q]);
	if (!r) {
		final = copy_round(run, &final_logged);
		r = vio_vhu_frontend_migrate_copy_rings(run->f);
	}
	if (!r && vio_mem_host_to_gpa(mem, run->client_area, run->client_area_len, &gpa) == 0)
		r = vio_vhu_frontend_migrate_copy(run->f, gpa, run->client_area_len);
	if (!r)
		r = vio_vhu_frontend_migrate_finish(run->f, bases);
	tend = blk_now_ns();
	atomic_store_explicit(&run->pause, false, memory_order_release);
	if (r) {
		fprintf(stderr, "vio-bench blk: migrate to %s failed: %s\n", run->o.migrate_to,
			strerror(-r));
		return r;
	}
	run->migrated = true;
	fprintf(stderr, "vio-bench blk: migrated %s -> %s: total_ms=%.1f downtime_ms=%.1f "
		"precopy_pages=%llu,%llu,%llu final_pages=%llu final_logged=%llu\n",
		run->o.socket, run->o.migrate_to, (double)(tend - t0) / 1e6,
		(double)(tend - tdown) / 1e6, (unsigned long long)copied[0],
		(unsigned long long)copied[1], (unsigned long long)copied[2],
		(unsigned long long)final, (unsigned long long)final_logged);
	return 0;
}

void blk_log_tick(struct blk_run *run, uint64_t t0)
{
	uint64_t now = blk_now_ns(), at;

	if (run->o.log && now >= run->log_next_ns) {
		/* What a VMM's migration thread does between rounds. */
		vio_vhu_frontend_log_collect(run->f, run->dirty, run->log_words);
		run->log_next_ns = now + 1000000000ull;
	}
	if (!run->o.migrate_to || run->migrated || run->migrate_err)
		return;
	at = run->o.migrate_at ? run->o.migrate_at : (run->o.seconds + 1) / 2;
	if (now - t0 >= at * 1000000000ull)
		run->migrate_err = migrate(run) ? 1 : 0;
}
