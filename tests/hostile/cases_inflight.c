/* SPDX-License-Identifier: MIT */
/*
 * A hostile inflight region (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): the
 * front-end maps it too, so it may hand back anything. SET_INFLIGHT_FD with
 * a file too small, unsealed, not a file, the wrong shape or offset must be
 * refused; a region whose contents do not add up (version, flags, the last
 * batch's links) must fail the queue with NEEDS_RESET and say so; a chain
 * the region says was in flight goes through the walker like any other; a
 * region of noise must not crash anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"

#define Q 16
#define INFLIGHT VIO_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)

/* The split layout of the spec (docs/interop/vhost-user.rst, "Inflight I/O tracking"). */
struct split_entry {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct split_region {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct split_entry desc[];
};

/* Connect with INFLIGHT_SHMFD agreed (unless without) and share memory. */
static int conn(struct hctx *c, struct hfe *h, bool without)
{
	int r = hfe_connect(h, c->sock);

	h->extra_protocol = without ? 0 : INFLIGHT;
	if (!r)
		r = hfe_negotiate(h, 0);
	if (!r)
		r = hfe_share_mem(h, HFE_MEM_SIZE, true);
	if (r)
		return fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	if (!without && !(h->protocol & INFLIGHT))
		return fail(c, "the device does not offer INFLIGHT_SHMFD");
	hfe_ring_layout(h, Q);
	return 0;
}

/* GET_INFLIGHT_FD for one queue of Q: the backend's own region. */
static int get_region(struct hctx *c, struct hfe *h, int *fd, uint64_t *size)
{
	struct vio_vhu_inflight d = { .num_queues = 1, .queue_size = Q };
	struct vio_vhu_msg m;
	int r = hfe_call_fd(h, VHOST_USER_GET_INFLIGHT_FD, &d, sizeof(d), &m, fd);

	if (r)
		return fail(c, "GET_INFLIGHT_FD: %s", strerror(-r));
	*size = m.p.inflight.mmap_size;
	if (*fd < 0 || *size == 0 || *size > (1u << 20))
		return fail(c, "GET_INFLIGHT_FD gave no region (fd %d, %llu bytes)", *fd,
			    (unsigned long long)*size);
	return 0;
}

static int set_region(struct hfe *h, int fd, uint64_t size, uint64_t off, uint16_t nq,
		      uint16_t qsize)
{
	struct vio_vhu_inflight d = { .mmap_size = size, .mmap_offset = off, .num_queues = nq,
				      .queue_size = qsize };

	return hfe_call(h, VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d), &fd, 1, NULL);
}

/* A memfd of len bytes, sealed against shrinking unless told otherwise. */
static int memfd(uint64_t len, bool seal)
{
	int fd = memfd_create("hostile-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd >= 0 && (ftruncate(fd, (off_t)len) ||
			(seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* One bad SET_INFLIGHT_FD on a fresh connection: it must be refused. */
static void refuse(struct hctx *c, bool without, int fd, uint64_t size, uint64_t off,
		   uint16_t nq, uint16_t qsize, const char *what)
{
	struct hfe h;

	if (fd < 0) {
		fail(c, "%s: could not make the fd: %s", what, strerror(errno));
		return;
	}
	if (!conn(c, &h, without))
		expect_refused(c, &h, set_region(&h, fd, size, off, nq, qsize), what);
	hfe_close(&h);
	close(fd);
}

static int c_inflight_bad_regions(struct hctx *c)
{
	uint64_t s = 0;
	struct hfe h;
	int fd = -1, pv[2];

	if (!conn(c, &h, false))
		get_region(c, &h, &fd, &s);
	hfe_close(&h);
	if (fd >= 0)
		close(fd);
	if (c->why[0])
		return -1;
	refuse(c, true, memfd(s, true), s, 0, 1, Q, "SET_INFLIGHT_FD without the protocol feature");
	refuse(c, false, memfd(s / 2, true), s, 0, 1, Q, "an inflight region past its file's end");
	refuse(c, false, memfd(s, false), s, 0, 1, Q, "an inflight file not sealed against shrinking");
	if (pipe2(pv, O_CLOEXEC) == 0) {
		refuse(c, false, pv[0], s, 0, 1, Q, "a pipe as the inflight region");
		close(pv[1]);
	}
	refuse(c, false, memfd(s, true), s, 0, 0, Q, "an inflight region for 0 queues");
	refuse(c, false, memfd(s, true), s * 200, 0, 200, Q, "an inflight region for 200 queues");
	refuse(c, false, memfd(s, true), s, 0, 1, 0, "an inflight region for rings of 0");
	refuse(c, false, memfd(s + 64, true), s + 64, 0, 1, Q, "an inflight region of the wrong size");
	refuse(c, false, memfd(2 * s, true), s, 100, 1, Q, "an inflight region at offset 100");
	refuse(c, false, memfd(s, true), s, UINT64_MAX - 4095, 1, Q,
	       "an inflight region at offset 2^64-4096");
	return c->why[0] ? -1 : 0;
}

/*
 * The backend's region, written as `scribble` says, handed back, and the
 * ring started on it: `check` says what must follow.
 */
static int with_region(struct hctx *c, void (*scribble)(struct hfe *h, struct split_region *r,
							  uint64_t size),
		       int (*check)(struct hctx *c, struct hfe *h))
{
	struct split_region *r = MAP_FAILED;
	uint64_t size = 0;
	struct hfe h;
	int fd = -1, e;

	if (conn(c, &h, false) || get_region(c, &h, &fd, &size))
		goto out;
	r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		fail(c, "mmap of the inflight region: %s", strerror(errno));
		goto out;
	}
	scribble(&h, r, size);
	e = set_region(&h, fd, size, 0, 1, Q);
	if (e) {
		fail(c, "SET_INFLIGHT_FD of the backend's own region: %s",
		     e == HFE_REFUSED ? "refused" : strerror(-e));
		goto out;
	}
	e = hfe_ring_start(&h);
	if (e < 0 && e != -ECONNRESET)
		fail(c, "ring set-up: %s", strerror(-e));
	else
		check(c, &h);
out:
	if (r != MAP_FAILED)
		munmap(r, size);
	if (fd >= 0)
		close(fd);
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static void used_before(struct hfe *h, struct split_region *r)
{
	r->version = 1;
	r->desc_num = Q;
	r->used_idx = 0;
}

static int expect_corrupt(struct hctx *c, struct hfe *h)
{
	int r = hfe_wait_needs_reset(h, 2000);

	if (r != 1)
		return fail(c, "%s", r == 0 ? "no NEEDS_RESET within 2 s" : strerror(-r));
	return expect_logged(c, "inflight region corrupt");
}

static void s_version(struct hfe *h, struct split_region *r, uint64_t size)
{
	used_before(h, r);
	r->version = 7;
}

static int c_inflight_bad_version(struct hctx *c)
{
	return with_region(c, s_version, expect_corrupt);
}

static void s_flag(struct hfe *h, struct split_region *r, uint64_t size)
{
	used_before(h, r);
	r->desc[3].inflight = 5;
}

static int c_inflight_bad_flag(struct hctx *c)
{
	return with_region(c, s_flag, expect_corrupt);
}

/* The record says a batch of 16 went used (its used index 16 behind the ring's), linked nowhere. */
static void s_batch(struct hfe *h, struct split_region *r, uint64_t size)
{
	used_before(h, r);
	r->used_idx = (uint16_t)-Q;
	r->last_batch_head = 0xffff;
}

static int c_inflight_bad_batch_link(struct hctx *c)
{
	return with_region(c, s_batch, expect_corrupt);
}

/* Head 0 was in flight, says the record, and the ring's descriptor 0 is a loop. */
static void s_loop(struct hfe *h, struct split_region *r, uint64_t size)
{
	used_before(h, r);
	r->desc[0] = (struct split_entry){ .inflight = 1, .counter = 1 };
	hfe_desc(h, 0, HFE_HDR_OFF, 16, VIRTQ_DESC_F_NEXT, 1);
	hfe_desc(h, 1, HFE_DATA_OFF, 512, VIRTQ_DESC_F_NEXT, 0);
}

static int expect_loop(struct hctx *c, struct hfe *h)
{
	hfe_kick(h);
	return expect_fault(c, h, VIO_VQ_CHAIN_TOO_LONG, VIO_VQ_OK);
}

static int c_inflight_redo_loop(struct hctx *c)
{
	return with_region(c, s_loop, expect_loop);
}

static void s_noise(struct hfe *h, struct split_region *r, uint64_t size)
{
	uint64_t x = 0x2545f4914f6cdd1dull, *p = (uint64_t *)r;

	for (uint64_t i = 0; i < size / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
	/* Plausible enough to get past the first checks. */
	r->version = 1;
	r->desc_num = Q;
}

static int expect_either(struct hctx *c, struct hfe *h)
{
	hfe_kick(h);
	usleep(100000);
	return expect_survives(c, h, "a region of noise");
}

static int c_inflight_noise(struct hctx *c)
{
	return with_region(c, s_noise, expect_either);
}

const struct hcase inflight_cases[] = {
	{ "inflight-bad-regions", c_inflight_bad_regions },
	{ "inflight-bad-version", c_inflight_bad_version },
	{ "inflight-bad-flag", c_inflight_bad_flag },
	{ "inflight-bad-batch-link", c_inflight_bad_batch_link },
	{ "inflight-redo-loop", c_inflight_redo_loop },
	{ "inflight-noise", c_inflight_noise },
	{ NULL, NULL },
};
