/* SPDX-License-Identifier: MIT */
/*
 * Driver side against device side of one queue, both layouts: every queue
 * size class, chains of 1..64 descriptors, direct and indirect, IN_ORDER and
 * EVENT_IDX on and off, one and two threads, well past 16-bit wrap-around,
 * with every byte checked both ways. Plus full ring, -ENOBUFS, base hand-over
 * and device_init's argument checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"
#include "vq_harness.h"

#define F_IND (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVT (1ull << VIRTIO_F_EVENT_IDX)
#define F_ORD (1ull << VIRTIO_F_IN_ORDER)

struct run {
	uint16_t size, max_chain, max_len, burst;
	uint64_t extra;
	bool ooo, threads;
	uint32_t ops;
};

static const uint64_t feature_sets[] = {
	0, F_IND, F_EVT | F_ORD, F_IND | F_EVT, F_ORD, F_IND | F_ORD, F_EVT, F_IND | F_EVT | F_ORD,
};

static void run_cfg(const struct vqh_layout *l, const struct run *r, struct vqh_traffic *out)
{
	uint64_t f = vqh_features(l, r->extra);
	uint16_t im = (r->extra & F_IND) ? 64 : 0;
	struct vqh_traffic_cfg cfg = { r->max_chain, r->max_len, r->burst, r->ooo };
	struct vqh_mem m;
	struct vqh_q q;
	struct vqh_traffic t;
	int rc;

	assert_int_equal(vqh_mem_init(&m, vqh_q_bytes(f, r->size, im) +
					      vqh_traffic_bytes(r->size, &cfg) + 8192), 0);
	assert_int_equal(vqh_q_init(&q, &m, f, r->size, im), 0);
	assert_int_equal(vqh_traffic_init(&t, &q, &cfg), 0);
	rc = r->threads ? vqh_run_threads(&t, r->ops) : vqh_run(&t, r->ops);
	if (rc)
		fail_msg("%s size %u features %#llx%s%s: %s", l->name, r->size,
			 (unsigned long long)r->extra, r->ooo ? " ooo" : "",
			 r->threads ? " threads" : "", t.err);
	assert_true(t.reaped == r->ops && t.popped == r->ops);
	assert_false(vio_virtq_is_broken(&q.dev));
	assert_int_equal(q.nfaults, 0);
	assert_int_equal(vio_virtq_num_free(&q.drv), r->size);
	if (out)
		*out = t;
	vqh_traffic_fini(&t);
	vqh_q_fini(&q);
	vqh_mem_fini(&m);
}

static const uint16_t split_sizes[] = { 1, 2, 4, 8, 16, 64, 256, 1024, 4096, 32768 };
static const uint16_t packed_sizes[] = { 1, 2, 3, 100, 256, 1000, 4096, 32767, 32768 };

/* Every size class, features rotating, 70000 chains each: past 16-bit wrap. */
static void test_sizes_one_thread(void **state)
{
	const struct vqh_layout *l = *state;
	const uint16_t *sizes = l->packed ? packed_sizes : split_sizes;
	size_t n = l->packed ? sizeof(packed_sizes) / 2 : sizeof(split_sizes) / 2;

	alarm(600);
	for (size_t i = 0; i < n; i++) {
		struct run r = {
			.size = sizes[i],
			.max_chain = sizes[i] >= 4096 ? 8 : 64,
			.max_len = 16,
			.burst = 32,
			.extra = feature_sets[i % 8],
			.ooo = i % 3 == 1,
			.ops = 70000,
		};
		run_cfg(l, &r, NULL);
	}
	alarm(0);
}

/* All eight feature combinations on one mid-size queue, long chains. */
static void test_feature_matrix(void **state)
{
	const struct vqh_layout *l = *state;

	alarm(600);
	for (size_t i = 0; i < 8; i++) {
		for (int ooo = 0; ooo < 2; ooo++) {
			struct run r = {
				.size = l->packed ? 250 : 256,
				.max_chain = 64,
				.max_len = 12,
				.burst = 16 + 7 * (unsigned)i,
				.extra = feature_sets[i],
				.ooo = ooo,
				.ops = 12000,
			};
			run_cfg(l, &r, NULL);
		}
	}
	alarm(0);
}

/* One thread is the driver, one the device; they share only the rings. */
static void test_two_threads(void **state)
{
	const struct vqh_layout *l = *state;
	static const uint16_t ssz[] = { 1, 8, 256, 32768 };
	static const uint16_t psz[] = { 1, 3, 100, 1000, 32767 };
	const uint16_t *sizes = l->packed ? psz : ssz;
	size_t n = l->packed ? 5 : 4;

	alarm(600);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct run r = {
				.size = sizes[i],
				.max_chain = sizes[i] >= 4096 ? 8 : 64,
				.max_len = 16,
				.burst = 32,
				.extra = feature_sets[(i * 2 + j) % 8],
				.ooo = j,
				.threads = true,
				.ops = 40000,
			};
			run_cfg(l, &r, NULL);
		}
	}
	alarm(0);
}

/* A device that completes out of order: the driver must see it and cope. */
static void test_out_of_order(void **state)
{
	const struct vqh_layout *l = *state;
	struct vqh_traffic t;

	alarm(120);
	for (int ind = 0; ind < 2; ind++) {
		struct run r = { .size = 16, .max_chain = 16, .max_len = 8, .burst = 8,
				 .extra = ind ? F_IND : 0, .ooo = true, .ops = 20000 };
		run_cfg(l, &r, &t);
		assert_true(t.reordered > 100);
	}
	/* with IN_ORDER the same device completes in order */
	struct run r = { .size = 16, .max_chain = 16, .max_len = 8, .burst = 8,
			 .extra = F_ORD, .ooo = true, .ops = 5000 };
	run_cfg(l, &r, &t);
	assert_true(t.reordered == 0);
	alarm(0);
}

static void post_one(struct vqh_q *q, void *buf, size_t len, unsigned nout, unsigned nin,
		     void *cookie, int want)
{
	struct iovec iov[64];

	for (unsigned i = 0; i < nout + nin; i++) {
		iov[i].iov_base = (char *)buf + i * len;
		iov[i].iov_len = len;
	}
	assert_int_equal(vio_virtq_add(&q->drv, &q->m->map, iov, nout, nin, cookie), want);
}

/* Fill the ring: -ENOSPC exactly when the descriptors run out, and recovery after. */
static void test_full_ring(void **state)
{
	const struct vqh_layout *l = *state;
	struct vio_chain c;
	struct iovec iov[8];
	struct vio_used_elem e;
	void *cookie;
	uint32_t len;

	for (int ind = 0; ind < 2; ind++) {
		uint64_t f = vqh_features(l, ind ? F_IND : 0);
		struct vqh_mem m;
		struct vqh_q q;
		uint8_t *buf;
		int n;

		assert_int_equal(vqh_mem_init(&m, 1 << 20), 0);
		assert_int_equal(vqh_q_init(&q, &m, f, 8, ind ? 64 : 0), 0);
		buf = vqh_mem_alloc(&m, 4096, 16);
		/* 1-descriptor chains: exactly size fit */
		for (int i = 0; i < 8; i++)
			post_one(&q, buf + 64 * i, 16, 1, 0, buf + i, 0);
		assert_int_equal(vio_virtq_num_free(&q.drv), 0);
		post_one(&q, buf, 16, 1, 0, buf, -ENOSPC);
		post_one(&q, buf, 16, 1, 2, buf, -ENOSPC);
		vio_virtq_kick_prepare(&q.drv);
		/* one completed buffer makes room for exactly one more */
		c.iov = iov;
		c.iov_cap = 8;
		assert_int_equal(vio_virtq_pop_burst(&q.dev, &m.map, &c, 1), 1);
		e = (struct vio_used_elem){ c.id, c.ndesc, 0 };
		vio_virtq_push_burst(&q.dev, &e, 1);
		assert_int_equal(vio_virtq_get_used_burst(&q.drv, &cookie, &len, 1), 1);
		assert_ptr_equal(cookie, buf + 0);
		assert_int_equal(vio_virtq_num_free(&q.drv), 1);
		post_one(&q, buf, 16, 1, 0, buf + 9, 0);
		post_one(&q, buf, 16, 1, 0, buf, -ENOSPC);
		vio_virtq_kick_prepare(&q.drv);
		/* drain */
		while ((n = vio_virtq_pop_burst(&q.dev, &m.map, &c, 1)) == 1) {
			e = (struct vio_used_elem){ c.id, c.ndesc, 0 };
			vio_virtq_push_burst(&q.dev, &e, 1);
		}
		assert_int_equal(n, 0);
		while (vio_virtq_get_used_burst(&q.drv, &cookie, &len, 1) == 1)
			;
		assert_int_equal(vio_virtq_num_free(&q.drv), 8);
		/* 3-iovec chains: direct take 3 slots (2 fit in 8), indirect take 1 (8 fit) */
		for (int i = 0; i < (ind ? 8 : 2); i++)
			post_one(&q, buf + 256 * i, 16, 2, 1, buf + i, 0);
		assert_int_equal(vio_virtq_num_free(&q.drv), ind ? 0 : 2);
		post_one(&q, buf, 16, 2, 1, buf, -ENOSPC);
		if (!ind)
			post_one(&q, buf + 1024, 16, 1, 1, buf + 100, 0); /* 2 still fit */
		assert_int_equal(vio_virtq_num_free(&q.drv), 0);
		assert_false(vio_virtq_is_broken(&q.drv));
		vqh_q_fini(&q);
		vqh_mem_fini(&m);
	}
}

/* A chain longer than iov_cap: popped with -ENOBUFS, pushed back, the queue goes on. */
static void test_enobufs(void **state)
{
	const struct vqh_layout *l = *state;

	for (int ind = 0; ind < 2; ind++) {
		uint64_t f = vqh_features(l, ind ? F_IND : 0);
		struct vqh_traffic_cfg cfg = { 16, 8, 8, false };
		struct vqh_traffic t;
		struct vqh_mem m;
		struct vqh_q q;
		struct vio_chain c[2];
		struct iovec iov[8];
		struct vio_used_elem e[2];
		void *cookies[2];
		uint32_t lens[2];
		uint8_t *buf;

		assert_int_equal(vqh_mem_init(&m, 4 << 20), 0);
		assert_int_equal(vqh_q_init(&q, &m, f, 16, ind ? 64 : 0), 0);
		buf = vqh_mem_alloc(&m, 4096, 16);
		post_one(&q, buf, 32, 4, 4, buf + 1, 0);
		post_one(&q, buf + 512, 32, 1, 1, buf + 2, 0);
		vio_virtq_kick_prepare(&q.drv);
		c[0].iov = iov;
		c[0].iov_cap = 4;
		c[1].iov = iov + 4;
		c[1].iov_cap = 4;
		assert_int_equal(vio_virtq_pop_burst(&q.dev, &m.map, c, 2), 2);
		assert_int_equal(c[0].status, -ENOBUFS);
		assert_int_equal(c[0].ndesc, ind ? 1 : 8);
		assert_int_equal(c[1].status, 0);
		assert_int_equal(c[1].nout, 1);
		assert_int_equal(c[1].nin, 1);
		assert_ptr_equal(c[1].iov[0].iov_base, buf + 512);
		assert_ptr_equal(c[1].iov[1].iov_base, buf + 512 + 32);
		assert_false(vio_virtq_is_broken(&q.dev));
		e[0] = (struct vio_used_elem){ c[0].id, c[0].ndesc, 0 };
		e[1] = (struct vio_used_elem){ c[1].id, c[1].ndesc, 5 };
		vio_virtq_push_burst(&q.dev, e, 2);
		assert_int_equal(vio_virtq_get_used_burst(&q.drv, cookies, lens, 2), 2);
		assert_ptr_equal(cookies[0], buf + 1);
		assert_int_equal(lens[0], 0);
		assert_ptr_equal(cookies[1], buf + 2);
		assert_int_equal(lens[1], 5);
		assert_int_equal(vio_virtq_num_free(&q.drv), 16);
		/* and the queue keeps working */
		assert_int_equal(vqh_traffic_init(&t, &q, &cfg), 0);
		if (vqh_run(&t, 3000))
			fail_msg("%s", t.err);
		vqh_traffic_fini(&t);
		vqh_q_fini(&q);
		vqh_mem_fini(&m);
	}
}

/* Where the device side must stand after t moved every chain it popped back used. */
static void expected_pos(const struct vqh_layout *l, const struct vqh_traffic *t, uint16_t size,
			 struct vio_virtq_pos *pos)
{
	memset(pos, 0, sizeof(*pos));
	if (!l->packed) {
		pos->avail_idx = pos->used_idx = (uint16_t)t->popped;
		return;
	}
	pos->avail_idx = pos->used_idx = (uint16_t)(t->slots_used % size);
	pos->avail_wrap = pos->used_wrap = ((t->slots_used / size) & 1) == 0;
}

static void assert_pos_equal(const struct vio_virtq_pos *a, const struct vio_virtq_pos *b)
{
	assert_int_equal(a->avail_idx, b->avail_idx);
	assert_int_equal(a->used_idx, b->used_idx);
	assert_int_equal(a->avail_wrap, b->avail_wrap);
	assert_int_equal(a->used_wrap, b->used_wrap);
}

/* get_pos / set_pos: a new device queue continues where the old one stopped. */
static void test_base_roundtrip(void **state)
{
	const struct vqh_layout *l = *state;
	uint16_t size = l->packed ? 61 : 64;

	alarm(120);
	for (int k = 0; k < 2; k++) {
		uint64_t extra = k ? F_IND | F_EVT : 0;
		uint64_t f = vqh_features(l, extra);
		uint16_t im = k ? 64 : 0;
		struct vqh_traffic_cfg cfg = { 8, 8, 16, !k };
		struct vqh_traffic t;
		struct vqh_mem m;
		struct vqh_q q;

		assert_int_equal(vqh_mem_init(&m, vqh_q_bytes(f, size, im) +
						      vqh_traffic_bytes(size, &cfg)), 0);
		assert_int_equal(vqh_q_init(&q, &m, f, size, im), 0);
		assert_int_equal(vqh_traffic_init(&t, &q, &cfg), 0);
		for (int round = 0; round < 90; round++) {
			struct vio_virtq nd;
			struct vio_virtq_pos pos, want, back, past = { .avail_idx = size };

			if (vqh_run(&t, 777 + 13 * round))
				fail_msg("round %d: %s", round, t.err);
			assert_int_equal(vio_virtq_get_pos(&q.dev, &pos), 0);
			expected_pos(l, &t, size, &want);
			assert_pos_equal(&pos, &want);
			assert_int_equal(vio_virtq_device_init(&nd, f, size, &q.addrs, &m.map), 0);
			if (l->packed) /* a slot past the ring */
				assert_int_equal(vio_virtq_set_pos(&nd, &past), -EINVAL);
			assert_int_equal(vio_virtq_set_pos(&nd, &pos), 0);
			assert_int_equal(vio_virtq_get_pos(&nd, &back), 0);
			assert_pos_equal(&back, &pos);
			vio_virtq_set_owner(&nd, "test q7", 7, q.dev.on_fault, q.dev.fault_opaque);
			vio_virtq_fini(&q.dev);
			q.dev = nd;
		}
		assert_true(t.popped > 70000);
		vqh_traffic_fini(&t);
		vqh_q_fini(&q);
		vqh_mem_fini(&m);
	}
	alarm(0);
}

static void test_device_init_rejects(void **state)
{
	const struct vqh_layout *l = *state;
	uint64_t f = vqh_features(l, 0);
	struct vio_virtq v;
	struct vio_virtq_addrs a;
	struct vqh_mem m;
	struct vqh_q q;

	assert_int_equal(vqh_mem_init(&m, 64 << 10), 0);
	assert_int_equal(vqh_q_init(&q, &m, f, 8, 0), 0);
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &q.addrs, &m.map), 0);
	/* sizes */
	assert_int_equal(vio_virtq_device_init(&v, f, 0, &q.addrs, &m.map), -EINVAL);
	assert_int_equal(vio_virtq_device_init(&v, f, 65535, &q.addrs, &m.map), -EINVAL);
	assert_int_equal(vio_virtq_device_init(&v, f, 32769, &q.addrs, &m.map), -EINVAL);
	/* packed sizes need not be powers of two */
	assert_int_equal(vio_virtq_device_init(&v, f, 3, &q.addrs, &m.map),
			 l->packed ? 0 : -EINVAL);
	assert_int_equal(vio_virtq_device_init(&v, f, 12, &q.addrs, &m.map),
			 l->packed ? 0 : -EINVAL);
	/* alignment */
	a = q.addrs;
	a.desc += 8;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EINVAL);
	a = q.addrs;
	a.driver += l->packed ? 2 : 1;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EINVAL);
	a = q.addrs;
	a.device += 2;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EINVAL);
	/* rings outside memory, wholly or straddling its end */
	a = q.addrs;
	a.desc = 0x1000;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
	a = q.addrs;
	a.driver = m.gpa + m.len;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
	a = q.addrs;
	a.device = m.gpa + m.len + 4096;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
	a = q.addrs;
	a.desc = m.gpa + m.len - 16;
	assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
	if (!l->packed) {
		a = q.addrs;
		a.device = m.gpa + m.len - 8; /* used ring of 8 is 70 bytes */
		assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
		a = q.addrs;
		a.driver = m.gpa + m.len - 8; /* avail ring of 8 is 22 bytes */
		assert_int_equal(vio_virtq_device_init(&v, f, 8, &a, &m.map), -EFAULT);
	}
	/* a big queue whose rings run off the region */
	assert_int_equal(vio_virtq_device_init(&v, f, 32768, &q.addrs, &m.map), -EFAULT);
	/* driver_init checks too */
	assert_int_equal(vio_virtq_driver_init(&v, f, 0, 0, q.area, q.addrs.desc, 1 << 14, &a),
			 -EINVAL);
	assert_int_equal(vio_virtq_driver_init(&v, f, 8, 0, q.area, q.addrs.desc, 16, &a), -EINVAL);
	vio_virtq_fini(&v);
	vqh_q_fini(&q);
	vqh_mem_fini(&m);
}

/* vio_virtq_add's own checks. */
static void test_add_rejects(void **state)
{
	const struct vqh_layout *l = *state;
	struct vqh_mem m;
	struct vqh_q q;
	uint8_t stack_buf[64];
	struct iovec iov[2];
	uint8_t *buf;

	assert_int_equal(vqh_mem_init(&m, 64 << 10), 0);
	assert_int_equal(vqh_q_init(&q, &m, vqh_features(l, 0), 8, 0), 0);
	buf = vqh_mem_alloc(&m, 256, 16);
	iov[0] = (struct iovec){ buf, 16 };
	iov[1] = (struct iovec){ buf + 16, 0 };
	assert_int_equal(vio_virtq_add(&q.drv, &m.map, iov, 0, 0, buf), -EINVAL);
	assert_int_equal(vio_virtq_add(&q.drv, &m.map, iov, 1, 1, buf), -EINVAL);
	iov[0] = (struct iovec){ stack_buf, sizeof(stack_buf) };
	assert_int_equal(vio_virtq_add(&q.drv, &m.map, iov, 1, 0, buf), -EFAULT);
	/* straddling the end of the region */
	iov[0] = (struct iovec){ m.host + m.len - 8, 16 };
	assert_int_equal(vio_virtq_add(&q.drv, &m.map, iov, 1, 0, buf), -EFAULT);
	assert_int_equal(vio_virtq_num_free(&q.drv), 8);
	/* nothing was published by the failed adds */
	vio_virtq_kick_prepare(&q.drv);
	assert_false(vio_virtq_device_has_avail(&q.dev));
	iov[0] = (struct iovec){ buf, 16 };
	assert_int_equal(vio_virtq_add(&q.drv, &m.map, iov, 1, 0, buf), 0);
	assert_false(vio_virtq_device_has_avail(&q.dev)); /* not before kick_prepare */
	vio_virtq_kick_prepare(&q.drv);
	assert_true(vio_virtq_device_has_avail(&q.dev));
	vqh_q_fini(&q);
	vqh_mem_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_device_init_rejects),
		VQH_BOTH(test_add_rejects),
		VQH_BOTH(test_full_ring),
		VQH_BOTH(test_enobufs),
		VQH_BOTH(test_out_of_order),
		VQH_BOTH(test_base_roundtrip),
		VQH_BOTH(test_feature_matrix),
		VQH_BOTH(test_sizes_one_thread),
		VQH_BOTH(test_two_threads),
	};

#ifdef VIO_TEST_TSAN
	/* One thread gives ThreadSanitizer nothing to check, and takes minutes under it. */
	cmocka_set_test_filter("*two_threads*");
#endif
	return cmocka_run_group_tests_name("virtq", tests, NULL, NULL);
}
