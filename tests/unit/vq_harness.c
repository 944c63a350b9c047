/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the virtqueue core (see vq_harness.h). Owns test memory,
 * hand-written rings and the checked traffic engine; it only uses the public
 * virtq face plus the ring pointers a driver queue exposes. It must never
 * call cmocka asserts: the engine runs in threads too.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vq_harness.h"

#define SALT_OUT 0x5a17u
#define SALT_IN 0xc0ffu
#define POISON 0xee
#define GAP 8 /* bytes between the iovecs of a chain, so nothing may merge them */

const struct vqh_layout vqh_split = { "split", false };
const struct vqh_layout vqh_packed = { "packed", true };

uint64_t vqh_features(const struct vqh_layout *l, uint64_t extra)
{
	uint64_t f = vqh_bit(VIRTIO_F_VERSION_1) | extra;

	if (l->packed)
		f |= vqh_bit(VIRTIO_F_RING_PACKED);
	return f;
}

/* ---- memory ---- */

int vqh_mem_init(struct vqh_mem *m, size_t len)
{
	struct vio_mem_region r;

	memset(m, 0, sizeof(*m));
	len = (len + 4095) & ~(size_t)4095;
	m->host = aligned_alloc(4096, len);
	if (!m->host)
		return -ENOMEM;
	memset(m->host, 0, len);
	m->len = len;
	m->gpa = VQH_GPA;
	vio_mem_init(&m->map);
	r = (struct vio_mem_region){ .gpa = m->gpa, .size = len, .host = m->host };
	return vio_mem_add(&m->map, &r);
}

void vqh_mem_fini(struct vqh_mem *m)
{
	free(m->host);
	m->host = NULL;
}

void *vqh_mem_alloc(struct vqh_mem *m, size_t len, size_t align)
{
	size_t at = (m->used + align - 1) & ~(align - 1);

	if (at > m->len || len > m->len - at)
		return NULL;
	m->used = at + len;
	return m->host + at;
}

uint64_t vqh_gpa(const struct vqh_mem *m, const void *p)
{
	return m->gpa + (uint64_t)((const uint8_t *)p - m->host);
}

/* ---- queues ---- */

static void count_fault(void *opaque, unsigned index, enum vio_virtq_fault why)
{
	struct vqh_q *q = opaque;

	q->nfaults++;
	q->fault = why;
	q->fault_index = index;
}

size_t vqh_q_bytes(uint64_t features, uint16_t size, uint16_t indirect_max)
{
	return vio_virtq_driver_area_size(features, size, indirect_max) + 4096;
}

int vqh_q_init(struct vqh_q *q, struct vqh_mem *m, uint64_t features, uint16_t size,
	       uint16_t indirect_max)
{
	size_t len = vio_virtq_driver_area_size(features, size, indirect_max);
	int rc;

	memset(q, 0, sizeof(*q));
	q->m = m;
	q->features = features;
	q->size = size;
	q->indirect_max = indirect_max;
	q->hand_wrap = true;
	q->area = vqh_mem_alloc(m, len ? len : 16, 4096);
	if (!q->area)
		return -ENOMEM;
	rc = vio_virtq_driver_init(&q->drv, features, size, indirect_max, q->area,
				   vqh_gpa(m, q->area), len, &q->addrs);
	if (rc)
		return rc;
	rc = vio_virtq_device_init(&q->dev, features, size, &q->addrs, &m->map);
	if (rc)
		return rc;
	vio_virtq_set_owner(&q->dev, "test q7", 7, count_fault, q);
	return 0;
}

void vqh_q_fini(struct vqh_q *q)
{
	vio_virtq_fini(&q->drv);
	vio_virtq_fini(&q->dev);
}

void vqh_split_desc(struct vqh_q *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct virtq_desc *d = &q->drv.l.split.desc[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void vqh_split_set_avail_idx(struct vqh_q *q, uint16_t idx)
{
	atomic_store_explicit((_Atomic uint16_t *)&q->drv.l.split.avail->idx, idx,
			      memory_order_release);
}

void vqh_split_publish(struct vqh_q *q, uint16_t head)
{
	q->drv.l.split.avail->ring[q->hand_avail % q->size] = head;
	q->hand_avail++;
	vqh_split_set_avail_idx(q, q->hand_avail);
}

void vqh_packed_publish(struct vqh_q *q, const struct pvirtq_desc *d, unsigned n)
{
	struct pvirtq_desc *ring = q->drv.l.packed.desc;
	uint16_t head = q->hand_next;
	bool head_wrap = q->hand_wrap;
	uint16_t head_flags = 0;

	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = q->hand_next;
		uint16_t f = d[i].flags & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);

		if (q->hand_wrap)
			f |= VIRTQ_DESC_F_AVAIL;
		else
			f |= VIRTQ_DESC_F_USED;
		ring[slot].addr = d[i].addr;
		ring[slot].len = d[i].len;
		ring[slot].id = d[i].id;
		if (i == 0)
			head_flags = f;
		else
			ring[slot].flags = f;
		if (++q->hand_next == q->size) {
			q->hand_next = 0;
			q->hand_wrap = !q->hand_wrap;
		}
	}
	(void)head_wrap;
	atomic_store_explicit((_Atomic uint16_t *)&ring[head].flags, head_flags,
			      memory_order_release);
}

uint16_t *vqh_split_used_event(struct vqh_q *q)
{
	return &q->drv.l.split.avail->ring[q->size];
}

uint16_t *vqh_split_avail_event(struct vqh_q *q)
{
	return (uint16_t *)&q->drv.l.split.used->ring[q->size];
}

/* ---- patterns ---- */

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

uint8_t vqh_pat(uint32_t seq, uint32_t off, uint32_t salt)
{
	return (uint8_t)(mix(seq * 0x9e3779b1u + salt) + off * 0x3bu + (off >> 8));
}

void vqh_fill(void *p, size_t len, uint32_t seq, uint32_t off0, uint32_t salt)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = vqh_pat(seq, off0 + (uint32_t)i, salt);
}

long vqh_check(const void *p, size_t len, uint32_t seq, uint32_t off0, uint32_t salt)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != vqh_pat(seq, off0 + (uint32_t)i, salt))
			return (long)i;
	return -1;
}

/* ---- traffic ---- */

static int fail(struct vqh_traffic *t, const char *fmt, ...)
{
	va_list ap;

	if (!atomic_flag_test_and_set(&t->err_taken)) {
		va_start(ap, fmt);
		vsnprintf(t->err, sizeof(t->err), fmt, ap);
		va_end(ap);
	}
	atomic_store(&t->stop, true);
	return -1;
}

static bool uses_indirect(const struct vqh_traffic *t, unsigned n)
{
	return t->q->drv.indirect && t->q->indirect_max >= n && n > 1;
}

static size_t slot_bytes(const struct vqh_traffic_cfg *cfg)
{
	return ((size_t)cfg->max_chain * (cfg->max_len + GAP) + 15) & ~(size_t)15;
}

size_t vqh_traffic_bytes(uint16_t size, const struct vqh_traffic_cfg *cfg)
{
	return slot_bytes(cfg) * size + 4096;
}

int vqh_traffic_init(struct vqh_traffic *t, struct vqh_q *q, const struct vqh_traffic_cfg *cfg)
{
	uint8_t *bufs;

	memset(t, 0, sizeof(*t));
	atomic_flag_clear(&t->err_taken);
	t->q = q;
	t->cfg = *cfg;
	if (t->cfg.max_chain > VQH_MAX_CHAIN)
		t->cfg.max_chain = VQH_MAX_CHAIN;
	/* direct chains cannot be longer than the ring */
	if (!(q->drv.indirect && q->indirect_max >= t->cfg.max_chain) && t->cfg.max_chain > q->size)
		t->cfg.max_chain = q->size;
	if (!t->cfg.burst)
		t->cfg.burst = 1;
	t->slot_bytes = slot_bytes(&t->cfg);
	bufs = vqh_mem_alloc(q->m, t->slot_bytes * q->size, 16);
	t->reqs = calloc(q->size, sizeof(*t->reqs));
	t->free_slots = calloc(q->size, sizeof(*t->free_slots));
	t->chains = calloc(t->cfg.burst, sizeof(*t->chains));
	t->iovs = calloc((size_t)t->cfg.burst * VQH_MAX_CHAIN, sizeof(*t->iovs));
	if (!bufs || !t->reqs || !t->free_slots || !t->chains || !t->iovs) {
		vqh_traffic_fini(t);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < q->size; i++) {
		t->reqs[i].buf = bufs + i * t->slot_bytes;
		t->free_slots[i] = (uint16_t)(q->size - 1 - i);
	}
	t->nfree_slots = q->size;
	return 0;
}

void vqh_traffic_fini(struct vqh_traffic *t)
{
	free(t->reqs);
	free(t->free_slots);
	free(t->chains);
	free(t->iovs);
	t->reqs = NULL;
	t->free_slots = NULL;
	t->chains = NULL;
	t->iovs = NULL;
}

void vqh_shape(const struct vqh_traffic *t, uint32_t seq, struct vqh_shape *s)
{
	uint32_t h = mix(seq ^ 0xa5a5a5a5u);
	unsigned maxc = t->cfg.max_chain;

	/* mostly short chains, now and then up to the maximum */
	if (h % 4 != 0 && maxc > 4)
		maxc = 4;
	s->n = (uint16_t)(1 + (h >> 8) % maxc);
	s->nout = (uint16_t)((h >> 20) % (s->n + 1u));
	s->out_bytes = s->in_bytes = 0;
	for (unsigned i = 0; i < s->n; i++) {
		s->len[i] = (uint16_t)(1 + mix(seq * 64u + i) % t->cfg.max_len);
		if (i < s->nout)
			s->out_bytes += s->len[i];
		else
			s->in_bytes += s->len[i];
	}
}

uint32_t vqh_wlen(uint32_t seq, uint32_t in_bytes)
{
	return mix(seq + 17) % (in_bytes + 1);
}

static void layout_iov(const struct vqh_traffic *t, const struct vqh_shape *s, uint8_t *buf,
		       struct iovec *iov)
{
	size_t off = 0;

	for (unsigned i = 0; i < s->n; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = s->len[i];
		off += s->len[i] + GAP;
	}
}

int vqh_drv_fill(struct vqh_traffic *t, unsigned max, bool *kick)
{
	struct vio_virtq *vq = &t->q->drv;
	struct iovec iov[VQH_MAX_CHAIN];
	struct vqh_shape s;
	unsigned k = 0;

	if (kick)
		*kick = false;
	for (; k < max && t->added < t->target; k++) {
		uint32_t seq = (uint32_t)t->added;
		unsigned nf = vio_virtq_num_free(vq), need;
		uint32_t off = 0;
		struct vqh_req *r;
		uint16_t slot;
		int rc;

		vqh_shape(t, seq, &s);
		need = uses_indirect(t, s.n) ? 1 : s.n;
		if (!t->nfree_slots) {
			if (nf >= need && nf != 0)
				return fail(t, "all %u buffers in flight but num_free %u",
					    t->q->size, nf);
			break;
		}
		slot = t->free_slots[t->nfree_slots - 1];
		r = &t->reqs[slot];
		layout_iov(t, &s, r->buf, iov);
		for (unsigned i = 0; i < s.n; i++) {
			if (i < s.nout) {
				vqh_fill(iov[i].iov_base, iov[i].iov_len, seq, off, SALT_OUT);
				off += s.len[i];
			} else {
				memset(iov[i].iov_base, POISON, iov[i].iov_len);
			}
		}
		rc = vio_virtq_add(vq, &t->q->m->map, iov, s.nout, s.n - s.nout, r);
		if (nf < need) {
			if (rc != -ENOSPC)
				return fail(t, "add seq %u: %u free < %u needed but rc %d", seq, nf,
					    need, rc);
			break;
		}
		if (rc)
			return fail(t, "add seq %u (n %u, %u free) rc %d", seq, s.n, nf, rc);
		if (vio_virtq_num_free(vq) != nf - need)
			return fail(t, "add seq %u: num_free %u -> %u, expected -%u", seq, nf,
				    vio_virtq_num_free(vq), need);
		t->nfree_slots--;
		r->busy = true;
		r->seq = seq;
		t->added++;
	}
	if (k) {
		bool kk = vio_virtq_kick_prepare(vq);
		if (kick)
			*kick = kk;
	}
	return (int)k;
}

static int check_written(struct vqh_traffic *t, struct vqh_req *r, uint32_t len)
{
	struct iovec iov[VQH_MAX_CHAIN];
	struct vqh_shape s;
	uint32_t wlen, in_off = 0, out_off = 0;

	vqh_shape(t, r->seq, &s);
	layout_iov(t, &s, r->buf, iov);
	wlen = vqh_wlen(r->seq, s.in_bytes);
	if (len != wlen)
		return fail(t, "seq %u: used len %u, device wrote %u (in_bytes %u)", r->seq, len,
			    wlen, s.in_bytes);
	for (unsigned i = 0; i < s.n; i++) {
		const uint8_t *b = iov[i].iov_base;
		long bad;

		if (i < s.nout) {
			bad = vqh_check(b, s.len[i], r->seq, out_off, SALT_OUT);
			if (bad >= 0)
				return fail(t, "seq %u: readable iov %u byte %ld changed",
					    r->seq, i, bad);
			out_off += s.len[i];
			continue;
		}
		for (uint32_t j = 0; j < s.len[i]; j++, in_off++) {
			uint8_t want = in_off < wlen ? vqh_pat(r->seq, in_off, SALT_IN) : POISON;

			if (b[j] != want)
				return fail(t, "seq %u: writable byte %u is %#x, want %#x"
					    " (wlen %u)", r->seq, in_off, b[j], want, wlen);
		}
	}
	return 0;
}

int vqh_drv_reap(struct vqh_traffic *t)
{
	void *cookies[64];
	uint32_t lens[64];
	int total = 0, n;

	do {
		n = vio_virtq_get_used_burst(&t->q->drv, cookies, lens, 64);
		if (n < 0)
			return fail(t, "get_used_burst: %d", n);
		if (n > 64)
			return fail(t, "get_used_burst returned %d > 64", n);
		for (int i = 0; i < n; i++) {
			struct vqh_req *r = cookies[i];

			if (r < t->reqs || r >= t->reqs + t->q->size || !r->busy)
				return fail(t, "reaped cookie %p is not in flight", cookies[i]);
			if (check_written(t, r, lens[i]))
				return -1;
			if (t->reaped && r->seq < t->max_reaped_seq)
				t->reordered++;
			if (r->seq > t->max_reaped_seq)
				t->max_reaped_seq = r->seq;
			r->busy = false;
			t->free_slots[t->nfree_slots++] = (uint16_t)(r - t->reqs);
			t->reaped++;
		}
		total += n;
	} while (n == 64);
	return total;
}

static int check_chain(struct vqh_traffic *t, const struct vio_chain *c, uint32_t seq,
		       struct vio_used_elem *e)
{
	struct vqh_shape s;
	uint32_t out_off = 0, in_off = 0, wlen;
	unsigned ndesc;

	vqh_shape(t, seq, &s);
	ndesc = uses_indirect(t, s.n) ? 1 : s.n;
	if (c->status)
		return fail(t, "pop seq %u: status %d", seq, c->status);
	if (c->id >= t->q->size)
		return fail(t, "pop seq %u: id %u >= size", seq, c->id);
	if (c->nout != s.nout || c->nin != s.n - s.nout)
		return fail(t, "pop seq %u: nout %u nin %u, want %u %u", seq, c->nout, c->nin,
			    s.nout, s.n - s.nout);
	if (c->out_bytes != s.out_bytes || c->in_bytes != s.in_bytes)
		return fail(t, "pop seq %u: out %u in %u bytes, want %u %u", seq, c->out_bytes,
			    c->in_bytes, s.out_bytes, s.in_bytes);
	if (c->ndesc != ndesc)
		return fail(t, "pop seq %u: ndesc %u, want %u", seq, c->ndesc, ndesc);
	wlen = vqh_wlen(seq, s.in_bytes);
	for (unsigned i = 0; i < s.n; i++) {
		uint8_t *b = c->iov[i].iov_base;
		long bad;

		if (c->iov[i].iov_len != s.len[i])
			return fail(t, "pop seq %u: iov %u len %zu, want %u", seq, i,
				    c->iov[i].iov_len, s.len[i]);
		if (b < t->q->m->host || b + s.len[i] > t->q->m->host + t->q->m->len)
			return fail(t, "pop seq %u: iov %u outside the region", seq, i);
		if (i < s.nout) {
			bad = vqh_check(b, s.len[i], seq, out_off, SALT_OUT);
			if (bad >= 0)
				return fail(t, "pop seq %u: readable iov %u byte %ld wrong", seq, i,
					    bad);
			out_off += s.len[i];
			continue;
		}
		for (uint32_t j = 0; j < s.len[i] && in_off < wlen; j++, in_off++)
			b[j] = vqh_pat(seq, in_off, SALT_IN);
	}
	e->id = c->id;
	e->ndesc = c->ndesc;
	e->len = wlen;
	return 0;
}

void vqh_dev_flush(struct vqh_traffic *t)
{
	struct vio_used_elem rev[VQH_HELD_MAX];

	for (unsigned i = 0; i < t->nheld; i++)
		rev[i] = t->held[t->nheld - 1 - i];
	vio_virtq_push_burst(&t->q->dev, rev, t->nheld);
	t->nheld = 0;
}

int vqh_dev_serve(struct vqh_traffic *t, unsigned max)
{
	struct vio_used_elem out[256];
	bool ooo = t->cfg.ooo && !t->q->dev.in_order;
	unsigned k = 0;
	int n;

	if (max > t->cfg.burst)
		max = t->cfg.burst;
	if (max > 256)
		max = 256;
	for (unsigned i = 0; i < max; i++) {
		t->chains[i].iov = t->iovs + (size_t)i * VQH_MAX_CHAIN;
		t->chains[i].iov_cap = VQH_MAX_CHAIN;
	}
	n = vio_virtq_pop_burst(&t->q->dev, &t->q->m->map, t->chains, max);
	if (n < 0)
		return fail(t, "pop_burst: %d (fault %s)", n,
			    vio_virtq_fault_str(vio_virtq_fault_reason(&t->q->dev)));
	if ((unsigned)n > max)
		return fail(t, "pop_burst returned %d > %u", n, max);
	for (int i = 0; i < n; i++) {
		uint32_t seq = (uint32_t)t->popped;
		struct vio_used_elem e;

		if (t->popped >= t->target)
			return fail(t, "popped more chains than were added");
		if (check_chain(t, &t->chains[i], seq, &e))
			return -1;
		t->popped++;
		t->slots_used += e.ndesc;
		if (ooo && mix(seq) % 7 == 3 && t->nheld < VQH_HELD_MAX)
			t->held[t->nheld++] = e;
		else
			out[k++] = e;
	}
	if (ooo) {
		for (unsigned i = 0; i < k / 2; i++) {
			struct vio_used_elem x = out[i];
			out[i] = out[k - 1 - i];
			out[k - 1 - i] = x;
		}
	}
	vio_virtq_push_burst(&t->q->dev, out, k);
	if (n == 0 && t->nheld)
		vqh_dev_flush(t);
	return n;
}

int vqh_run(struct vqh_traffic *t, uint64_t ops)
{
	unsigned idle = 0;

	t->target += ops;
	while (t->reaped < t->target) {
		int a, p, r;

		/* now and then fill the ring to -ENOSPC */
		a = vqh_drv_fill(t, (++t->steps & 15) ? t->cfg.burst : t->q->size, NULL);
		if (a < 0)
			return -1;
		p = vqh_dev_serve(t, t->cfg.burst);
		if (p < 0)
			return -1;
		r = vqh_drv_reap(t);
		if (r < 0)
			return -1;
		if (a || p || r) {
			idle = 0;
		} else if (++idle > 3) {
			return fail(t, "stalled: added %llu popped %llu reaped %llu held %u"
				    " free %u",
				    (unsigned long long)t->added, (unsigned long long)t->popped,
				    (unsigned long long)t->reaped, t->nheld,
				    vio_virtq_num_free(&t->q->drv));
		}
	}
	if (t->nheld)
		return fail(t, "chains still held at the end");
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define THREAD_DEADLINE 120.0

static void *driver_thread(void *arg)
{
	struct vqh_traffic *t = arg;
	double end = now() + THREAD_DEADLINE;
	unsigned spins = 0;

	while (t->reaped < t->target && !atomic_load(&t->stop)) {
		int a = vqh_drv_fill(t, t->cfg.burst, NULL);
		int r = a < 0 ? -1 : vqh_drv_reap(t);

		if (a < 0 || r < 0)
			break;
		if (!a && !r) {
			sched_yield();
			if (!(++spins & 1023) && now() > end) {
				fail(t, "driver thread timed out: added %llu reaped %llu",
				     (unsigned long long)t->added, (unsigned long long)t->reaped);
				break;
			}
		}
	}
	return NULL;
}

static void *device_thread(void *arg)
{
	struct vqh_traffic *t = arg;
	double end = now() + THREAD_DEADLINE;
	unsigned spins = 0;

	while ((t->popped < t->target || t->nheld) && !atomic_load(&t->stop)) {
		int p = vqh_dev_serve(t, t->cfg.burst);

		if (p < 0)
			break;
		if (!p) {
			vqh_dev_flush(t);
			sched_yield();
			if (!(++spins & 1023) && now() > end) {
				fail(t, "device thread timed out: popped %llu",
				     (unsigned long long)t->popped);
				break;
			}
		}
	}
	return NULL;
}

int vqh_run_threads(struct vqh_traffic *t, uint64_t ops)
{
	pthread_t d, v;

	t->target += ops;
	if (pthread_create(&v, NULL, device_thread, t))
		return fail(t, "pthread_create");
	if (pthread_create(&d, NULL, driver_thread, t)) {
		atomic_store(&t->stop, true);
		pthread_join(v, NULL);
		return fail(t, "pthread_create");
	}
	pthread_join(d, NULL);
	pthread_join(v, NULL);
	if (atomic_load(&t->stop))
		return -1;
	if (t->reaped != t->target || t->popped != t->target)
		return fail(t, "threads ended with reaped %llu popped %llu of %llu",
			    (unsigned long long)t->reaped, (unsigned long long)t->popped,
			    (unsigned long long)t->target);
	return 0;
}
