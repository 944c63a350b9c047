/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging in the core (src/core/dirty_log.c): with no log set a
 * queue reports nothing; with one, vio_virtq_log_write reports exactly the
 * guest-physical ranges of the host iovecs a device filled, and every push
 * reports the ring bytes it wrote (split: used flags/idx and the used
 * elements, split in two across the ring's end; packed: the descriptor
 * slots), and nothing when ring logging is off. Both layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/dirty_log.h"
#include "vq_harness.h"

#define QSIZE 8
#define MAXR 64

struct sink {
	unsigned n;
	uint64_t gpa[MAXR], len[MAXR];
};

static void record(void *opaque, uint64_t gpa, uint64_t len)
{
	struct sink *s = opaque;

	assert_true(len > 0);
	if (s->n < MAXR) {
		s->gpa[s->n] = gpa;
		s->len[s->n] = len;
	}
	s->n++;
}

static bool has(const struct sink *s, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < s->n && i < MAXR; i++)
		if (s->gpa[i] == gpa && s->len[i] == len)
			return true;
	return false;
}

/* Driver: post n chains of one 64-byte writable buffer each (one ring slot each). */
static void post(struct vqh_q *q, uint8_t *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct iovec iov[1] = { { bufs + i * 128 + 64, 64 } };

		assert_int_equal(vio_virtq_add(&q->drv, &q->m->map, iov, 0, 1, bufs + i * 128), 0);
	}
	vio_virtq_kick_prepare(&q->drv);
}

/* Device: pop n, log each writable iovec, push them used in one burst. */
static void serve(struct vqh_q *q, unsigned n)
{
	struct vio_chain c[QSIZE];
	struct iovec iov[QSIZE][4];
	struct vio_used_elem u[QSIZE];

	for (unsigned i = 0; i < n; i++) {
		c[i].iov = iov[i];
		c[i].iov_cap = 4;
	}
	assert_int_equal(vio_virtq_pop_burst(&q->dev, &q->m->map, c, n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(c[i].nin, 1);
		vio_virtq_log_write(&q->dev, c[i].iov + c[i].nout, c[i].nin);
		u[i] = (struct vio_used_elem){ .id = c[i].id, .ndesc = c[i].ndesc, .len = 64 };
	}
	assert_int_equal(vio_virtq_push_burst(&q->dev, u, n), (int)n);
}

static void reap(struct vqh_q *q, unsigned n)
{
	void *cookies[QSIZE];
	uint32_t lens[QSIZE];

	assert_int_equal(vio_virtq_get_used_burst(&q->drv, cookies, lens, QSIZE), (int)n);
}

static void test_dirty_log(void **state)
{
	const struct vqh_layout *l = *state;
	uint64_t f = vqh_features(l, 0);
	struct vqh_mem m;
	struct vqh_q q;
	struct sink s = { 0 };
	struct vio_dirty_log d = { .write = record, .opaque = &s };
	uint8_t *bufs;

	assert_int_equal(vqh_mem_init(&m, vqh_q_bytes(f, QSIZE, 0) + 8192), 0);
	assert_int_equal(vqh_q_init(&q, &m, f, QSIZE, 0), 0);
	bufs = vqh_mem_alloc(&m, QSIZE * 128, 64);
	d.gpa_map = &m.map;

	/* No log: nothing reported, logging says false. */
	assert_false(vio_virtq_logging(&q.dev));
	post(&q, bufs, 2);
	serve(&q, 2);
	reap(&q, 2);
	assert_int_equal(s.n, 0);

	/* Data only (ring logging off): exactly the writable buffers' guest ranges. */
	vio_virtq_set_dirty_log(&q.dev, &d);
	assert_true(vio_virtq_logging(&q.dev));
	post(&q, bufs, 3);
	serve(&q, 3);
	reap(&q, 3);
	assert_int_equal(s.n, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_true(has(&s, vqh_gpa(&m, bufs + i * 128 + 64), 64));

	/* Rings too: 5 used so far; a burst of 5 more crosses the end of the ring of 8. */
	d.log_ring = true;
	d.ring_gpa = q.addrs.device;
	d.desc_gpa = q.addrs.desc;
	memset(&s, 0, sizeof(s));
	post(&q, bufs, 5);
	serve(&q, 5);
	if (!l->packed) {
		assert_true(has(&s, q.addrs.device, 4));                /* flags and idx */
		assert_true(has(&s, q.addrs.device + 4 + 8 * 5, 8 * 3)); /* elements 5..7 */
		assert_true(has(&s, q.addrs.device + 4, 8 * 2));        /* elements 0..1 */
		assert_int_equal(s.n, 5 + 3);
	} else {
		assert_true(has(&s, q.addrs.desc + 16 * 5, 16 * 3)); /* slots 5..7 */
		assert_true(has(&s, q.addrs.desc, 16 * 2));          /* slots 0..1 */
		assert_int_equal(s.n, 5 + 2);
	}
	reap(&q, 5);

	/* Cleared: silent again. */
	vio_virtq_set_dirty_log(&q.dev, NULL);
	memset(&s, 0, sizeof(s));
	post(&q, bufs, 1);
	serve(&q, 1);
	reap(&q, 1);
	assert_int_equal(s.n, 0);
	/* A driver queue takes no log. */
	vio_virtq_set_dirty_log(&q.drv, &d);
	assert_false(vio_virtq_logging(&q.drv));
	vqh_q_fini(&q);
	vqh_mem_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_dirty_log),
	};

	return cmocka_run_group_tests_name("dirty_log", tests, NULL, NULL);
}
