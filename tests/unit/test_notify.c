/* SPDX-License-Identifier: MIT */
/*
 * Notification suppression, both directions, both layouts: flags (split
 * without EVENT_IDX; packed ENABLE/DISABLE), event indices (split EVENT_IDX;
 * packed DESC), burst behaviour. Counts are asserted exactly wherever the
 * spec makes them exact.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vq_harness.h"

#define EVT (1ull << VIRTIO_F_EVENT_IDX)
#define MAXQ 64

struct nctx {
	const struct vqh_layout *l;
	struct vqh_mem m;
	struct vqh_q q;
	uint8_t *buf;
	unsigned posted;
	struct vio_used_elem pend[MAXQ]; /* popped, not yet pushed */
	unsigned npend, pend_head;
};

static void nsetup(struct nctx *n, void **state, bool evt, uint16_t size)
{
	memset(n, 0, sizeof(*n));
	n->l = *state;
	assert_int_equal(vqh_mem_init(&n->m, 256 << 10), 0);
	assert_int_equal(vqh_q_init(&n->q, &n->m, vqh_features(n->l, evt ? EVT : 0), size, 0), 0);
	n->buf = vqh_mem_alloc(&n->m, 16 * MAXQ, 16);
}

static void nteardown(struct nctx *n)
{
	assert_false(vio_virtq_is_broken(&n->q.dev));
	assert_false(vio_virtq_is_broken(&n->q.drv));
	vqh_q_fini(&n->q);
	vqh_mem_fini(&n->m);
}

/* Driver: add k one-descriptor buffers (no publish). */
static void add(struct nctx *n, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		struct iovec iov = { n->buf + 16 * (n->posted % MAXQ), 16 };

		assert_int_equal(vio_virtq_add(&n->q.drv, &n->m.map, &iov, 1, 0,
					       n->buf + n->posted % MAXQ), 0);
		n->posted++;
	}
}

/* Device: pop everything available into the pending list. */
static unsigned pop_all(struct nctx *n)
{
	struct vio_chain c[MAXQ];
	struct iovec iov[MAXQ];
	int got;

	for (unsigned i = 0; i < MAXQ; i++) {
		c[i].iov = &iov[i];
		c[i].iov_cap = 1;
	}
	got = vio_virtq_pop_burst(&n->q.dev, &n->m.map, c, MAXQ - n->npend);
	assert_true(got >= 0);
	for (int i = 0; i < got; i++) {
		n->pend[(n->pend_head + n->npend) % MAXQ] =
			(struct vio_used_elem){ c[i].id, c[i].ndesc, 0 };
		n->npend++;
	}
	return (unsigned)got;
}

/* Device: push k pending in one burst. */
static void push(struct nctx *n, unsigned k)
{
	struct vio_used_elem e[MAXQ];

	assert_true(k <= n->npend);
	for (unsigned i = 0; i < k; i++)
		e[i] = n->pend[(n->pend_head + i) % MAXQ];
	n->pend_head = (n->pend_head + k) % MAXQ;
	n->npend -= k;
	vio_virtq_push_burst(&n->q.dev, e, k);
}

static unsigned reap_all(struct nctx *n)
{
	void *cookie[MAXQ];
	uint32_t len[MAXQ];
	int got = vio_virtq_get_used_burst(&n->q.drv, cookie, len, MAXQ);

	assert_true(got >= 0);
	return (unsigned)got;
}

/* Device and driver complete everything outstanding. */
static void drain(struct nctx *n)
{
	pop_all(n);
	push(n, n->npend);
	reap_all(n);
}

/* ---- device -> driver: kicks ---- */

/* Without EVENT_IDX, an enabled device gets one kick per publish. */
static void test_kick_once_per_publish(void **state)
{
	struct nctx n;
	unsigned kicks = 0;

	nsetup(&n, state, false, 64);
	assert_false(vio_virtq_device_enable_notify(&n.q.dev));
	for (unsigned p = 1; p <= 10; p++) {
		add(&n, p);
		kicks += vio_virtq_kick_prepare(&n.q.drv);
		drain(&n);
	}
	assert_int_equal(kicks, 10);
	nteardown(&n);
}

/*
 * vio_virtq_publish makes buffers visible with no kick decision; the next
 * kick_prepare still decides for them, and a second publish changes nothing.
 */
static void test_publish_then_kick_prepare(void **state)
{
	for (int evt = 0; evt < 2; evt++) {
		struct nctx n;

		nsetup(&n, state, evt, 64);
		assert_false(vio_virtq_device_enable_notify(&n.q.dev));
		add(&n, 3);
		assert_false(vio_virtq_device_has_avail(&n.q.dev)); /* added is not published */
		vio_virtq_publish(&n.q.drv);
		vio_virtq_publish(&n.q.drv);
		assert_true(vio_virtq_device_has_avail(&n.q.dev));
		assert_true(vio_virtq_kick_prepare(&n.q.drv)); /* the device asked for a kick */
		assert_false(vio_virtq_kick_prepare(&n.q.drv)); /* nothing new since */
		drain(&n);
		assert_int_equal(n.posted, 3);

		/* A device that disabled kicks: publish, then no kick for those buffers. */
		vio_virtq_device_disable_notify(&n.q.dev);
		add(&n, 2);
		vio_virtq_publish(&n.q.drv);
		assert_true(vio_virtq_device_has_avail(&n.q.dev));
		drain(&n);
		if (!evt)
			assert_false(vio_virtq_kick_prepare(&n.q.drv));
		else
			vio_virtq_kick_prepare(&n.q.drv); /* a stale event index may still ask */
		nteardown(&n);
	}
}

/* A device that disabled notifications gets no kick; enabling reports what came meanwhile. */
static void test_no_kick_when_device_disabled(void **state)
{
	struct nctx n;
	unsigned kicks = 0;

	nsetup(&n, state, false, 64);
	vio_virtq_device_disable_notify(&n.q.dev);
	for (unsigned p = 1; p <= 10; p++) {
		add(&n, 3);
		kicks += vio_virtq_kick_prepare(&n.q.drv);
		if (p % 3 == 0)
			drain(&n);
	}
	assert_int_equal(kicks, 0);
	assert_true(vio_virtq_device_enable_notify(&n.q.dev)); /* buffers are waiting */
	drain(&n);
	assert_false(vio_virtq_device_enable_notify(&n.q.dev));
	add(&n, 1);
	assert_true(vio_virtq_kick_prepare(&n.q.drv));
	drain(&n);
	nteardown(&n);
}

/* enable_notify returns true when buffers arrived, with or without EVENT_IDX. */
static void test_enable_notify_reports_pending(void **state)
{
	for (int evt = 0; evt < 2; evt++) {
		struct nctx n;

		nsetup(&n, state, evt, 16);
		vio_virtq_device_disable_notify(&n.q.dev);
		assert_false(vio_virtq_device_enable_notify(&n.q.dev));
		vio_virtq_device_disable_notify(&n.q.dev);
		add(&n, 2);
		vio_virtq_kick_prepare(&n.q.drv);
		assert_true(vio_virtq_device_enable_notify(&n.q.dev));
		assert_int_equal(pop_all(&n), 2);
		assert_false(vio_virtq_device_enable_notify(&n.q.dev));
		push(&n, 2);
		reap_all(&n);
		nteardown(&n);
	}
}

/*
 * EVENT_IDX (split) / DESC (packed): a device that keeps up but re-enables
 * notifications only when it runs dry gets one kick per burst.
 */
static void test_event_idx_bursty_kicks(void **state)
{
	struct nctx n;
	unsigned kicks = 0, requests = 0, bursts = 64;

	nsetup(&n, state, true, 64);
	assert_false(vio_virtq_device_enable_notify(&n.q.dev));
	for (unsigned b = 0; b < bursts; b++) {
		bool awake = false;

		for (unsigned i = 0; i < 32; i++) {
			add(&n, 1);
			requests++;
			if (vio_virtq_kick_prepare(&n.q.drv)) {
				kicks++;
				if (!awake)
					vio_virtq_device_disable_notify(&n.q.dev);
				awake = true;
			}
			/* a busy device polls and keeps up */
			if (awake) {
				pop_all(&n);
				push(&n, n.npend);
			}
			reap_all(&n);
		}
		/* idle: re-enable, and pop again if something slipped in */
		while (vio_virtq_device_enable_notify(&n.q.dev)) {
			vio_virtq_device_disable_notify(&n.q.dev);
			drain(&n);
		}
		drain(&n);
		assert_int_equal(n.npend, 0);
	}
	assert_true(kicks <= requests / 8);
	assert_int_equal(kicks, bursts);
	nteardown(&n);
}

/* 32 adds and one publish: one kick; with EVENT_IDX nothing more until the device re-arms. */
static void test_burst_add_one_kick(void **state)
{
	for (int evt = 0; evt < 2; evt++) {
		struct nctx n;
		unsigned kicks = 0;

		nsetup(&n, state, evt, 64);
		assert_false(vio_virtq_device_enable_notify(&n.q.dev));
		add(&n, 32);
		kicks += vio_virtq_kick_prepare(&n.q.drv);
		assert_int_equal(kicks, 1);
		if (evt) {
			/* nothing new: no kick */
			assert_false(vio_virtq_kick_prepare(&n.q.drv));
			/* the device did not re-arm: 32 more publishes, no kick */
			for (int i = 0; i < 32; i++) {
				add(&n, 1);
				kicks += vio_virtq_kick_prepare(&n.q.drv);
			}
			assert_int_equal(kicks, 1);
		}
		drain(&n);
		nteardown(&n);
	}
}

/* ---- driver -> device: interrupts ---- */

/* Without EVENT_IDX: disable_cb silences the device, enable_cb brings it back. */
static void test_driver_disable_enable_cb(void **state)
{
	struct nctx n;

	nsetup(&n, state, false, 16);
	add(&n, 8);
	vio_virtq_kick_prepare(&n.q.drv);
	assert_int_equal(pop_all(&n), 8);
	vio_virtq_driver_disable_cb(&n.q.drv);
	push(&n, 1);
	assert_false(vio_virtq_device_should_notify(&n.q.dev));
	push(&n, 3);
	assert_false(vio_virtq_device_should_notify(&n.q.dev));
	assert_false(vio_virtq_driver_enable_cb(&n.q.drv)); /* 4 used are waiting */
	assert_int_equal(reap_all(&n), 4);
	assert_true(vio_virtq_driver_enable_cb(&n.q.drv));
	push(&n, 1);
	assert_true(vio_virtq_device_should_notify(&n.q.dev));
	push(&n, 3);
	assert_true(vio_virtq_device_should_notify(&n.q.dev));
	assert_int_equal(reap_all(&n), 4);
	nteardown(&n);
}

/* enable_cb_after(k): the device notifies exactly on the k-th used buffer, not before or after. */
static void test_enable_cb_after(void **state)
{
	struct nctx n;

	nsetup(&n, state, true, 32);
	add(&n, 20);
	vio_virtq_kick_prepare(&n.q.drv);
	assert_int_equal(pop_all(&n), 20);
	assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 5));
	for (int i = 1; i <= 10; i++) {
		push(&n, 1);
		if (vio_virtq_device_should_notify(&n.q.dev) != (i == 5))
			fail_msg("push %d: notify %d", i, !(i == 5));
	}
	assert_int_equal(reap_all(&n), 10);
	assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 3));
	for (int i = 1; i <= 10; i++) {
		push(&n, 1);
		if (vio_virtq_device_should_notify(&n.q.dev) != (i == 3))
			fail_msg("second round push %d: notify %d", i, !(i == 3));
	}
	/* used buffers pending: enable_cb_after says reap first */
	assert_false(vio_virtq_driver_enable_cb_after(&n.q.drv, 1));
	assert_int_equal(reap_all(&n), 10);
	nteardown(&n);
}

/* Without EVENT_IDX enable_cb_after is enable_cb: every push burst notifies. */
static void test_enable_cb_after_without_event_idx(void **state)
{
	struct nctx n;

	nsetup(&n, state, false, 32);
	add(&n, 10);
	vio_virtq_kick_prepare(&n.q.drv);
	pop_all(&n);
	vio_virtq_driver_disable_cb(&n.q.drv);
	assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 5));
	for (int i = 1; i <= 10; i++) {
		push(&n, 1);
		assert_true(vio_virtq_device_should_notify(&n.q.dev));
	}
	reap_all(&n);
	nteardown(&n);
}

/* 32 pushes in one burst: one notify decision, and it is true. */
static void test_burst_push_one_notify(void **state)
{
	for (int evt = 0; evt < 2; evt++) {
		struct nctx n;
		unsigned notifies = 0;

		nsetup(&n, state, evt, 64);
		add(&n, 32);
		vio_virtq_kick_prepare(&n.q.drv);
		assert_int_equal(pop_all(&n), 32);
		assert_true(vio_virtq_driver_enable_cb(&n.q.drv));
		push(&n, 32);
		notifies += vio_virtq_device_should_notify(&n.q.dev);
		assert_int_equal(notifies, 1);
		if (evt) /* the driver has not re-armed: a second decision is false */
			assert_false(vio_virtq_device_should_notify(&n.q.dev));
		assert_int_equal(reap_all(&n), 32);
		if (evt) {
			/* one at a time, armed once: exactly one of 32 decisions is true */
			add(&n, 32);
			vio_virtq_kick_prepare(&n.q.drv);
			assert_int_equal(pop_all(&n), 32);
			assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 1));
			notifies = 0;
			for (int i = 0; i < 32; i++) {
				push(&n, 1);
				notifies += vio_virtq_device_should_notify(&n.q.dev);
			}
			assert_int_equal(notifies, 1);
			reap_all(&n);
		}
		nteardown(&n);
	}
}

/* ---- the peer's suppression structure written by hand: every mode ---- */

enum mode { M_ENABLE, M_DISABLE, M_DESC };
#define HSIZE 8
#define EVENT_AT 13 /* the 14th buffer: slot 5 in the second lap of an 8-slot ring */

/* As the device: ask the driver for kicks in this mode. */
static void set_device_event(struct nctx *n, enum mode m)
{
	if (!n->l->packed) {
		struct virtq_used *u = n->q.drv.l.split.used;

		u->flags = m == M_DISABLE ? VIRTQ_USED_F_NO_NOTIFY : 0;
		if (m == M_DESC)
			*vqh_split_avail_event(&n->q) = EVENT_AT;
	} else {
		struct pvirtq_event_suppress *e = n->q.drv.l.packed.device_event;

		e->flags = m == M_ENABLE ? RING_EVENT_FLAGS_ENABLE :
			   m == M_DISABLE ? RING_EVENT_FLAGS_DISABLE : RING_EVENT_FLAGS_DESC;
		e->desc = (EVENT_AT % HSIZE) | ((EVENT_AT / HSIZE) & 1 ? 0 : 1u << 15);
	}
}

/* As the driver: ask the device for interrupts in this mode. */
static void set_driver_event(struct nctx *n, enum mode m)
{
	if (!n->l->packed) {
		struct virtq_avail *a = n->q.drv.l.split.avail;

		a->flags = m == M_DISABLE ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0;
		if (m == M_DESC)
			*vqh_split_used_event(&n->q) = EVENT_AT;
	} else {
		struct pvirtq_event_suppress *e = n->q.drv.l.packed.driver_event;

		e->flags = m == M_ENABLE ? RING_EVENT_FLAGS_ENABLE :
			   m == M_DISABLE ? RING_EVENT_FLAGS_DISABLE : RING_EVENT_FLAGS_DESC;
		e->desc = (EVENT_AT % HSIZE) | ((EVENT_AT / HSIZE) & 1 ? 0 : 1u << 15);
	}
}

static bool layout_packed(void **state)
{
	return ((const struct vqh_layout *)*state)->packed;
}

/* Driver kicks under each mode of the device's request: all, none, exactly the 14th. */
static void test_kick_modes_by_hand(void **state)
{
	for (enum mode m = M_ENABLE; m <= M_DESC; m++) {
		struct nctx n;
		unsigned kicks = 0;

		/* split ENABLE/DISABLE are the flag (no EVENT_IDX); DESC is the event index */
		nsetup(&n, state, m == M_DESC || layout_packed(state), HSIZE);
		for (unsigned i = 0; i < 20; i++) {
			bool k;

			set_device_event(&n, m);
			add(&n, 1);
			k = vio_virtq_kick_prepare(&n.q.drv);
			kicks += k;
			if (k != (m == M_ENABLE || (m == M_DESC && i == EVENT_AT)))
				fail_msg("mode %d publish %u: kick %d", m, i + 1, k);
			drain(&n);
		}
		assert_int_equal(kicks, m == M_ENABLE ? 20 : m == M_DISABLE ? 0 : 1);
		nteardown(&n);
	}
}

/* Device interrupts under each mode of the driver's request: all, none, exactly the 14th. */
static void test_notify_modes_by_hand(void **state)
{
	for (enum mode m = M_ENABLE; m <= M_DESC; m++) {
		struct nctx n;
		unsigned notifies = 0;

		nsetup(&n, state, m == M_DESC || layout_packed(state), HSIZE);
		for (unsigned i = 0; i < 20; i++) {
			bool k;

			add(&n, 1);
			vio_virtq_kick_prepare(&n.q.drv);
			assert_int_equal(pop_all(&n), 1);
			set_driver_event(&n, m);
			push(&n, 1);
			k = vio_virtq_device_should_notify(&n.q.dev);
			notifies += k;
			if (k != (m == M_ENABLE || (m == M_DESC && i == EVENT_AT)))
				fail_msg("mode %d push %u: notify %d", m, i + 1, k);
			assert_int_equal(reap_all(&n), 1);
		}
		assert_int_equal(notifies, m == M_ENABLE ? 20 : m == M_DISABLE ? 0 : 1);
		nteardown(&n);
	}
}

/* What each call writes into the shared suppression fields. */
static void test_suppression_fields_written(void **state)
{
	for (int evt = 0; evt < 2; evt++) {
		struct nctx n;

		nsetup(&n, state, evt, HSIZE);
		/* move indices off zero and across a lap */
		for (int i = 0; i < 11; i++) {
			add(&n, 1);
			vio_virtq_kick_prepare(&n.q.drv);
			drain(&n);
		}
		vio_virtq_device_disable_notify(&n.q.dev);
		vio_virtq_driver_disable_cb(&n.q.drv);
		if (!n.l->packed) {
			if (!evt) {
				assert_true(n.q.drv.l.split.used->flags & VIRTQ_USED_F_NO_NOTIFY);
				assert_true(n.q.drv.l.split.avail->flags &
					    VIRTQ_AVAIL_F_NO_INTERRUPT);
			}
		} else {
			assert_int_equal(n.q.drv.l.packed.device_event->flags,
					 RING_EVENT_FLAGS_DISABLE);
			assert_int_equal(n.q.drv.l.packed.driver_event->flags,
					 RING_EVENT_FLAGS_DISABLE);
		}
		assert_false(vio_virtq_device_enable_notify(&n.q.dev));
		assert_true(vio_virtq_driver_enable_cb(&n.q.drv));
		if (!n.l->packed) {
			assert_false(n.q.drv.l.split.used->flags & VIRTQ_USED_F_NO_NOTIFY);
			if (evt) {
				assert_int_equal(*vqh_split_avail_event(&n.q), 11);
				assert_int_equal(*vqh_split_used_event(&n.q), 11);
			} else {
				assert_false(n.q.drv.l.split.avail->flags &
					     VIRTQ_AVAIL_F_NO_INTERRUPT);
			}
			assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 4));
			if (evt)
				assert_int_equal(*vqh_split_used_event(&n.q), 14);
		} else {
			struct pvirtq_event_suppress *dev = n.q.drv.l.packed.device_event;
			struct pvirtq_event_suppress *drv = n.q.drv.l.packed.driver_event;
			uint16_t at11 = 3; /* slot 3, second lap: wrap counter 0 */

			uint16_t want = evt ? RING_EVENT_FLAGS_DESC : RING_EVENT_FLAGS_ENABLE;

			assert_int_equal(dev->flags, want);
			assert_int_equal(drv->flags, want);
			if (evt) {
				assert_int_equal(dev->desc, at11);
				assert_int_equal(drv->desc, at11);
			}
			assert_true(vio_virtq_driver_enable_cb_after(&n.q.drv, 6));
			/* 11 + 6 - 1 = 16: slot 0 of the third lap, wrap counter 1 */
			if (evt)
				assert_int_equal(drv->desc, 0 | 1u << 15);
		}
		nteardown(&n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_kick_once_per_publish),
		VQH_BOTH(test_no_kick_when_device_disabled),
		VQH_BOTH(test_publish_then_kick_prepare),
		VQH_BOTH(test_enable_notify_reports_pending),
		VQH_BOTH(test_event_idx_bursty_kicks),
		VQH_BOTH(test_burst_add_one_kick),
		VQH_BOTH(test_driver_disable_enable_cb),
		VQH_BOTH(test_enable_cb_after),
		VQH_BOTH(test_enable_cb_after_without_event_idx),
		VQH_BOTH(test_burst_push_one_notify),
		VQH_BOTH(test_kick_modes_by_hand),
		VQH_BOTH(test_notify_modes_by_hand),
		VQH_BOTH(test_suppression_fields_written),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
