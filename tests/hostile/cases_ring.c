/* SPDX-License-Identifier: MIT */
/*
 * Hostile rings: a well-formed connection whose split ring then breaks a
 * rule of the virtio spec (2.7): loops, chains longer than the queue,
 * addresses outside memory or wrapping, buffers straddling a region's end,
 * bad indirect tables, an available index far ahead, heads beyond the queue,
 * readable after writable, a ring scribbled on, memory truncated under the
 * backend. Each must leave the queue failed with NEEDS_RESET and its cause
 * logged, and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"

#define Q 16 /* ring size: chains longer than it stay short */
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define IND VIRTQ_DESC_F_INDIRECT
#define INDIRECT VIO_BIT(VIRTIO_F_INDIRECT_DESC)

/* A read request's header in place (descriptors are the case's). */
static void read_hdr(struct hfe *h)
{
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN };

	memcpy(hfe_ptr(h, HFE_HDR_OFF), &hdr, sizeof(hdr));
}

/* Set up, let the case write descriptors, post head 0, expect the fault. */
static int ring_fault(struct hctx *c, uint64_t features, void (*write)(struct hfe *h),
		      enum vio_virtq_fault want, enum vio_virtq_fault alt)
{
	struct hfe h;
	int r = setup(c, &h, features, Q);

	if (!r) {
		read_hdr(&h);
		write(&h);
		hfe_post(&h, 0);
		r = expect_fault(c, &h, want, alt);
	}
	hfe_close(&h);
	return r;
}

static void w_loop(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_DATA_OFF, 512, NEXT, 0);
}

static int c_desc_loop(struct hctx *c)
{
	return ring_fault(c, 0, w_loop, VIO_VQ_CHAIN_TOO_LONG, VIO_VQ_OK);
}

/* Every descriptor of the table once, then back to the head: Q + 1 steps. */
static void w_longer(struct hfe *h)
{
	for (uint16_t i = 0; i < Q; i++)
		hfe_desc(h, i, HFE_DATA_OFF + i * 512u, 512, NEXT, (uint16_t)((i + 1) % Q));
}

static int c_chain_longer_than_queue(struct hctx *c)
{
	return ring_fault(c, 0, w_longer, VIO_VQ_CHAIN_TOO_LONG, VIO_VQ_OK);
}

static void w_next_beyond(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, Q);
}

static int c_next_beyond_queue(struct hctx *c)
{
	return ring_fault(c, 0, w_next_beyond, VIO_VQ_BAD_NEXT, VIO_VQ_OK);
}

static void w_addr_outside(struct hfe *h)
{
	hfe_desc(h, 0, HFE_MEM_SIZE + 4096ull, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
}

static int c_addr_outside_memory(struct hctx *c)
{
	return ring_fault(c, 0, w_addr_outside, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
}

static void w_addr_wrap(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, 0xfffffffffffff000ull, 0x2000, NEXT | WR, 2);
	hfe_desc(h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
}

static int c_addr_len_overflow(struct hctx *c)
{
	return ring_fault(c, 0, w_addr_wrap, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
}

static void w_straddle(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_MEM_SIZE - 256, 512, NEXT | WR, 2);
	hfe_desc(h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
}

static int c_buffer_straddles_region_end(struct hctx *c)
{
	return ring_fault(c, 0, w_straddle, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
}

/*
 * Two regions adjacent in guest memory but apart in the backend: a buffer
 * across the seam is contiguous to the guest and not to the backend.
 */
static int c_buffer_straddles_two_regions(struct hctx *c)
{
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r[2];
	} t = { .nregions = 2 };
	struct hfe_mem second = { .fd = -1 };
	struct hfe h;
	int fds[2], r;

	r = hfe_connect(&h, c->sock);
	if (!r)
		r = hfe_negotiate(&h, 0);
	if (!r)
		r = hfe_mem_new(&h.mem, HFE_MEM_SIZE, true);
	if (!r)
		r = hfe_mem_new(&second, HFE_MEM_SIZE, true);
	if (r) {
		fail(c, "set-up: %s", strerror(-r));
		goto out;
	}
	t.r[0] = (struct vio_vhu_mem_region){ 0, HFE_MEM_SIZE, (uintptr_t)h.mem.host, 0 };
	t.r[1] = (struct vio_vhu_mem_region){ HFE_MEM_SIZE, HFE_MEM_SIZE, (uintptr_t)second.host, 0 };
	fds[0] = h.mem.fd;
	fds[1] = second.fd;
	r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), fds, 2, NULL);
	if (r) {
		fail(c, "a two-region table was not accepted: %s",
		     r == HFE_REFUSED ? "refused" : strerror(-r));
		goto out;
	}
	hfe_ring_layout(&h, Q);
	r = hfe_ring_start(&h);
	if (r) {
		fail(c, "ring set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
		goto out;
	}
	read_hdr(&h);
	hfe_desc(&h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(&h, 1, HFE_MEM_SIZE - 512, 1024, NEXT | WR, 2);
	hfe_desc(&h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
	hfe_post(&h, 0);
	expect_fault(c, &h, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
out:
	hfe_close(&h);
	hfe_mem_free(&second);
	return c->why[0] ? -1 : 0;
}

/* 16 + (2^32 - 1) bytes: the chain's total does not fit 32 bits. */
static void w_len_4g(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_DATA_OFF, 0xffffffffu, NEXT | WR, 2);
	hfe_desc(h, 2, HFE_HDR_OFF + 16, 1, WR, 0);
}

static int c_len_4g(struct hctx *c)
{
	return ring_fault(c, 0, w_len_4g, VIO_VQ_LEN_OVERFLOW, VIO_VQ_BAD_ADDR);
}

static int c_head_beyond_queue(struct hctx *c)
{
	struct hfe h;
	int r = setup(c, &h, 0, Q);

	if (!r) {
		hfe_desc(&h, 0, HFE_HDR_OFF, 16, 0, 0);
		h.avail->ring[0] = Q;
		h.avail_idx = 1;
		__atomic_store_n(&h.avail->idx, h.avail_idx, __ATOMIC_RELEASE);
		hfe_kick(&h);
		r = expect_fault(c, &h, VIO_VQ_BAD_HEAD, VIO_VQ_OK);
	}
	hfe_close(&h);
	return r;
}

static int c_avail_far_ahead(struct hctx *c)
{
	struct hfe h;
	int r = setup(c, &h, 0, Q);

	if (!r) {
		read_hdr(&h);
		for (uint16_t i = 0; i < Q; i++)
			hfe_desc(&h, i, HFE_HDR_OFF, 16, 0, 0);
		__atomic_store_n(&h.avail->idx, (uint16_t)(Q + 1000), __ATOMIC_RELEASE);
		hfe_kick(&h);
		r = expect_fault(c, &h, VIO_VQ_AVAIL_TOO_FAR, VIO_VQ_OK);
	}
	hfe_close(&h);
	return r;
}

static void w_read_after_write(struct hfe *h)
{
	hfe_desc(h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, NEXT | WR, 2);
	hfe_desc(h, 2, HFE_DATA_OFF, 512, 0, 0);
}

static int c_read_after_write(struct hctx *c)
{
	return ring_fault(c, 0, w_read_after_write, VIO_VQ_READ_AFTER_WRITE, VIO_VQ_OK);
}

/* ---- indirect tables ---- */

static struct virtq_desc *table(struct hfe *h, unsigned at)
{
	return hfe_ptr(h, HFE_TABLE_OFF + at * 4096u);
}

/* A good three-entry table at table(0): header, 512 bytes in, status. */
static void good_table(struct hfe *h)
{
	struct virtq_desc *t = table(h, 0);

	t[0] = (struct virtq_desc){ HFE_HDR_OFF, 16, NEXT, 1 };
	t[1] = (struct virtq_desc){ HFE_DATA_OFF, 512, NEXT | WR, 2 };
	t[2] = (struct virtq_desc){ HFE_HDR_OFF + 16, 1, WR, 0 };
}

static void w_ind_good(struct hfe *h)
{
	good_table(h);
	hfe_desc(h, 0, HFE_TABLE_OFF, 48, IND, 0);
}

static int c_indirect_not_negotiated(struct hctx *c)
{
	return ring_fault(c, 0, w_ind_good, VIO_VQ_BAD_INDIRECT, VIO_VQ_OK);
}

static void w_ind_odd(struct hfe *h)
{
	good_table(h);
	hfe_desc(h, 0, HFE_TABLE_OFF, 40, IND, 0);
}

static int c_indirect_len_not_16n(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_odd, VIO_VQ_BAD_INDIRECT, VIO_VQ_OK);
}

static void w_ind_empty(struct hfe *h)
{
	hfe_desc(h, 0, HFE_TABLE_OFF, 0, IND, 0);
}

static int c_indirect_empty(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_empty, VIO_VQ_BAD_INDIRECT, VIO_VQ_OK);
}

static void w_ind_nested(struct hfe *h)
{
	good_table(h);
	table(h, 1)[0] = (struct virtq_desc){ HFE_TABLE_OFF, 48, IND, 0 };
	hfe_desc(h, 0, HFE_TABLE_OFF + 4096, 16, IND, 0);
}

static int c_indirect_nested(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_nested, VIO_VQ_NESTED_INDIRECT, VIO_VQ_OK);
}

static void w_ind_next(struct hfe *h)
{
	good_table(h);
	hfe_desc(h, 0, HFE_TABLE_OFF, 48, IND | NEXT, 1);
	hfe_desc(h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
}

static int c_indirect_with_next(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_next, VIO_VQ_INDIRECT_NEXT, VIO_VQ_OK);
}

static void w_ind_outside(struct hfe *h)
{
	hfe_desc(h, 0, HFE_MEM_SIZE + 4096ull, 48, IND, 0);
}

static int c_indirect_outside_memory(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_outside, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
}

static void w_ind_bad_next(struct hfe *h)
{
	good_table(h);
	table(h, 0)[0].next = 3; /* a three-entry table */
	hfe_desc(h, 0, HFE_TABLE_OFF, 48, IND, 0);
}

static int c_indirect_next_beyond_table(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_bad_next, VIO_VQ_BAD_NEXT, VIO_VQ_OK);
}

static void w_ind_loop(struct hfe *h)
{
	struct virtq_desc *t = table(h, 0);

	t[0] = (struct virtq_desc){ HFE_HDR_OFF, 16, NEXT, 1 };
	t[1] = (struct virtq_desc){ HFE_DATA_OFF, 512, NEXT, 0 };
	t[2] = (struct virtq_desc){ HFE_HDR_OFF + 16, 1, WR, 0 };
	hfe_desc(h, 0, HFE_TABLE_OFF, 48, IND, 0);
}

static int c_indirect_loop(struct hctx *c)
{
	return ring_fault(c, INDIRECT, w_ind_loop, VIO_VQ_CHAIN_TOO_LONG, VIO_VQ_OK);
}

/*
 * A table of 16M entries (256 MiB, inside a sparse 512 MiB memory): far past
 * max(queue size, 256), so one request cannot cost a thread seconds.
 */
static int c_indirect_16m_entries(struct hctx *c)
{
	const uint64_t mem = 512ull << 20, at = 256ull << 20;
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_negotiate(&h, INDIRECT);
	if (!r)
		r = hfe_share_mem(&h, mem, true);
	if (!r) {
		hfe_ring_layout(&h, Q);
		r = hfe_ring_start(&h);
	}
	if (r) {
		fail(c, "set-up with 512 MiB of memory: %s",
		     r == HFE_REFUSED ? "refused" : strerror(-r));
	} else {
		struct virtq_desc *t = hfe_ptr(&h, at);

		t[0] = (struct virtq_desc){ HFE_HDR_OFF, 16, NEXT, 1 };
		t[1] = (struct virtq_desc){ HFE_HDR_OFF + 16, 1, WR, 0 };
		read_hdr(&h);
		hfe_desc(&h, 0, at, 16u << 24, IND, 0);
		hfe_post(&h, 0);
		expect_fault(c, &h, VIO_VQ_BAD_INDIRECT, VIO_VQ_OK);
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* ---- memory changing under the backend ---- */

/*
 * Guest memory the front-end truncates after SET_MEM_TABLE: the backend's
 * next touch of a page past the new end would raise SIGBUS. The rings stay
 * (first 256 KiB), the request's header and status go.
 */
static int truncated(struct hctx *c, off_t keep)
{
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_negotiate(&h, 0);
	if (!r)
		r = hfe_share_mem(&h, HFE_MEM_SIZE, false);
	if (r == HFE_REFUSED) {
		note(c, "unsealed memory refused at SET_MEM_TABLE");
		hfe_close(&h);
		return 0;
	}
	if (!r) {
		hfe_ring_layout(&h, Q);
		r = hfe_ring_start(&h);
	}
	if (r) {
		hfe_close(&h);
		return fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	}
	read_hdr(&h);
	hfe_desc(&h, 0, HFE_HDR_OFF, 16, NEXT, 1);
	hfe_desc(&h, 1, HFE_HDR_OFF + 16, 1, WR, 0);
	h.avail->ring[0] = 0;
	if (ftruncate(h.mem.fd, keep) < 0) {
		hfe_close(&h);
		return fail(c, "ftruncate: %s", strerror(errno));
	}
	if (keep > (off_t)HFE_AVAIL_OFF) {
		h.avail_idx = 1;
		__atomic_store_n(&h.avail->idx, h.avail_idx, __ATOMIC_RELEASE);
	}
	hfe_kick(&h);
	r = hfe_wait_needs_reset(&h, 2000);
	if (r == 0)
		fail(c, "no NEEDS_RESET within 2 s of touching truncated memory");
	else if (r < 0 && r != -ECONNRESET)
		fail(c, "GET_STATUS after the truncation: %s", strerror(-r));
	else if (r < 0)
		note(c, "the backend hung up");
	/* Our own view of the memory is gone too: unmap before anything reads it. */
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_truncate_data_after_mem_table(struct hctx *c)
{
	return truncated(c, HFE_HDR_OFF);
}

static int c_truncate_rings_after_mem_table(struct hctx *c)
{
	return truncated(c, 0);
}

/* A new memory table without the ring's pages: the ring must stop, nothing else. */
static int c_rings_leave_memory(struct hctx *c)
{
	struct hfe h;
	struct hfe_mem other = { .fd = -1 };
	int r = setup(c, &h, 0, Q);

	if (r) {
		hfe_close(&h);
		return r;
	}
	if (hfe_blk(&h, VIRTIO_BLK_T_IN, 0, 512, NULL) != VIRTIO_BLK_S_OK) {
		hfe_close(&h);
		return fail(c, "a good read before the swap failed");
	}
	r = hfe_mem_new(&other, HFE_MEM_SIZE, true);
	if (!r) {
		struct {
			uint32_t nregions, padding;
			struct vio_vhu_mem_region r;
		} t = { .nregions = 1,
			.r = { 0, HFE_MEM_SIZE, (uintptr_t)other.host, 0 } };

		r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &other.fd, 1, NULL);
		if (r < 0)
			fail(c, "SET_MEM_TABLE: %s", strerror(-r));
	}
	if (!c->why[0]) {
		hfe_post(&h, 0);
		usleep(100000);
		expect_survives(c, &h, "a ring left outside the memory table");
	}
	hfe_close(&h);
	hfe_mem_free(&other);
	return c->why[0] ? -1 : 0;
}

/* A ring overwritten with noise for 300 ms, kicked all along. */
static int c_ring_scribbler(struct hctx *c)
{
	struct timespec t0, t;
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	struct hfe h;
	int r = setup(c, &h, INDIRECT, Q);

	if (r) {
		hfe_close(&h);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		uint64_t *p = hfe_ptr(&h, 0);

		for (unsigned i = 0; i < 256; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Rings and tables only: 0 .. HFE_HDR_OFF. */
			p[(x >> 20) % (HFE_HDR_OFF / 8)] = x;
		}
		hfe_kick(&h);
		usleep(1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
	r = expect_survives(c, &h, "a scribbled ring");
	hfe_close(&h);
	return r;
}

const struct hcase ring_cases[] = {
	{ "desc-loop", c_desc_loop },
	{ "chain-longer-than-queue", c_chain_longer_than_queue },
	{ "next-beyond-queue", c_next_beyond_queue },
	{ "addr-outside-memory", c_addr_outside_memory },
	{ "addr-len-overflow", c_addr_len_overflow },
	{ "buffer-straddles-region-end", c_buffer_straddles_region_end },
	{ "buffer-straddles-two-regions", c_buffer_straddles_two_regions },
	{ "len-4g", c_len_4g },
	{ "head-beyond-queue", c_head_beyond_queue },
	{ "avail-far-ahead", c_avail_far_ahead },
	{ "read-after-write", c_read_after_write },
	{ "indirect-not-negotiated", c_indirect_not_negotiated },
	{ "indirect-len-not-16n", c_indirect_len_not_16n },
	{ "indirect-empty", c_indirect_empty },
	{ "indirect-nested", c_indirect_nested },
	{ "indirect-with-next", c_indirect_with_next },
	{ "indirect-outside-memory", c_indirect_outside_memory },
	{ "indirect-next-beyond-table", c_indirect_next_beyond_table },
	{ "indirect-loop", c_indirect_loop },
	{ "indirect-16m-entries", c_indirect_16m_entries },
	{ "truncate-data-after-mem-table", c_truncate_data_after_mem_table },
	{ "truncate-rings-after-mem-table", c_truncate_rings_after_mem_table },
	{ "rings-leave-memory", c_rings_leave_memory },
	{ "ring-scribbler", c_ring_scribbler },
	{ NULL, NULL },
};
