/* SPDX-License-Identifier: MIT */
/*
 * scale_probe: vio's frontend on every device of a large viod at once, from
 * one process. Connects to N vhost-user-blk sockets (PREFIX0.sock ...) and
 * writes, reads back and checks one sector on each; connects to M net
 * sockets and passes a frame each way between ports 2k and 2k+1, checking
 * its bytes. Prints "PASS: scale_probe/name" or "FAIL: scale_probe/name: why",
 * then "READY"; with --hold it then stays connected and sends nothing (the
 * "connected idle" state a test measures) until SIGTERM or SIGINT, when it
 * disconnects every device cleanly. Every wait is bounded.
 *
 * Usage: scale_probe [--hold] [--blk N PREFIX] [--net M PREFIX]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../tools/vio-bench/net_port.h"
#include "vio/vio.h"

#define TMO_MS 3000
#define ETYPE 0x88b5
#define FRAME_LEN 200

struct blk_dev {
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	uint8_t *buf; /* 4 KiB in shared memory */
};

static volatile sig_atomic_t stop;
static int failures;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fail(const char *name, const char *why, unsigned dev)
{
	printf("FAIL: scale_probe/%s: device %u: %s\n", name, dev, why);
	failures++;
}

static uint8_t pat(unsigned dev, unsigned i)
{
	return (uint8_t)(dev * 131u + i * 7u + 1);
}

static int blk_open(const char *sock, struct blk_dev *b)
{
	struct vio_vhu_frontend_opts o = {
		.socket_path = sock, .mem_size = 1u << 20, .nqueues = 1, .queue_size = 16,
	};
	const struct vio_drv_ctx *ctx;
	size_t area_len;
	void *area;
	int r;

	r = vio_vhu_frontend_connect(&o, &b->f);
	if (r)
		return r;
	ctx = vio_vhu_frontend_queue(b->f, 0);
	area_len = vio_blk_client_area_size(ctx, 1);
	area = vio_vhu_frontend_alloc(b->f, area_len, 64);
	b->buf = vio_vhu_frontend_alloc(b->f, 4096, 4096);
	if (!area || !b->buf)
		return -ENOMEM;
	return vio_blk_client_new(ctx, 1, area, area_len, &b->c);
}

/* Write sector dev % 8 with dev's pattern, read it back into a cleared buffer, compare. */
static const char *blk_check(struct blk_dev *b, unsigned dev)
{
	struct iovec iov = { b->buf, 512 };
	struct vio_blk_client_req rq = { .type = VIRTIO_BLK_T_OUT, .sector = dev % 8,
					 .iov = &iov, .niov = 1 };
	uint32_t len;

	for (unsigned i = 0; i < 512; i++)
		b->buf[i] = pat(dev, i);
	if (vio_blk_client_sync(b->c, 0, &rq, NULL, NULL, TMO_MS, &len) != VIRTIO_BLK_S_OK)
		return "write failed";
	memset(b->buf, 0, 512);
	rq.type = VIRTIO_BLK_T_IN;
	if (vio_blk_client_sync(b->c, 0, &rq, NULL, NULL, TMO_MS, &len) != VIRTIO_BLK_S_OK)
		return "read failed";
	for (unsigned i = 0; i < 512; i++)
		if (b->buf[i] != pat(dev, i))
			return "read back other bytes than written";
	return NULL;
}

static void mac_of(uint8_t *mac, unsigned port)
{
	mac[0] = 0x02;
	mac[1] = 0x5c;
	mac[2] = 0;
	mac[3] = 0;
	mac[4] = (uint8_t)(port >> 8);
	mac[5] = (uint8_t)port;
}

static int net_send(struct net_port *p, unsigned from, unsigned to)
{
	uint8_t f[FRAME_LEN];
	struct vio_net_tx tx = { f, sizeof(f), NULL };

	mac_of(f, to);
	mac_of(f + 6, from);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	for (unsigned i = 14; i < sizeof(f); i++)
		f[i] = pat(from, i);
	return vio_net_client_send(p->cl, 0, &tx, 1) == 1 ? 0 : -EIO;
}

/* Wait for the frame `from` sent to `to` on port p; other frames (floods) are dropped. */
static const char *net_expect(struct net_port *p, unsigned from, unsigned to)
{
	uint64_t end = now_ms() + TMO_MS;
	uint8_t got[FRAME_LEN + 64], mac[6];

	do {
		struct vio_net_rx rx[16];
		int n = vio_net_client_recv(p->cl, 0, rx, 16);

		if (n < 0)
			return "receive queue broke";
		for (int i = 0; i < n; i++) {
			size_t len = vio_net_rx_copy(&rx[i], got, sizeof(got));

			mac_of(mac, from);
			if (len < 14 || memcmp(got + 6, mac, 6))
				continue;
			mac_of(mac, to);
			if (len != FRAME_LEN || memcmp(got, mac, 6))
				return "frame arrived with another length or destination";
			for (unsigned k = 14; k < FRAME_LEN; k++)
				if (got[k] != pat(from, k))
					return "frame arrived with other bytes";
			return NULL;
		}
		if (n == 0)
			usleep(100);
	} while (now_ms() < end);
	return "frame did not arrive within 3 s";
}

static void net_drain(struct net_port *p)
{
	struct vio_net_rx rx[16];

	while (vio_net_client_recv(p->cl, 0, rx, 16) > 0)
		;
	vio_net_client_tx_reap(p->cl, 0);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: scale_probe [--hold] [--blk N PREFIX] [--net M PREFIX]\n");
}

int main(int argc, char **argv)
{
	const char *blk_prefix = NULL, *net_prefix = NULL;
	unsigned nblk = 0, nnet = 0, ok = 0;
	struct blk_dev *blks;
	struct net_port *nets;
	bool hold = false;
	char path[4200], err[256];
	sigset_t block, waitmask;
	uint64_t t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--hold")) {
			hold = true;
		} else if (!strcmp(argv[i], "--blk") && i + 2 < argc) {
			nblk = (unsigned)strtoul(argv[++i], NULL, 10);
			blk_prefix = argv[++i];
		} else if (!strcmp(argv[i], "--net") && i + 2 < argc) {
			nnet = (unsigned)strtoul(argv[++i], NULL, 10);
			net_prefix = argv[++i];
		} else {
			usage();
			return 2;
		}
	}
	if ((!nblk && !nnet) || nblk > 65536 || nnet > 65536 || nnet == 1) {
		usage();
		return 2;
	}
	raise_fd_limit();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	blks = calloc(nblk ? nblk : 1, sizeof(*blks));
	nets = calloc(nnet ? nnet : 1, sizeof(*nets));
	if (!blks || !nets)
		return 1;

	t0 = now_ms();
	for (unsigned i = 0; i < nblk && !stop; i++) {
		const char *why = NULL;
		int r;

		snprintf(path, sizeof(path), "%s%u.sock", blk_prefix, i);
		r = blk_open(path, &blks[i]);
		if (r)
			why = strerror(-r);
		else
			why = blk_check(&blks[i], i);
		if (why)
			fail("blk", why, i);
		else
			ok++;
	}
	if (nblk && ok == nblk)
		printf("PASS: scale_probe/blk\n# %u devices connected, a sector written and read back "
		       "on each (%llu ms)\n", nblk, (unsigned long long)(now_ms() - t0));

	t0 = now_ms();
	ok = 0;
	for (unsigned i = 0; i < nnet && !stop; i++) {
		struct net_port_opts o = {
			.socket = path, .pairs = 1, .qsize = 64, .rx_buf_size = 2048,
			.tx_buf_size = 2048,
		};

		snprintf(path, sizeof(path), "%s%u.sock", net_prefix, i);
		if (net_port_open(&o, &nets[i], err, sizeof(err)))
			fail("net-connect", err, i);
	}
	/* Ports 2k and 2k+1 (the last one of an odd count with port 0): one frame each way. */
	for (unsigned a = 0; a + 1 < nnet + (nnet & 1) && !stop; a += 2) {
		unsigned b = a + 1 < nnet ? a + 1 : 0;
		const char *why = NULL;

		if (!nets[a].cl || !nets[b].cl)
			continue;
		/* The first frame floods (b is not learned yet); the answer goes straight back. */
		if (net_send(&nets[a], a, b) || (why = net_expect(&nets[b], a, b))) {
			fail("net", why ? why : "send failed", b);
			continue;
		}
		if (net_send(&nets[b], b, a) || (why = net_expect(&nets[a], b, a))) {
			fail("net", why ? why : "send failed", a);
			continue;
		}
		ok += b ? 2 : 1;
		for (unsigned k = 0; k < nnet; k++)
			if (nets[k].cl)
				net_drain(&nets[k]);
	}
	if (nnet && ok == nnet)
		printf("PASS: scale_probe/net\n# %u ports connected, a frame checked each way between "
		       "partners (%llu ms)\n", nnet, (unsigned long long)(now_ms() - t0));
	else if (nnet)
		printf("FAIL: scale_probe/net: %u of %u ports exchanged frames\n", ok, nnet);
	printf("READY\n");

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	while (hold && !stop)
		sigsuspend(&waitmask); /* the signals are blocked elsewhere: none slips past the test */

	for (unsigned i = 0; i < nblk; i++) {
		if (blks[i].f)
			vio_vhu_frontend_disconnect(blks[i].f);
		vio_blk_client_free(blks[i].c);
		vio_vhu_frontend_close(blks[i].f);
	}
	for (unsigned i = 0; i < nnet; i++)
		net_port_close(&nets[i]);
	free(blks);
	free(nets);
	return failures ? 1 : 0;
}
