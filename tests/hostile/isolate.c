/* SPDX-License-Identifier: MIT */
/*
 * The isolation test: while front-end A misbehaves on its device
 * (attacks.c), front-end B keeps verified I/O going on another device of
 * the same viod and a control round trip (GET_STATUS) every 10 ms, each on
 * its own thread, and a fresh front-end connects to a third device with
 * 1 GiB of memory. B's slowest request and round trip and the fresh
 * connection must stay within the stated bounds; after A leaves, viod must
 * be back to its fds and mappings; with A attacking again, SIGTERM must
 * stop viod within 5 s. Prints PASS/FAIL/SKIP lines for
 * isolation/MODE/<check>. The only signal it sends is that SIGTERM.
 *
 *   vio-hostile isolate --pid PID --dir DIR --log FILE --mode MODE
 *                       [--bound-ms 100] [--probe-bound-ms 1000]
 *
 * DIR holds viod's sockets: a.sock (RAM disk, A's), f.sock (file, O_DIRECT,
 * A's in slots-full), b.sock (B's), c.sock (the fresh connection's), and
 * d.sock is where viod's client-mode device dials.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attacks.h"
#include "isolate.h"
#include "vio/blk_client.h"
#include "vio/vhost_user.h"
#include "watch.h"

#define REQ_TIMEOUT_MS 3000     /* B gives up on a request or reply after this */
#define MAPS_SLACK (16ull << 20) /* malloc arenas, thread stacks: not a leak */
/*
 * With B idle and A's slots full, a data-plane thread that waits for
 * completions is seen asleep (state S, in epoll) in many of 200 samples over
 * a second; one that spins is never asleep, only runnable (R) or, while it
 * submits, blocked on the disk's queue (D). Samples of the state count a
 * thread a loaded machine keeps off the CPU as spinning too, as it is.
 */
#define SPIN_SAMPLES 200
#define SPIN_MIN_ASLEEP_PCT 10
#define SLOTS 256               /* the blk device's requests in flight per queue */

struct lat {
	_Atomic uint64_t cur_start; /* start of the operation in progress; 0: none */
	_Atomic uint64_t max_ns, n;
	atomic_bool failed;
	char why[300];
};

struct victim {
	struct goodfe g;
	pthread_t io_th, ctl_th;
	atomic_bool stop, pause, paused;
	struct lat io, ctl;
};

static void lat_note(struct lat *l, uint64_t ns)
{
	if (ns > atomic_load(&l->max_ns))
		atomic_store(&l->max_ns, ns);
	atomic_fetch_add(&l->n, 1);
}

static void lat_reset(struct lat *l)
{
	atomic_store(&l->max_ns, 0);
	atomic_store(&l->n, 0);
}

/* The slowest so far, counting an operation still in progress. */
static uint64_t lat_max(struct lat *l)
{
	uint64_t m = atomic_load(&l->max_ns), s = atomic_load(&l->cur_start), now = mono_ns();

	return s && now > s && now - s > m ? now - s : m;
}

static void *io_thread(void *arg)
{
	struct victim *v = arg;
	uint64_t k = 0, lat[2];
	char why[300];

	while (!atomic_load(&v->stop)) {
		int r;

		if (atomic_load(&v->pause)) {
			atomic_store(&v->paused, true);
			usleep(1000);
			continue;
		}
		atomic_store(&v->paused, false);
		atomic_store(&v->io.cur_start, mono_ns());
		lat[0] = lat[1] = 0;
		r = goodfe_rw(&v->g, (k++ % 1024) * 8, REQ_TIMEOUT_MS, lat, why, sizeof(why));
		atomic_store(&v->io.cur_start, 0);
		lat_note(&v->io, lat[0]);
		lat_note(&v->io, lat[1]);
		if (r) {
			snprintf(v->io.why, sizeof(v->io.why), "%s", why);
			atomic_store(&v->io.failed, true);
			break;
		}
		/* Paced: a stall shows in the request it delays, B need not hog a shared CPU. */
		usleep(1000);
	}
	atomic_store(&v->paused, true);
	return NULL;
}

static void *ctl_thread(void *arg)
{
	struct victim *v = arg;
	char why[300];

	while (!atomic_load(&v->stop)) {
		uint64_t ns;
		int r;

		atomic_store(&v->ctl.cur_start, mono_ns());
		r = goodfe_ctl(&v->g, &ns, why, sizeof(why));
		atomic_store(&v->ctl.cur_start, 0);
		lat_note(&v->ctl, ns);
		if (r) {
			snprintf(v->ctl.why, sizeof(v->ctl.why), "%s", why);
			atomic_store(&v->ctl.failed, true);
			break;
		}
		usleep(10000);
	}
	return NULL;
}

static void victim_stop(struct victim *v, bool talk)
{
	atomic_store(&v->stop, true);
	pthread_join(v->io_th, NULL);
	pthread_join(v->ctl_th, NULL);
	if (talk) {
		goodfe_close(&v->g);
	} else {
		/* viod may hang: no goodbye messages, just drop the connection. */
		vio_blk_client_free(v->g.c);
		vio_vhu_frontend_close(v->g.f);
	}
}

static void ms_sleep(unsigned ms)
{
	usleep(ms * 1000u);
}

/* The fresh front-end on c.sock: set-up with 1 GiB, one verified write+read. */
static int probe(const char *dir, uint64_t *ns, char *why, size_t n)
{
	char sock[300], w[300];
	uint64_t t0 = mono_ns();
	struct goodfe g;
	int r;

	snprintf(sock, sizeof(sock), "%s/c.sock", dir);
	r = goodfe_open(&g, sock, 1ull << 30, REQ_TIMEOUT_MS, why, n);
	if (!r) {
		r = goodfe_rw(&g, 8, REQ_TIMEOUT_MS, NULL, w, sizeof(w));
		if (r)
			snprintf(why, n, "%s", w);
		goodfe_close(&g);
	}
	*ns = mono_ns() - t0;
	return r;
}

struct result {
	const char *pfx;
	int bad;
};

static void verdict(struct result *res, bool ok, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void verdict(struct result *res, bool ok, const char *check, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ok) {
		printf("PASS: %s/%s (%s)\n", res->pfx, check, msg);
	} else {
		printf("FAIL: %s/%s: %s\n", res->pfx, check, msg);
		res->bad = 1;
	}
	fflush(stdout);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* What viod's data-plane thread did for 1 s with B paused and A's slots full. */
struct spin {
	unsigned samples;       /* 0: not measured */
	unsigned r, s, d;       /* samples runnable, asleep by choice, blocked in the kernel */
	unsigned out0, out1;    /* A's requests outstanding at the start and the end */
	unsigned done;          /* A's requests completed meanwhile */
};

static void spin_window(pid_t pid, struct victim *v, struct attack *a, struct spin *sp)
{
	unsigned d0;

	atomic_store(&v->pause, true);
	for (int i = 0; i < 300 && !atomic_load(&v->paused); i++)
		usleep(1000);
	sp->out0 = atomic_load(&a->outstanding);
	d0 = atomic_load(&a->done);
	for (int i = 0; i < SPIN_SAMPLES; i++) {
		struct viod_states st;

		usleep(1000000 / SPIN_SAMPLES);
		viod_data_states(pid, &st);
		sp->r += st.r;
		sp->s += st.s;
		sp->d += st.d;
	}
	sp->samples = SPIN_SAMPLES;
	sp->out1 = atomic_load(&a->outstanding);
	sp->done = atomic_load(&a->done) - d0;
	atomic_store(&v->pause, false);
}

/* SIGTERM while A attacks again: viod must be gone within 5 s. */
static bool sigterm_check(pid_t pid, const struct attack_mode *m, const char *dir,
			  const char *log, uint64_t *took)
{
	struct attack a;
	uint64_t t0;

	attack_init(&a, dir, m, log);
	m->start(&a);
	ms_sleep((unsigned)m->arm_ms);
	t0 = mono_ns();
	kill(pid, SIGTERM);
	while (viod_alive(pid) && mono_ns() - t0 < 5000000000ull)
		usleep(10000);
	*took = mono_ns() - t0;
	attack_stop(&a);
	return !viod_alive(pid);
}

static int isolate(pid_t pid, const char *dir, const char *log, const struct attack_mode *m,
		   unsigned bound_ms, unsigned probe_bound_ms)
{
	char pfx[80], sock[300], pwhy[300] = "";
	struct result res = { .pfx = pfx };
	struct viod_maps m0, m1;
	struct victim v;
	struct attack a;
	uint64_t t0, before_io, before_ctl, probe_ns = 0, io_max, ctl_max, took;
	struct spin sp = { 0 };
	int fds0, fds1, probe_r, contained = 1;
	bool gone, alive;

	snprintf(pfx, sizeof(pfx), "isolation/%s", m->name);
	snprintf(sock, sizeof(sock), "%s/b.sock", dir);
	printf("# %s: A: %s\n", pfx, m->what);
	if (!viod_alive(pid)) {
		printf("FAIL: %s/setup: viod (pid %d) is not running\n", pfx, (int)pid);
		return 1;
	}
	memset(&v, 0, sizeof(v));
	if (goodfe_open(&v.g, sock, 16u << 20, REQ_TIMEOUT_MS, pwhy, sizeof(pwhy))) {
		printf("FAIL: %s/setup: B: %s\n", pfx, pwhy);
		return 1;
	}
	pthread_create(&v.io_th, NULL, io_thread, &v);
	pthread_create(&v.ctl_th, NULL, ctl_thread, &v);
	ms_sleep(300);
	before_io = lat_max(&v.io);
	before_ctl = lat_max(&v.ctl);
	fds0 = viod_fds(pid);
	viod_maps(pid, &m0);
	lat_reset(&v.io);
	lat_reset(&v.ctl);

	/* The attack, and the measurements under it. */
	attack_init(&a, dir, m, log);
	t0 = mono_ns();
	if (m->start(&a))
		printf("# %s: A's attack could not be set up: %s\n", pfx, a.why);
	ms_sleep((unsigned)m->arm_ms);
	probe_r = probe(dir, &probe_ns, pwhy, sizeof(pwhy));
	if (m->cpu_window && !atomic_load(&v.io.failed))
		spin_window(pid, &v, &a, &sp);
	while (mono_ns() - t0 < (uint64_t)m->window_ms * 1000000)
		ms_sleep(20);
	io_max = lat_max(&v.io);
	ctl_max = lat_max(&v.ctl);
	alive = viod_alive(pid);
	if (m->contained && alive) {
		a.why[0] = 0;
		contained = m->contained(&a);
	} else if (m->contained) {
		contained = -1;
		snprintf(a.why, sizeof(a.why), "viod died");
	}
	if (a.note[0])
		printf("# %s: %s\n", pfx, a.note);
	attack_stop(&a);

	printf("# %s: B before the attack: I/O max %.2f ms, control max %.2f ms; under it: %llu "
	       "requests, max %.2f ms; %llu control round trips, max %.2f ms; fresh connection "
	       "%.1f ms\n", pfx, ms(before_io), ms(before_ctl),
	       (unsigned long long)atomic_load(&v.io.n), ms(io_max),
	       (unsigned long long)atomic_load(&v.ctl.n), ms(ctl_max), ms(probe_ns));
	verdict(&res, alive, "viod-alive", "%s", alive ? "viod survived the attack" :
		"viod died under the attack");
	verdict(&res, !atomic_load(&v.io.failed) && io_max <= bound_ms * 1000000ull &&
		atomic_load(&v.io.n) > 0, "victim-io", "B's slowest request %.1f ms, bound %u ms%s%s",
		ms(io_max), bound_ms, atomic_load(&v.io.failed) ? "; B's I/O failed: " : "",
		atomic_load(&v.io.failed) ? v.io.why : "");
	verdict(&res, !atomic_load(&v.ctl.failed) && ctl_max <= bound_ms * 1000000ull &&
		atomic_load(&v.ctl.n) > 0, "victim-control",
		"B's slowest GET_STATUS round trip %.1f ms, bound %u ms%s%s", ms(ctl_max), bound_ms,
		atomic_load(&v.ctl.failed) ? "; B's control failed: " : "",
		atomic_load(&v.ctl.failed) ? v.ctl.why : "");
	verdict(&res, probe_r == 0 && probe_ns <= probe_bound_ms * 1000000ull, "fresh-connection",
		"a new front-end with 1 GiB on another device: set-up and verified I/O in %.1f ms, "
		"bound %u ms%s%s", ms(probe_ns), probe_bound_ms, probe_r ? "; " : "",
		probe_r ? pwhy : "");
	if (contained != 1)
		verdict(&res, contained == 0, m->check ? m->check : "attacker-contained", "%s",
			contained == 0 ? (a.note[0] ? a.note : "viod dealt with A") : a.why);
	if (m->cpu_window) {
		double asleep = sp.samples ? 100.0 * sp.s / sp.samples : 0;
		double disk = sp.samples ? 100.0 * sp.d / sp.samples : 0;

		if (!sp.samples || sp.out0 < SLOTS + 32 || sp.out1 < SLOTS + 32)
			printf("SKIP: %s/no-spin: A's ring held %u and %u requests, not more than the "
			       "%u slots: the measure would mean nothing\n", pfx, sp.out0, sp.out1,
			       SLOTS);
		else if (disk >= 50)
			printf("SKIP: %s/no-spin: the data-plane thread was blocked on the disk's own "
			       "queue in %.0f%% of the samples: the disk, not the device's %u slots, "
			       "was the limit here\n", pfx, disk, SLOTS);
		else
			verdict(&res, asleep >= SPIN_MIN_ASLEEP_PCT, "no-spin",
				"with B idle and A's %u slots full for 1 s, viod's data-plane thread "
				"was asleep in %.0f%%, runnable in %.0f%%, blocked on the disk in "
				"%.0f%% of %u samples (%u of A's requests done); spinning is asleep "
				"in under %d%%", SLOTS, asleep, 100.0 * sp.r / sp.samples, disk,
				sp.samples, sp.done, SPIN_MIN_ASLEEP_PCT);
	}

	/* A has left: viod must hold what it held before A came. */
	fds1 = viod_settle_fds(pid, fds0, 3000);
	viod_maps(pid, &m1);
	verdict(&res, viod_alive(pid) && fds1 <= fds0 && m1.memfds <= m0.memfds &&
		m1.bytes <= m0.bytes + MAPS_SLACK, "no-growth",
		"viod %s; fds %d -> %d, guest memory mappings %u -> %u, mapped %+lld MiB",
		viod_alive(pid) ? "alive" : "DEAD", fds0, fds1, m0.memfds, m1.memfds,
		(long long)((int64_t)(m1.bytes - m0.bytes) >> 20));

	atomic_store(&v.stop, true);
	gone = !viod_alive(pid);
	if (!gone) {
		gone = sigterm_check(pid, m, dir, log, &took);
		verdict(&res, gone, "sigterm", "SIGTERM with A attacking again: %s after %.0f ms",
			gone ? "viod exited" : "viod still running", ms(took));
	} else {
		verdict(&res, false, "sigterm", "viod died before SIGTERM");
	}
	victim_stop(&v, false);
	return res.bad;
}

int isolate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },   { "dir", required_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },   { "mode", required_argument, NULL, 'm' },
		{ "bound-ms", required_argument, NULL, 'b' },
		{ "probe-bound-ms", required_argument, NULL, 'P' },
		{ "list", no_argument, NULL, 'L' },        { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *log = NULL, *mode = NULL;
	unsigned bound = 100, probe_bound = 1000;
	const struct attack_mode *m;
	pid_t pid = 0;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'p': pid = (pid_t)atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'l': log = optarg; break;
		case 'm': mode = optarg; break;
		case 'b': bound = (unsigned)atoi(optarg); break;
		case 'P': probe_bound = (unsigned)atoi(optarg); break;
		case 'L':
			for (m = attack_modes; m->name; m++)
				printf("%s\n", m->name);
			return 0;
		default:
			fprintf(o == 'h' ? stdout : stderr,
				"usage: vio-hostile isolate --pid PID --dir DIR --log FILE --mode MODE "
				"[--bound-ms N] [--probe-bound-ms N]\n       vio-hostile isolate "
				"--list\n");
			return o == 'h' ? 0 : 2;
		}
	}
	m = mode ? attack_find(mode) : NULL;
	if (!m || pid <= 0 || !dir || !bound) {
		fprintf(stderr, "vio-hostile isolate: need --pid, --dir and a --mode from --list\n");
		return 2;
	}
	return isolate(pid, dir, log, m, bound, probe_bound);
}
