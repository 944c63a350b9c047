/* SPDX-License-Identifier: MIT */
/*
 * vio-bench ring: one virtqueue, a driver thread and a device thread moving
 * 1-descriptor buffers through it with real eventfd notifications, for split
 * and packed, EVENT_IDX on and off, several burst sizes. Uses only the public
 * virtq API; never looks inside a ring. Prints medians over --runs runs.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vio/virtq.h"

#include "bench.h"
#include "util/parse_num.h"

#define RING_GPA 0x40000000ull /* where the test region sits in "guest" space */
#define MAX_BURSTS 16
#define MAX_BURST 1024

struct ring_opts {
	bool layouts[2];   /* [0] split, [1] packed */
	bool eidx[2];      /* [0] off, [1] on */
	unsigned bursts[MAX_BURSTS];
	unsigned nbursts;
	unsigned size;
	unsigned buf_size;
	unsigned runs;
	double seconds;    /* per run, unless count */
	uint64_t count;    /* descriptors per run; 0: use seconds */
	unsigned spin;     /* empty polls before arming notifications and sleeping */
	bool poll;         /* never sleep, never notify */
	bool pause;        /* pause instruction in busy loops */
	uint64_t vmexit_cycles;
	int cpu_driver, cpu_device;
	bool json;
};

/* One configuration's one run. */
struct ring_result {
	uint64_t descs;
	double secs;
	uint64_t kicks, irqs;
	int err; /* 0, or a negative errno from the core */
	const char *what;
};

/*
 * Each side's queue state on its own cache lines: the two threads write
 * them on every descriptor, and sharing a line would bench false sharing.
 */
#define CACHELINE 64

struct ring_run {
	const struct ring_opts *o;
	unsigned burst;
	struct vio_mem *mem;
	uint8_t *area;
	uint8_t *bufs;
	int kick_fd, call_fd;
	pthread_barrier_t start;
	struct ring_result r;
	_Alignas(CACHELINE) atomic_bool stop; /* driver -> device: all is reaped, leave */
	atomic_int failed;                    /* either side saw an error: both leave */
	struct vio_virtq *drv, *dev; /* each on its own cache lines (the library aligns them) */
	_Alignas(CACHELINE) char end[CACHELINE];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool use_pause = true;

/* An empty poll. ringtest's default busy loop is a bare compiler barrier; --relax adds pause. */
static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (use_pause) {
		__builtin_ia32_pause();
		return;
	}
#endif
	atomic_signal_fence(memory_order_seq_cst);
}

/* Simulated VM exit/entry around each notification (ringtest does 500 + 500 TSC cycles). */
static void burn_cycles(uint64_t cycles)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t t;

	if (!cycles)
		return;
	t = __builtin_ia32_rdtsc();
	while (__builtin_ia32_rdtsc() - t < cycles)
		;
#else
	(void)cycles;
#endif
}

static void notify_fd(const struct ring_run *rr, int fd)
{
	uint64_t v = 1;

	burn_cycles(rr->o->vmexit_cycles);
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		abort(); /* an eventfd write only fails on overflow: a bench bug */
	burn_cycles(rr->o->vmexit_cycles);
}

static void wait_fd(const struct ring_run *rr, int fd)
{
	uint64_t v;

	burn_cycles(rr->o->vmexit_cycles);
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	burn_cycles(rr->o->vmexit_cycles);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void fail(struct ring_run *rr, int err, const char *what)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&rr->failed, &zero, 1)) {
		rr->r.err = err;
		rr->r.what = what;
	}
	/* Wake both sides whatever they are doing. */
	notify_fd(rr, rr->kick_fd);
	notify_fd(rr, rr->call_fd);
}

static void *device_main(void *arg)
{
	struct ring_run *rr = arg;
	const struct ring_opts *o = rr->o;
	struct vio_virtq *vq = rr->dev;
	struct vio_chain chains[MAX_BURST];
	struct vio_used_elem used[MAX_BURST];
	struct iovec iov[MAX_BURST][2];
	unsigned spins = 0;
	uint64_t irqs = 0;

	pin(o->cpu_device);
	for (unsigned i = 0; i < rr->burst; i++) {
		chains[i].iov = iov[i];
		chains[i].iov_cap = 2;
	}
	pthread_barrier_wait(&rr->start);
	/* We poll first; the driver need not kick until we say so. */
	vio_virtq_device_disable_notify(vq);
	for (;;) {
		int n = vio_virtq_pop_burst(vq, rr->mem, chains, rr->burst);

		if (n < 0) {
			fail(rr, n, "device: vio_virtq_pop_burst");
			break;
		}
		if (n > 0) {
			for (int i = 0; i < n; i++) {
				used[i].id = chains[i].id;
				used[i].ndesc = chains[i].ndesc;
				used[i].len = chains[i].in_bytes;
			}
			vio_virtq_push_burst(vq, used, (unsigned)n);
			if (!o->poll && vio_virtq_device_should_notify(vq)) {
				notify_fd(rr, rr->call_fd);
				irqs++;
			}
			spins = 0;
			continue;
		}
		if (atomic_load_explicit(&rr->stop, memory_order_acquire) ||
		    atomic_load_explicit(&rr->failed, memory_order_relaxed))
			break;
		if (o->poll) {
			/* Wait on the ring alone, as ringtest's poll_avail does. */
			while (!vio_virtq_device_has_avail(vq) &&
			       !atomic_load_explicit(&rr->stop, memory_order_relaxed))
				relax();
			continue;
		}
		if (spins++ < o->spin) {
			relax();
			continue;
		}
		/* Idle: arm kicks; if buffers slipped in meanwhile, take them instead. */
		if (vio_virtq_device_enable_notify(vq)) {
			vio_virtq_device_disable_notify(vq);
			continue;
		}
		if (atomic_load_explicit(&rr->stop, memory_order_acquire))
			break;
		wait_fd(rr, rr->kick_fd);
		vio_virtq_device_disable_notify(vq);
		spins = 0;
	}
	rr->r.irqs = irqs;
	return NULL;
}

/*
 * Busy polling: ringtest's guest loop (add a burst when it fits, publish,
 * reap at most a burst, pause only when neither happened; nobody is ever
 * notified). Here the driver sets the pace (the device waits a few slots
 * behind its next add), so this loop does per buffer only what ringtest's
 * does: the library already refuses any cookie it was not given or gave
 * back, and the lengths are checked once, summed, at the end.
 */
static void driver_poll(struct ring_run *rr, uint16_t *free_bufs, double deadline,
			uint64_t *addedp, uint64_t *donep)
{
	const struct ring_opts *o = rr->o;
	struct vio_virtq *vq = rr->drv;
	const struct vio_mem *mem = rr->mem;
	const unsigned burst = rr->burst, buf_size = o->buf_size;
	uint8_t *const bufs = rr->bufs;
	void *cookies[MAX_BURST];
	uint32_t lens[MAX_BURST];
	unsigned nfree = o->size, check = 0;
	uint64_t added = 0, done = 0, bytes = 0;
	/* A run by count ends with a short burst when the count asks for one. */
	uint64_t target = o->count ? o->count : UINT64_MAX;
	unsigned want = target < burst ? (unsigned)target : burst;

	for (;;) {
		bool busy = false;
		int got;

		if (want && nfree >= want) {
			unsigned n = want;

			do {
				uint16_t b = free_bufs[--nfree];
				struct iovec iov = { bufs + (size_t)b * buf_size, buf_size };
				int err = vio_virtq_add(vq, mem, &iov, 0, 1, (void *)(uintptr_t)(b + 1));

				if (err) {
					fail(rr, err, "driver: vio_virtq_add");
					goto out;
				}
			} while (--n);
			vio_virtq_publish(vq);
			added += want;
			if (target - added < want)
				want = (unsigned)(target - added);
			busy = true;
		}
		got = vio_virtq_get_used_burst(vq, cookies, lens, burst);
		if (got > 0) {
			int i = 0;

			do {
				free_bufs[nfree++] = (uint16_t)((uintptr_t)cookies[i] - 1);
				bytes += lens[i];
			} while (++i < got);
			done += (unsigned)got;
			busy = true;
			if ((check += (unsigned)got) >= 1024) {
				check = 0;
				if (!o->count && now_s() >= deadline)
					want = 0; /* time is up: reap what is out, add nothing */
			}
		} else if (got < 0) {
			fail(rr, got, "driver: vio_virtq_get_used_burst");
			break;
		} else if (!want && done == added) {
			break;
		}
		if (!busy) {
			if (atomic_load_explicit(&rr->failed, memory_order_relaxed))
				break;
			relax();
		}
	}
	if (bytes != done * buf_size)
		fail(rr, -EPROTO, "driver: wrong lengths back");
out:
	*addedp = added;
	*donep = done;
}

static void *driver_main(void *arg)
{
	struct ring_run *rr = arg;
	const struct ring_opts *o = rr->o;
	struct vio_virtq *vq = rr->drv;
	unsigned burst = rr->burst, size = o->size;
	uint16_t *free_bufs = malloc(size * sizeof(*free_bufs));
	void *cookies[MAX_BURST];
	uint32_t lens[MAX_BURST];
	unsigned nfree = size, spins = 0, check = 0;
	uint64_t added = 0, done = 0, kicks = 0, target = o->count ? o->count : UINT64_MAX;
	double t0, deadline;
	bool adding = true;

	pin(o->cpu_driver);
	if (!free_bufs) {
		fail(rr, -ENOMEM, "driver: malloc");
		pthread_barrier_wait(&rr->start);
		return NULL;
	}
	for (unsigned i = 0; i < size; i++)
		free_bufs[i] = (uint16_t)i;
	pthread_barrier_wait(&rr->start);
	t0 = now_s();
	deadline = t0 + o->seconds;
	vio_virtq_driver_disable_cb(vq);
	if (o->poll) {
		driver_poll(rr, free_bufs, deadline, &added, &done);
		goto out;
	}
	while (!atomic_load_explicit(&rr->failed, memory_order_relaxed)) {
		unsigned want = 0, n = 0;
		int got;

		if (adding) {
			uint64_t left = target - added;

			want = left < burst ? (unsigned)left : burst;
			/* A burst goes in whole or waits: that is what the burst size measures. */
			if (nfree < want)
				want = 0;
		}
		for (n = 0; n < want; n++) {
			uint16_t b = free_bufs[--nfree];
			struct iovec iov = { rr->bufs + (size_t)b * o->buf_size, o->buf_size };
			int err = vio_virtq_add(vq, rr->mem, &iov, 0, 1, (void *)(uintptr_t)(b + 1));

			if (err) {
				fail(rr, err, "driver: vio_virtq_add");
				goto out;
			}
		}
		if (n) {
			added += n;
			if (vio_virtq_kick_prepare(vq)) {
				notify_fd(rr, rr->kick_fd);
				kicks++;
			}
		}
		/*
		 * Reap a burst at most, as many as we add: the ring stays full, as
		 * in ringtest's loop (add one, get one). Reaping everything while
		 * adding one burst drains the ring until the device waits on each
		 * new buffer, which measures starvation, not the queue.
		 */
		got = vio_virtq_get_used_burst(vq, cookies, lens, burst);
		if (got < 0) {
			fail(rr, got, "driver: vio_virtq_get_used_burst");
			break;
		}
		for (int i = 0; i < got; i++) {
			uintptr_t b = (uintptr_t)cookies[i];

			if (b == 0 || b > size || lens[i] != o->buf_size) {
				fail(rr, -EPROTO, "driver: wrong cookie or length back");
				goto out;
			}
			free_bufs[nfree++] = (uint16_t)(b - 1);
		}
		done += (unsigned)got;
		if (adding && ((check += (unsigned)got) >= 1024 || added >= target)) {
			check = 0;
			if (added >= target || (!o->count && now_s() >= deadline))
				adding = false;
		}
		if (!adding && done == added)
			break;
		if (got || n) {
			spins = 0;
			continue;
		}
		if (spins++ < o->spin) {
			relax();
			continue;
		}
		/*
		 * Idle: ask for an interrupt once enough buffers are back to add a
		 * burst (or to finish); false means they are back already.
		 */
		{
			uint64_t inflight = added - done;
			uint64_t need = adding ? (burst > nfree ? burst - nfree : 1) : inflight;

			if (need > inflight)
				need = inflight;
			if (!vio_virtq_driver_enable_cb_after(vq, (uint16_t)(need ? need : 1))) {
				vio_virtq_driver_disable_cb(vq);
				continue;
			}
		}
		wait_fd(rr, rr->call_fd);
		vio_virtq_driver_disable_cb(vq);
		spins = 0;
	}
out:
	rr->r.secs = now_s() - t0;
	rr->r.descs = done;
	rr->r.kicks = kicks;
	atomic_store_explicit(&rr->stop, true, memory_order_release);
	notify_fd(rr, rr->kick_fd);
	free(free_bufs);
	return NULL;
}

static int ring_run_once(const struct ring_opts *o, bool packed, bool eidx, unsigned burst,
			 struct ring_result *res)
{
	uint64_t features = (1ull << VIRTIO_F_VERSION_1);
	struct vio_virtq_addrs addrs;
	struct vio_mem_region reg;
	struct ring_run *rr;
	size_t ring_len, len;
	pthread_t td, tv;
	int err;

	if (packed)
		features |= 1ull << VIRTIO_F_RING_PACKED;
	if (eidx)
		features |= 1ull << VIRTIO_F_EVENT_IDX;
	rr = aligned_alloc(CACHELINE, sizeof(*rr));
	if (!rr)
		return -ENOMEM;
	memset(rr, 0, sizeof(*rr));
	rr->o = o;
	rr->burst = burst;
	rr->kick_fd = rr->call_fd = -1;
	ring_len = (vio_virtq_driver_area_size(features, (uint16_t)o->size, 0) + 4095) & ~4095ul;
	len = ring_len + (((size_t)o->size * o->buf_size + 4095) & ~4095ul);
	rr->area = aligned_alloc(4096, len);
	err = -ENOMEM;
	if (!rr->area)
		goto out;
	memset(rr->area, 0, len);
	rr->bufs = rr->area + ring_len;
	err = vio_mem_new(&rr->mem);
	if (err)
		goto out;
	reg = (struct vio_mem_region){ .gpa = RING_GPA, .size = len, .host = rr->area };
	err = vio_mem_add(rr->mem, &reg);
	if (err)
		goto out;
	err = vio_virtq_driver_new(features, (uint16_t)o->size, 0, rr->area, RING_GPA, ring_len,
				   &addrs, &rr->drv);
	if (err) {
		fprintf(stderr, "vio-bench ring: vio_virtq_driver_new: %s\n", strerror(-err));
		goto out;
	}
	err = vio_virtq_device_new(features, (uint16_t)o->size, &addrs, rr->mem, &rr->dev);
	if (err) {
		fprintf(stderr, "vio-bench ring: vio_virtq_device_new: %s\n", strerror(-err));
		goto out;
	}
	rr->kick_fd = eventfd(0, EFD_CLOEXEC);
	rr->call_fd = eventfd(0, EFD_CLOEXEC);
	err = -errno;
	if (rr->kick_fd < 0 || rr->call_fd < 0)
		goto out;
	pthread_barrier_init(&rr->start, NULL, 2);
	err = -pthread_create(&tv, NULL, device_main, rr);
	if (err)
		goto out_barrier;
	err = -pthread_create(&td, NULL, driver_main, rr);
	if (err) {
		/* The device would wait at the barrier forever: stand in for the driver. */
		atomic_store(&rr->stop, true);
		pthread_barrier_wait(&rr->start);
		pthread_join(tv, NULL);
		goto out_barrier;
	}
	pthread_join(td, NULL);
	pthread_join(tv, NULL);
	*res = rr->r;
	err = rr->r.err;
	if (!err && (vio_virtq_is_broken(rr->drv) || vio_virtq_is_broken(rr->dev))) {
		res->what = vio_virtq_is_broken(rr->drv) ?
				    vio_virtq_fault_str(vio_virtq_fault_reason(rr->drv)) :
				    vio_virtq_fault_str(vio_virtq_fault_reason(rr->dev));
		err = -EIO;
	}
out_barrier:
	pthread_barrier_destroy(&rr->start);
out:
	if (rr->kick_fd >= 0)
		close(rr->kick_fd);
	if (rr->call_fd >= 0)
		close(rr->call_fd);
	vio_virtq_free(rr->drv);
	vio_virtq_free(rr->dev);
	vio_mem_free(rr->mem);
	free(rr->area);
	free(rr);
	return err;
}

/* ---- options, medians, output ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void ring_usage(FILE *f)
{
	fprintf(f,
		"usage: vio-bench ring [OPTIONS]\n"
		"Driver and device threads (CPUs 0 and 1) move 1-descriptor buffers through one\n"
		"virtqueue; kicks and interrupts are eventfd writes. Each figure is the median of\n"
		"--runs runs; runs of all configurations are interleaved.\n"
		"  --layout split|packed|both   (both)\n"
		"  --event-idx on|off|both      VIRTIO_F_EVENT_IDX (both)\n"
		"  --burst LIST                 buffers per publish or kick_prepare, per pop and\n"
		"                               push, and at most per reap (1,8,32)\n"
		"  --size N                     queue size (256)\n"
		"  --buf-size N                 bytes per buffer (64)\n"
		"  --runs N                     runs per configuration (5)\n"
		"  --seconds S                  length of a run (0.3)\n"
		"  --count N                    descriptors per run instead of --seconds\n"
		"  --spin N                     empty polls before a side sleeps (200)\n"
		"  --poll                       never sleep and never notify (busy polling): the\n"
		"                               driver publishes with no kick decision\n"
		"  --pause on|off               pause instruction in busy loops (on)\n"
		"  --vmexit-cycles N            busy-wait N TSC cycles before and after each eventfd\n"
		"                               write and read, as ringtest does (0)\n"
		"  --cpus D,V                   driver and device CPUs; -1 for no pinning (0,1)\n"
		"  --json                       one JSON object per configuration\n");
}

static int bad_arg(const char *opt, const char *val)
{
	fprintf(stderr, "vio-bench ring: bad value '%s' for %s (try --help)\n", val, opt);
	return 2;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return parse_count(s, min, max, out) == 0;
}

static bool parse_choice(const char *s, const char *a, const char *b, bool out[2])
{
	out[0] = !strcmp(s, a) || !strcmp(s, "both");
	out[1] = !strcmp(s, b) || !strcmp(s, "both");
	return out[0] || out[1];
}

static bool parse_bursts(const char *s, struct ring_opts *o)
{
	char buf[256], *save = NULL, *tok;
	uint64_t v;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	o->nbursts = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->nbursts == MAX_BURSTS || !parse_u64(tok, 1, MAX_BURST, &v))
			return false;
		o->bursts[o->nbursts++] = (unsigned)v;
	}
	return o->nbursts > 0;
}

static bool parse_cpus(const char *s, struct ring_opts *o)
{
	int d, v, k = 0;

	if (sscanf(s, "%d,%d%n", &d, &v, &k) != 2 || s[k] || d < -1 || v < -1 ||
	    d >= CPU_SETSIZE || v >= CPU_SETSIZE)
		return false;
	o->cpu_driver = d;
	o->cpu_device = v;
	return true;
}

/* Pin only to CPUs we may run on; on one CPU, do not pin at all. */
static void check_cpus(struct ring_opts *o)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	if ((o->cpu_driver >= 0 && !CPU_ISSET(o->cpu_driver, &set)) ||
	    (o->cpu_device >= 0 && !CPU_ISSET(o->cpu_device, &set)) || CPU_COUNT(&set) < 2) {
		fprintf(stderr, "vio-bench ring: CPUs %d,%d not both available: not pinning\n",
			o->cpu_driver, o->cpu_device);
		o->cpu_driver = o->cpu_device = -1;
	}
}

enum { OPT_LAYOUT = 256, OPT_EIDX, OPT_BURST, OPT_SIZE, OPT_BUFSZ, OPT_RUNS, OPT_SECS,
       OPT_COUNT, OPT_SPIN, OPT_POLL, OPT_PAUSE, OPT_VMEXIT, OPT_CPUS, OPT_JSON, OPT_HELP };

static const struct option ring_longopts[] = {
	{ "layout", required_argument, NULL, OPT_LAYOUT },
	{ "event-idx", required_argument, NULL, OPT_EIDX },
	{ "burst", required_argument, NULL, OPT_BURST },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "buf-size", required_argument, NULL, OPT_BUFSZ },
	{ "runs", required_argument, NULL, OPT_RUNS },
	{ "seconds", required_argument, NULL, OPT_SECS },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "spin", required_argument, NULL, OPT_SPIN },
	{ "poll", no_argument, NULL, OPT_POLL },
	{ "pause", required_argument, NULL, OPT_PAUSE },
	{ "vmexit-cycles", required_argument, NULL, OPT_VMEXIT },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_ring_opts(int argc, char **argv, struct ring_opts *o)
{
	uint64_t v;
	int c;

	*o = (struct ring_opts){ .layouts = { true, true }, .eidx = { true, true },
				 .bursts = { 1, 8, 32 }, .nbursts = 3, .size = 256, .buf_size = 64,
				 .runs = 5, .seconds = 0.3, .spin = 200, .pause = true, .cpu_device = 1 };
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", ring_longopts, NULL)) != -1) {
		const char *name = optind > 1 ? argv[optind - 1] : "?";

		switch (c) {
		case OPT_LAYOUT:
			if (!parse_choice(optarg, "split", "packed", o->layouts))
				return bad_arg("--layout", optarg);
			break;
		case OPT_EIDX:
			if (!parse_choice(optarg, "off", "on", o->eidx))
				return bad_arg("--event-idx", optarg);
			break;
		case OPT_BURST:
			if (!parse_bursts(optarg, o))
				return bad_arg("--burst", optarg);
			break;
		case OPT_SIZE:
			if (!parse_u64(optarg, 1, VIO_VIRTQ_MAX_SIZE, &v))
				return bad_arg("--size", optarg);
			o->size = (unsigned)v;
			break;
		case OPT_BUFSZ:
			if (!parse_u64(optarg, 1, 1u << 20, &v))
				return bad_arg("--buf-size", optarg);
			o->buf_size = (unsigned)v;
			break;
		case OPT_RUNS:
			if (!parse_u64(optarg, 1, 1000, &v))
				return bad_arg("--runs", optarg);
			o->runs = (unsigned)v;
			break;
		case OPT_SECS: {
			char *end;

			o->seconds = strtod(optarg, &end);
			if (*end || !(o->seconds > 0 && o->seconds <= 3600))
				return bad_arg("--seconds", optarg);
			break;
		}
		case OPT_COUNT:
			if (!parse_u64(optarg, 1, UINT64_MAX / 2, &o->count))
				return bad_arg("--count", optarg);
			break;
		case OPT_SPIN:
			if (!parse_u64(optarg, 0, UINT32_MAX, &v))
				return bad_arg("--spin", optarg);
			o->spin = (unsigned)v;
			break;
		case OPT_POLL:
			o->poll = true;
			break;
		case OPT_PAUSE: {
			bool onoff[2];

			if (!parse_choice(optarg, "off", "on", onoff) || !strcmp(optarg, "both"))
				return bad_arg("--pause", optarg);
			o->pause = onoff[1];
			break;
		}
		case OPT_VMEXIT:
			if (!parse_u64(optarg, 0, 1000000000, &o->vmexit_cycles))
				return bad_arg("--vmexit-cycles", optarg);
			break;
		case OPT_CPUS:
			if (!parse_cpus(optarg, o))
				return bad_arg("--cpus", optarg);
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
		case OPT_HELP:
			ring_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "vio-bench ring: option '%s' needs a value\n", name);
			fprintf(stderr, "try 'vio-bench ring --help'\n");
			return 2;
		default:
			fprintf(stderr, "vio-bench ring: unknown option '%s'\n", name);
			fprintf(stderr, "try 'vio-bench ring --help'\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vio-bench ring: unexpected argument '%s' (try --help)\n",
			argv[optind]);
		return 2;
	}
	for (unsigned i = 0; i < o->nbursts; i++)
		if (o->bursts[i] > o->size) {
			fprintf(stderr, "vio-bench ring: burst %u is larger than the queue (%u)\n",
				o->bursts[i], o->size);
			return 2;
		}
	if (o->layouts[0] && (o->size & (o->size - 1))) {
		fprintf(stderr, "vio-bench ring: --size %u: a split queue's size is a power of 2\n",
			o->size);
		return 2;
	}
	return -1;
}

struct ring_cfg {
	bool packed, eidx;
	unsigned burst;
	double *mdesc, *kicks, *irqs;
	unsigned n;
};

int vio_bench_ring(int argc, char **argv)
{
	struct ring_opts o;
	struct ring_cfg cfgs[2 * 2 * MAX_BURSTS];
	unsigned ncfg = 0;
	int ret = parse_ring_opts(argc, argv, &o);

	if (ret >= 0)
		return ret;
	check_cpus(&o);
	use_pause = o.pause;
	for (int l = 0; l < 2; l++)
		for (int e = 1; e >= 0; e--)
			for (unsigned b = 0; b < o.nbursts; b++) {
				struct ring_cfg *c = &cfgs[ncfg];

				if (!o.layouts[l] || !o.eidx[e])
					continue;
				*c = (struct ring_cfg){ .packed = l, .eidx = e, .burst = o.bursts[b] };
				c->mdesc = calloc(o.runs, sizeof(double));
				c->kicks = calloc(o.runs, sizeof(double));
				c->irqs = calloc(o.runs, sizeof(double));
				if (!c->mdesc || !c->kicks || !c->irqs) {
					fprintf(stderr, "vio-bench ring: out of memory\n");
					return 1;
				}
				ncfg++;
			}
	/* Run r of every configuration before run r + 1 of any: noise spreads evenly. */
	for (unsigned r = 0; r < o.runs; r++) {
		for (unsigned i = 0; i < ncfg; i++) {
			struct ring_cfg *c = &cfgs[i];
			struct ring_result res = { 0 };
			int err = ring_run_once(&o, c->packed, c->eidx, c->burst, &res);

			if (err || res.descs == 0 || res.secs <= 0) {
				fprintf(stderr,
					"vio-bench ring: %s event_idx=%s burst=%u failed: %s%s%s\n",
					c->packed ? "packed" : "split", c->eidx ? "on" : "off",
					c->burst, err ? strerror(-err) : "no descriptors moved",
					res.what ? ": " : "", res.what ? res.what : "");
				ret = 1;
				goto done;
			}
			c->mdesc[c->n] = (double)res.descs / res.secs / 1e6;
			c->kicks[c->n] = 1000.0 * (double)res.kicks / (double)res.descs;
			c->irqs[c->n] = 1000.0 * (double)res.irqs / (double)res.descs;
			c->n++;
		}
	}
	ret = 0;
done:
	if (!o.json && ncfg && cfgs[0].n) {
		printf("# vio-bench ring: size %u, %u-byte buffers, %s, median of %u runs\n", o.size,
		       o.buf_size, o.poll ? "busy polling" : "eventfd notifications", cfgs[0].n);
		printf("%-7s %-9s %5s %9s %11s %11s\n", "layout", "event_idx", "burst", "Mdesc/s",
		       "kicks/1k", "irqs/1k");
	}
	for (unsigned i = 0; i < ncfg; i++) {
		struct ring_cfg *c = &cfgs[i];

		if (c->n) {
			double m = median(c->mdesc, c->n), k = median(c->kicks, c->n);
			double q = median(c->irqs, c->n);

			if (o.json)
				printf("{\"layout\":\"%s\",\"event_idx\":%s,\"burst\":%u,\"size\":%u,"
				       "\"poll\":%s,\"runs\":%u,\"mdesc_s\":%.4f,"
				       "\"kicks_per_1k\":%.3f,\"irqs_per_1k\":%.3f}\n",
				       c->packed ? "packed" : "split", c->eidx ? "true" : "false",
				       c->burst, o.size, o.poll ? "true" : "false", c->n, m, k, q);
			else
				printf("%-7s %-9s %5u %9.2f %11.2f %11.2f\n",
				       c->packed ? "packed" : "split", c->eidx ? "on" : "off", c->burst,
				       m, k, q);
		}
		free(c->mdesc);
		free(c->kicks);
		free(c->irqs);
	}
	return ret;
}
