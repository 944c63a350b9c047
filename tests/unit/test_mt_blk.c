/* SPDX-License-Identifier: MIT */
/*
 * The multi-threaded data path with every shared byte at one address: the
 * blk device served by viod's poller threads (src/daemon/poller.c), the
 * blk client driving four queues from four threads, rings and buffers in
 * one heap region both sides use (tests/unit/vq_harness.c), kicks and
 * interrupts through real eventfds. test_vhu_blk runs the same threads over
 * vhost-user, where the two sides see guest memory through two mappings
 * and ThreadSanitizer cannot pair their accesses; here it sees every one,
 * so this is the test that checks the threading under TSan (and the
 * other sanitizers). Meanwhile the control thread keeps taking queues away
 * from the pollers and handing them back, as the backend does when the
 * front-end changes a ring, and has the poller spread them again. Each region is written through one queue and
 * read back through another: ordered only by the rings.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"
#include "daemon/poller.h"
#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vq_harness.h"

#define NQ 4
#define QSIZE 64
#define DEPTH 8
#define REGION (256u << 10)   /* bytes per queue */
#define MAXREQ (32u << 10)
#define ROUNDS 4
#define DEADLINE_MS 60000
#define DISK (NQ * REGION + (1u << 20))

struct slot {
	struct worker *w;
	uint8_t *buf;
	uint64_t sector;
	uint32_t len;
	bool busy;
};

struct worker {
	struct mt *mt;
	unsigned q;
	pthread_t t;
	unsigned seed;
	bool writing;
	unsigned inflight, completed;
	struct slot slots[DEPTH];
	char err[200];
};

struct mt {
	struct vqh_mem m;
	struct vqh_q qs[NQ];
	struct vio_blk *blk;
	struct vio_vdev vdev;
	struct vio_poller *poller;
	struct vio_blk_client *cl;
	int kick_fd[NQ], call_fd[NQ];
	char names[NQ][16];
	struct worker w[NQ];
	atomic_uint faults;
	atomic_uint finished; /* workers done */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t pat(unsigned seed, uint64_t off)
{
	uint64_t x = ((off >> 9) + 1) * 0x9e3779b97f4a7c15ull ^ (seed + 1) * 0xff51afd7ed558ccdull;

	return (uint8_t)((x >> 29) + (off & 511) * 7);
}

static void efd_write(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		return; /* a full counter already means "pending" */
}

static void kick(void *opaque)
{
	efd_write(*(int *)opaque);
}

static void notify(void *opaque)
{
	efd_write(*(int *)opaque);
}

static void on_fault(void *opaque, unsigned q, enum vio_virtq_fault why)
{
	atomic_fetch_add(&((struct mt *)opaque)->faults, 1);
}

/* ---- the device side: what the backend's start/stop hooks do ---- */

static void start_queue(struct mt *mt, unsigned q)
{
	struct vio_vq_ctx ctx = { &mt->qs[q].dev, &mt->m.map, notify, &mt->call_fd[q] };
	struct vio_poll_queue pq = { .vdev = mt->vdev, .q = q, .vq = &mt->qs[q].dev,
				     .kick_fd = mt->kick_fd[q], .name = mt->names[q] };

	assert_int_equal(mt->vdev.ops->queue_start(mt->vdev.dev, q, &ctx, mt->qs[q].features), 0);
	assert_int_equal(vio_poller_add(mt->poller, &pq), 0);
}

static void stop_queue(struct mt *mt, unsigned q)
{
	assert_int_equal(vio_poller_remove(mt->poller, mt->vdev.dev, q), 0);
	mt->vdev.ops->queue_stop(mt->vdev.dev, q);
}

/* ---- the driver side: one thread per queue ---- */

static void wfail(struct worker *w, const char *what, uint64_t sector, long v)
{
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err), "queue %u: %s (sector %llu, %ld)", w->q, what,
			 (unsigned long long)sector, v);
}

static void done(void *opaque, int status, uint32_t len)
{
	struct slot *s = opaque;
	struct worker *w = s->w;

	s->busy = false;
	w->inflight--;
	w->completed++;
	if (status != VIRTIO_BLK_S_OK) {
		wfail(w, "status", s->sector, status);
		return;
	}
	if (len != (w->writing ? 1 : s->len + 1)) {
		wfail(w, "used length", s->sector, len);
		return;
	}
	for (uint32_t i = 0; !w->writing && i < s->len; i++) {
		if (s->buf[i] != pat(w->seed, s->sector * 512 + i)) {
			wfail(w, "data read back differs at byte", s->sector, i);
			return;
		}
	}
}

/* Wait briefly for an interrupt on q (or for used buffers already there). */
static void wait_call(struct mt *mt, unsigned q)
{
	struct timespec ts = { 0, 200000 };
	uint64_t v;

	if (!vio_virtq_driver_enable_cb(&mt->qs[q].drv))
		return;
	if (read(mt->call_fd[q], &v, sizeof(v)) != sizeof(v))
		nanosleep(&ts, NULL);
	vio_virtq_driver_disable_cb(&mt->qs[q].drv);
}

/* Cover [base, base + REGION) with requests of 512 B..MAXREQ, DEPTH in flight. */
static void phase(struct worker *w, unsigned q, uint64_t base, bool writing, uint64_t deadline)
{
	struct mt *mt = w->mt;
	uint64_t cur = base, end = base + REGION / 512;
	unsigned i = 0;

	w->writing = writing;
	while ((cur < end || w->inflight) && !w->err[0]) {
		bool posted = false;
		int n;

		while (cur < end && w->inflight < DEPTH) {
			struct slot *s = NULL;
			struct iovec iov[3];
			uint64_t nsec = (i * 13u + w->seed) % (MAXREQ / 512) + 1;
			unsigned nseg = i % 3 + 1;
			struct vio_blk_client_req r;
			uint32_t at = 0;

			for (unsigned k = 0; k < DEPTH && !s; k++)
				if (!w->slots[k].busy)
					s = &w->slots[k];
			if (nsec > end - cur)
				nsec = end - cur;
			s->sector = cur;
			s->len = (uint32_t)nsec * 512;
			for (uint32_t k = 0; k < s->len; k++)
				s->buf[k] = writing ? pat(w->seed, cur * 512 + k) : 0xa5;
			for (unsigned k = 0; k < nseg; k++) {
				uint32_t l = k + 1 < nseg ? s->len / nseg : s->len - at;

				iov[k] = (struct iovec){ s->buf + at, l };
				at += l;
			}
			r = (struct vio_blk_client_req){
				.type = writing ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, .sector = cur,
				.iov = iov, .niov = s->len >= 3 * 512 ? nseg : 1,
			};
			if (r.niov == 1)
				iov[0] = (struct iovec){ s->buf, s->len };
			n = vio_blk_client_submit(mt->cl, q, &r, done, s);
			if (n) {
				wfail(w, "submit", cur, n);
				return;
			}
			s->busy = true;
			w->inflight++;
			cur += nsec;
			i++;
			posted = true;
		}
		if (posted)
			vio_blk_client_kick(mt->cl, q);
		n = vio_blk_client_poll(mt->cl, q);
		if (n < 0) {
			wfail(w, "poll", cur, n);
			return;
		}
		if (n == 0)
			wait_call(mt, q);
		if (now_ms() > deadline) {
			wfail(w, "timed out with requests in flight", cur, w->inflight);
			return;
		}
	}
}

static uint64_t region_of(unsigned q)
{
	return 8 + (uint64_t)q * (REGION / 512);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t deadline = now_ms() + DEADLINE_MS;

	for (unsigned round = 0; round < ROUNDS && !w->err[0]; round++) {
		w->seed = 100 + round * 8 + w->q;
		phase(w, w->q, region_of(w->q), true, deadline);
		if (!w->err[0])
			phase(w, w->q, region_of(w->q), false, deadline);
	}
	atomic_fetch_add(&w->mt->finished, 1);
	return NULL;
}

/* ---- the test ---- */

static void mt_open(struct mt *mt, bool packed)
{
	struct vio_blk_opts bo = { .name = "mt blk", .ram_size = DISK, .queues = NQ };
	uint64_t f = vqh_features(packed ? &vqh_packed : &vqh_split,
				  vqh_bit(VIRTIO_F_EVENT_IDX) | vqh_bit(VIRTIO_F_INDIRECT_DESC));
	struct vio_drv_ctx dctx[NQ];
	size_t area;
	void *a;

	memset(mt, 0, sizeof(*mt));
	assert_int_equal(vio_blk_new(&bo, &mt->blk), 0);
	mt->vdev = vio_blk_vdev(mt->blk);
	assert_int_equal(vqh_mem_init(&mt->m, NQ * vqh_q_bytes(f, QSIZE, 8) + NQ * DEPTH * MAXREQ +
						   (1u << 20)), 0);
	assert_int_equal(vio_poller_new(2, 20, NULL, 0, &mt->poller), 0);
	for (unsigned q = 0; q < NQ; q++) {
		assert_int_equal(vqh_q_init(&mt->qs[q], &mt->m, f, QSIZE, 8), 0);
		vio_virtq_set_owner(&mt->qs[q].dev, NULL, q, on_fault, mt);
		mt->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		mt->call_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(mt->kick_fd[q] >= 0 && mt->call_fd[q] >= 0);
		snprintf(mt->names[q], sizeof(mt->names[q]), "mt q%u", q);
		dctx[q] = (struct vio_drv_ctx){ &mt->qs[q].drv, &mt->m.map, kick, &mt->kick_fd[q],
						mt->call_fd[q] };
		start_queue(mt, q);
	}
	area = vio_blk_client_area_size(dctx, NQ);
	a = vqh_mem_alloc(&mt->m, area, 64);
	assert_non_null(a);
	assert_int_equal(vio_blk_client_new(dctx, NQ, a, area, &mt->cl), 0);
	for (unsigned q = 0; q < NQ; q++) {
		mt->w[q] = (struct worker){ .mt = mt, .q = q };
		for (unsigned k = 0; k < DEPTH; k++) {
			mt->w[q].slots[k].w = &mt->w[q];
			mt->w[q].slots[k].buf = vqh_mem_alloc(&mt->m, MAXREQ, 512);
			assert_non_null(mt->w[q].slots[k].buf);
		}
	}
}

static void mt_close(struct mt *mt)
{
	for (unsigned q = 0; q < NQ; q++)
		stop_queue(mt, q);
	vio_poller_free(mt->poller);
	vio_blk_client_free(mt->cl);
	vio_blk_free(mt->blk);
	for (unsigned q = 0; q < NQ; q++) {
		vqh_q_fini(&mt->qs[q]);
		close(mt->kick_fd[q]);
		close(mt->call_fd[q]);
	}
	vqh_mem_fini(&mt->m);
}

static void test_threads(void **state)
{
	bool packed = *state != NULL;
	struct mt *mt = test_malloc(sizeof(*mt));
	unsigned moves = 0, total = 0, seeds[NQ];

	mt_open(mt, packed);
	for (unsigned q = 0; q < NQ; q++)
		assert_int_equal(pthread_create(&mt->w[q].t, NULL, worker_main, &mt->w[q]), 0);
	/* The control thread: take a queue from its poller and give it back, while traffic runs. */
	while (atomic_load(&mt->finished) < NQ) {
		unsigned q = moves++ % NQ;
		struct timespec ts = { 0, 1000000 };

		stop_queue(mt, q);
		nanosleep(&ts, NULL);
		start_queue(mt, q);
		if (moves % 3 == 0)
			vio_poller_rebalance(mt->poller); /* queues change threads under load */
		nanosleep(&ts, NULL);
	}
	for (unsigned q = 0; q < NQ; q++)
		pthread_join(mt->w[q].t, NULL);
	for (unsigned q = 0; q < NQ; q++) {
		if (mt->w[q].err[0])
			fail_msg("%s", mt->w[q].err);
		assert_int_equal(mt->w[q].inflight, 0);
		total += mt->w[q].completed;
	}
	/* Each region read back through another queue, from this thread. */
	for (unsigned q = 0; q < NQ; q++)
		seeds[q] = mt->w[q].seed;
	for (unsigned q = 0; q < NQ; q++) {
		struct worker *w = &mt->w[(q + 1) % NQ];

		w->seed = seeds[q];
		phase(w, w->q, region_of(q), false, now_ms() + DEADLINE_MS);
		if (w->err[0])
			fail_msg("cross-queue read: %s", w->err);
	}
	assert_int_equal(atomic_load(&mt->faults), 0);
	print_message("%u requests on %u queues, %u hand-overs\n", total, NQ, moves);
	mt_close(mt);
	test_free(mt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_threads, NULL),
		cmocka_unit_test_prestate(test_threads, (void *)1),
	};

	return cmocka_run_group_tests_name("mt_blk", tests, NULL, NULL);
}
