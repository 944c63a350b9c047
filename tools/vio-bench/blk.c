/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: an fio-like load on any vhost-user-blk backend (viod,
 * qemu-storage-daemon, SPDK) through vio's frontend and blk client, no VM.
 * One thread per queue keeps --iodepth requests in flight on blocks of its
 * own; the main thread prints progress and the summary. With --verify every
 * read of a block written in this run is checked against the last pattern
 * written there, and the written blocks are read back at the end. It never
 * has two requests on one block in flight, so the check is exact.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
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

#define BLK_MAX_DEPTH 1024
#define BLK_MIN_QSIZE 256
#define BLK_MAX_QSIZE 1024            /* QEMU's libvhost-user takes no larger queue */
#define BLK_MAX_BS (4u << 20)
#define BLK_STALL_NS 5000000000ull    /* nothing completes for this long: the backend is stuck */
#define BLK_SLEEP_MS 100              /* longest sleep on call_fd: stop and stall checks run */
#define BLK_VERIFY_MAX_BLOCKS (64u << 20)
#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define WORDS_PER_SECTOR (SECTOR / 8)
#define POISON 0xa5                   /* a verified read's buffer before the device fills it */

/* The verify table: per block, the generation last written, and an in-flight bit. */
#define GEN_BUSY 0x80000000u
#define GEN_MASK 0x7fffffffu
#define GEN_UNKNOWN GEN_MASK          /* a failed write left the content unknown */

#define BIT(n) (1ull << (n))

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

static const char *const rw_names[] = { "read", "write", "randread", "randwrite", "randrw" };

#define NRW (sizeof(rw_names) / sizeof(rw_names[0]))

struct blk_opts {
	const char *socket;
	enum rw_mode rw;
	uint32_t bs;
	unsigned iodepth, queues, seconds, rwmixread, spin_us;
	uint64_t size;
	bool verify, machine, info, packed, no_event_idx, no_indirect;
};

/* What the device told us, and what we planned from it. */
struct blk_dev {
	uint64_t features;
	uint64_t capacity;            /* bytes */
	unsigned num_queues;          /* 0: not reported */
	uint32_t blk_size, seg_max, size_max; /* 0: not offered */
	uint32_t seg_bytes;           /* a request's data is cut in pieces of this size */
	unsigned nseg;                /* data segments per request */
	uint16_t qsize, indirect_max;
};

struct blk_job;

struct io_slot {
	struct blk_job *job;
	void *buf;
	struct iovec *iov;  /* nseg pieces of buf */
	uint64_t block;
	uint64_t t0;
	uint32_t gen;       /* the pattern a write carries or a read must find; 0: unchecked */
	uint32_t gen_before; /* the table entry before this request (undo on a failed submit) */
	bool write, busy;
};

/* The first of a kind, with when it happened, so the run reports the earliest. */
struct blk_event {
	uint64_t at_ns;     /* 0: none */
	uint64_t sector;
	int status;         /* I/O error: the status; mismatch: the generation expected */
	bool write;
	const char *what;
};

struct blk_job {
	struct blk_run *run;
	unsigned q;
	uint64_t first, nblocks, cursor, rng;
	struct io_slot *slots;
	struct io_slot **done;      /* completed in this poll, awaiting their timestamp */
	unsigned inflight, ndone, idle_loops;
	bool timed;                 /* the load (counted), not the read-back */
	bool wrote;
	uint64_t batch_ns, last_done_ns, end_ns;
	_Atomic uint64_t ops, bytes; /* read by the progress line */
	uint64_t errors, checked, mismatches;
	struct blk_event first_err, first_bad;
	struct lat_hist lat;
	int fatal;                  /* negative errno that ended the job early */
	atomic_bool finished;       /* the thread is about to return */
	pthread_t tid;
};

struct blk_run {
	struct blk_opts o;
	struct blk_dev d;
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	uint32_t *gen;              /* --verify: per block; each entry owned by one queue */
	uint64_t seed;              /* patterns differ from one run to the next */
	atomic_bool stop;
	bool stuck;                 /* the backend stopped answering: do not wait for it again */
	struct blk_job *jobs;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

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

/* ---- verify patterns: every 8 bytes depend on (run seed, sector, generation, offset) ---- */

static uint64_t pattern_word(uint64_t seed, uint64_t sector, uint32_t gen, unsigned i)
{
	uint64_t x = seed ^ (sector * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)gen << 32 | i);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void pattern_fill(const struct blk_run *run, void *buf, uint64_t sector, uint32_t gen)
{
	uint64_t *w = buf;

	for (uint32_t s = 0; s < run->o.bs / SECTOR; s++)
		for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
			*w++ = pattern_word(run->seed, sector + s, gen, i);
}

static bool sector_ok(const struct blk_run *run, const uint64_t *w, uint64_t sector, uint32_t gen)
{
	for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
		if (w[i] != pattern_word(run->seed, sector, gen, i))
			return false;
	return true;
}

static bool sector_all(const uint8_t *p, uint8_t v)
{
	for (unsigned i = 0; i < SECTOR; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* What a mismatching sector holds instead, for the report. */
static const char *classify(const struct blk_run *run, const uint64_t *w, uint64_t sector,
			    uint32_t gen)
{
	if (sector_all((const uint8_t *)w, 0))
		return "zeroes";
	if (sector_all((const uint8_t *)w, POISON))
		return "nothing: the device did not write the read buffer";
	if (gen > 1 && sector_ok(run, w, sector, gen - 1))
		return "the previous write's data: the last write was lost";
	return "other data";
}

/* ---- one queue's load ---- */

static void note_event(struct blk_event *e, uint64_t sector, int status, bool write,
		       const char *what)
{
	if (e->at_ns)
		return;
	*e = (struct blk_event){ .at_ns = now_ns(), .sector = sector, .status = status,
				 .write = write, .what = what };
}

static uint64_t block_sector(const struct blk_run *run, uint64_t block)
{
	return block * (run->o.bs / SECTOR);
}

static void check_read(struct blk_job *j, const struct io_slot *s)
{
	const struct blk_run *run = j->run;
	uint64_t sector = block_sector(run, s->block);
	const uint64_t *w = s->buf;

	j->checked++;
	for (uint32_t i = 0; i < run->o.bs / SECTOR; i++, w += WORDS_PER_SECTOR)
		if (!sector_ok(run, w, sector + i, s->gen)) {
			j->mismatches++;
			note_event(&j->first_bad, sector + i, (int)s->gen, false,
				   classify(run, w, sector + i, s->gen));
			return;
		}
}

static void io_done(void *opaque, int status, uint32_t len)
{
	struct io_slot *s = opaque;
	struct blk_job *j = s->job;
	struct blk_run *run = j->run;

	(void)len;
	s->busy = false;
	j->inflight--;
	j->done[j->ndone++] = s;
	if (run->gen)
		run->gen[s->block] &= ~GEN_BUSY;
	if (status != VIRTIO_BLK_S_OK) {
		j->errors++;
		note_event(&j->first_err, block_sector(run, s->block), status, s->write, NULL);
		if (run->gen && s->write)
			run->gen[s->block] = GEN_UNKNOWN;
		return;
	}
	if (!s->write && s->gen)
		check_read(j, s);
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

/* Set the verify table and the buffer for s; kept in s->gen_before to undo. */
static void verify_prepare(struct blk_run *run, struct io_slot *s)
{
	uint32_t g = run->gen[s->block];

	s->gen_before = g;
	if (s->write) {
		s->gen = (g + 1 >= GEN_UNKNOWN) ? 1 : g + 1;
		pattern_fill(run, s->buf, block_sector(run, s->block), s->gen);
	} else {
		s->gen = g == GEN_UNKNOWN ? 0 : g;
		if (s->gen)
			memset(s->buf, POISON, run->o.bs);
	}
	run->gen[s->block] = (s->write ? s->gen : g) | GEN_BUSY;
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
		verify_prepare(run, s);
	r.type = s->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r.sector = block_sector(run, s->block);
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
	s->busy = true;
	j->inflight++;
	return 0;
}

/* Fill every free slot. *more: false once the read-back ran out of blocks. */
static int fill_queue(struct blk_job *j, bool readback, bool *more)
{
	bool any = false;

	/* One clock read per batch: clock_gettime costs as much as a request here. */
	if (j->inflight < j->run->o.iodepth)
		j->batch_ns = now_ns();
	for (unsigned i = 0; i < j->run->o.iodepth; i++) {
		int r;

		if (j->slots[i].busy)
			continue;
		r = submit_one(j, &j->slots[i], readback);
		if (r == 1) {
			*more = false;
			break;
		}
		if (r == -ENOSPC)
			break; /* descriptors run out before slots: poll, then go on */
		if (r)
			return r;
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
	t = now_ns();
	if (t - j->last_done_ns > BLK_STALL_NS)
		return -ETIMEDOUT;
	if (t - j->last_done_ns >= j->run->o.spin_us * 1000ull)
		wait_completion(j);
	return 0;
}

static bool job_should_stop(const struct blk_job *j, bool readback)
{
	return readback ? interrupted != 0
			: atomic_load_explicit(&j->run->stop, memory_order_relaxed);
}

/* Run the load (until stop) or the read-back (until every written block is read), then drain. */
static int job_pump(struct blk_job *j, bool readback)
{
	bool more = true;
	int r;

	j->last_done_ns = now_ns();
	for (;;) {
		int got;

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
		j->last_done_ns = now_ns();
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
	j->end_ns = now_ns();
	j->timed = false;
	if (!j->fatal && j->run->gen && j->wrote) {
		j->cursor = 0;
		j->fatal = job_pump(j, true);
	}
	atomic_store_explicit(&j->finished, true, memory_order_release);
	return NULL;
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vio-bench blk --socket PATH [options]\n"
		"Drive any vhost-user-blk backend (viod, qemu-storage-daemon, SPDK) with vio's\n"
		"frontend, no VM, and report IOPS, MB/s (10^6 bytes) and completion latency.\n"
		"  --socket PATH      the backend's vhost-user socket (required)\n"
		"  --rw MODE          read | write | randread | randwrite | randrw (randread)\n"
		"  --bs SIZE          bytes per request, a multiple of 512, at most 4M (4k)\n"
		"  --iodepth N        requests in flight per queue, 1..%u (32)\n"
		"  --queues N         queues, one thread each; each owns 1/N of the region (1)\n"
		"  --seconds N        length of the load (10); Ctrl-C ends it early\n"
		"  --size SIZE        use only the first SIZE bytes of the disk (whole disk)\n"
		"  --rwmixread PCT    percentage of reads for randrw (50)\n"
		"  --verify           writes carry a pattern made from (sector, generation, run);\n"
		"                     every read of a block written in this run is checked, and\n"
		"                     after the load every block written is read back and checked.\n"
		"                     Blocks not written in this run are never checked. Exit 1 on\n"
		"                     any mismatch, naming the first bad sector\n"
		"  --spin-us N        busy-poll this long without a completion before sleeping on\n"
		"                     the queue's call eventfd (50; 0: sleep at once)\n"
		"  --packed           ask for VIRTIO_F_RING_PACKED (fail if not offered)\n"
		"  --no-event-idx     do not ask for VIRTIO_F_EVENT_IDX\n"
		"  --no-indirect      do not ask for VIRTIO_F_INDIRECT_DESC\n"
		"  --machine          stdout ends with one line: iops= mbps= p50_us= p99_us=\n"
		"                     p999_us= errors= verify_errors= verified= capacity=\n"
		"                     (capacity in bytes, verified: reads checked)\n"
		"  --info             connect, print the device's features and config, exit\n"
		"  -h, --help         this text\n"
		"SIZE takes a k, m, g or t suffix (powers of 1024).\n"
		"Exit status: 0 ok; 1 I/O errors, verify mismatches, a backend that cannot be\n"
		"reached, fails or stalls, or options that do not fit its disk; 2 bad usage.\n",
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

static int parse_rw(const char *s, enum rw_mode *out)
{
	for (unsigned i = 0; i < NRW; i++)
		if (!strcmp(s, rw_names[i])) {
			*out = (enum rw_mode)i;
			return 0;
		}
	fprintf(stderr, "vio-bench blk: --rw '%s': expected read, write, randread, randwrite "
			"or randrw\n", s);
	return -EINVAL;
}

static int parse_bs(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_size_arg("--bs", s, &v))
		return -EINVAL;
	if (v % SECTOR || v > BLK_MAX_BS) {
		fprintf(stderr, "vio-bench blk: --bs '%s': must be a multiple of 512, at most 4M\n",
			s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

enum { OPT_SOCKET = 256, OPT_RW, OPT_BS, OPT_DEPTH, OPT_QUEUES, OPT_SECS, OPT_SIZE, OPT_MIX,
       OPT_VERIFY, OPT_SPIN, OPT_PACKED, OPT_NO_EIDX, OPT_NO_INDIRECT, OPT_MACHINE, OPT_INFO,
       OPT_HELP };

static const struct option longopts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "rw", required_argument, NULL, OPT_RW },
	{ "bs", required_argument, NULL, OPT_BS },
	{ "iodepth", required_argument, NULL, OPT_DEPTH },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "seconds", required_argument, NULL, OPT_SECS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "rwmixread", required_argument, NULL, OPT_MIX },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "spin-us", required_argument, NULL, OPT_SPIN },
	{ "packed", no_argument, NULL, OPT_PACKED },
	{ "no-event-idx", no_argument, NULL, OPT_NO_EIDX },
	{ "no-indirect", no_argument, NULL, OPT_NO_INDIRECT },
	{ "machine", no_argument, NULL, OPT_MACHINE },
	{ "info", no_argument, NULL, OPT_INFO },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_one(struct blk_opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_SOCKET: o->socket = arg; return 0;
	case OPT_RW: return parse_rw(arg, &o->rw);
	case OPT_BS: return parse_bs(arg, &o->bs);
	case OPT_DEPTH: return parse_uint_arg("--iodepth", arg, 1, BLK_MAX_DEPTH, &o->iodepth);
	case OPT_QUEUES: return parse_uint_arg("--queues", arg, 1, VIO_VHU_MAX_QUEUES, &o->queues);
	case OPT_SECS: return parse_uint_arg("--seconds", arg, 1, 86400, &o->seconds);
	case OPT_SIZE: return parse_size_arg("--size", arg, &o->size);
	case OPT_MIX: return parse_uint_arg("--rwmixread", arg, 0, 100, &o->rwmixread);
	case OPT_SPIN: return parse_uint_arg("--spin-us", arg, 0, 1000000, &o->spin_us);
	case OPT_VERIFY: o->verify = true; return 0;
	case OPT_PACKED: o->packed = true; return 0;
	case OPT_NO_EIDX: o->no_event_idx = true; return 0;
	case OPT_NO_INDIRECT: o->no_indirect = true; return 0;
	case OPT_MACHINE: o->machine = true; return 0;
	case OPT_INFO: o->info = true; return 0;
	default: return -EINVAL;
	}
}

/* 0 run, 1 exit 0 (help), -EINVAL usage error (reported). */
static int parse_args(int argc, char **argv, struct blk_opts *o)
{
	int c;

	*o = (struct blk_opts){ .rw = RW_RANDREAD, .bs = 4096, .iodepth = 32, .queues = 1,
				.seconds = 10, .rwmixread = 50, .spin_us = 50 };
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *name = argv[optind - 1];

		if (c == 'h' || c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (c == ':') {
			fprintf(stderr, "vio-bench blk: option '%s' needs a value (try --help)\n", name);
			return -EINVAL;
		}
		if (c == '?') {
			fprintf(stderr, "vio-bench blk: unknown option '%s' (try --help)\n", name);
			return -EINVAL;
		}
		if (parse_one(o, c, optarg))
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "vio-bench blk: unexpected argument '%s' (try --help)\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!o->socket) {
		fprintf(stderr, "vio-bench blk: --socket PATH is required (try --help)\n");
		return -EINVAL;
	}
	if (o->size && o->size < o->bs) {
		fprintf(stderr, "vio-bench blk: --size %llu is smaller than --bs %u\n",
			(unsigned long long)o->size, o->bs);
		return -EINVAL;
	}
	return 0;
}

/* ---- set-up ---- */

static uint64_t wanted_features(const struct blk_opts *o)
{
	uint64_t f = BIT(VIRTIO_BLK_F_SIZE_MAX) | BIT(VIRTIO_BLK_F_SEG_MAX) |
		     BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) |
		     BIT(VIRTIO_BLK_F_TOPOLOGY) | BIT(VIRTIO_BLK_F_MQ) |
		     BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES);

	if (!o->no_event_idx)
		f |= BIT(VIRTIO_F_EVENT_IDX);
	if (!o->no_indirect)
		f |= BIT(VIRTIO_F_INDIRECT_DESC);
	if (o->packed)
		f |= BIT(VIRTIO_F_RING_PACKED);
	return f;
}

static unsigned pow2_at_least(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/*
 * Queue size and indirect tables before we know the device: room for
 * iodepth requests even without indirect descriptors when that fits QEMU's
 * limit, and tables for a request cut in 4 KiB segments (SIZE_MAX unknown).
 */
static void plan_queues(const struct blk_opts *o, struct blk_dev *d)
{
	unsigned segs = (o->bs + 4095) / 4096;
	unsigned want = pow2_at_least(o->iodepth * 3);

	if (segs > VIO_BLK_CLIENT_MAX_IOV)
		segs = VIO_BLK_CLIENT_MAX_IOV;
	d->indirect_max = (uint16_t)(segs + 2);
	d->qsize = (uint16_t)(want < BLK_MIN_QSIZE ? BLK_MIN_QSIZE :
			      want > BLK_MAX_QSIZE ? BLK_MAX_QSIZE : want);
}

/* Shared memory: rings and indirect tables, the client's slots, the data buffers, slack. */
static uint64_t mem_needed(const struct blk_opts *o, const struct blk_dev *d)
{
	uint64_t ring = vio_virtq_driver_area_size(wanted_features(o) | BIT(VIRTIO_F_VERSION_1),
						   d->qsize, d->indirect_max);
	uint64_t per_q = ((ring + 4095) & ~4095ull) + (uint64_t)d->qsize * 64 +
			 (uint64_t)o->iodepth * ((o->bs + 4095) & ~4095ull);
	uint64_t total = (uint64_t)o->queues * per_q + (1u << 20);

	return (total + 0x1fffff) & ~0x1fffffull;
}

static int connect_backend(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	struct vio_vhu_frontend_opts fo;
	int r;

	plan_queues(o, &run->d);
	fo = (struct vio_vhu_frontend_opts){
		.socket_path = o->socket, .mem_size = mem_needed(o, &run->d),
		.features = wanted_features(o), .nqueues = o->queues,
		.queue_size = run->d.qsize, .indirect_max = run->d.indirect_max,
	};
	r = vio_vhu_frontend_connect(&fo, &run->f);
	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot set up a vhost-user-blk device: %s%s\n",
			o->socket, strerror(-r),
			r == -ENOTSUP ? " (no VIRTIO_F_VERSION_1, fewer queues than --queues, or "
					"features refused)" : "");
		return r;
	}
	run->d.features = vio_vhu_frontend_features(run->f);
	return 0;
}

/* Capacity up to num_queues; a backend with a shorter config space still gives capacity. */
static int read_config(struct blk_run *run)
{
	struct virtio_blk_config cfg = { 0 };
	struct blk_dev *d = &run->d;
	uint32_t len = offsetof(struct virtio_blk_config, num_queues) + sizeof(cfg.num_queues);
	int r = vio_vhu_frontend_get_config(run->f, 0, &cfg, len);

	if (r == -EIO)
		r = vio_vhu_frontend_get_config(run->f, 0, &cfg, len = sizeof(cfg.capacity));
	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot read the disk's config space: %s\n",
			run->o.socket, strerror(-r));
		return r;
	}
	d->capacity = le64toh(cfg.capacity) * SECTOR;
	if (len == sizeof(cfg.capacity))
		return 0;
	if (d->features & BIT(VIRTIO_BLK_F_MQ))
		d->num_queues = le16toh(cfg.num_queues);
	if (d->features & BIT(VIRTIO_BLK_F_BLK_SIZE))
		d->blk_size = le32toh(cfg.blk_size);
	if (d->features & BIT(VIRTIO_BLK_F_SEG_MAX))
		d->seg_max = le32toh(cfg.seg_max);
	if (d->features & BIT(VIRTIO_BLK_F_SIZE_MAX))
		d->size_max = le32toh(cfg.size_max);
	return 0;
}

static int fail_check(const struct blk_run *run, const char *why)
{
	fprintf(stderr, "vio-bench blk: %s: %s\n", run->o.socket, why);
	return -EINVAL;
}

/* Does the plan fit what the device offered? Cut requests in segments of size_max. */
static int check_device(struct blk_run *run)
{
	const struct blk_opts *o = &run->o;
	struct blk_dev *d = &run->d;
	unsigned per_req;
	char why[200];

	if (o->packed && !(d->features & BIT(VIRTIO_F_RING_PACKED)))
		return fail_check(run, "the backend does not offer VIRTIO_F_RING_PACKED");
	if ((d->features & BIT(VIRTIO_BLK_F_RO)) && o->rw != RW_READ && o->rw != RW_RANDREAD)
		return fail_check(run, "the disk is read-only; use --rw read or randread");
	if (o->queues > 1 && !(d->features & BIT(VIRTIO_BLK_F_MQ)))
		return fail_check(run, "the backend does not offer VIRTIO_BLK_F_MQ; use --queues 1");
	if (d->num_queues && o->queues > d->num_queues) {
		snprintf(why, sizeof(why), "the disk has %u queues, --queues asks for %u",
			 d->num_queues, o->queues);
		return fail_check(run, why);
	}
	if (d->blk_size >= SECTOR && o->bs % d->blk_size) {
		snprintf(why, sizeof(why), "--bs %u is not a multiple of the disk's block size %u",
			 o->bs, d->blk_size);
		return fail_check(run, why);
	}
	d->seg_bytes = d->size_max >= SECTOR && d->size_max < o->bs ? d->size_max & ~(SECTOR - 1)
								     : o->bs;
	d->nseg = (o->bs + d->seg_bytes - 1) / d->seg_bytes;
	if (d->nseg > VIO_BLK_CLIENT_MAX_IOV || (d->seg_max && d->nseg > d->seg_max)) {
		snprintf(why, sizeof(why), "--bs %u needs %u segments of size_max %u; the disk takes %u",
			 o->bs, d->nseg, d->size_max, d->seg_max ? d->seg_max : VIO_BLK_CLIENT_MAX_IOV);
		return fail_check(run, why);
	}
	per_req = (d->features & BIT(VIRTIO_F_INDIRECT_DESC)) && d->nseg + 2 <= d->indirect_max ?
			  1 : d->nseg + 2;
	if ((uint64_t)o->iodepth * per_req > d->qsize) {
		snprintf(why, sizeof(why), "a %u-descriptor queue holds %u requests of %u descriptors; "
			 "lower --iodepth", d->qsize, d->qsize / per_req, per_req);
		return fail_check(run, why);
	}
	return 0;
}

static int setup_verify(struct blk_run *run, uint64_t nblocks)
{
	if (!run->o.verify)
		return 0;
	if (nblocks > BLK_VERIFY_MAX_BLOCKS) {
		fprintf(stderr, "vio-bench blk: --verify tracks at most %u blocks; give --size or "
			"a larger --bs\n", BLK_VERIFY_MAX_BLOCKS);
		return -EINVAL;
	}
	if (run->o.rw == RW_READ || run->o.rw == RW_RANDREAD)
		fprintf(stderr, "vio-bench blk: note: --rw %s writes nothing, so --verify checks "
			"nothing\n", rw_names[run->o.rw]);
	run->gen = calloc(nblocks, sizeof(*run->gen));
	run->seed = now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return run->gen ? 0 : -ENOMEM;
}

static int setup_slots(struct blk_run *run, struct blk_job *j)
{
	const struct blk_opts *o = &run->o;
	uint32_t piece = run->d.seg_bytes;

	j->slots = calloc(o->iodepth, sizeof(*j->slots));
	j->done = calloc(o->iodepth, sizeof(*j->done));
	if (!j->slots || !j->done)
		return -ENOMEM;
	for (unsigned i = 0; i < o->iodepth; i++) {
		struct io_slot *s = &j->slots[i];

		s->job = j;
		s->buf = vio_vhu_frontend_alloc(run->f, o->bs, 4096);
		s->iov = calloc(run->d.nseg, sizeof(*s->iov));
		if (!s->buf || !s->iov)
			return -ENOMEM;
		memset(s->buf, 0, o->bs);
		for (uint32_t k = 0, off = 0; k < run->d.nseg; k++, off += piece)
			s->iov[k] = (struct iovec){ (char *)s->buf + off,
						    o->bs - off < piece ? o->bs - off : piece };
	}
	return 0;
}

static int setup_jobs(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	uint64_t bytes = o->size ? o->size : run->d.capacity;
	struct vio_drv_ctx ctx[VIO_VHU_MAX_QUEUES];
	uint64_t nblocks, per;
	size_t area_len;
	void *area;
	int r;

	if (bytes > run->d.capacity) {
		fprintf(stderr, "vio-bench blk: --size %llu is beyond the disk (%llu bytes)\n",
			(unsigned long long)bytes, (unsigned long long)run->d.capacity);
		return -EINVAL;
	}
	nblocks = bytes / o->bs;
	per = nblocks / o->queues;
	/* --verify: a queue never has two requests on a block, so it needs more blocks than slots. */
	if (per < (o->verify ? o->iodepth + 1ull : 1)) {
		fprintf(stderr, "vio-bench blk: %llu bytes hold too few %u-byte blocks for %u queues "
			"at iodepth %u%s\n", (unsigned long long)bytes, o->bs, o->queues, o->iodepth,
			o->verify ? " with --verify" : "");
		return -EINVAL;
	}
	r = setup_verify(run, nblocks);
	if (r)
		return r;
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

		*j = (struct blk_job){ .run = run, .q = q, .first = q * per, .nblocks = per,
				       .rng = (0x9e3779b97f4a7c15ull * (q + 1)) ^ now_ns() };
		if (!j->rng)
			j->rng = 1;
		lat_reset(&j->lat);
		r = setup_slots(run, j);
		if (r)
			return r;
	}
	return 0;
}

static void free_jobs(struct blk_run *run)
{
	if (!run->jobs)
		return;
	for (unsigned q = 0; q < run->o.queues; q++) {
		struct blk_job *j = &run->jobs[q];

		for (unsigned i = 0; j->slots && i < run->o.iodepth; i++)
			free(j->slots[i].iov);
		free(j->slots);
		free(j->done);
	}
	free(run->jobs);
	run->jobs = NULL;
}

/* ---- running, progress, report ---- */

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
static void progress(struct blk_run *run, uint64_t t0)
{
	bool tty = isatty(STDERR_FILENO);
	uint64_t prev = 0;
	unsigned s = 0;

	while (!interrupted && !all_finished(run)) {
		uint64_t t = now_ns(), n, next = t0 + (s + 1) * 1000000000ull;

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

static int report(const struct blk_run *run, uint64_t t0)
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
	printf("%s bs=%u iodepth=%u queues=%u %.1f s on %s (%llu MiB)\n", rw_names[run->o.rw],
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

static void print_info(const struct blk_run *run)
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

static int run_bench(struct blk_run *run)
{
	unsigned started = 0;
	uint64_t t0;
	int rc, r;

	r = setup_jobs(run);
	if (r) {
		if (r != -EINVAL) /* -EINVAL: the options do not fit this disk (reported) */
			fprintf(stderr, "vio-bench blk: set-up failed: %s\n", strerror(-r));
		return 1;
	}
	t0 = now_ns();
	r = start_jobs(run, &started);
	if (!r)
		progress(run, t0);
	else
		atomic_store(&run->stop, true);
	for (unsigned q = 0; q < started; q++) {
		pthread_join(run->jobs[q].tid, NULL);
		run->stuck |= run->jobs[q].fatal == -ETIMEDOUT;
	}
	if (r)
		return 1;
	r = flush(run);
	rc = report(run, t0);
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
	r = parse_args(argc, argv, &run->o);
	if (r) {
		free(run);
		return r > 0 ? 0 : 2;
	}
	vio_log_set(vio_log_stderr, NULL, VIO_LOG_WARN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	if (connect_backend(run) || read_config(run) || check_device(run))
		goto out;
	if (run->o.info) {
		print_info(run);
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
	free_jobs(run);
	free(run->gen);
	free(run);
	return rc;
}
