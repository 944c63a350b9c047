/* SPDX-License-Identifier: MIT */
/*
 * The chain walkers against hostile rings: one test per rule, for each layout
 * the rule applies to. Rings are written by hand into test memory; each test
 * checks -EIO, the exact fault reason, one fault callback, and that the fault
 * sticks. ASan checks that nothing outside the map was touched.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "vq_harness.h"

#define N VIRTQ_DESC_F_NEXT
#define W VIRTQ_DESC_F_WRITE
#define I VIRTQ_DESC_F_INDIRECT
#define AUTO 0xffffu /* split: next = the following index */
#define QSIZE 8

struct d {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct wctx {
	const struct vqh_layout *l;
	struct vqh_mem m;
	struct vqh_q q;
	uint8_t *buf;
	uint64_t bgpa;
	uint16_t next_desc; /* split: next free descriptor index */
};

static void wsetup(struct wctx *w, void **state, bool indirect, uint16_t size)
{
	uint64_t f;

	w->l = *state;
	w->next_desc = 0;
	assert_int_equal(vqh_mem_init(&w->m, 1 << 20), 0);
	f = vqh_features(w->l, indirect ? vqh_bit(VIRTIO_F_INDIRECT_DESC) : 0);

	assert_int_equal(vqh_q_init(&w->q, &w->m, f, size, indirect ? 64 : 0), 0);
	w->buf = vqh_mem_alloc(&w->m, 64 << 10, 16);
	assert_non_null(w->buf);
	w->bgpa = vqh_gpa(&w->m, w->buf);
}

static void wteardown(struct wctx *w)
{
	vqh_q_fini(&w->q);
	vqh_mem_fini(&w->m);
}

/* Write a chain (split: at the next free indices; packed: at the next slots) and publish it. */
static void publish(struct wctx *w, const struct d *d, unsigned n, uint16_t id)
{
	if (!w->l->packed) {
		uint16_t base = w->next_desc;

		for (unsigned i = 0; i < n; i++)
			vqh_split_desc(&w->q, base + i, d[i].addr, d[i].len, d[i].flags,
				       d[i].next == AUTO ? base + i + 1 : d[i].next);
		vqh_split_publish(&w->q, base);
		w->next_desc += n;
	} else {
		struct pvirtq_desc p[64];

		for (unsigned i = 0; i < n; i++)
			p[i] = (struct pvirtq_desc){ d[i].addr, d[i].len, id, d[i].flags };
		vqh_packed_publish(&w->q, p, n);
	}
}

/* An indirect table in test memory; returns its gpa. */
static uint64_t table(struct wctx *w, const struct d *d, unsigned n)
{
	uint8_t *t = vqh_mem_alloc(&w->m, 16 * n, 16);

	assert_non_null(t);
	for (unsigned i = 0; i < n; i++) {
		if (!w->l->packed) {
			struct virtq_desc *v = (struct virtq_desc *)t + i;
			*v = (struct virtq_desc){ d[i].addr, d[i].len, d[i].flags,
						  d[i].next == AUTO ? i + 1 : d[i].next };
		} else {
			struct pvirtq_desc *v = (struct pvirtq_desc *)t + i;
			*v = (struct pvirtq_desc){ d[i].addr, d[i].len, 0, d[i].flags };
		}
	}
	return vqh_gpa(&w->m, t);
}

static int pop(struct wctx *w, struct vio_chain *c, unsigned n)
{
	static struct iovec iov[QSIZE][64];

	for (unsigned i = 0; i < n; i++) {
		c[i].iov = iov[i];
		c[i].iov_cap = 64;
	}
	return vio_virtq_pop_burst(&w->q.dev, &w->m.map, c, n);
}

/* The queue broke for exactly this reason, told its owner once, and stays broken. */
static void expect_fault(struct wctx *w, enum vio_virtq_fault why)
{
	struct vio_chain c[4];
	int rc = pop(w, c, 4);

	if (rc != -EIO)
		fail_msg("pop returned %d, fault '%s', want -EIO ('%s')", rc,
			 vio_virtq_fault_str(vio_virtq_fault_reason(&w->q.dev)),
			 vio_virtq_fault_str(why));
	assert_true(vio_virtq_is_broken(&w->q.dev));
	if (vio_virtq_fault_reason(&w->q.dev) != why)
		fail_msg("fault '%s', want '%s'",
			 vio_virtq_fault_str(vio_virtq_fault_reason(&w->q.dev)),
			 vio_virtq_fault_str(why));
	assert_int_equal(w->q.nfaults, 1);
	assert_int_equal(w->q.fault, why);
	assert_int_equal(w->q.fault_index, 7);
	assert_int_equal(pop(w, c, 4), -EIO);
	assert_false(vio_virtq_device_has_avail(&w->q.dev));
	assert_int_equal(w->q.nfaults, 1);
	assert_false(vio_virtq_is_broken(&w->q.drv));
	wteardown(w);
}

/* ---- one test per rule ---- */

static void test_loop(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	if (!w.l->packed) {
		/* 0 -> 1 -> 0 */
		struct d d[2] = { { w.bgpa, 16, N, 1 }, { w.bgpa + 16, 16, N, 0 } };
		publish(&w, d, 2, 0);
	} else {
		/* every slot says NEXT: the chain runs round the ring */
		struct d d[QSIZE];
		for (int i = 0; i < QSIZE; i++)
			d[i] = (struct d){ w.bgpa + 16 * i, 16, N, AUTO };
		publish(&w, d, QSIZE, 0);
	}
	expect_fault(&w, VIO_VQ_CHAIN_TOO_LONG);
}

static void test_loop_in_indirect_table(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[2] = { { w.bgpa, 16, N, 1 }, { w.bgpa + 16, 16, N, 0 } };
	struct d d[1] = { { table(&w, t, 2), 32, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_CHAIN_TOO_LONG);
}

static void test_nested_indirect(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d inner[1] = { { w.bgpa, 16, 0, 0 } };
	struct d outer[2] = { { w.bgpa + 64, 16, N, AUTO }, { table(&w, inner, 1), 16, I, 0 } };
	struct d d[1] = { { 0, 32, I, 0 } };
	if (w.l->packed)
		outer[0].flags = 0; /* packed tables are sequential */
	d[0].addr = table(&w, outer, 2);
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_NESTED_INDIRECT);
}

static void test_indirect_with_next(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[1] = { { w.bgpa, 16, 0, 0 } };
	struct d d[2] = { { table(&w, t, 1), 16, I | N, AUTO }, { w.bgpa + 64, 16, 0, 0 } };
	publish(&w, d, 2, 0);
	expect_fault(&w, VIO_VQ_INDIRECT_NEXT);
}

static void test_indirect_not_negotiated(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d t[2] = { { w.bgpa, 16, 0, 0 }, { w.bgpa + 16, 16, 0, 0 } };
	struct d d[1] = { { table(&w, t, 2), 32, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_INDIRECT);
}

static void test_indirect_len_zero(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[1] = { { w.bgpa, 16, 0, 0 } };
	struct d d[1] = { { table(&w, t, 1), 0, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_INDIRECT);
}

static void test_indirect_len_not_multiple_of_16(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[2] = { { w.bgpa, 16, 0, 0 }, { w.bgpa + 16, 16, 0, 0 } };
	struct d d[1] = { { table(&w, t, 2), 24, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_INDIRECT);
}

static void test_read_after_write(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d d[3] = { { w.bgpa, 16, N, AUTO }, { w.bgpa + 16, 16, W | N, AUTO },
			  { w.bgpa + 32, 16, 0, 0 } };
	publish(&w, d, 3, 0);
	expect_fault(&w, VIO_VQ_READ_AFTER_WRITE);
}

static void test_read_after_write_in_indirect_table(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	uint16_t n = w.l->packed ? 0 : N;
	struct d t[2] = { { w.bgpa, 16, W | n, AUTO }, { w.bgpa + 16, 16, 0, 0 } };
	struct d d[1] = { { table(&w, t, 2), 32, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_READ_AFTER_WRITE);
}

static void test_head_out_of_range(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	if (!w.l->packed) {
		vqh_split_desc(&w.q, 0, w.bgpa, 16, 0, 0);
		vqh_split_publish(&w.q, QSIZE); /* avail ring entry == size */
	} else {
		struct d d[1] = { { w.bgpa, 16, 0, 0 } };
		publish(&w, d, 1, QSIZE); /* buffer id == size */
	}
	expect_fault(&w, VIO_VQ_BAD_HEAD);
}

static void test_next_out_of_range(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d d[1] = { { w.bgpa, 16, N, QSIZE } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_NEXT);
}

static void test_next_out_of_range_in_indirect_table(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[2] = { { w.bgpa, 16, N, 2 }, { w.bgpa + 16, 16, 0, 0 } }; /* 2 >= table len */
	struct d d[1] = { { table(&w, t, 2), 32, I, 0 } };
	publish(&w, d, 1, 0);
	/* the table's own bound: an index past it is a bad next, not a loop */
	expect_fault(&w, VIO_VQ_BAD_NEXT);
}

static void test_avail_too_far(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	for (int i = 0; i < QSIZE; i++)
		vqh_split_desc(&w.q, i, w.bgpa + 16 * i, 16, 0, 0);
	vqh_split_set_avail_idx(&w.q, QSIZE + 1);
	expect_fault(&w, VIO_VQ_AVAIL_TOO_FAR);
}

/* The boundary of the previous rule: exactly size ahead is a full ring, not a fault. */
static void test_avail_exactly_size_ahead_is_fine(void **state)
{
	struct wctx w;
	struct vio_chain c[QSIZE];

	wsetup(&w, state, false, QSIZE);
	for (int i = 0; i < QSIZE; i++) {
		struct d d[1] = { { w.bgpa + 16 * i, 16, 0, 0 } };
		publish(&w, d, 1, (uint16_t)i);
	}
	assert_int_equal(pop(&w, c, QSIZE), QSIZE);
	for (int i = 0; i < QSIZE; i++) {
		assert_int_equal(c[i].id, i);
		assert_ptr_equal(c[i].iov[0].iov_base, w.buf + 16 * i);
	}
	assert_false(vio_virtq_is_broken(&w.q.dev));
	wteardown(&w);
}

static void test_len_overflow(void **state)
{
	struct wctx w;
	size_t big = (3ull << 30) + 4096;
	void *p = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct vio_mem_region r = { 0x10000000000ull, big, p };

	assert_true(p != MAP_FAILED);
	wsetup(&w, state, false, QSIZE);
	assert_int_equal(vio_mem_add(&w.m.map, &r), 0);
	/* each descriptor lies in memory (never touched); together they pass 4 GiB */
	struct d d[2] = { { r.gpa, 0xc0000000u, N, AUTO }, { r.gpa + 4096, 0xc0000000u, W, 0 } };
	publish(&w, d, 2, 0);
	expect_fault(&w, VIO_VQ_LEN_OVERFLOW);
	munmap(p, big);
}

static void test_addr_outside_memory(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d d[2] = { { w.bgpa, 16, N, AUTO }, { 0x1000, 16, W, 0 } };
	publish(&w, d, 2, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

static void test_addr_straddles_region_end(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d d[1] = { { w.m.gpa + w.m.len - 8, 16, W, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

/* Two regions adjacent in guest space but not in host space: no iovec may span both. */
static void test_addr_straddles_two_regions(void **state)
{
	struct wctx w;
	static uint8_t other[4096];

	wsetup(&w, state, false, QSIZE);
	struct vio_mem_region r = { w.m.gpa + w.m.len, sizeof(other), other };
	assert_int_equal(vio_mem_add(&w.m.map, &r), 0);
	struct d d[1] = { { w.m.gpa + w.m.len - 8, 16, 0, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

static void test_addr_len_wraps_64_bits(void **state)
{
	struct wctx w;

	wsetup(&w, state, false, QSIZE);
	struct d d[1] = { { 0xfffffffffffffff0ull, 0x20, 0, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

static void test_indirect_table_outside_memory(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d d[1] = { { w.m.gpa + w.m.len - 16, 32, I, 0 } }; /* straddles the end */
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

static void test_desc_in_indirect_table_outside_memory(void **state)
{
	struct wctx w;

	wsetup(&w, state, true, QSIZE);
	struct d t[2] = { { w.bgpa, 16, w.l->packed ? 0 : N, AUTO }, { 0x2000, 16, W, 0 } };
	struct d d[1] = { { table(&w, t, 2), 32, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

/* ---- the fault's scope ---- */

/* Good chains before a bad one may be returned; then the queue is broken. */
static void test_good_chains_then_bad(void **state)
{
	struct wctx w;
	struct vio_chain c[4];
	int rc;

	wsetup(&w, state, false, QSIZE);
	struct d good[1] = { { w.bgpa, 16, 0, 0 } };
	struct d bad[1] = { { 0x1000, 16, 0, 0 } };
	publish(&w, good, 1, 0);
	publish(&w, good, 1, 1);
	publish(&w, bad, 1, 2);
	rc = pop(&w, c, 4);
	assert_true(rc == 2 || rc == -EIO);
	if (rc == 2) {
		assert_ptr_equal(c[0].iov[0].iov_base, w.buf);
		assert_int_equal(c[0].iov[0].iov_len, 16);
		assert_ptr_equal(c[1].iov[0].iov_base, w.buf);
	}
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

/*
 * One pop over chains of every shape: single descriptors (readable,
 * writable, empty), a two-descriptor chain, and a single descriptor that
 * does not fit its iov. Each comes back with the same fields whichever
 * path took it, in order, and the queue stays healthy.
 */
static void test_mixed_burst(void **state)
{
	struct wctx w;
	struct vio_chain c[6];
	static struct iovec iov[6][2];
	unsigned cap[6] = { 2, 2, 2, 2, 0, 2 };

	wsetup(&w, state, false, QSIZE);
	struct d rd[1] = { { w.bgpa, 16, 0, 0 } };
	struct d wr[1] = { { w.bgpa + 64, 32, W, 0 } };
	struct d two[2] = { { w.bgpa, 8, N, AUTO }, { w.bgpa + 128, 24, W, 0 } };
	struct d empty[1] = { { w.bgpa, 0, 0, 0 } };
	publish(&w, rd, 1, 0);
	publish(&w, two, 2, 1);
	publish(&w, wr, 1, 2);
	publish(&w, empty, 1, 3);
	publish(&w, rd, 1, 4);
	publish(&w, wr, 1, 5);
	for (unsigned i = 0; i < 6; i++) {
		c[i].iov = iov[i];
		c[i].iov_cap = (uint16_t)cap[i];
	}
	assert_int_equal(vio_virtq_pop_burst(&w.q.dev, &w.m.map, c, 6), 6);

	assert_int_equal(c[0].nout, 1);
	assert_int_equal(c[0].nin, 0);
	assert_int_equal(c[0].out_bytes, 16);
	assert_int_equal(c[0].in_bytes, 0);
	assert_int_equal(c[0].ndesc, 1);
	assert_int_equal(c[0].status, 0);
	assert_ptr_equal(c[0].iov[0].iov_base, w.buf);

	assert_int_equal(c[1].nout, 1);
	assert_int_equal(c[1].nin, 1);
	assert_int_equal(c[1].out_bytes, 8);
	assert_int_equal(c[1].in_bytes, 24);
	assert_int_equal(c[1].ndesc, 2);
	assert_ptr_equal(c[1].iov[1].iov_base, w.buf + 128);

	assert_int_equal(c[2].nout, 0);
	assert_int_equal(c[2].nin, 1);
	assert_int_equal(c[2].in_bytes, 32);
	assert_int_equal(c[2].out_bytes, 0);
	assert_ptr_equal(c[2].iov[0].iov_base, w.buf + 64);
	assert_int_equal(c[2].iov[0].iov_len, 32);

	assert_int_equal(c[3].nout + c[3].nin, 0); /* an empty buffer has no iovec */
	assert_int_equal(c[3].out_bytes + c[3].in_bytes, 0);
	assert_int_equal(c[3].status, 0);

	assert_int_equal(c[4].status, -ENOBUFS); /* no room: still popped, status says so */

	assert_int_equal(c[5].nin, 1);
	assert_int_equal(c[5].status, 0);
	if (w.l->packed) {
		for (unsigned i = 0; i < 6; i++)
			assert_int_equal(c[i].id, i);
	} else {
		assert_int_equal(c[0].id, 0);
		assert_int_equal(c[1].id, 1);
		assert_int_equal(c[2].id, 3);
		assert_int_equal(c[5].id, 6);
	}
	assert_false(vio_virtq_is_broken(&w.q.dev));
	assert_int_equal(pop(&w, c, 4), 0);
	wteardown(&w);
}

/* A table of more than max(queue size, 256) entries costs too much work per request. */
static void test_indirect_too_large(void **state)
{
	struct wctx w;
	static struct d t[257];

	wsetup(&w, state, true, QSIZE);
	for (unsigned i = 0; i < 257; i++)
		t[i] = (struct d){ w.bgpa, 16, i + 1 < 257 ? N : 0, AUTO };
	struct d d[1] = { { table(&w, t, 257), 257 * 16, I, 0 } };
	publish(&w, d, 1, 0);
	expect_fault(&w, VIO_VQ_BAD_INDIRECT);
}

/* 256 entries (the floor) are fine even on a queue of 8. */
static void test_indirect_at_floor_is_fine(void **state)
{
	struct wctx w;
	static struct d t[256];
	struct vio_chain c[1];

	wsetup(&w, state, true, QSIZE);
	for (unsigned i = 0; i < 256; i++)
		t[i] = (struct d){ w.bgpa, 16, i + 1 < 256 ? N : 0, AUTO };
	struct d d[1] = { { table(&w, t, 256), 256 * 16, I, 0 } };
	publish(&w, d, 1, 0);
	assert_int_equal(pop(&w, c, 1), 1);
	assert_int_equal(c[0].status, -ENOBUFS); /* 64 iovecs of room */
	assert_int_equal(c[0].nout, 64);
	assert_false(vio_virtq_is_broken(&w.q.dev));
	wteardown(&w);
}

/*
 * Once the iovecs are full the walker translates nothing more: a bad address
 * past that point costs no work and faults nothing, the chain is consumed
 * whole (ndesc counts every ring slot) with status -ENOBUFS.
 */
static void test_full_iov_stops_translating(void **state)
{
	struct wctx w;
	struct vio_chain c[2];
	struct iovec iov[2][2];

	wsetup(&w, state, true, QSIZE);
	struct d three[3] = { { w.bgpa, 16, N, AUTO }, { w.bgpa, 16, N, AUTO },
			      { 0xdead0000000ull, 16, 0, 0 } };
	struct d t[4] = { { w.bgpa, 16, N, AUTO }, { w.bgpa, 16, N, AUTO },
			  { 0xdead0000000ull, 16, N, AUTO }, { w.bgpa, 16, 0, 0 } };
	struct d ind[1] = { { table(&w, t, 4), 64, I, 0 } };
	publish(&w, three, 3, 0);
	publish(&w, ind, 1, 1);
	for (unsigned i = 0; i < 2; i++) {
		c[i].iov = iov[i];
		c[i].iov_cap = 2;
	}
	assert_int_equal(vio_virtq_pop_burst(&w.q.dev, &w.m.map, c, 2), 2);
	assert_int_equal(c[0].status, -ENOBUFS);
	assert_int_equal(c[0].nout, 2);
	assert_int_equal(c[0].out_bytes, 32);
	assert_int_equal(c[0].ndesc, 3);
	assert_int_equal(c[1].status, -ENOBUFS);
	assert_int_equal(c[1].nout, 2);
	assert_int_equal(c[1].ndesc, 1);
	assert_false(vio_virtq_is_broken(&w.q.dev));
	wteardown(&w);
}

/* Once broken, good chains do not revive the queue. */
static void test_broken_stays_broken(void **state)
{
	struct wctx w;
	struct vio_chain c[4];

	wsetup(&w, state, false, QSIZE);
	struct d bad[1] = { { 0x1000, 16, 0, 0 } };
	struct d good[1] = { { w.bgpa, 16, 0, 0 } };
	publish(&w, bad, 1, 0);
	assert_int_equal(pop(&w, c, 4), -EIO);
	for (int i = 0; i < 5; i++) {
		publish(&w, good, 1, (uint16_t)(i + 1));
		assert_false(vio_virtq_device_has_avail(&w.q.dev));
		assert_int_equal(pop(&w, c, 4), -EIO);
	}
	assert_int_equal(vio_virtq_fault_reason(&w.q.dev), VIO_VQ_BAD_ADDR);
	expect_fault(&w, VIO_VQ_BAD_ADDR);
}

/* Another queue in the same memory keeps working after its neighbour broke. */
static void test_other_queue_keeps_working(void **state)
{
	const struct vqh_layout *l = *state;
	struct vqh_traffic_cfg cfg = { 16, 16, 8, true };
	struct vqh_traffic t;
	struct vqh_q q2;
	struct wctx w;
	struct vio_chain c[4];

	wsetup(&w, state, false, QSIZE);
	assert_int_equal(vqh_q_init(&q2, &w.m, vqh_features(l, vqh_bit(VIRTIO_F_INDIRECT_DESC)), 32,
				    64), 0);
	assert_int_equal(vqh_traffic_init(&t, &q2, &cfg), 0);
	if (vqh_run(&t, 100))
		fail_msg("before: %s", t.err);
	struct d bad[2] = { { w.bgpa, 16, W | N, AUTO }, { w.bgpa, 16, 0, 0 } };
	publish(&w, bad, 2, 0);
	assert_int_equal(pop(&w, c, 4), -EIO);
	assert_true(vio_virtq_is_broken(&w.q.dev));
	if (vqh_run(&t, 1000))
		fail_msg("after: %s", t.err);
	assert_false(vio_virtq_is_broken(&q2.dev));
	assert_int_equal(q2.nfaults, 0);
	vqh_traffic_fini(&t);
	vqh_q_fini(&q2);
	expect_fault(&w, VIO_VQ_READ_AFTER_WRITE);
}

/* Driver side: a used id that is not in flight (a double completion) breaks the driver queue. */
static void test_driver_rejects_used_id_not_in_flight(void **state)
{
	struct wctx w;
	struct vio_chain c[2];
	struct vio_used_elem e;
	struct iovec iov = { NULL, 16 };
	void *cookies[4];
	uint32_t lens[4];
	int rc;

	wsetup(&w, state, false, QSIZE);
	for (int i = 0; i < 2; i++) {
		iov.iov_base = w.buf + 64 * i;
		assert_int_equal(vio_virtq_add(&w.q.drv, &w.m.map, &iov, 1, 0, w.buf + i), 0);
	}
	vio_virtq_kick_prepare(&w.q.drv);
	assert_int_equal(pop(&w, c, 2), 2);
	e = (struct vio_used_elem){ c[0].id, c[0].ndesc, 0 };
	vio_virtq_push_burst(&w.q.dev, &e, 1);
	vio_virtq_push_burst(&w.q.dev, &e, 1); /* the same buffer again */
	rc = vio_virtq_get_used_burst(&w.q.drv, cookies, lens, 4);
	assert_true(rc == 1 || rc == -EIO);
	if (rc == 1)
		assert_ptr_equal(cookies[0], w.buf);
	assert_int_equal(vio_virtq_get_used_burst(&w.q.drv, cookies, lens, 4), -EIO);
	assert_true(vio_virtq_is_broken(&w.q.drv));
	assert_int_equal(vio_virtq_fault_reason(&w.q.drv), VIO_VQ_BAD_USED);
	assert_int_equal(vio_virtq_add(&w.q.drv, &w.m.map, &iov, 1, 0, w.buf), -EIO);
	assert_false(vio_virtq_is_broken(&w.q.dev));
	assert_int_equal(w.q.nfaults, 0);
	wteardown(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_loop),
		VQH_SPLIT(test_loop_in_indirect_table),
		VQH_BOTH(test_nested_indirect),
		VQH_BOTH(test_indirect_with_next),
		VQH_BOTH(test_indirect_not_negotiated),
		VQH_BOTH(test_indirect_len_zero),
		VQH_BOTH(test_indirect_len_not_multiple_of_16),
		VQH_BOTH(test_indirect_too_large),
		VQH_BOTH(test_indirect_at_floor_is_fine),
		VQH_BOTH(test_full_iov_stops_translating),
		VQH_BOTH(test_read_after_write),
		VQH_BOTH(test_read_after_write_in_indirect_table),
		VQH_BOTH(test_head_out_of_range),
		VQH_SPLIT(test_next_out_of_range),
		VQH_SPLIT(test_next_out_of_range_in_indirect_table),
		VQH_SPLIT(test_avail_too_far),
		VQH_BOTH(test_avail_exactly_size_ahead_is_fine),
		VQH_BOTH(test_len_overflow),
		VQH_BOTH(test_addr_outside_memory),
		VQH_BOTH(test_addr_straddles_region_end),
		VQH_BOTH(test_addr_straddles_two_regions),
		VQH_BOTH(test_addr_len_wraps_64_bits),
		VQH_BOTH(test_indirect_table_outside_memory),
		VQH_BOTH(test_desc_in_indirect_table_outside_memory),
		VQH_BOTH(test_good_chains_then_bad),
		VQH_BOTH(test_mixed_burst),
		VQH_BOTH(test_broken_stays_broken),
		VQH_BOTH(test_other_queue_keeps_working),
		VQH_BOTH(test_driver_rejects_used_id_not_in_flight),
	};

	return cmocka_run_group_tests_name("walker", tests, NULL, NULL);
}
