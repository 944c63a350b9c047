/* SPDX-License-Identifier: MIT */
/*
 * Front-end A of the isolation test, one attack per way of misbehaving that
 * issue 12 names: memory that SIGBUSes, blocking fds for kick/call/err, a
 * message dripped a byte at a time, a listener whose backlog is full (viod
 * in client mode), 4 TiB regions, a 16M-entry indirect table, more requests
 * than the device's slots, synchronous write-zeroes, a ring scribbled on.
 * It only attacks its own device; B and the probe are isolate.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attacks.h"
#include "vio/blk.h"
#include "vio/virtq.h"
#include "watch.h"

#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define IND VIRTQ_DESC_F_INDIRECT

static void say(char *buf, size_t n, const char *fmt, const char *arg, int e)
{
	snprintf(buf, n, fmt, arg, e == HFE_REFUSED ? "refused" : strerror(e < 0 ? -e : e));
}

/* Sleep ms, waking early when the attack is stopped. */
static void nap(struct attack *a, int ms)
{
	while (ms > 0 && !atomic_load(&a->stop)) {
		usleep(ms > 20 ? 20000 : (useconds_t)ms * 1000);
		ms -= 20;
	}
}

static int spawn(struct attack *a, void *(*fn)(void *))
{
	if (pthread_create(&a->th, NULL, fn, a))
		return -1;
	a->th_running = true;
	return 0;
}

static int a_setup(struct attack *a, uint64_t features, uint16_t qsize, uint64_t mem, bool seal)
{
	int r = hfe_connect(&a->h, a->sock);

	if (!r)
		r = hfe_negotiate(&a->h, features);
	if (!r)
		r = hfe_share_mem(&a->h, mem, seal);
	if (!r) {
		hfe_ring_layout(&a->h, qsize);
		r = hfe_ring_start(&a->h);
	}
	if (r)
		say(a->why, sizeof(a->why), "A's set-up on %s: %s", a->sock, r);
	return r ? -1 : 0;
}

/* A's device failed its queue or hung up on A (within ms). */
static int failed_a(struct attack *a, int ms, const char *what)
{
	int r = a->h.sock >= 0 ? hfe_wait_needs_reset(&a->h, ms) : -ECONNRESET;

	if (r == 1 || r == -ECONNRESET)
		return 0;
	snprintf(a->why, sizeof(a->why), "%s: A's device shows no NEEDS_RESET", what);
	return -1;
}

/* ---- (1) memory that raises SIGBUS ---- */

/* A 16 MiB region on a 256 KiB memfd: rings inside the file, the request past its end. */
static int s_sigbus_region(struct attack *a)
{
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r;
	} t = { .nregions = 1 };
	struct hfe *h = &a->h;
	int r = hfe_connect(h, a->sock);

	if (!r)
		r = hfe_negotiate(h, 0);
	if (!r)
		r = hfe_mem_new(&h->mem, HFE_HDR_OFF, true);
	if (r) {
		say(a->why, sizeof(a->why), "A's set-up on %s: %s", a->sock, r);
		return -1;
	}
	t.r = (struct vio_vhu_mem_region){ 0, 16u << 20, (uintptr_t)h->mem.host, 0 };
	r = hfe_call(h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &h->mem.fd, 1, NULL);
	if (r == HFE_REFUSED || r == -ECONNRESET)
		return 0;
	a->accepted = 1;
	hfe_ring_layout(h, 16);
	if (hfe_ring_start(h))
		return 0;
	/* The header lies past the file's end: only the backend touches it. */
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
	hfe_post(h, 0);
	return 0;
}

static int k_sigbus_region(struct attack *a)
{
	return a->accepted ? failed_a(a, 1000, "a region past its memfd's end was accepted") : 0;
}

/* Memory truncated under the backend after SET_MEM_TABLE. */
static int s_sigbus_truncate(struct attack *a)
{
	struct hfe *h = &a->h;

	if (a_setup(a, 0, 16, HFE_MEM_SIZE, false))
		return h->sock < 0 ? 0 : -1; /* unsealed memory refused: nothing to truncate */
	a->accepted = 1;
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
	h->avail->ring[0] = 0;
	if (ftruncate(h->mem.fd, HFE_HDR_OFF) < 0)
		return -1;
	h->avail_idx = 1;
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
	return 0;
}

static int k_sigbus_truncate(struct attack *a)
{
	return a->accepted ? failed_a(a, 1000, "memory truncated under the backend") : 0;
}

/* ---- (2) kick / call / err fds that block ---- */

/* The ring as hfe_ring_start sets it up, with the given fds; a refused fd is noted. */
static int ring_start_fds(struct attack *a, int kick, int call, int err)
{
	struct hfe *h = &a->h;
	struct vio_vhu_vring_addr ad = { .desc_user_addr = (uintptr_t)h->desc,
					 .used_user_addr = (uintptr_t)h->used,
					 .avail_user_addr = (uintptr_t)h->avail };
	uint64_t q = 0;
	int r = hfe_call_state(h, VHOST_USER_SET_VRING_NUM, 0, h->qsize);

	if (!r)
		r = hfe_call_state(h, VHOST_USER_SET_VRING_BASE, 0, 0);
	if (!r)
		r = hfe_call(h, VHOST_USER_SET_VRING_ADDR, &ad, sizeof(ad), NULL, 0, NULL);
	if (!r && err >= 0) {
		r = hfe_call(h, VHOST_USER_SET_VRING_ERR, &q, 8, &err, 1, NULL);
		a->accepted += r == 0;
		r = r == HFE_REFUSED ? 0 : r;
	}
	if (!r) {
		r = hfe_call(h, VHOST_USER_SET_VRING_CALL, &q, 8, &call, 1, NULL);
		a->accepted += r == 0 && call != h->call_fd;
		r = r == HFE_REFUSED ? 0 : r;
	}
	if (!r) {
		r = hfe_call(h, VHOST_USER_SET_VRING_KICK, &q, 8, &kick, 1, NULL);
		a->accepted += r == 0 && kick != h->kick_fd;
		r = r == HFE_REFUSED ? 0 : r;
	}
	if (!r)
		r = hfe_call_state(h, VHOST_USER_SET_VRING_ENABLE, 0, 1);
	if (!r)
		r = hfe_call_u64(h, VHOST_USER_SET_STATUS, 0xf);
	if (r)
		say(a->why, sizeof(a->why), "A's ring on %s: %s", a->sock, r);
	return r;
}

static int prepare(struct attack *a, uint16_t qsize)
{
	struct hfe *h = &a->h;
	int r = hfe_connect(h, a->sock);

	if (!r)
		r = hfe_negotiate(h, 0);
	if (!r)
		r = hfe_share_mem(h, HFE_MEM_SIZE, true);
	if (r) {
		say(a->why, sizeof(a->why), "A's set-up on %s: %s", a->sock, r);
		return -1;
	}
	hfe_ring_layout(h, qsize);
	h->kick_fd = hfe_eventfd();
	h->call_fd = hfe_eventfd();
	return 0;
}

/* A pipe whose buffer is full, its write end blocking again (the flag is the file's, shared). */
static int full_pipe(struct attack *a)
{
	int p[2];
	char junk[4096] = { 0 };

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -1;
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	while (write(p[1], junk, 1) > 0)
		;
	fcntl(p[1], F_SETFL, 0);
	a->fds[0] = p[0];
	a->fds[1] = p[1];
	return p[1];
}

/* Requests every 10 ms, each completion a write to the call fd. */
static void *t_requests(void *arg)
{
	struct attack *a = arg;

	while (!atomic_load(&a->stop)) {
		hfe_blk_ms(&a->h, VIRTIO_BLK_T_IN, 0, 512, NULL, 100);
		nap(a, 10);
	}
	return NULL;
}

static int s_call_pipe_full(struct attack *a)
{
	int call;

	if (prepare(a, 16) || (call = full_pipe(a)) < 0 ||
	    ring_start_fds(a, a->h.kick_fd, call, -1))
		return -1;
	return spawn(a, t_requests);
}

static int s_err_pipe_full(struct attack *a)
{
	struct hfe *h = &a->h;
	int err;

	if (prepare(a, 16) || (err = full_pipe(a)) < 0 ||
	    ring_start_fds(a, h->kick_fd, h->call_fd, err))
		return -1;
	/* A ring fault: the backend writes the err fd. */
	h->avail->ring[0] = 0xffff;
	h->avail_idx = 1;
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
	return 0;
}

/* Requests made available without a kick: only a polling backend sees them. */
static void *t_silent_requests(void *arg)
{
	struct attack *a = arg;
	struct hfe *h = &a->h;
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN };

	memcpy(hfe_ptr(h, HFE_HDR_OFF), &hdr, sizeof(hdr));
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
	while (!atomic_load(&a->stop)) {
		if (h->avail_idx == h->used->idx) {
			h->avail->ring[h->avail_idx % h->qsize] = 0;
			h->avail_idx++;
			__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
		}
		nap(a, 10);
	}
	return NULL;
}

/*
 * A socket with SO_RCVLOWAT 64 as the kick fd and one byte in it: poll says
 * readable, a blocking read of 8 bytes waits for 8.
 */
static int s_kick_rcvlowat(struct attack *a)
{
	int sv[2], low = 64;
	char one = 1;

	if (prepare(a, 16) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	a->fds[0] = sv[0];
	a->fds[1] = sv[1];
	if (setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low)) ||
	    ring_start_fds(a, sv[0], a->h.call_fd, -1))
		return -1;
	if (write(sv[1], &one, 1) != 1)
		return -1;
	return spawn(a, t_silent_requests);
}

/* ---- (3) a message dripped a byte every 1.5 s ---- */

#define DRIP_GIVE_UP_NS 5000000000ull /* the backend must have hung up by then */

static void *t_drip(void *arg)
{
	struct attack *a = arg;
	uint32_t hdr[3] = { 60, VHOST_USER_VERSION, 65000 };
	uint64_t next;
	char b = 0;

	a->since = mono_ns();
	next = a->since + 1500000000ull;
	if (hfe_send_raw(a->h.sock, hdr, sizeof(hdr), NULL, 0))
		return NULL;
	while (!atomic_load(&a->stop)) {
		struct pollfd pfd = { .fd = a->h.sock, .events = POLLIN };
		bool gone = poll(&pfd, 1, 50) == 1 && recv(a->h.sock, &b, 1, MSG_DONTWAIT) <= 0;

		if (!gone && mono_ns() >= next) {
			gone = hfe_send_raw(a->h.sock, &b, 1, NULL, 0) != 0;
			next += 1500000000ull;
		}
		if (gone) {
			snprintf(a->note, sizeof(a->note), "viod hung up on the drip after %.1f s",
				 (double)(mono_ns() - a->since) / 1e9);
			atomic_store(&a->hungup, true);
			break;
		}
	}
	return NULL;
}

static int s_drip(struct attack *a)
{
	int r = hfe_connect(&a->h, a->sock);

	if (r) {
		say(a->why, sizeof(a->why), "A's connect to %s: %s", a->sock, r);
		return -1;
	}
	return spawn(a, t_drip);
}

/* A message must arrive whole in bounded time: the dripper is hung up on within 5 s. */
static int k_drip(struct attack *a)
{
	while (!atomic_load(&a->hungup) && a->since && mono_ns() - a->since < DRIP_GIVE_UP_NS)
		usleep(20000);
	if (atomic_load(&a->hungup))
		return 0;
	snprintf(a->why, sizeof(a->why), "the dripping connection is still open after %.1f s",
		 (double)(mono_ns() - a->since) / 1e9);
	return -1;
}

/* ---- (4) viod in client mode, a listener whose backlog is full ---- */

static int s_client_backlog(struct attack *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char tmp[sizeof(a->client_path) + 8];
	int l, f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", a->client_path);
	if (strlen(tmp) >= sizeof(sa.sun_path)) {
		snprintf(a->why, sizeof(a->why), "socket path too long: %s", tmp);
		return -1;
	}
	unlink(tmp);
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	a->fds[0] = l;
	a->fds[1] = f;
	if (l < 0 || f < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 0) ||
	    connect(f, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(a->why, sizeof(a->why), "A's listener: %s", strerror(errno));
		return -1;
	}
	/* Full before viod can see it: it appears under the path viod dials only now. */
	if (rename(tmp, a->client_path)) {
		snprintf(a->why, sizeof(a->why), "rename: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- (5) regions of 4 TiB on one 4 KiB memfd ---- */

/*
 * ADD_MEM_REG on one connection until its slots are used: 4 TiB regions,
 * halving down to 1 GiB whenever one is refused, so that what is mapped
 * fills the address space's holes. Guest and user ranges never overlap.
 */
static int fill_slots(struct attack *a, struct hfe *h, const char *sock)
{
	uint64_t size = 1ull << 42, at = 1ull << 42;
	int r = hfe_connect(h, sock);

	if (!r)
		r = hfe_negotiate(h, 0);
	if (!r)
		r = hfe_mem_new(&h->mem, 4096, true);
	if (r) {
		say(a->why, sizeof(a->why), "A's set-up on %s: %s", sock, r);
		return -1;
	}
	for (unsigned slots = 0, tries = 0; slots < 32 && tries < 96 && h->sock >= 0; tries++) {
		struct vio_vhu_mem_single s = { .region = { at, size, at, 0 } };

		if (hfe_call(h, VHOST_USER_ADD_MEM_REG, &s, sizeof(s), &h->mem.fd, 1, NULL) == 0) {
			a->accepted++;
			slots++;
			at += size;
		} else if (size > (1ull << 30)) {
			size /= 2;
		} else {
			break;
		}
	}
	return 0;
}

/* Two of A's devices (a.sock and f.sock): 64 slots, enough to use up 128 TiB. */
static int s_mem_4tib(struct attack *a)
{
	char second[sizeof(a->sock)];
	char *slash = strrchr(a->sock, '/');

	snprintf(second, sizeof(second), "%.*s/f.sock", (int)(slash - a->sock), a->sock);
	if (fill_slots(a, &a->h, a->sock) || fill_slots(a, &a->h2, second))
		return -1;
	snprintf(a->note, sizeof(a->note), "viod accepted %u of A's regions", a->accepted);
	return 0;
}

static int k_mem_4tib(struct attack *a)
{
	if (!a->accepted)
		return 0;
	snprintf(a->why, sizeof(a->why), "viod mapped %u regions of up to 4 TiB backed by 4 KiB",
		 a->accepted);
	return -1;
}

/* ---- (6) a 16M-entry indirect table, 32 requests pointing at it ---- */

/*
 * The table claims 16M entries (256 MiB, inside a sparse 512 MiB memory);
 * `next` has 16 bits, so its first 64Ki entries form one ring of links: a
 * walker bounded only by the table's length would take 16M steps a request.
 */
static int s_indirect_16m(struct attack *a)
{
	const uint64_t at = 256ull << 20;
	const uint32_t n = 1u << 24;
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN };
	struct hfe *h = &a->h;
	struct virtq_desc *t;

	if (a_setup(a, VIO_BIT(VIRTIO_F_INDIRECT_DESC), 64, 512ull << 20, true))
		return -1;
	t = hfe_ptr(h, at);
	t[0] = (struct virtq_desc){ HFE_HDR_OFF, 16, NEXT, 1 };
	for (uint32_t i = 1; i < 65536; i++)
		t[i] = (struct virtq_desc){ HFE_DATA_OFF, 0, NEXT, (uint16_t)(i + 1) };
	memcpy(hfe_ptr(h, HFE_HDR_OFF), &hdr, sizeof(hdr));
	for (uint16_t i = 0; i < 32; i++) {
		hfe_desc(h, i, at, n * 16u, IND, 0);
		h->avail->ring[i] = i;
	}
	h->avail_idx = 32;
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
	return 0;
}

static int k_indirect_16m(struct attack *a)
{
	if (failed_a(a, 1000, "a 16M-entry indirect table"))
		return -1;
	/* viod is fresh for each mode: its whole log is this attack's. */
	if (a->log && !log_has(a->log, 0, vio_virtq_fault_str(VIO_VQ_BAD_INDIRECT))) {
		snprintf(a->why, sizeof(a->why), "viod's log does not name '%s'",
			 vio_virtq_fault_str(VIO_VQ_BAD_INDIRECT));
		return -1;
	}
	return 0;
}

/* ---- (7) more requests than the device's slots; synchronous write-zeroes ---- */

#define SLOT_REQS 1200u
#define SLOT_HDR(i) (HFE_HDR_OFF + 32u * (i))
#define SLOT_BUF 0x100000u
#define SLOT_LEN (1u << 20)

static void slot_post(struct hfe *h, uint16_t head)
{
	h->avail->ring[h->avail_idx % h->qsize] = head;
	h->avail_idx++;
}

/* Keep ~1200 one-MiB direct reads in the ring: the device holds 256, the rest wait. */
static void *t_slots(void *arg)
{
	struct attack *a = arg;
	struct hfe *h = &a->h;

	while (!atomic_load(&a->stop)) {
		uint16_t idx = __atomic_load_n(&h->used->idx, __ATOMIC_ACQUIRE);
		bool any = false;

		while (h->used_idx != idx) {
			uint32_t id = h->used->ring[h->used_idx % h->qsize].id;

			h->used_idx++;
			atomic_fetch_add(&a->done, 1);
			if (id < 3 * SLOT_REQS && id % 3 == 0)
				slot_post(h, (uint16_t)id);
			any = true;
		}
		if (any) {
			__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
			hfe_kick(h);
		}
		atomic_store(&a->outstanding, (uint16_t)(h->avail_idx - h->used_idx));
		usleep(1000);
	}
	return NULL;
}

static int s_slots_full(struct attack *a)
{
	struct hfe *h = &a->h;

	if (a_setup(a, 0, 4096, 4u << 20, true))
		return -1;
	for (unsigned i = 0; i < SLOT_REQS; i++) {
		struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN,
						 .sector = (i % 56) * (SLOT_LEN / 512) };
		uint16_t d = (uint16_t)(3 * i);

		memcpy(hfe_ptr(h, SLOT_HDR(i)), &hdr, sizeof(hdr));
		hfe_desc(h, d, SLOT_HDR(i), 16, NEXT, d + 1);
		hfe_desc(h, d + 1, SLOT_BUF, SLOT_LEN, NEXT | WR, d + 2);
		hfe_desc(h, d + 2, SLOT_HDR(i) + 16, 1, WR, 0);
		slot_post(h, d);
	}
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
	return spawn(a, t_slots);
}

/*
 * Eight write-zeroes of 16 segments each, each segment as much of the disk
 * as one may cover (a 256 MiB RAM disk: 4 GiB of zeroes per request).
 */
static int s_write_zeroes(struct attack *a)
{
	struct virtio_blk_discard_write_zeroes seg[VIO_BLK_MAX_DWZ_SEG];
	struct virtio_blk_config cfg;
	struct hfe *h = &a->h;
	int r;

	if (a_setup(a, VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES), 64, HFE_MEM_SIZE, true))
		return -1;
	r = hfe_blk_config(h, &cfg);
	if (r || !(h->features & VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES))) {
		snprintf(a->why, sizeof(a->why), "no write-zeroes on %s (%s)", a->sock,
			 r ? strerror(r < 0 ? -r : EIO) : "not offered");
		return -1;
	}
	for (unsigned i = 0; i < VIO_BLK_MAX_DWZ_SEG; i++)
		seg[i] = (struct virtio_blk_discard_write_zeroes){
			.sector = 0,
			.num_sectors = (uint32_t)(cfg.capacity < cfg.max_write_zeroes_sectors ?
						  cfg.capacity : cfg.max_write_zeroes_sectors),
		};
	memcpy(hfe_ptr(h, HFE_DATA_OFF), seg, sizeof(seg));
	for (unsigned i = 0; i < 8; i++) {
		struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_WRITE_ZEROES };
		uint16_t d = (uint16_t)(3 * i);

		memcpy(hfe_ptr(h, SLOT_HDR(i)), &hdr, sizeof(hdr));
		*(uint8_t *)hfe_ptr(h, SLOT_HDR(i) + 16) = 0xee; /* not written yet */
		hfe_desc(h, d, SLOT_HDR(i), 16, NEXT, d + 1);
		hfe_desc(h, d + 1, HFE_DATA_OFF, sizeof(seg), NEXT, d + 2);
		hfe_desc(h, d + 2, SLOT_HDR(i) + 16, 1, WR, 0);
		slot_post(h, d);
	}
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
	return 0;
}

/* The requests ran (or still run): none was refused, so B was measured against the load. */
static int k_write_zeroes(struct attack *a)
{
	unsigned done = 0;

	for (unsigned i = 0; i < 8; i++) {
		uint8_t st = *(volatile uint8_t *)hfe_ptr(&a->h, SLOT_HDR(i) + 16);

		if (st != VIRTIO_BLK_S_OK && st != 0xee) {
			snprintf(a->why, sizeof(a->why), "A's write-zeroes %u got status %u: the "
				 "load never ran", i, st);
			return -1;
		}
		done += st == VIRTIO_BLK_S_OK;
	}
	snprintf(a->note, sizeof(a->note), "%u of A's 8 write-zeroes done by the window's end",
		 done);
	return 0;
}

/* ---- a malicious ring writer ---- */

static void *t_scribble(void *arg)
{
	struct attack *a = arg;
	uint64_t x = mono_ns() | 1, *p = hfe_ptr(&a->h, 0);

	while (!atomic_load(&a->stop)) {
		for (unsigned i = 0; i < 512; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[(x >> 20) % (HFE_HDR_OFF / 8)] = x;
		}
		hfe_kick(&a->h);
		usleep(500);
	}
	return NULL;
}

static int s_ring_writer(struct attack *a)
{
	if (a_setup(a, VIO_BIT(VIRTIO_F_INDIRECT_DESC), 64, HFE_MEM_SIZE, true))
		return -1;
	return spawn(a, t_scribble);
}

/* ---- no attack: A is a well-behaved front-end, for the noise floor ---- */

static int s_none(struct attack *a)
{
	return a_setup(a, 0, 16, HFE_MEM_SIZE, true);
}

#define MODE(n, dev, win, what_, s, k) \
	{ .name = n, .device = dev, .window_ms = win, .arm_ms = 300, .what = what_, .start = s, \
	  .contained = k }

const struct attack_mode attack_modes[] = {
	MODE("none", "a.sock", 2500, "nothing: a well-behaved front-end (the noise floor)",
	     s_none, NULL),
	MODE("sigbus-region", "a.sock", 2500,
	     "a 16 MiB region on a 256 KiB memfd, a request past its end", s_sigbus_region,
	     k_sigbus_region),
	MODE("sigbus-truncate", "a.sock", 2500,
	     "guest memory truncated after SET_MEM_TABLE, then a request in the lost part",
	     s_sigbus_truncate, k_sigbus_truncate),
	MODE("call-pipe-full", "a.sock", 2500, "a full pipe as the call fd, requests every 10 ms",
	     s_call_pipe_full, NULL),
	MODE("err-pipe-full", "a.sock", 2500, "a full pipe as the err fd, then a ring fault",
	     s_err_pipe_full, NULL),
	MODE("kick-rcvlowat", "a.sock", 2500,
	     "a socket with SO_RCVLOWAT 64 holding one byte as the kick fd", s_kick_rcvlowat, NULL),
	MODE("drip", "a.sock", 3000, "a 65000-byte message announced, then one byte every 1.5 s",
	     s_drip, k_drip),
	/* viod redials at most every 2 s: give it that long to reach the full backlog. */
	{ .name = "client-backlog", .device = "d.sock", .window_ms = 4000, .arm_ms = 2500,
	  .what = "viod's client-mode device dials a listener whose backlog is full",
	  .start = s_client_backlog },
	MODE("mem-4tib", "a.sock", 2500,
	     "ADD_MEM_REG of 4 TiB (halving when refused) on a 4 KiB memfd, 32 slots on each of "
	     "two devices", s_mem_4tib, k_mem_4tib),
	MODE("indirect-16m", "a.sock", 2500,
	     "32 requests pointing at one indirect table of 16M entries", s_indirect_16m,
	     k_indirect_16m),
	{ .name = "slots-full", .device = "f.sock", .window_ms = 3000, .arm_ms = 300,
	  .cpu_window = true,
	  .what = "1200 one-MiB O_DIRECT reads kept in a 4096-entry ring (256 device slots)",
	  .start = s_slots_full },
	{ .name = "write-zeroes", .device = "a.sock", .window_ms = 2500, .arm_ms = 300,
	  .what = "8 write-zeroes requests of 16 whole-disk segments each",
	  .start = s_write_zeroes, .contained = k_write_zeroes, .check = "attack-ran" },
	MODE("ring-writer", "a.sock", 2500, "random writes all over a live ring, kicked",
	     s_ring_writer, NULL),
	{ .name = NULL },
};

const struct attack_mode *attack_find(const char *name)
{
	for (const struct attack_mode *m = attack_modes; m->name; m++)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

void attack_init(struct attack *a, const char *dir, const struct attack_mode *m,
		 const char *log)
{
	memset(a, 0, sizeof(*a));
	a->h.sock = a->h.kick_fd = a->h.call_fd = a->h.mem.fd = -1;
	a->h2.sock = a->h2.kick_fd = a->h2.call_fd = a->h2.mem.fd = -1;
	for (unsigned i = 0; i < 4; i++)
		a->fds[i] = -1;
	snprintf(a->sock, sizeof(a->sock), "%s/%s", dir, m->device);
	snprintf(a->client_path, sizeof(a->client_path), "%s/d.sock", dir);
	a->log = log;
	atomic_init(&a->stop, false);
	atomic_init(&a->outstanding, 0);
	atomic_init(&a->done, 0);
	atomic_init(&a->hungup, false);
}

void attack_stop(struct attack *a)
{
	atomic_store(&a->stop, true);
	if (a->th_running)
		pthread_join(a->th, NULL);
	a->th_running = false;
	hfe_close(&a->h);
	hfe_close(&a->h2);
	for (unsigned i = 0; i < 4; i++) {
		if (a->fds[i] >= 0)
			close(a->fds[i]);
		a->fds[i] = -1;
	}
	if (!strncmp(a->sock + strlen(a->sock) - 6, "d.sock", 6))
		unlink(a->client_path);
	atomic_store(&a->stop, false);
}
