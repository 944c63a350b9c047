/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: an fio-like load on any vhost-user-blk backend (viod,
 * qemu-storage-daemon, SPDK) through vio's frontend and blk client, no VM.
 * One thread per queue keeps --iodepth requests in flight; the main thread
 * prints progress and the summary (IOPS, MB/s, latency percentiles). With
 * --verify every read of a block written in this run is checked against the
 * last pattern written there; requests in flight never share a block.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "latency.h"
#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vio/log.h"
#include "vio/vhost_user.h"
#include "vio/virtio_spec.h"

#define BLK_MAX_DEPTH 256
#define BLK_QUEUE_SIZE 256
#define BLK_SPIN_NS 50000ull         /* busy-poll this long before sleeping on call_fd */
#define BLK_STALL_NS 5000000000ull   /* no completion for this long: the backend is gone */
#define BLK_VERIFY_MAX_BLOCKS (64u << 20)
#define GEN_UNKNOWN UINT32_MAX       /* a failed write left the block's content unknown */

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

static const char *const rw_names[] = {"read", "write", "randread", "randwrite", "randrw"};

struct blk_opts {
	const char *socket;
	enum rw_mode rw;
	uint32_t bs;
	unsigned iodepth, queues, seconds, rwmixread;
	uint64_t size;
	bool verify, machine;
};

struct blk_run;

struct io_slot {
	struct blk_job *job;
	void *buf;
	uint64_t block;
	uint64_t t0;
	uint32_t gen; /* the pattern a write carries, or the one a read must find (0: unchecked) */
	bool write, busy;
};

struct blk_job {
	struct blk_run *run;
	unsigned q;
	uint64_t first, nblocks, cursor; /* this queue's own blocks: verify never races */
	uint64_t rng;
	struct io_slot slots[BLK_MAX_DEPTH];
	struct io_slot *done[BLK_MAX_DEPTH]; /* completed in this poll, awaiting their timestamp */
	unsigned inflight, ndone;
	uint64_t batch_ns; /* submit time of the batch being filled */
	struct lat_hist lat;
	_Atomic uint64_t ops, bytes;
	uint64_t errors, checked, mismatches, first_bad_sector;
	uint64_t last_done_ns;
	int fatal; /* negative errno that ended the job early */
	pthread_t tid;
};

struct blk_run {
	struct blk_opts o;
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	uint64_t capacity_bytes;
	uint32_t *gen; /* --verify: per block, last generation written (0: never) */
	atomic_bool stop;
	struct blk_job *jobs;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- verify patterns: every 8 bytes depend on (block, generation, offset) ---- */

static uint64_t pattern_word(uint64_t block, uint32_t gen, uint64_t i)
{
	uint64_t x = (block << 20) ^ ((uint64_t)gen << 40) ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5aull;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

static void pattern_fill(void *buf, uint32_t bs, uint64_t block, uint32_t gen)
{
	uint64_t *w = buf;

	for (uint64_t i = 0; i < bs / 8; i++)
		w[i] = pattern_word(block, gen, i);
}

static bool pattern_ok(const void *buf, uint32_t bs, uint64_t block, uint32_t gen)
{
	const uint64_t *w = buf;

	for (uint64_t i = 0; i < bs / 8; i++)
		if (w[i] != pattern_word(block, gen, i))
			return false;
	return true;
}

/* ---- one queue's load ---- */

static bool block_busy(const struct blk_job *j, uint64_t block)
{
	for (unsigned i = 0; i < j->run->o.iodepth; i++)
		if (j->slots[i].busy && j->slots[i].block == block)
			return true;
	return false;
}

static uint64_t next_block(struct blk_job *j)
{
	bool rnd = j->run->o.rw >= RW_RANDREAD;
	uint64_t b;

	do {
		if (rnd) {
			b = j->first + xorshift(&j->rng) % j->nblocks;
		} else {
			b = j->first + j->cursor;
			j->cursor = (j->cursor + 1) % j->nblocks;
		}
	} while (j->run->gen && block_busy(j, b));
	return b;
}

static bool next_is_write(struct blk_job *j)
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

static void io_done(void *opaque, int status, uint32_t len)
{
	struct io_slot *s = opaque;
	struct blk_job *j = s->job;
	struct blk_run *run = j->run;

	s->busy = false;
	j->inflight--;
	j->done[j->ndone++] = s;
	if (status != VIRTIO_BLK_S_OK) {
		j->errors++;
		if (run->gen && s->write)
			run->gen[s->block] = GEN_UNKNOWN;
		return;
	}
	if (!s->write && s->gen && s->gen != GEN_UNKNOWN) {
		j->checked++;
		if (!pattern_ok(s->buf, run->o.bs, s->block, s->gen) && !j->mismatches++)
			j->first_bad_sector = s->block * (run->o.bs / VIRTIO_BLK_SECTOR_SIZE);
	}
	atomic_store_explicit(&j->ops, atomic_load_explicit(&j->ops, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&j->bytes,
			      atomic_load_explicit(&j->bytes, memory_order_relaxed) + run->o.bs,
			      memory_order_relaxed);
}

static int submit_one(struct blk_job *j, struct io_slot *s)
{
	struct blk_run *run = j->run;
	struct iovec iov = {s->buf, run->o.bs};
	struct vio_blk_client_req r = {.iov = &iov, .niov = 1};

	s->write = next_is_write(j);
	s->block = next_block(j);
	s->gen = 0;
	if (run->gen) {
		if (s->write) {
			uint32_t g = run->gen[s->block] + 1;

			s->gen = (g == GEN_UNKNOWN || g == 0) ? 1 : g;
			run->gen[s->block] = s->gen;
			pattern_fill(s->buf, run->o.bs, s->block, s->gen);
		} else {
			s->gen = run->gen[s->block];
		}
	}
	r.type = s->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r.sector = s->block * (run->o.bs / VIRTIO_BLK_SECTOR_SIZE);
	s->t0 = j->batch_ns;
	s->busy = true;
	j->inflight++;
	int rc = vio_blk_client_submit(run->c, j->q, &r, io_done, s);

	if (rc) {
		s->busy = false;
		j->inflight--;
		if (run->gen && s->write)
			run->gen[s->block] = GEN_UNKNOWN;
	}
	return rc;
}

/* Sleep on the call eventfd until the backend signals (or 1 ms passes). */
static void wait_completion(struct blk_job *j)
{
	const struct vio_drv_ctx *ctx = vio_vhu_frontend_queue(j->run->f, j->q);
	struct pollfd p = {.fd = ctx->call_fd, .events = POLLIN};
	uint64_t v;

	/* Re-arm interrupts; if something arrived meanwhile, do not sleep at all. */
	if (vio_virtq_driver_enable_cb(ctx->vq) || ctx->call_fd < 0)
		return;
	if (poll(&p, 1, 1) > 0 && read(ctx->call_fd, &v, sizeof(v)) < 0)
		return;
}

static int fill_queue(struct blk_job *j, bool *submitted)
{
	/* One clock read per batch: clock_gettime costs as much as a request here. */
	if (j->inflight < j->run->o.iodepth)
		j->batch_ns = now_ns();
	for (unsigned i = 0; i < j->run->o.iodepth; i++) {
		int r;

		if (j->slots[i].busy)
			continue;
		r = submit_one(j, &j->slots[i]);
		if (r == -ENOSPC)
			break;
		if (r)
			return r;
		*submitted = true;
	}
	return 0;
}

static void *job_main(void *arg)
{
	struct blk_job *j = arg;
	struct blk_run *run = j->run;
	uint64_t idle_since = 0;
	unsigned idle_loops = 0;

	j->last_done_ns = now_ns();
	for (;;) {
		bool stopping = atomic_load_explicit(&run->stop, memory_order_relaxed);
		bool submitted = false;
		int got;

		if (!stopping) {
			j->fatal = fill_queue(j, &submitted);
			if (j->fatal)
				break;
			if (submitted)
				vio_blk_client_kick(run->c, j->q);
		} else if (!j->inflight) {
			break;
		}
		j->ndone = 0;
		got = vio_blk_client_poll(run->c, j->q);
		if (got < 0) {
			j->fatal = got;
			break;
		}
		if (got) {
			uint64_t t = now_ns();

			for (unsigned i = 0; i < j->ndone; i++)
				lat_add(&j->lat, t - j->done[i]->t0);
			j->last_done_ns = t;
			idle_since = 0;
			idle_loops = 0;
			continue;
		}
		if (++idle_loops % 32)
			continue;
		uint64_t t = now_ns();

		if (t - j->last_done_ns > BLK_STALL_NS) {
			j->fatal = -ETIMEDOUT;
			break;
		}
		if (!idle_since)
			idle_since = t;
		else if (t - idle_since > BLK_SPIN_NS)
			wait_completion(j);
	}
	return NULL;
}

/* ---- set-up, progress, report ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vio-bench blk --socket PATH [options]\n"
		"Drive any vhost-user-blk backend (viod, qemu-storage-daemon, SPDK) with vio's\n"
		"frontend, no VM, and report IOPS, MB/s and completion latency.\n"
		"  --socket PATH      the backend's vhost-user socket (required)\n"
		"  --rw MODE          read | write | randread | randwrite | randrw (default randread)\n"
		"  --bs SIZE          bytes per request, a multiple of 512 (default 4k)\n"
		"  --iodepth N        requests in flight per queue, 1..%d (default 32)\n"
		"  --queues N         queues, one thread each (default 1)\n"
		"  --seconds N        run time (default 10)\n"
		"  --size SIZE        use only the first SIZE bytes of the disk (default all)\n"
		"  --rwmixread PCT    percentage of reads for randrw (default 50)\n"
		"  --verify           write patterns and check every read of a block written\n"
		"                     in this run; any mismatch makes the exit status 1\n"
		"  --machine          end with one line: iops= mbps= p50_us= p99_us= p999_us=\n"
		"                     errors= verify_errors= capacity=\n"
		"  -h, --help         this text\n"
		"Exit status: 0 ok, 1 I/O errors, verify mismatches or a lost backend, 2 bad usage.\n",
		BLK_MAX_DEPTH);
}

static int parse_size_arg(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && *s != '-') {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		case 't': case 'T': shift = 40; end++; break;
		}
		if (!*end && v && v <= (UINT64_MAX >> shift)) {
			*out = (uint64_t)v << shift;
			return 0;
		}
	}
	fprintf(stderr, "vio-bench blk: %s '%s': expected a size like 4096, 4k or 1M\n", opt, s);
	return -EINVAL;
}

static int parse_uint_arg(const char *opt, const char *s, unsigned min, unsigned max,
			  unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "vio-bench blk: %s '%s': expected a number from %u to %u\n", opt, s,
			min, max);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* 0 run, 1 exit 0 (help), -EINVAL usage error (reported). */
static int parse_args(int argc, char **argv, struct blk_opts *o)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'}, {"rw", required_argument, NULL, 'r'},
		{"bs", required_argument, NULL, 'b'},     {"iodepth", required_argument, NULL, 'd'},
		{"queues", required_argument, NULL, 'q'}, {"seconds", required_argument, NULL, 't'},
		{"size", required_argument, NULL, 'S'},   {"rwmixread", required_argument, NULL, 'm'},
		{"verify", no_argument, NULL, 'v'},       {"machine", no_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	*o = (struct blk_opts){.rw = RW_RANDREAD, .bs = 4096, .iodepth = 32, .queues = 1,
			       .seconds = 10, .rwmixread = 50};
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'r': {
			unsigned i;

			for (i = 0; i < sizeof(rw_names) / sizeof(rw_names[0]); i++)
				if (!strcmp(optarg, rw_names[i]))
					break;
			if (i == sizeof(rw_names) / sizeof(rw_names[0])) {
				fprintf(stderr, "vio-bench blk: --rw '%s': expected read, write, "
					"randread, randwrite or randrw\n", optarg);
				return -EINVAL;
			}
			o->rw = (enum rw_mode)i;
			break;
		}
		case 'b':
			if (parse_size_arg("--bs", optarg, &v))
				return -EINVAL;
			if (v % VIRTIO_BLK_SECTOR_SIZE || v > (4u << 20)) {
				fprintf(stderr, "vio-bench blk: --bs '%s': must be a multiple of 512, "
					"at most 4M\n", optarg);
				return -EINVAL;
			}
			o->bs = (uint32_t)v;
			break;
		case 'd':
			if (parse_uint_arg("--iodepth", optarg, 1, BLK_MAX_DEPTH, &o->iodepth))
				return -EINVAL;
			break;
		case 'q':
			if (parse_uint_arg("--queues", optarg, 1, VIO_VHU_MAX_QUEUES, &o->queues))
				return -EINVAL;
			break;
		case 't':
			if (parse_uint_arg("--seconds", optarg, 1, 86400, &o->seconds))
				return -EINVAL;
			break;
		case 'S':
			if (parse_size_arg("--size", optarg, &o->size))
				return -EINVAL;
			break;
		case 'm':
			if (parse_uint_arg("--rwmixread", optarg, 0, 100, &o->rwmixread))
				return -EINVAL;
			break;
		case 'v': o->verify = true; break;
		case 'M': o->machine = true; break;
		case 'h': usage(stdout); return 1;
		default:
			fprintf(stderr, "Try 'vio-bench blk --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vio-bench blk: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->socket) {
		fprintf(stderr, "vio-bench blk: --socket PATH is required (try --help)\n");
		return -EINVAL;
	}
	return 0;
}

static int connect_backend(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	uint64_t data = (uint64_t)o->queues * o->iodepth * o->bs;
	struct vio_vhu_frontend_opts fo = {
		.socket_path = o->socket,
		/* rings, the client's headers and status bytes, the data buffers, slack */
		.mem_size = ((data + (uint64_t)o->queues * (2u << 20) + (8u << 20)) + 0x1fffff) &
			    ~(uint64_t)0x1fffff,
		.features = (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
			    (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_RO) |
			    (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_INDIRECT_DESC) |
			    (o->queues > 1 ? 1ull << VIRTIO_BLK_F_MQ : 0),
		.nqueues = o->queues, .queue_size = BLK_QUEUE_SIZE, .indirect_max = 8,
	};
	struct virtio_blk_config cfg = {0};
	int r = vio_vhu_frontend_connect(&fo, &run->f);

	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot set up a vhost-user-blk device: %s%s\n",
			o->socket, strerror(-r),
			r == -ENOTSUP ? " (not virtio 1.0, or fewer queues than --queues)" : "");
		return r;
	}
	r = vio_vhu_frontend_get_config(run->f, 0, &cfg, sizeof(cfg.capacity));
	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot read the disk's capacity: %s\n", o->socket,
			strerror(-r));
		return r;
	}
	run->capacity_bytes = cfg.capacity * VIRTIO_BLK_SECTOR_SIZE;
	if ((vio_vhu_frontend_features(run->f) >> VIRTIO_BLK_F_RO & 1) && o->rw != RW_READ &&
	    o->rw != RW_RANDREAD) {
		fprintf(stderr, "vio-bench blk: %s: the disk is read-only; use --rw read or randread\n",
			o->socket);
		return -EROFS;
	}
	return 0;
}

static int setup_jobs(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	uint64_t bytes = o->size ? o->size : run->capacity_bytes;
	uint64_t nblocks, per;
	struct vio_drv_ctx ctx[VIO_VHU_MAX_QUEUES];
	size_t area_len;
	void *area;
	int r;

	if (bytes > run->capacity_bytes) {
		fprintf(stderr, "vio-bench blk: --size %llu is beyond the disk (%llu bytes)\n",
			(unsigned long long)bytes, (unsigned long long)run->capacity_bytes);
		return -EINVAL;
	}
	nblocks = bytes / o->bs;
	per = nblocks / o->queues;
	if (per < o->iodepth + 1) {
		fprintf(stderr, "vio-bench blk: the disk (%llu bytes) has too few %u-byte blocks for "
			"%u queues at iodepth %u\n", (unsigned long long)bytes, o->bs, o->queues,
			o->iodepth);
		return -EINVAL;
	}
	if (o->verify) {
		if (nblocks > BLK_VERIFY_MAX_BLOCKS) {
			fprintf(stderr, "vio-bench blk: --verify tracks at most %u blocks; give --size\n",
				BLK_VERIFY_MAX_BLOCKS);
			return -EINVAL;
		}
		run->gen = calloc(nblocks, sizeof(*run->gen));
		if (!run->gen)
			return -ENOMEM;
	}
	for (unsigned q = 0; q < o->queues; q++)
		ctx[q] = *vio_vhu_frontend_queue(run->f, q);
	area_len = vio_blk_client_area_size(ctx, o->queues);
	area = vio_vhu_frontend_alloc(run->f, area_len, 64);
	if (!area)
		return -ENOMEM;
	r = vio_blk_client_new(ctx, o->queues, area, area_len, &run->c);
	if (r)
		return r;
	run->jobs = calloc(o->queues, sizeof(*run->jobs));
	if (!run->jobs)
		return -ENOMEM;
	for (unsigned q = 0; q < o->queues; q++) {
		struct blk_job *j = &run->jobs[q];

		j->run = run;
		j->q = q;
		j->first = q * per;
		j->nblocks = per;
		j->rng = 0x9e3779b97f4a7c15ull * (q + 1) ^ (uint64_t)now_ns();
		lat_reset(&j->lat);
		for (unsigned i = 0; i < o->iodepth; i++) {
			j->slots[i].job = j;
			j->slots[i].buf = vio_vhu_frontend_alloc(run->f, o->bs, 4096);
			if (!j->slots[i].buf)
				return -ENOMEM;
			memset(j->slots[i].buf, 0, o->bs);
		}
	}
	return 0;
}

static uint64_t total_ops(const struct blk_run *run)
{
	uint64_t n = 0;

	for (unsigned q = 0; q < run->o.queues; q++)
		n += atomic_load_explicit(&run->jobs[q].ops, memory_order_relaxed);
	return n;
}

static void run_load(struct blk_run *run)
{
	bool tty = isatty(STDERR_FILENO);
	uint64_t t0 = now_ns(), prev = 0;

	for (unsigned s = 0; s < run->o.seconds; s++) {
		uint64_t n;

		usleep(1000000 - (unsigned)((now_ns() - t0) % 1000000000ull / 1000));
		n = total_ops(run);
		fprintf(stderr, "%s  [%u/%u s] %llu IOPS, %.1f MB/s%s", tty ? "\r" : "", s + 1,
			run->o.seconds, (unsigned long long)(n - prev),
			(double)(n - prev) * run->o.bs / 1e6, tty ? "   " : "\n");
		prev = n;
		bool dead = true;

		for (unsigned q = 0; q < run->o.queues; q++)
			if (!run->jobs[q].fatal)
				dead = false;
		if (dead)
			break;
	}
	if (tty)
		fputc('\n', stderr);
	atomic_store(&run->stop, true);
}

static int report(struct blk_run *run, double secs)
{
	struct lat_hist *lat = malloc(sizeof(*lat));
	uint64_t ops = 0, bytes = 0, errors = 0, checked = 0, bad = 0, first_bad = 0;
	int fatal = 0;

	if (!lat)
		return 1;
	lat_reset(lat);
	for (unsigned q = 0; q < run->o.queues; q++) {
		struct blk_job *j = &run->jobs[q];

		ops += j->ops;
		bytes += j->bytes;
		errors += j->errors;
		checked += j->checked;
		if (j->mismatches && !bad)
			first_bad = j->first_bad_sector;
		bad += j->mismatches;
		lat_merge(lat, &j->lat);
		if (j->fatal && !fatal)
			fatal = j->fatal;
	}
	double iops = ops / secs, mbps = bytes / secs / 1e6;
	double p50 = lat_percentile(lat, 50) / 1e3, p99 = lat_percentile(lat, 99) / 1e3;
	double p999 = lat_percentile(lat, 99.9) / 1e3;

	printf("%s bs=%u iodepth=%u queues=%u on %s (%llu MiB)\n", rw_names[run->o.rw], run->o.bs,
	       run->o.iodepth, run->o.queues, run->o.socket,
	       (unsigned long long)(run->capacity_bytes >> 20));
	printf("  IOPS %.0f   MB/s %.1f   latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
	       iops, mbps, p50, p99, p999, lat->max_ns / 1e3);
	printf("  errors %llu", (unsigned long long)errors);
	if (run->o.verify)
		printf("   verify: %llu reads checked, %llu mismatches", (unsigned long long)checked,
		       (unsigned long long)bad);
	printf("\n");
	if (bad)
		fprintf(stderr, "vio-bench blk: verify: first mismatch at sector %llu\n",
			(unsigned long long)first_bad);
	if (fatal)
		fprintf(stderr, "vio-bench blk: %s: %s\n", run->o.socket,
			fatal == -ETIMEDOUT ? "the backend stopped completing requests (5 s)"
					    : strerror(-fatal));
	if (run->o.machine)
		printf("iops=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu "
		       "verify_errors=%llu capacity=%llu\n", iops, mbps, p50, p99, p999,
		       (unsigned long long)errors, (unsigned long long)bad,
		       (unsigned long long)run->capacity_bytes);
	free(lat);
	return (errors || bad || fatal) ? 1 : 0;
}

int vio_bench_blk(int argc, char **argv)
{
	static struct blk_run run;
	uint64_t t0;
	unsigned started = 0;
	int r, rc = 1;

	r = parse_args(argc, argv, &run.o);
	if (r)
		return r > 0 ? 0 : 2;
	vio_log_set(vio_log_stderr, NULL, VIO_LOG_WARN);
	if (connect_backend(&run))
		goto out;
	r = setup_jobs(&run);
	if (r) {
		if (r != -EINVAL)
			fprintf(stderr, "vio-bench blk: set-up failed: %s (shared memory too small?)\n",
				strerror(-r));
		goto out;
	}
	t0 = now_ns();
	for (; started < run.o.queues; started++)
		if (pthread_create(&run.jobs[started].tid, NULL, job_main, &run.jobs[started])) {
			fprintf(stderr, "vio-bench blk: cannot start a thread\n");
			atomic_store(&run.stop, true);
			break;
		}
	if (started == run.o.queues)
		run_load(&run);
	for (unsigned q = 0; q < started; q++)
		pthread_join(run.jobs[q].tid, NULL);
	if (started == run.o.queues)
		rc = report(&run, (double)(now_ns() - t0) / 1e9);
out:
	vio_blk_client_free(run.c);
	if (run.f) {
		vio_vhu_frontend_disconnect(run.f);
		vio_vhu_frontend_close(run.f);
	}
	free(run.jobs);
	free(run.gen);
	return rc;
}
