/* SPDX-License-Identifier: MIT */
/*
 * Watching viod from outside, and a well-behaved front-end to check it still
 * serves: liveness, open fds and mappings from /proc, new lines in its log,
 * data-plane CPU time, and verified I/O through libvio's own frontend and blk
 * client. Reads only; never signals or changes viod.
 */
#ifndef VIO_HOSTILE_WATCH_H
#define VIO_HOSTILE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vio_vhu_frontend;
struct vio_blk_client;

/* Running and not a zombie. */
bool viod_alive(pid_t pid);
/* Entries in /proc/PID/fd, or -errno. */
int viod_fds(pid_t pid);

struct viod_maps {
	uint64_t bytes;  /* sum of every mapping's length */
	unsigned memfds; /* mappings of memfds (guest memory) */
};
int viod_maps(pid_t pid, struct viod_maps *m);

/* Poll until viod holds at most want fds (ms bound); the last count seen. */
int viod_settle_fds(pid_t pid, int want, int ms);

/*
 * Of viod's data-plane threads (every thread but the main one and
 * io_uring's workers), how many are, right now, runnable (R: on a CPU or
 * waiting for one), asleep in a wait they chose (S: epoll, futex) or
 * blocked in the kernel (D: typically the disk's request queue).
 */
struct viod_states {
	unsigned r, s, d;
};
void viod_data_states(pid_t pid, struct viod_states *st);

/* The log's current size, and whether what was appended since holds needle. */
long log_mark(const char *path);
bool log_has(const char *path, long from, const char *needle);

/* A well-behaved front-end with one queue, a blk client and a 4 KiB buffer. */
struct goodfe {
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	uint8_t *buf;
	uint64_t sectors; /* capacity */
	uint64_t gen;     /* makes each write's pattern new */
};

/* Connect with mem_size bytes of memory, every reply within timeout_ms. 0 or -1 (why). */
int goodfe_open(struct goodfe *g, const char *sock, uint64_t mem_size, int timeout_ms,
		char *why, size_t n);
/*
 * Write 4 KiB of a fresh pattern at sector, read it back, compare. Each
 * request's latency in ns goes to lat[0] (write) and lat[1] (read) if given.
 * 0 or -1 (why).
 */
int goodfe_rw(struct goodfe *g, uint64_t sector, unsigned timeout_ms, uint64_t lat[2], char *why,
	      size_t n);
/* GET_STATUS round trip; its latency in ns. 0 or -1 (why). */
int goodfe_ctl(struct goodfe *g, uint64_t *lat_ns, char *why, size_t n);
void goodfe_close(struct goodfe *g);

/* Open, one verified write+read near the middle of the disk, close. 0 or -1 (why). */
int verify_blk(const char *sock, char *why, size_t n);

uint64_t mono_ns(void);

#endif
