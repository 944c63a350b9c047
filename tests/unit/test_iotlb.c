/* SPDX-License-Identifier: MIT */
/*
 * The device IOTLB and the translate path through it: what updates and
 * invalidations accept and refuse (zero size, wrap, bad rights, overlap),
 * the bound, access rights on every lookup, buffers mapped in pieces, and
 * the walkers with an IOTLB: a miss is reported and waits (nothing
 * consumed, no fault), a forbidden access faults the queue.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/iotlb_internal.h"
#include "core/mem_internal.h"
#include "vq_harness.h"

static uint8_t host[4 * 4096];

static void *tr(struct vio_iotlb *t, uint64_t iova, uint64_t len, unsigned perm, uint64_t *got,
		int *why)
{
	*got = 0;
	*why = 0;
	return vio_iotlb_translate(t, iova, len, perm, got, why);
}

static void update_and_rights(void **state)
{
	struct vio_iotlb t;
	uint64_t got;
	int why;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	assert_int_equal(vio_iotlb_update(&t, 0x10000, 4096, host, VIO_IOTLB_RO), 0);
	assert_ptr_equal(tr(&t, 0x10010, 16, VIO_IOTLB_RO, &got, &why), host + 0x10);
	assert_int_equal(got, 16);
	/* A read-only mapping is never written. */
	assert_null(tr(&t, 0x10010, 16, VIO_IOTLB_WO, &got, &why));
	assert_int_equal(why, -EACCES);
	assert_null(tr(&t, 0x10010, 16, VIO_IOTLB_RW, &got, &why));
	/* Nothing there: a miss. */
	assert_null(tr(&t, 0x20000, 16, VIO_IOTLB_RO, &got, &why));
	assert_int_equal(why, -ENOENT);
	assert_null(tr(&t, 0xffff, 1, VIO_IOTLB_RO, &got, &why));
	assert_int_equal(why, -ENOENT);
	/* A range running past the entry: the prefix inside it. */
	assert_ptr_equal(tr(&t, 0x10ff0, 64, VIO_IOTLB_RO, &got, &why), host + 0xff0);
	assert_int_equal(got, 16);
	assert_int_equal(atomic_load(&t.updates), 1);
	vio_iotlb_destroy(&t);
}

static void refuses_bad_updates(void **state)
{
	struct vio_iotlb t;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 0, host, VIO_IOTLB_RW), -EINVAL);
	assert_int_equal(vio_iotlb_update(&t, UINT64_MAX - 10, 4096, host, VIO_IOTLB_RW), -EINVAL);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, (void *)(UINTPTR_MAX - 100),
					  VIO_IOTLB_RW), -EINVAL);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host, 0), -EINVAL);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host, 4), -EINVAL);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host, 0xff), -EINVAL);
	assert_int_equal(vio_iotlb_invalidate(&t, 0x1000, 0), -EINVAL);
	assert_int_equal(vio_iotlb_invalidate(&t, UINT64_MAX, 2), -EINVAL);
	assert_int_equal(vio_iotlb_count(&t), 0);
	/* The very top of the space is fine when it does not wrap. */
	assert_int_equal(vio_iotlb_update(&t, UINT64_MAX - 4095, 4096, host, VIO_IOTLB_RW), 0);
	assert_int_equal(vio_iotlb_count(&t), 1);
	vio_iotlb_destroy(&t);
}

/* Storage comes only with vio_iotlb_alloc: before, every lookup misses and updates are refused. */
static void no_storage_until_alloc(void **state)
{
	struct vio_iotlb t;
	uint64_t got;
	int why;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_null(t.e);
	assert_null(tr(&t, 0x1000, 16, VIO_IOTLB_RO, &got, &why));
	assert_int_equal(why, -ENOENT);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host, VIO_IOTLB_RW), -ENOMEM);
	assert_int_equal(vio_iotlb_invalidate(&t, 0x1000, 4096), 0);
	vio_iotlb_flush(&t);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host, VIO_IOTLB_RW), 0);
	assert_ptr_equal(tr(&t, 0x1000, 16, VIO_IOTLB_RO, &got, &why), host);
	vio_iotlb_destroy(&t);
	assert_null(tr(&t, 0x1000, 16, VIO_IOTLB_RO, &got, &why));
}

static void overlap_replaces_and_invalidate_trims(void **state)
{
	struct vio_iotlb t;
	uint64_t got;
	int why;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	assert_int_equal(vio_iotlb_update(&t, 0x0, 4 * 4096, host, VIO_IOTLB_RO), 0);
	/* A write grant over the middle page replaces that part only. */
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host + 0x1000, VIO_IOTLB_RW), 0);
	assert_int_equal(vio_iotlb_count(&t), 3);
	assert_non_null(tr(&t, 0x1800, 8, VIO_IOTLB_WO, &got, &why));
	assert_null(tr(&t, 0x800, 8, VIO_IOTLB_WO, &got, &why));
	assert_null(tr(&t, 0x2800, 8, VIO_IOTLB_WO, &got, &why));
	/* Contiguous here and all readable: one piece across the three entries. */
	assert_ptr_equal(tr(&t, 0x800, 0x3000, VIO_IOTLB_RO, &got, &why), host + 0x800);
	assert_int_equal(got, 0x3000);
	/* Invalidate of a range nobody mapped changes nothing. */
	assert_int_equal(vio_iotlb_invalidate(&t, 0x100000, 4096), 0);
	assert_int_equal(vio_iotlb_count(&t), 3);
	/* Invalidate inside an entry splits it. */
	assert_int_equal(vio_iotlb_invalidate(&t, 0x400, 0x100), 0);
	assert_int_equal(vio_iotlb_count(&t), 4);
	assert_null(tr(&t, 0x450, 1, VIO_IOTLB_RO, &got, &why));
	assert_int_equal(why, -ENOENT);
	assert_ptr_equal(tr(&t, 0x500, 1, VIO_IOTLB_RO, &got, &why), host + 0x500);
	assert_ptr_equal(tr(&t, 0x3ff, 1, VIO_IOTLB_RO, &got, &why), host + 0x3ff);
	/* Everything. */
	assert_int_equal(vio_iotlb_invalidate(&t, 0, UINT64_MAX), 0);
	assert_int_equal(vio_iotlb_count(&t), 0);
	vio_iotlb_destroy(&t);
}

static void pieces_not_contiguous(void **state)
{
	struct vio_iotlb t;
	uint64_t got;
	int why;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	/* IOVA-contiguous, host pages swapped. */
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host + 0x2000, VIO_IOTLB_RW), 0);
	assert_int_equal(vio_iotlb_update(&t, 0x2000, 4096, host, VIO_IOTLB_RW), 0);
	assert_ptr_equal(tr(&t, 0x1f00, 0x200, VIO_IOTLB_RO, &got, &why), host + 0x2f00);
	assert_int_equal(got, 0x100);
	assert_ptr_equal(tr(&t, 0x2000, 0x100, VIO_IOTLB_RO, &got, &why), host);
	vio_iotlb_destroy(&t);
}

static void bounded(void **state)
{
	struct vio_iotlb t;

	(void)state;
	vio_iotlb_init(&t, 4);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	for (uint64_t i = 0; i < 1000; i++)
		assert_int_equal(vio_iotlb_update(&t, i * 0x2000, 4096, host, VIO_IOTLB_RW), 0);
	assert_int_equal(vio_iotlb_count(&t), 4);
	assert_int_equal(atomic_load(&t.evictions), 996);
	/* Splitting an entry of a full table still keeps the bound. */
	assert_int_equal(vio_iotlb_update(&t, 0x10000000, 4096, host, VIO_IOTLB_RW), 0);
	assert_int_equal(vio_iotlb_invalidate(&t, 0x10000100, 16), 0);
	assert_true(vio_iotlb_count(&t) <= 4);
	vio_iotlb_destroy(&t);
}

static uint64_t missed_iova;
static unsigned missed_perm, nmiss;

static void on_miss(void *opaque, uint64_t iova, unsigned perm)
{
	(void)opaque;
	missed_iova = iova;
	missed_perm = perm;
	nmiss++;
}

static void mem_translate_through_iotlb(void **state)
{
	struct vio_iotlb t;
	struct vio_mem m;
	struct vio_mem_region r = { 0x1000, sizeof(host), host };

	(void)state;
	vio_mem_init(&m);
	assert_int_equal(vio_mem_add(&m, &r), 0);
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	vio_iotlb_set_miss_fn(&t, on_miss, NULL);
	assert_ptr_equal(vio_mem_translate_inl(&m, 0x1000, 16, VIO_MEM_READ), host);
	m.iotlb = &t;
	/* Guest-physical addresses mean nothing any more: IOVAs only. */
	nmiss = 0;
	assert_null(vio_mem_translate_inl(&m, 0x1000, 16, VIO_MEM_READ));
	assert_int_equal(vio_mem_why(&m, 0x1000, 16, VIO_MEM_WRITE, true), -EAGAIN);
	assert_int_equal(nmiss, 1);
	assert_int_equal(missed_iova, 0x1000);
	assert_int_equal(missed_perm, VIO_MEM_WRITE);
	assert_int_equal(atomic_load(&t.misses), 1);
	assert_int_equal(vio_iotlb_update(&t, 0x1000, 4096, host + 4096, VIO_IOTLB_RO), 0);
	assert_ptr_equal(vio_mem_translate_inl(&m, 0x1010, 16, VIO_MEM_READ), host + 4096 + 16);
	assert_null(vio_mem_translate_inl(&m, 0x1010, 16, VIO_MEM_WRITE));
	assert_int_equal(vio_mem_why(&m, 0x1010, 16, VIO_MEM_WRITE, true), -EFAULT); /* forbidden */
	assert_int_equal(nmiss, 1);
	/* The public translate asks for both rights. */
	assert_null(vio_mem_translate(&m, 0x1010, 16));
	vio_iotlb_destroy(&t);
}

/*
 * One writer remaps and invalidates while a reader translates: every
 * answer the reader gets must be one the table held at some moment (iova
 * with its own host page, whole), never a mix of two entries.
 */
#define RACE_PAGES 64
static uint8_t race_host[2][RACE_PAGES * 4096];
static atomic_bool race_stop;
static atomic_ulong race_hits;

static void *race_reader(void *arg)
{
	struct vio_iotlb *t = arg;
	unsigned long bad = 0, hits = 0;

	while (!atomic_load(&race_stop)) {
		for (uint64_t p = 0; p < RACE_PAGES; p++) {
			uint64_t got;
			int why;
			uint8_t *h = vio_iotlb_translate(t, 0x10000 + p * 4096 + 8, 16, VIO_IOTLB_RO,
							 &got, &why);

			if (!h)
				continue;
			hits++;
			atomic_store_explicit(&race_hits, hits, memory_order_relaxed);
			if (got != 16 || (h != race_host[0] + p * 4096 + 8 &&
					  h != race_host[1] + p * 4096 + 8))
				bad++;
		}
	}
	return (void *)(uintptr_t)(bad ? 0 : hits ? 1 : 2);
}

static void concurrent_reader(void **state)
{
	struct vio_iotlb t;
	pthread_t th;
	void *res;

	(void)state;
	vio_iotlb_init(&t, 0);
	assert_int_equal(vio_iotlb_alloc(&t), 0);
	atomic_store(&race_stop, false);
	atomic_store(&race_hits, 0);
	assert_int_equal(pthread_create(&th, NULL, race_reader, &t), 0);
	for (uint64_t p = 1; p < RACE_PAGES; p++)
		assert_int_equal(vio_iotlb_update(&t, 0x10000 + p * 4096, 4096, race_host[0] + p * 4096,
						  VIO_IOTLB_RO), 0);
	/*
	 * Page 0 comes and goes: every publish moves all the other entries one
	 * slot, so a reader that mixed two layouts would pair an IOVA with its
	 * neighbour's page. Until the reader has seen plenty (bounded).
	 */
	for (unsigned i = 0; i < 5000000 && (i < 20000 || atomic_load(&race_hits) < 2000000); i++) {
		assert_int_equal(vio_iotlb_invalidate(&t, 0x10000, 4096), 0);
		assert_int_equal(vio_iotlb_update(&t, 0x10000, 4096, race_host[i & 1], VIO_IOTLB_RO), 0);
	}
	atomic_store(&race_stop, true);
	assert_int_equal(pthread_join(th, &res), 0);
	/* 0: a torn answer; 2: the reader never hit (the race did not happen). */
	assert_int_equal((uintptr_t)res, 1);
	vio_iotlb_destroy(&t);
}

/* ---- the walkers with an IOTLB ---- */

struct ictx {
	struct vqh_mem m;
	struct vqh_q q;
	struct vio_iotlb t;
	uint8_t *buf;
	uint16_t next_desc;
};

static void isetup(struct ictx *w, const struct vqh_layout *l)
{
	assert_int_equal(vqh_mem_init(&w->m, 1 << 20), 0);
	/* The rings resolve by guest address first; then every buffer goes through the IOTLB. */
	assert_int_equal(vqh_q_init(&w->q, &w->m, vqh_features(l, 0), 8, 0), 0);
	w->buf = vqh_mem_alloc(&w->m, 4 * 4096, 4096);
	assert_non_null(w->buf);
	vio_iotlb_init(&w->t, 0);
	assert_int_equal(vio_iotlb_alloc(&w->t), 0);
	vio_iotlb_set_miss_fn(&w->t, on_miss, NULL);
	w->m.map.iotlb = &w->t;
	w->next_desc = 0;
}

static void iteardown(struct ictx *w)
{
	w->m.map.iotlb = NULL;
	vio_iotlb_destroy(&w->t);
	vqh_q_fini(&w->q);
	vqh_mem_fini(&w->m);
}

static void ipublish(struct ictx *w, const struct vqh_layout *l, uint64_t addr, uint32_t len,
		     uint16_t flags)
{
	if (!l->packed) {
		vqh_split_desc(&w->q, w->next_desc, addr, len, flags, 0);
		vqh_split_publish(&w->q, w->next_desc++);
	} else {
		struct pvirtq_desc d = { addr, len, 0, flags };

		vqh_packed_publish(&w->q, &d, 1);
	}
}

static int ipop(struct ictx *w, struct vio_chain *c, struct iovec *iov)
{
	c->iov = iov;
	c->iov_cap = 8;
	return vio_virtq_pop_burst(&w->q.dev, &w->m.map, c, 1);
}

static void miss_waits_then_pieces(void **state)
{
	const struct vqh_layout *l = *state;
	struct ictx w;
	struct vio_chain c;
	struct iovec iov[8];

	isetup(&w, l);
	nmiss = 0;
	ipublish(&w, l, 0x50000f00, 0x200, VIRTQ_DESC_F_WRITE);
	/* Not mapped yet: nothing popped, not a fault, the miss told once per try. */
	assert_int_equal(ipop(&w, &c, iov), 0);
	assert_false(vio_virtq_is_broken(&w.q.dev));
	assert_int_equal(nmiss, 1);
	assert_int_equal(missed_iova, 0x50000f00);
	assert_int_equal(missed_perm, VIO_MEM_WRITE);
	assert_false(vio_virtq_device_enable_notify(&w.q.dev)); /* sleep until kicked */
	/* The first page only: the rest misses. */
	assert_int_equal(vio_iotlb_update(&w.t, 0x50000000, 4096, w.buf + 0x2000, VIO_IOTLB_RW), 0);
	assert_int_equal(ipop(&w, &c, iov), 0);
	assert_int_equal(missed_iova, 0x50001000);
	/* The second page elsewhere in host memory: two iovecs for one descriptor. */
	assert_int_equal(vio_iotlb_update(&w.t, 0x50001000, 4096, w.buf, VIO_IOTLB_WO), 0);
	assert_int_equal(ipop(&w, &c, iov), 1);
	assert_int_equal(c.nin, 2);
	assert_ptr_equal(iov[0].iov_base, w.buf + 0x2f00);
	assert_int_equal(iov[0].iov_len, 0x100);
	assert_ptr_equal(iov[1].iov_base, w.buf);
	assert_int_equal(iov[1].iov_len, 0x100);
	assert_int_equal(c.in_bytes, 0x200);
	iteardown(&w);
}

static void write_through_read_only_faults(void **state)
{
	const struct vqh_layout *l = *state;
	struct ictx w;
	struct vio_chain c;
	struct iovec iov[8];

	isetup(&w, l);
	assert_int_equal(vio_iotlb_update(&w.t, 0x70000000, 4096, w.buf, VIO_IOTLB_RO), 0);
	/* Reading it is fine. */
	ipublish(&w, l, 0x70000000, 64, 0);
	assert_int_equal(ipop(&w, &c, iov), 1);
	assert_int_equal(c.nout, 1);
	/* The device writing through it is not: the queue faults, memory untouched. */
	ipublish(&w, l, 0x70000000, 64, VIRTQ_DESC_F_WRITE);
	assert_int_equal(ipop(&w, &c, iov), -EIO);
	assert_true(vio_virtq_is_broken(&w.q.dev));
	assert_int_equal(vio_virtq_fault_reason(&w.q.dev), VIO_VQ_BAD_ADDR);
	iteardown(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(update_and_rights),
		cmocka_unit_test(refuses_bad_updates),
		cmocka_unit_test(no_storage_until_alloc),
		cmocka_unit_test(overlap_replaces_and_invalidate_trims),
		cmocka_unit_test(pieces_not_contiguous),
		cmocka_unit_test(bounded),
		cmocka_unit_test(mem_translate_through_iotlb),
		cmocka_unit_test(concurrent_reader),
		VQH_BOTH(miss_waits_then_pieces),
		VQH_BOTH(write_through_read_only_faults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
