/* SPDX-License-Identifier: MIT */
/*
 * The misbehaving front-end A of the isolation test: one attack per mode,
 * started and stopped on demand (it runs again for the SIGTERM check), with
 * an optional check of what viod must have done about A itself. Attacks run
 * on their own thread when they must keep going; every wait is bounded.
 */
#ifndef VIO_HOSTILE_ATTACKS_H
#define VIO_HOSTILE_ATTACKS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "hfe.h"

struct attack {
	char sock[256];       /* the device A attacks */
	char client_path[256]; /* where viod's client-mode device connects */
	const char *log;
	struct hfe h;
	struct hfe h2;        /* a second connection, to another device */
	pthread_t th;
	bool th_running;
	atomic_bool stop;
	atomic_uint outstanding; /* requests A has posted and not seen used */
	atomic_uint done;        /* requests A has seen used */
	atomic_bool hungup;      /* viod closed A's connection */
	uint64_t since;          /* when the attack's first byte went out */
	int fds[4];            /* pipe ends, sockets A keeps open */
	unsigned accepted;     /* regions or requests viod accepted */
	char why[300];         /* a failure of the attacker-side check */
	char note[300];
};

struct attack_mode {
	const char *name;
	const char *device;  /* socket file in the test directory */
	int window_ms;       /* how long B is measured under attack */
	int arm_ms;          /* how long the attack needs to bite before the SIGTERM check */
	bool cpu_window;     /* B pauses for 1 s to measure viod's data-plane CPU */
	const char *what;    /* one line: what A does */
	int (*start)(struct attack *a);
	/* What viod must have done about A: 0 yes, -1 no (a->why), 1 nothing to check. */
	int (*contained)(struct attack *a);
	const char *check;   /* the name contained's line goes by (NULL: attacker-contained) */
};

extern const struct attack_mode attack_modes[];
const struct attack_mode *attack_find(const char *name);

/* Prepare a (paths under dir) before the first start. */
void attack_init(struct attack *a, const char *dir, const struct attack_mode *m,
		 const char *log);
/* Stop A's thread, close its connection and fds, remove what it created. */
void attack_stop(struct attack *a);

#endif
