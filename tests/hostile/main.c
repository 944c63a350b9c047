/* SPDX-License-Identifier: MIT */
/*
 * vio-hostile: a hostile vhost-user front-end for viod's trust tests.
 *
 *   vio-hostile list
 *   vio-hostile run --pid PID --log FILE --sock SOCK [--other SOCK]... CASE
 *   vio-hostile verify --sock SOCK...
 *   vio-hostile isolate ... (isolate.c)
 *
 * run: one case against the device on SOCK, then the checks every case
 * shares: viod alive, back to its fd count within 3 s, SOCK and every
 * --other device serving a fresh front-end (verified write + read), no
 * guest-memory mapping left and mappings within MAPS_SLACK of before.
 * Prints "PASS: hostile/CASE" or "FAIL: hostile/CASE: why"; exits 0, 1, or
 * 3 when viod died (the caller restarts it). Never signals viod.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "isolate.h"
#include "watch.h"

/* Mappings viod may gain across a case without a leak: malloc arenas, thread stacks. */
#define MAPS_SLACK (16ull << 20)
#define MAX_OTHERS 8

static const struct hcase *const groups[] = { ring_cases, packed_cases, req_cases, msg_cases,
					      fd_cases, inflight_cases, log_cases, iotlb_cases };
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static const struct hcase *find_case(const char *name)
{
	for (size_t g = 0; g < NGROUPS; g++)
		for (const struct hcase *k = groups[g]; k->name; k++)
			if (!strcmp(k->name, name))
				return k;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vio-hostile list\n"
		   "       vio-hostile run --pid PID --log FILE --sock SOCK [--other SOCK]... CASE\n"
		   "       vio-hostile verify --sock SOCK...\n"
		   "       vio-hostile isolate --help\n");
}

/* The checks after every case; the first failure goes to c->why. */
static void after_case(struct hctx *c, const struct viod_maps *m0, int fds0, char **others,
		       unsigned nothers)
{
	struct viod_maps m1;
	char why[400];
	int fds;

	fds = viod_settle_fds(c->pid, fds0, 3000);
	if (fds > fds0)
		fail(c, "viod holds %d fds 3 s after the case, %d before", fds, fds0);
	if (verify_blk(c->sock, why, sizeof(why)))
		fail(c, "the attacked device no longer serves: %s", why);
	for (unsigned i = 0; i < nothers; i++)
		if (verify_blk(others[i], why, sizeof(why)))
			fail(c, "another device no longer serves: %s", why);
	fds = viod_settle_fds(c->pid, fds0, 3000);
	if (fds > fds0)
		fail(c, "viod holds %d fds after the checks, %d before the case", fds, fds0);
	if (viod_maps(c->pid, &m1) == 0) {
		if (m1.memfds > m0->memfds)
			fail(c, "viod still maps %u guest memory regions (%u before)", m1.memfds,
			     m0->memfds);
		if (m1.bytes > m0->bytes + MAPS_SLACK)
			fail(c, "viod's mappings grew by %llu MiB",
			     (unsigned long long)((m1.bytes - m0->bytes) >> 20));
	}
}

static int run(pid_t pid, const char *log, const char *sock, char **others, unsigned nothers,
	       const char *name)
{
	const struct hcase *k = find_case(name);
	struct hctx c = { .pid = pid, .log = log, .sock = sock };
	struct viod_maps m0;
	uint64_t t0;
	int fds0;

	if (!k) {
		fprintf(stderr, "vio-hostile: no case '%s' (see vio-hostile list)\n", name);
		return 2;
	}
	if (!viod_alive(pid)) {
		printf("FAIL: hostile/%s: viod (pid %d) is not running\n", name, (int)pid);
		return 3;
	}
	fds0 = viod_fds(pid);
	viod_maps(pid, &m0);
	c.log_from = log_mark(log);
	t0 = mono_ns();
	k->fn(&c);
	if (viod_alive(pid))
		after_case(&c, &m0, fds0, others, nothers);
	/* A crashing viod stays alive while its core is written: give it a second to finish. */
	for (int i = 0; c.why[0] && i < 20 && viod_alive(pid); i++)
		usleep(50000);
	if (!viod_alive(pid)) {
		/* Whatever else failed, that is the news (a dying viod can look alive a moment). */
		char why[sizeof(c.why)];

		snprintf(why, sizeof(why), "%s", c.why);
		c.why[0] = 0;
		fail(&c, "viod died%s%s", why[0] ? "; first sign: " : "", why);
	}
	if (c.note[0])
		printf("# hostile/%s: %s\n", name, c.note);
	if (c.why[0])
		printf("FAIL: hostile/%s: %s\n", name, c.why);
	else
		printf("PASS: hostile/%s (%.2f s)\n", name, (double)(mono_ns() - t0) / 1e9);
	fflush(stdout);
	if (!viod_alive(pid))
		return 3;
	return c.why[0] ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },  { "log", required_argument, NULL, 'l' },
		{ "sock", required_argument, NULL, 's' }, { "other", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	char *socks[MAX_OTHERS + 1], *others[MAX_OTHERS];
	unsigned nsocks = 0, nothers = 0;
	const char *log = NULL, *cmd;
	pid_t pid = 0;
	int o;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "isolate"))
		return isolate_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "list")) {
		for (size_t g = 0; g < NGROUPS; g++)
			for (const struct hcase *k = groups[g]; k->name; k++)
				printf("%s\n", k->name);
		return 0;
	}
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'p': pid = (pid_t)atoi(optarg); break;
		case 'l': log = optarg; break;
		case 's':
			if (nsocks == MAX_OTHERS + 1)
				return 2;
			socks[nsocks++] = optarg;
			break;
		case 'o':
			if (nothers == MAX_OTHERS)
				return 2;
			others[nothers++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!strcmp(cmd, "verify")) {
		int bad = 0;

		for (unsigned i = 0; i < nsocks; i++) {
			char why[400];

			if (verify_blk(socks[i], why, sizeof(why))) {
				printf("FAIL: hostile/baseline-io: %s\n", why);
				bad = 1;
			}
		}
		if (!bad)
			printf("PASS: hostile/baseline-io\n");
		return bad;
	}
	if (!strcmp(cmd, "run") && pid > 0 && log && nsocks == 1 && optind == argc - 1)
		return run(pid, log, socks[0], others, nothers, argv[optind]);
	usage(stderr);
	return 2;
}
