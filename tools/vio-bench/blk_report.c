/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: what the user sees. Owns the first-event records, the
 * progress line (the main thread's wait during the load), the summary with
 * its --machine line and the problem messages, and --info. It reads the jobs'
 * counters; it never changes a job's state except run->stop.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk_bench.h"
#include "latency.h"
#include "vio/blk.h"
#include "vio/vhost_user.h"
#include "vio/virtio_spec.h"

void blk_note_event(struct blk_event *e, uint64_t sector, int status, bool write,
		    const char *what)
{
	if (e->at_ns)
		return;
	*e = (struct blk_event){ .at_ns = blk_now_ns(), .sector = sector, .status = status,
				 .write = write, .what = what };
}

/* Every job ended early (a failed or stuck backend): no reason to wait out --seconds. */
static bool all_finished(struct blk_run *run)
{
	for (unsigned q = 0; q < run->o.queues; q++)
		if (!atomic_load_explicit(&run->jobs[q].finished, memory_order_acquire))
			return false;
	return true;
}

static uint64_t total_ops(const struct blk_run *run)
{
	uint64_t n = 0;

	for (unsigned q = 0; q < run->o.queues; q++)
		n += atomic_load_explicit(&run->jobs[q].ops, memory_order_relaxed);
	return n;
}

/* The main thread's part: a progress line on stderr about once a second. */
/*
 * --reconnect: the backend closed its end; connect again until it listens
 * (bounded). The jobs keep polling their rings meanwhile: what they wait
 * for completes once the restarted backend resubmits it.
 */
static void blk_reconnect(struct blk_run *run)
{
	uint64_t deadline = blk_now_ns() + BLK_RECONNECT_NS;
	int r;

	if (!run->o.reconnect || vio_vhu_frontend_check(run->f) == 0)
		return;
	fprintf(stderr, "vio-bench blk: %s: backend went away, reconnecting\n", run->o.socket);
	while ((r = vio_vhu_frontend_reconnect(run->f)) != 0) {
		if (blk_interrupted || blk_now_ns() > deadline) {
			fprintf(stderr, "vio-bench blk: %s: reconnect failed: %s\n", run->o.socket,
				strerror(-r));
			return;
		}
		usleep(20000);
	}
	run->reconnects++;
	fprintf(stderr, "vio-bench blk: %s: reconnected\n", run->o.socket);
}

void blk_progress(struct blk_run *run, uint64_t t0)
{
	bool tty = isatty(STDERR_FILENO);
	uint64_t prev = 0;
	unsigned s = 0;

	while (!blk_interrupted && !all_finished(run)) {
		uint64_t t = blk_now_ns(), n, next = t0 + (s + 1) * 1000000000ull;

		blk_reconnect(run);
		blk_log_tick(run, t0);
		if (t < next) {
			/* Short naps: Ctrl-C and jobs that died are noticed quickly. */
			usleep((useconds_t)((next - t) / 1000 < 100000 ? (next - t) / 1000 : 100000));
			continue;
		}
		s++;
		n = total_ops(run);
		fprintf(stderr, "%s  [%u/%u s] %llu IOPS, %.1f MB/s%s", tty ? "\r" : "", s,
			run->o.seconds, (unsigned long long)(n - prev),
			(double)(n - prev) * run->o.bs / 1e6, tty ? "   " : "\n");
		prev = n;
		if (s >= run->o.seconds)
			break;
	}
	if (tty && s)
		fputc('\n', stderr);
	atomic_store(&run->stop, true);
}

struct blk_totals {
	uint64_t ops, bytes, errors, checked, mismatches, end_ns;
	struct blk_event err, bad;
	int fatal;
	unsigned fatal_q;
	struct lat_hist lat;
};

static void earliest(struct blk_event *into, const struct blk_event *e)
{
	if (e->at_ns && (!into->at_ns || e->at_ns < into->at_ns))
		*into = *e;
}

static void sum_jobs(const struct blk_run *run, struct blk_totals *t)
{
	memset(t, 0, sizeof(*t));
	lat_reset(&t->lat);
	for (unsigned q = 0; q < run->o.queues; q++) {
		const struct blk_job *j = &run->jobs[q];

		t->ops += j->ops;
		t->bytes += j->bytes;
		t->errors += j->errors;
		t->checked += j->checked;
		t->mismatches += j->mismatches;
		if (j->end_ns > t->end_ns)
			t->end_ns = j->end_ns;
		earliest(&t->err, &j->first_err);
		earliest(&t->bad, &j->first_bad);
		lat_merge(&t->lat, &j->lat);
		if (j->fatal && !t->fatal) {
			t->fatal = j->fatal;
			t->fatal_q = q;
		}
	}
}

static const char *status_str(int st)
{
	switch (st) {
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case -EIO: return "no status (used length 0)";
	default: return "unknown status";
	}
}

static void report_problems(const struct blk_run *run, const struct blk_totals *t)
{
	if (t->errors)
		fprintf(stderr, "vio-bench blk: %llu requests failed; the first: %s of sector %llu "
			"got %s (%d)\n", (unsigned long long)t->errors, t->err.write ? "write" : "read",
			(unsigned long long)t->err.sector, status_str(t->err.status), t->err.status);
	if (t->mismatches)
		fprintf(stderr, "vio-bench blk: verify: %llu of %llu reads checked had wrong data; "
			"the first: sector %llu (generation %d expected) held %s\n",
			(unsigned long long)t->mismatches, (unsigned long long)t->checked,
			(unsigned long long)t->bad.sector, t->bad.status, t->bad.what);
	if (t->fatal == -ETIMEDOUT)
		fprintf(stderr, "vio-bench blk: %s: queue %u: the backend completed nothing for "
			"%llu s\n", run->o.socket, t->fatal_q, BLK_STALL_NS / 1000000000ull);
	else if (t->fatal == -EIO)
		fprintf(stderr, "vio-bench blk: %s: queue %u broke: %s\n", run->o.socket, t->fatal_q,
			vio_virtq_fault_str(vio_virtq_fault_reason(
				vio_vhu_frontend_queue(run->f, t->fatal_q)->vq)));
	else if (t->fatal)
		fprintf(stderr, "vio-bench blk: %s: queue %u: %s\n", run->o.socket, t->fatal_q,
			strerror(-t->fatal));
}

int blk_report(const struct blk_run *run, uint64_t t0)
{
	struct blk_totals *t = malloc(sizeof(*t));
	double secs, iops, mbps, p50, p99, p999;
	int rc;

	if (!t)
		return 1;
	sum_jobs(run, t);
	secs = t->end_ns > t0 ? (double)(t->end_ns - t0) / 1e9 : 1e-9;
	iops = (double)t->ops / secs;
	mbps = (double)t->bytes / secs / 1e6;
	p50 = (double)lat_percentile(&t->lat, 50) / 1e3;
	p99 = (double)lat_percentile(&t->lat, 99) / 1e3;
	p999 = (double)lat_percentile(&t->lat, 99.9) / 1e3;
	printf("%s bs=%u iodepth=%u queues=%u %.1f s on %s (%llu MiB)\n", blk_rw_names[run->o.rw],
	       run->o.bs, run->o.iodepth, run->o.queues, secs, run->o.socket,
	       (unsigned long long)(run->d.capacity >> 20));
	printf("  IOPS %.0f   MB/s %.1f   latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
	       iops, mbps, p50, p99, p999, (double)t->lat.max_ns / 1e3);
	printf("  errors %llu", (unsigned long long)t->errors);
	if (run->o.verify)
		printf("   verify: %llu reads checked, %llu mismatches", (unsigned long long)t->checked,
		       (unsigned long long)t->mismatches);
	printf("\n");
	report_problems(run, t);
	if (run->o.machine)
		printf("iops=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu "
		       "verify_errors=%llu verified=%llu capacity=%llu\n", iops, mbps, p50, p99, p999,
		       (unsigned long long)t->errors, (unsigned long long)t->mismatches,
		       (unsigned long long)t->checked, (unsigned long long)run->d.capacity);
	rc = (t->errors || t->mismatches || t->fatal) ? 1 : 0;
	free(t);
	return rc;
}

void blk_print_info(const struct blk_run *run)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ VIRTIO_BLK_F_SIZE_MAX, "SIZE_MAX" }, { VIRTIO_BLK_F_SEG_MAX, "SEG_MAX" },
		{ VIRTIO_BLK_F_RO, "RO" }, { VIRTIO_BLK_F_BLK_SIZE, "BLK_SIZE" },
		{ VIRTIO_BLK_F_FLUSH, "FLUSH" }, { VIRTIO_BLK_F_TOPOLOGY, "TOPOLOGY" },
		{ VIRTIO_BLK_F_MQ, "MQ" }, { VIRTIO_BLK_F_DISCARD, "DISCARD" },
		{ VIRTIO_BLK_F_WRITE_ZEROES, "WRITE_ZEROES" },
		{ VIRTIO_F_INDIRECT_DESC, "INDIRECT_DESC" }, { VIRTIO_F_EVENT_IDX, "EVENT_IDX" },
		{ VIRTIO_F_VERSION_1, "VERSION_1" }, { VIRTIO_F_RING_PACKED, "RING_PACKED" },
	};
	const struct blk_dev *d = &run->d;

	printf("socket %s\nfeatures 0x%llx", run->o.socket, (unsigned long long)d->features);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (d->features & BIT(names[i].bit))
			printf(" %s", names[i].name);
	printf("\nprotocol_features 0x%llx\n",
	       (unsigned long long)vio_vhu_frontend_protocol_features(run->f));
	printf("capacity %llu bytes (%llu sectors)\n", (unsigned long long)d->capacity,
	       (unsigned long long)(d->capacity / SECTOR));
	printf("num_queues %u\nblk_size %u\nseg_max %u\nsize_max %u\n", d->num_queues, d->blk_size,
	       d->seg_max, d->size_max);
}
