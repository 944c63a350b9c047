/* SPDX-License-Identifier: MIT */
/*
 * Hostile blk requests on a well-formed ring (virtio 1.2, 5.2.6): ranges
 * beyond the capacity or past 2^64, unknown types, short headers, data the
 * wrong way round, no status byte, zero and 4 GiB lengths, bad discard and
 * write-zeroes segments. None breaks a ring rule, so the queue must keep
 * serving: each request is answered with the status the spec asks for
 * (IOERR, UNSUPP) and changes nothing on the disk.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"

#define Q 16
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE

static const char *st_name(int st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case 0xee: return "no status written";
	case -ETIMEDOUT: return "no answer within 2 s";
	default: return "unexpected";
	}
}

static int req(struct hctx *c, struct hfe *h, const char *what, uint32_t type, uint64_t sector,
	       uint32_t len, int want)
{
	int st = hfe_blk(h, type, sector, len, NULL);

	if (st == want)
		return 0;
	return fail(c, "%s: status %s (%d), expected %s", what, st_name(st), st, st_name(want));
}

/* The queue still serves: a good read of sector 0. */
static int still_serves(struct hctx *c, struct hfe *h)
{
	return req(c, h, "a good read afterwards", VIRTIO_BLK_T_IN, 0, 512, VIRTIO_BLK_S_OK);
}

static int c_beyond_capacity(struct hctx *c)
{
	uint8_t *data;
	uint64_t cap;
	struct hfe h;

	if (setup(c, &h, 0, Q) || capacity(c, &h, &cap))
		goto out;
	data = hfe_ptr(&h, HFE_DATA_OFF);
	req(c, &h, "read at the capacity", VIRTIO_BLK_T_IN, cap, 512, VIRTIO_BLK_S_IOERR);
	req(c, &h, "read across the end", VIRTIO_BLK_T_IN, cap - 1, 1024, VIRTIO_BLK_S_IOERR);
	req(c, &h, "read at sector 2^63", VIRTIO_BLK_T_IN, 1ull << 63, 512, VIRTIO_BLK_S_IOERR);
	req(c, &h, "read at sector 2^64-1", VIRTIO_BLK_T_IN, UINT64_MAX, 512, VIRTIO_BLK_S_IOERR);
	/* A write across the end must change nothing, not even the sector inside. */
	memset(data, 0x5a, 512);
	req(c, &h, "write of the last sector", VIRTIO_BLK_T_OUT, cap - 1, 512, VIRTIO_BLK_S_OK);
	memset(data, 0xa5, 1024);
	req(c, &h, "write across the end", VIRTIO_BLK_T_OUT, cap - 1, 1024, VIRTIO_BLK_S_IOERR);
	memset(data, 0, 512);
	if (!req(c, &h, "read of the last sector", VIRTIO_BLK_T_IN, cap - 1, 512, VIRTIO_BLK_S_OK)) {
		for (unsigned i = 0; i < 512; i++)
			if (data[i] != 0x5a) {
				fail(c, "a refused write across the end changed the last sector");
				break;
			}
	}
	still_serves(c, &h);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_unknown_type(struct hctx *c)
{
	static const uint32_t types[] = { 2, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE,
					  0x7fffffff, 0xffffffff };
	struct hfe h;

	if (!setup(c, &h, 0, Q)) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			char what[48];

			snprintf(what, sizeof(what), "request type 0x%x", types[i]);
			req(c, &h, what, types[i], 0, 512, VIRTIO_BLK_S_UNSUPP);
		}
		still_serves(c, &h);
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Post head 0 (descriptors written by the caller) and wait; the status byte or -errno. */
static int post_wait(struct hfe *h, uint32_t *used_len)
{
	uint8_t *status = hfe_ptr(h, HFE_HDR_OFF + 16);
	int r;

	*status = 0xee;
	hfe_post(h, 0);
	r = hfe_wait_used(h, 1, HFE_TIMEOUT_MS);
	if (r)
		return r;
	if (used_len)
		*used_len = hfe_used_len(h, 0);
	return *status;
}

static void hdr(struct hfe *h, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr o = { .type = type, .sector = sector };

	memcpy(hfe_ptr(h, HFE_HDR_OFF), &o, sizeof(o));
}

static int c_short_header(struct hctx *c)
{
	struct hfe h;
	int st;

	if (setup(c, &h, 0, Q))
		goto out;
	hdr(&h, VIRTIO_BLK_T_IN, 0);
	hfe_desc(&h, 0, HFE_HDR_OFF, 8, NEXT, 1);
	hfe_desc(&h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
	st = post_wait(&h, NULL);
	if (st != VIRTIO_BLK_S_IOERR)
		fail(c, "an 8-byte header: status %s (%d), expected IOERR", st_name(st), st);
	/* The same header split over two descriptors is fine (5.2.6.1 fixes no layout). */
	hfe_desc(&h, 0, HFE_HDR_OFF, 8, NEXT, 1);
	hfe_desc(&h, 1, HFE_HDR_OFF + 8, 8, NEXT, 2);
	hfe_desc(&h, 2, HFE_DATA_OFF, 512, NEXT | WR, 3);
	hfe_desc(&h, 3, HFE_HDR_OFF + 16, 1, WR, 0);
	st = post_wait(&h, NULL);
	if (st != VIRTIO_BLK_S_OK)
		fail(c, "a header split 8+8: status %s (%d), expected OK", st_name(st), st);
	still_serves(c, &h);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Data buffers the wrong way: a read into readable memory, a write from writable. */
static int c_wrong_direction(struct hctx *c)
{
	struct hfe h;
	int st;

	if (setup(c, &h, 0, Q))
		goto out;
	hdr(&h, VIRTIO_BLK_T_IN, 0);
	hfe_desc(&h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(&h, 1, HFE_DATA_OFF, 512, NEXT, 2);
	hfe_desc(&h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
	st = post_wait(&h, NULL);
	if (st != VIRTIO_BLK_S_IOERR)
		fail(c, "a read into device-readable data: status %s (%d), expected IOERR",
		     st_name(st), st);
	hdr(&h, VIRTIO_BLK_T_OUT, 0);
	hfe_desc(&h, 1, HFE_DATA_OFF, 512, NEXT | WR, 2);
	st = post_wait(&h, NULL);
	if (st != VIRTIO_BLK_S_IOERR)
		fail(c, "a write from device-writable data: status %s (%d), expected IOERR",
		     st_name(st), st);
	still_serves(c, &h);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/*
 * A request the device cannot answer in its status byte (none writable, or
 * every buffer empty): it must return it used with length 0, or fail the
 * queue as a driver error; either way it must not write our memory.
 */
static int answered_without_status(struct hctx *c, struct hfe *h, const char *what)
{
	uint8_t *status = hfe_ptr(h, HFE_HDR_OFF + 16);
	uint32_t len = 0;
	int st = post_wait(h, &len);

	if (st == -ETIMEDOUT) {
		int nr = hfe_wait_needs_reset(h, 500);

		if (nr == 1) {
			note(c, "%s: the queue was failed (NEEDS_RESET)", what);
			return 0;
		}
		return fail(c, "%s: neither answered nor NEEDS_RESET", what);
	}
	if (st < 0)
		return fail(c, "%s: %s", what, strerror(-st));
	if (*status != 0xee || len != 0)
		return fail(c, "%s: answered with used length %u, status byte 0x%x", what, len,
			    *status);
	return still_serves(c, h);
}

static int c_no_status_byte(struct hctx *c)
{
	struct hfe h;

	if (!setup(c, &h, 0, Q)) {
		hdr(&h, VIRTIO_BLK_T_IN, 0);
		hfe_desc(&h, 0, HFE_HDR_OFF, 16, NEXT, 1);
		hfe_desc(&h, 1, HFE_DATA_OFF, 512, NEXT, 2);
		hfe_desc(&h, 2, HFE_HDR_OFF + 16, 1, 0, 0);
		answered_without_status(c, &h, "a request with nothing device-writable");
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_zero_lengths(struct hctx *c)
{
	struct hfe h;
	int st;

	if (setup(c, &h, 0, Q))
		goto out;
	/* An empty data buffer between header and status: a read of nothing. */
	hdr(&h, VIRTIO_BLK_T_IN, 0);
	hfe_desc(&h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(&h, 1, HFE_DATA_OFF, 0, NEXT | WR, 2);
	hfe_desc(&h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
	st = post_wait(&h, NULL);
	if (st == -ETIMEDOUT && hfe_wait_needs_reset(&h, 500) == 1) {
		note(c, "an empty data buffer failed the queue");
		goto out;
	}
	if (st != VIRTIO_BLK_S_OK && st != VIRTIO_BLK_S_IOERR) {
		fail(c, "a zero-length data buffer: status %s (%d)", st_name(st), st);
		goto out;
	}
	/* Every buffer empty. */
	hfe_desc(&h, 0, HFE_HDR_OFF, 0, NEXT, 1);
	hfe_desc(&h, 1, HFE_DATA_OFF, 0, NEXT | WR, 2);
	hfe_desc(&h, 2, HFE_HDR_OFF + 16, 0, WR, 0);
	answered_without_status(c, &h, "a chain of empty buffers");
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/*
 * A 4 GiB - 512 data buffer that is inside guest memory (a sparse 4 GiB +
 * 2 MiB memfd): legal for the ring, beyond any small disk: IOERR at once,
 * without touching 4 GiB.
 */
static int c_len_4g_in_memory(struct hctx *c)
{
	const uint64_t mem = (4ull << 30) + HFE_MEM_SIZE;
	const uint32_t len = 0xfffffe00u;
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_negotiate(&h, 0);
	if (!r)
		r = hfe_share_mem(&h, mem, true);
	if (!r) {
		hfe_ring_layout(&h, Q);
		r = hfe_ring_start(&h);
	}
	if (r) {
		fail(c, "set-up with 4 GiB of memory: %s",
		     r == HFE_REFUSED ? "refused" : strerror(-r));
		goto out;
	}
	req(c, &h, "a 4 GiB read", VIRTIO_BLK_T_IN, 0, len, VIRTIO_BLK_S_IOERR);
	req(c, &h, "a 4 GiB write", VIRTIO_BLK_T_OUT, 0, len, VIRTIO_BLK_S_IOERR);
	still_serves(c, &h);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int dwz(struct hctx *c, struct hfe *h, const char *what, uint32_t type,
	       const struct virtio_blk_discard_write_zeroes *segs, uint32_t bytes, int want)
{
	memcpy(hfe_ptr(h, HFE_DATA_OFF), segs, bytes);
	return req(c, h, what, type, 0, bytes, want);
}

/* Discard and write-zeroes negotiated (without them both are UNSUPP, 5.2.6.2). */
static int c_bad_discard_write_zeroes(struct hctx *c)
{
	struct virtio_blk_discard_write_zeroes s[VIO_BLK_MAX_DWZ_SEG + 1];
	struct virtio_blk_config cfg;
	uint64_t cap;
	struct hfe h;

	if (setup(c, &h, VIO_BIT(VIRTIO_BLK_F_DISCARD) | VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES), Q) ||
	    blk_config(c, &h, &cfg))
		goto out;
	if (!(h.features & VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) ||
	    !(h.features & VIO_BIT(VIRTIO_BLK_F_DISCARD))) {
		fail(c, "the device offers no discard or write-zeroes");
		goto out;
	}
	cap = cfg.capacity;
	memset(s, 0, sizeof(s));
	/* A good one first: the requests below fail for what they are, not for their type. */
	s[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 0, .num_sectors = 8 };
	dwz(c, &h, "a good write-zeroes", VIRTIO_BLK_T_WRITE_ZEROES, s, 16, VIRTIO_BLK_S_OK);
	s[0] = (struct virtio_blk_discard_write_zeroes){ .sector = cap, .num_sectors = 8 };
	dwz(c, &h, "write-zeroes at the capacity", VIRTIO_BLK_T_WRITE_ZEROES, s, 16,
	    VIRTIO_BLK_S_IOERR);
	s[0] = (struct virtio_blk_discard_write_zeroes){
		.sector = 0, .num_sectors = cfg.max_write_zeroes_sectors + 1 };
	dwz(c, &h, "write-zeroes beyond max_write_zeroes_sectors", VIRTIO_BLK_T_WRITE_ZEROES, s,
	    16, VIRTIO_BLK_S_IOERR);
	for (unsigned i = 0; i <= VIO_BLK_MAX_DWZ_SEG; i++)
		s[i] = (struct virtio_blk_discard_write_zeroes){ .sector = i * 8u, .num_sectors = 8 };
	dwz(c, &h, "17 discard segments", VIRTIO_BLK_T_DISCARD, s, sizeof(s), VIRTIO_BLK_S_IOERR);
	dwz(c, &h, "a 20-byte segment list", VIRTIO_BLK_T_DISCARD, s, 20, VIRTIO_BLK_S_IOERR);
	s[0].flags = 2;
	dwz(c, &h, "write-zeroes with an unknown flag", VIRTIO_BLK_T_WRITE_ZEROES, s, 16,
	    VIRTIO_BLK_S_UNSUPP);
	s[0].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	dwz(c, &h, "discard with the unmap flag", VIRTIO_BLK_T_DISCARD, s, 16,
	    VIRTIO_BLK_S_UNSUPP);
	still_serves(c, &h);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

const struct hcase req_cases[] = {
	{ "req-beyond-capacity", c_beyond_capacity },
	{ "req-unknown-type", c_unknown_type },
	{ "req-short-header", c_short_header },
	{ "req-wrong-direction", c_wrong_direction },
	{ "req-no-status-byte", c_no_status_byte },
	{ "req-zero-lengths", c_zero_lengths },
	{ "req-len-4g-in-memory", c_len_4g_in_memory },
	{ "req-bad-discard-write-zeroes", c_bad_discard_write_zeroes },
	{ NULL, NULL },
};
