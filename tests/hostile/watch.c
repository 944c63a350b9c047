/* SPDX-License-Identifier: MIT */
/*
 * viod seen from outside: /proc for liveness, fds, mappings and thread CPU
 * time, its log file for what it said, and libvio's frontend + blk client as
 * the well-behaved front-end that checks a device still serves. Every wait
 * here is bounded; nothing here changes viod.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vio/vhost_user.h"
#include "watch.h"

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

/* The state letter of /proc/PID[/task/TID]/stat, with utime+stime in ticks. */
static int read_stat(const char *path, char *state, uint64_t *ticks)
{
	char buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f = fopen(path, "r");
	size_t len;

	if (!f)
		return -errno;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", state, &ut,
			 &st) != 3)
		return -EINVAL;
	if (ticks)
		*ticks = ut + st;
	return 0;
}

bool viod_alive(pid_t pid)
{
	char path[64], st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return read_stat(path, &st, NULL) == 0 && st != 'Z' && st != 'X';
}

int viod_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int viod_maps(pid_t pid, struct viod_maps *m)
{
	char path[64], line[512];
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (sscanf(line, "%llx-%llx", &lo, &hi) != 2)
			continue;
		m->bytes += hi - lo;
		if (strstr(line, "/memfd:"))
			m->memfds++;
	}
	fclose(f);
	return 0;
}

int viod_settle_fds(pid_t pid, int want, int ms)
{
	uint64_t end = mono_ns() + (uint64_t)ms * 1000000;
	int n;

	for (;;) {
		n = viod_fds(pid);
		if (n <= want || mono_ns() >= end)
			return n;
		usleep(20000);
	}
}

/* Call fn for each data-plane thread (not the main thread, not io_uring's workers). */
static void each_data_thread(pid_t pid, void (*fn)(const char *task_dir, void *arg), void *arg)
{
	char path[300], comm[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == (int)pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		comm[0] = 0;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		if (!strncmp(comm, "iou-", 4)) /* io_uring's workers do the engine's copies */
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s", (int)pid, e->d_name);
		fn(path, arg);
	}
	closedir(d);
}

static void add_state(const char *task, void *arg)
{
	struct viod_states *st = arg;
	char path[320], c;

	snprintf(path, sizeof(path), "%s/stat", task);
	if (read_stat(path, &c, NULL))
		return;
	st->r += c == 'R';
	st->s += c == 'S';
	st->d += c == 'D';
}

void viod_data_states(pid_t pid, struct viod_states *st)
{
	memset(st, 0, sizeof(*st));
	each_data_thread(pid, add_state, st);
}

long log_mark(const char *path)
{
	FILE *f = fopen(path, "r");
	long n;

	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fclose(f);
	return n < 0 ? 0 : n;
}

bool log_has(const char *path, long from, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	bool found = false;

	if (!f)
		return false;
	fseek(f, from, SEEK_SET);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

int goodfe_open(struct goodfe *g, const char *sock, uint64_t mem_size, int timeout_ms,
		char *why, size_t n)
{
	struct vio_vhu_frontend_opts o = {
		.socket_path = sock, .mem_size = mem_size, .nqueues = 1, .timeout_ms = timeout_ms,
	};
	const struct vio_drv_ctx *ctx;
	size_t area_len;
	void *area;
	int r;

	memset(g, 0, sizeof(*g));
	g->gen = mono_ns();
	r = vio_vhu_frontend_connect(&o, &g->f);
	if (r) {
		say(why, n, "%s: a fresh front-end could not set up: %s", sock, strerror(-r));
		return -1;
	}
	r = vio_vhu_frontend_get_config(g->f, 0, &g->sectors, sizeof(g->sectors));
	if (r || g->sectors < 16) {
		say(why, n, "%s: GET_CONFIG capacity: %s (%llu sectors)", sock,
		    r ? strerror(-r) : "too small", (unsigned long long)g->sectors);
		goto fail;
	}
	ctx = vio_vhu_frontend_queue(g->f, 0);
	area_len = vio_blk_client_area_size(ctx, 1);
	area = vio_vhu_frontend_alloc(g->f, area_len, 64);
	g->buf = vio_vhu_frontend_alloc(g->f, 4096, 4096);
	if (!area || !g->buf || vio_blk_client_new(ctx, 1, area, area_len, &g->c)) {
		say(why, n, "%s: no room for the blk client in %llu bytes", sock,
		    (unsigned long long)mem_size);
		goto fail;
	}
	return 0;
fail:
	goodfe_close(g);
	return -1;
}

static int sync_req(struct goodfe *g, uint32_t type, uint64_t sector, unsigned timeout_ms,
		    uint64_t *lat)
{
	struct iovec iov = { g->buf, 4096 };
	struct vio_blk_client_req req = { .type = type, .sector = sector, .iov = &iov, .niov = 1 };
	uint64_t t0 = mono_ns();
	uint32_t len;
	int r = vio_blk_client_sync(g->c, 0, &req, NULL, NULL, timeout_ms, &len);

	if (lat)
		*lat = mono_ns() - t0;
	return r;
}

int goodfe_rw(struct goodfe *g, uint64_t sector, unsigned timeout_ms, uint64_t lat[2], char *why,
	      size_t n)
{
	uint64_t pat[512];
	int r;

	g->gen++;
	for (unsigned i = 0; i < 512; i++)
		pat[i] = (g->gen * 0x9e3779b97f4a7c15ull) ^ (sector << 16) ^ i;
	memcpy(g->buf, pat, sizeof(pat));
	r = sync_req(g, VIRTIO_BLK_T_OUT, sector, timeout_ms, lat ? &lat[0] : NULL);
	if (r != VIRTIO_BLK_S_OK) {
		say(why, n, "write of sector %llu: %s%d", (unsigned long long)sector,
		    r == -ETIMEDOUT ? "no answer in time, " : "status ", r);
		return -1;
	}
	memset(g->buf, 0, sizeof(pat));
	r = sync_req(g, VIRTIO_BLK_T_IN, sector, timeout_ms, lat ? &lat[1] : NULL);
	if (r != VIRTIO_BLK_S_OK) {
		say(why, n, "read of sector %llu: %s%d", (unsigned long long)sector,
		    r == -ETIMEDOUT ? "no answer in time, " : "status ", r);
		return -1;
	}
	if (memcmp(g->buf, pat, sizeof(pat))) {
		say(why, n, "sector %llu read back other data than written",
		    (unsigned long long)sector);
		return -1;
	}
	return 0;
}

int goodfe_ctl(struct goodfe *g, uint64_t *lat_ns, char *why, size_t n)
{
	uint64_t t0 = mono_ns();
	uint8_t st;
	int r = vio_vhu_frontend_get_status(g->f, &st);

	*lat_ns = mono_ns() - t0;
	if (r) {
		say(why, n, "GET_STATUS: %s", strerror(-r));
		return -1;
	}
	if (st & VIRTIO_CONFIG_S_NEEDS_RESET) {
		say(why, n, "the well-behaved front-end's device reports NEEDS_RESET");
		return -1;
	}
	return 0;
}

void goodfe_close(struct goodfe *g)
{
	vio_blk_client_free(g->c);
	g->c = NULL;
	if (g->f) {
		vio_vhu_frontend_disconnect(g->f);
		vio_vhu_frontend_close(g->f);
	}
	g->f = NULL;
}

int verify_blk(const char *sock, char *why, size_t n)
{
	struct goodfe g;
	char what[200];
	int r;

	if (goodfe_open(&g, sock, 4u << 20, 3000, why, n))
		return -1;
	r = goodfe_rw(&g, (g.sectors / 2) & ~7ull, 3000, NULL, what, sizeof(what));
	if (r)
		say(why, n, "%s: %s", sock, what);
	goodfe_close(&g);
	return r;
}
