/* SPDX-License-Identifier: MIT */
/*
 * Broken means inert: every public virtqueue call, on a queue that has
 * faulted, returns its documented inert result and writes nothing into the
 * rings; every call made for the other role returns -EINVAL (false, 0).
 * One table lists the calls; it runs for both layouts and both roles. Then
 * the queue service helper on a queue a driver breaks: it reports -EIO at
 * once and never spins.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vio/blk.h"
#include "vio/service.h"
#include "vq_harness.h"

#define QSIZE 16

/* What a call returned, as one number (bools as 0/1). */
typedef long call_fn(struct vqh_q *q, struct vio_virtq *vq, void *scratch);

enum role { DEV, DRV };

struct call {
	const char *name;
	enum role role; /* the role the call belongs to */
	call_fn *fn;
	long broken;    /* result on a broken queue of its own role */
	long misuse;    /* result on a queue of the other role (healthy) */
};

static long c_pop(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	struct iovec iov[4];
	struct vio_chain c = { .iov = iov, .iov_cap = 4 };

	return vio_virtq_pop_burst(vq, &q->m->map, &c, 1);
}

static long c_push(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	struct vio_used_elem e = { .id = 0, .ndesc = 1, .len = 0 };

	return vio_virtq_push_burst(vq, &e, 1);
}

static long c_should_notify(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_device_should_notify(vq);
}

static long c_disable_notify(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_device_disable_notify(vq);
}

static long c_enable_notify(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_device_enable_notify(vq);
}

static long c_has_avail(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_device_has_avail(vq);
}

static long c_set_pos(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	struct vio_virtq_pos pos = { .avail_wrap = true, .used_wrap = true };

	return vio_virtq_set_pos(vq, &pos);
}

static long c_remap(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_remap(vq, &q->m->map);
}

static long c_add(struct vqh_q *q, struct vio_virtq *vq, void *buf)
{
	struct iovec iov = { buf, 16 };

	return vio_virtq_add(vq, &q->m->map, &iov, 1, 0, buf);
}

static long c_kick_prepare(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_kick_prepare(vq);
}

static long c_publish(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_publish(vq);
}

static long c_get_used(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	void *cookies[4];
	uint32_t lens[4];

	return vio_virtq_get_used_burst(vq, cookies, lens, 4);
}

static long c_num_free(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return (long)vio_virtq_num_free(vq);
}

static long c_disable_cb(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_driver_disable_cb(vq);
}

static long c_enable_cb(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_driver_enable_cb(vq);
}

static long c_enable_cb_after(struct vqh_q *q, struct vio_virtq *vq, void *s)
{
	return vio_virtq_driver_enable_cb_after(vq, 4);
}

/* Every data-path call of include/vio/virtq.h, with its documented results. */
static const struct call calls[] = {
	{ "pop_burst", DEV, c_pop, -EIO, -EINVAL },
	{ "push_burst", DEV, c_push, -EIO, -EINVAL },
	{ "device_should_notify", DEV, c_should_notify, false, false },
	{ "device_disable_notify", DEV, c_disable_notify, -EIO, -EINVAL },
	{ "device_enable_notify", DEV, c_enable_notify, false, false },
	{ "device_has_avail", DEV, c_has_avail, false, false },
	{ "set_pos", DEV, c_set_pos, -EIO, -EINVAL },
	{ "remap", DEV, c_remap, -EIO, -EINVAL },
	{ "add", DRV, c_add, -EIO, -EINVAL },
	{ "kick_prepare", DRV, c_kick_prepare, false, false },
	{ "publish", DRV, c_publish, -EIO, -EINVAL },
	{ "get_used_burst", DRV, c_get_used, -EIO, -EINVAL },
	{ "num_free", DRV, c_num_free, 0, 0 },
	{ "driver_disable_cb", DRV, c_disable_cb, -EIO, -EINVAL },
	{ "driver_enable_cb", DRV, c_enable_cb, false, false },
	{ "driver_enable_cb_after", DRV, c_enable_cb_after, false, false },
};

#define NCALLS (sizeof(calls) / sizeof(calls[0]))

struct ictx {
	struct vqh_mem m;
	struct vqh_q q;
	uint8_t *buf;
};

static void isetup(struct ictx *c, const struct vqh_layout *l)
{
	uint64_t f = vqh_features(l, vqh_bit(VIRTIO_F_EVENT_IDX) | vqh_bit(VIRTIO_F_INDIRECT_DESC));

	assert_int_equal(vqh_mem_init(&c->m, 256 << 10), 0);
	assert_int_equal(vqh_q_init(&c->q, &c->m, f, QSIZE, 8), 0);
	c->buf = vqh_mem_alloc(&c->m, 4096, 64);
	assert_non_null(c->buf);
}

/* The device breaks: the driver posts a chain whose buffer lies outside memory. */
static void break_device(struct ictx *c)
{
	struct iovec iov[4];
	struct vio_chain ch = { .iov = iov, .iov_cap = 4 };

	if (c->q.features & vqh_bit(VIRTIO_F_RING_PACKED)) {
		struct pvirtq_desc d = { 0xdead00000000ull, 16, 0, 0 };

		vqh_packed_publish(&c->q, &d, 1);
	} else {
		vqh_split_desc(&c->q, 0, 0xdead00000000ull, 16, 0, 0);
		vqh_split_publish(&c->q, 0);
	}
	assert_int_equal(vio_virtq_pop_burst(&c->q.dev, &c->m.map, &ch, 1), -EIO);
	assert_int_equal(vio_virtq_fault_reason(&c->q.dev), VIO_VQ_BAD_ADDR);
}

/* The driver breaks: the device returns a used id that is not in flight. */
static void break_driver(struct ictx *c)
{
	struct iovec iov = { c->buf, 16 };
	struct vio_used_elem e = { .id = 5, .ndesc = 1, .len = 0 };
	void *cookie;
	uint32_t len;

	/* One real buffer in flight (id 0), then a used element naming id 5. */
	assert_int_equal(vio_virtq_add(&c->q.drv, &c->m.map, &iov, 1, 0, c->buf), 0);
	vio_virtq_kick_prepare(&c->q.drv);
	assert_int_equal(vio_virtq_push_burst(&c->q.dev, &e, 1), 1);
	assert_int_equal(vio_virtq_get_used_burst(&c->q.drv, &cookie, &len, 1), -EIO);
	assert_int_equal(vio_virtq_fault_reason(&c->q.drv), VIO_VQ_BAD_USED);
}

static void run_table(const struct vqh_layout *l, enum role broken_role)
{
	struct ictx c;
	struct vio_virtq *own, *other;
	uint8_t *before;

	isetup(&c, l);
	if (broken_role == DEV)
		break_device(&c);
	else
		break_driver(&c);
	own = broken_role == DEV ? &c.q.dev : &c.q.drv;
	other = broken_role == DEV ? &c.q.drv : &c.q.dev;
	assert_true(vio_virtq_is_broken(own));
	assert_false(vio_virtq_is_broken(other));
	before = malloc(c.m.len);
	assert_non_null(before);
	memcpy(before, c.m.host, c.m.len);

	for (size_t i = 0; i < NCALLS; i++) {
		const struct call *k = &calls[i];
		long r;

		if (k->role != broken_role)
			continue;
		r = k->fn(&c.q, own, c.buf);
		if (r != k->broken)
			fail_msg("%s %s on a broken %s queue returned %ld, want %ld", l->name,
				 k->name, broken_role == DEV ? "device" : "driver", r, k->broken);
		/* And again: still inert (no call revives it). */
		assert_true(k->fn(&c.q, own, c.buf) == k->broken);
	}
	assert_true(vio_virtq_is_broken(own));
	if (memcmp(before, c.m.host, c.m.len))
		fail_msg("%s: calls on a broken %s queue wrote into guest memory", l->name,
			 broken_role == DEV ? "device" : "driver");
	free(before);
	vqh_q_fini(&c.q);
	vqh_mem_fini(&c.m);
}

static void test_broken_device_inert(void **state)
{
	run_table(*state, DEV);
}

static void test_broken_driver_inert(void **state)
{
	run_table(*state, DRV);
}

/* Role misuse: every call on a healthy queue of the other role is refused, nothing written. */
static void test_role_misuse(void **state)
{
	const struct vqh_layout *l = *state;
	struct ictx c;
	uint8_t *before;

	isetup(&c, l);
	before = malloc(c.m.len);
	assert_non_null(before);
	memcpy(before, c.m.host, c.m.len);
	for (size_t i = 0; i < NCALLS; i++) {
		const struct call *k = &calls[i];
		struct vio_virtq *wrong = k->role == DEV ? &c.q.drv : &c.q.dev;
		long r = k->fn(&c.q, wrong, c.buf);

		if (r != k->misuse)
			fail_msg("%s %s on a %s queue returned %ld, want %ld", l->name, k->name,
				 k->role == DEV ? "driver" : "device", r, k->misuse);
	}
	if (memcmp(before, c.m.host, c.m.len))
		fail_msg("%s: calls of the wrong role wrote into guest memory", l->name);
	assert_false(vio_virtq_is_broken(&c.q.dev));
	assert_false(vio_virtq_is_broken(&c.q.drv));
	free(before);
	vqh_q_fini(&c.q);
	vqh_mem_fini(&c.m);
}

/*
 * The service helper on a RAM disk whose driver breaks the ring: run says
 * -EIO at once (no spinning), and says it again on every later call.
 */
static void test_service_stops_on_broken_queue(void **state)
{
	const struct vqh_layout *l = *state;
	struct vio_blk *blk;
	struct vio_vdev vdev;
	struct vio_queue_service svc;
	struct vio_vq_ctx ctx;
	struct ictx c;
	unsigned handled = 99;

	isetup(&c, l);
	assert_int_equal(vio_blk_new(&(struct vio_blk_opts){ .ram_size = 1 << 20 }, &blk), 0);
	vdev = vio_blk_vdev(blk);
	ctx = (struct vio_vq_ctx){ .vq = &c.q.dev, .mem = &c.m.map };
	assert_int_equal(vdev.ops->queue_start(vdev.dev, 0, &ctx, c.q.features), 0);
	vio_queue_service_init(&svc, vdev, 0, &c.q.dev, -1);
	assert_int_equal(vio_queue_service_run(&svc, 0, &handled), VIO_SERVICE_IDLE);
	assert_int_equal(handled, 0);
	if (l->packed) {
		struct pvirtq_desc d = { 0xdead00000000ull, 16, 0, 0 };

		vqh_packed_publish(&c.q, &d, 1);
	} else {
		vqh_split_desc(&c.q, 0, 0xdead00000000ull, 16, 0, 0);
		vqh_split_publish(&c.q, 0);
	}
	assert_int_equal(vio_queue_service_run(&svc, 0, &handled), -EIO);
	assert_int_equal(vio_queue_service_run(&svc, 0, &handled), -EIO);
	assert_true(vio_virtq_is_broken(&c.q.dev));
	assert_false(vio_virtq_device_enable_notify(&c.q.dev));
	vdev.ops->queue_stop(vdev.dev, 0);
	vio_blk_free(blk);
	vqh_q_fini(&c.q);
	vqh_mem_fini(&c.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_broken_device_inert),
		VQH_BOTH(test_broken_driver_inert),
		VQH_BOTH(test_role_misuse),
		VQH_BOTH(test_service_stops_on_broken_queue),
	};

	return cmocka_run_group_tests_name("inert", tests, NULL, NULL);
}
