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
#define CPU_MAX_PCT 50          /* data-plane CPU allowed while A's slots are full and B idle */
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

/* Data-plane CPU for 1 s with B paused and A's slots full; -1 if they were not full. */
static double cpu_window(pid_t pid, struct victim *v, struct attack *a, unsigned *out0,
			 unsigned *out1)
{
	uint64_t c0, c1, t0, t1;

	atomic_store(&v->pause, true);
	for (int i = 0; i < 300 && !atomic_load(&v->paused); i++)
		usleep(1000);
	*out0 = atomic_load(&a->outstanding);
	c0 = viod_data_cpu_ns(pid);
	t0 = mono_ns();
	ms_sleep(1000);
	c1 = viod_data_cpu_ns(pid);
	t1 = mono_ns();
	*out1 = atomic_load(&a->outstanding);
	atomic_store(&v->pause, false);
	return 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
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
	unsigned out0 = 0, out1 = 0;
	double cpu = -1;
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
		cpu = cpu_window(pid, &v, &a, &out0, &out1);
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
		verdict(&res, contained == 0, "attacker-contained", "%s",
			contained == 0 ? "viod dealt with A" : a.why);
	if (m->cpu_window) {
		if (cpu < 0 || out0 < SLOTS + 32 || out1 < SLOTS + 32)
			printf("SKIP: %s/no-spin: A's ring held %u and %u requests, not more than the "
			       "%u slots: the measure would mean nothing\n", pfx, out0, out1, SLOTS);
		else
			verdict(&res, cpu <= CPU_MAX_PCT, "no-spin",
				"viod's data-plane threads used %.0f%% of a CPU for 1 s with B idle "
				"and A's %u slots full, bound %d%%", cpu, SLOTS, CPU_MAX_PCT);
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
