/* SPDX-License-Identifier: MIT */
/*
 * The device IOTLB (see iotlb_internal.h). The writer edits a private
 * sorted copy of the entries and publishes it under the sequence lock;
 * readers binary-search the published entries and retry if the writer was
 * at work meanwhile. Never allocates after init, never grows past cap,
 * never makes a reader wait longer than a publish (or the writer's preemption).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "iotlb_internal.h"

/* The writer's copy: what the next publish makes visible. */
struct iotlb_shadow {
	uint64_t iova, last, host;
	uint32_t perm;
};

void vio_iotlb_init(struct vio_iotlb *t, uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->cap = cap ? cap : VIO_IOTLB_DEFAULT_MAX;
}

int vio_iotlb_alloc(struct vio_iotlb *t)
{
	if (t->e)
		return 0;
	/* One spare shadow slot: an invalidate may split an entry before eviction makes room. */
	t->shadow = calloc((size_t)t->cap + 1, sizeof(struct iotlb_shadow));
	t->e = calloc(t->cap, sizeof(*t->e));
	if (!t->e || !t->shadow) {
		vio_iotlb_destroy(t);
		return -ENOMEM;
	}
	return 0;
}

void vio_iotlb_destroy(struct vio_iotlb *t)
{
	free(t->e);
	free(t->shadow);
	t->e = NULL;
	t->shadow = NULL;
	t->sn = 0;
	atomic_store(&t->n, 0);
}

void vio_iotlb_set_miss_fn(struct vio_iotlb *t, vio_iotlb_miss_fn *fn, void *opaque)
{
	t->on_miss = fn;
	t->miss_opaque = opaque;
}

uint32_t vio_iotlb_count(const struct vio_iotlb *t)
{
	return atomic_load_explicit(&t->n, memory_order_relaxed);
}

/* Make the shadow's first sn entries what readers see. */
static void publish(struct vio_iotlb *t)
{
	const struct iotlb_shadow *s = t->shadow;
	uint32_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);

	atomic_store_explicit(&t->seq, seq + 1, memory_order_relaxed);
	/* Readers that see any entry store below also see the odd sequence. */
	atomic_thread_fence(memory_order_release);
	for (uint32_t i = 0; i < t->sn; i++) {
		atomic_store_explicit(&t->e[i].iova, s[i].iova, memory_order_relaxed);
		atomic_store_explicit(&t->e[i].last, s[i].last, memory_order_relaxed);
		atomic_store_explicit(&t->e[i].host, s[i].host, memory_order_relaxed);
		atomic_store_explicit(&t->e[i].perm, s[i].perm, memory_order_relaxed);
	}
	atomic_store_explicit(&t->n, t->sn, memory_order_relaxed);
	/* The entries above are visible before the even sequence that vouches for them. */
	atomic_store_explicit(&t->seq, seq + 2, memory_order_release);
}

static void shadow_remove_at(struct vio_iotlb *t, uint32_t i)
{
	struct iotlb_shadow *s = t->shadow;

	memmove(&s[i], &s[i + 1], (t->sn - i - 1) * sizeof(*s));
	t->sn--;
}

/* Forget [lo, hi] in the shadow; entries straddling an end keep their outside part. */
static void shadow_cut(struct vio_iotlb *t, uint64_t lo, uint64_t hi)
{
	struct iotlb_shadow *s = t->shadow;

	for (uint32_t i = 0; i < t->sn;) {
		struct iotlb_shadow e = s[i];

		if (e.last < lo || e.iova > hi) {
			i++;
			continue;
		}
		if (e.iova < lo && e.last > hi) {
			/* The hole is inside: two pieces (the spare slot holds the second). */
			memmove(&s[i + 2], &s[i + 1], (t->sn - i - 1) * sizeof(*s));
			s[i].last = lo - 1;
			s[i + 1] = (struct iotlb_shadow){ hi + 1, e.last, e.host + (hi + 1 - e.iova), e.perm };
			t->sn++;
			return;
		}
		if (e.iova < lo) {
			s[i].last = lo - 1;
			i++;
		} else if (e.last > hi) {
			s[i].host += hi + 1 - e.iova;
			s[i].iova = hi + 1;
			i++;
		} else {
			shadow_remove_at(t, i);
		}
	}
}

/* Room for one more: evict in turn until the table is below its bound. */
static void shadow_make_room(struct vio_iotlb *t)
{
	while (t->sn >= t->cap) {
		shadow_remove_at(t, t->evict_next++ % t->sn);
		atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
	}
}

static bool range_wraps(uint64_t start, uint64_t size)
{
	return size == 0 || start + (size - 1) < start;
}

int vio_iotlb_update(struct vio_iotlb *t, uint64_t iova, uint64_t size, void *host, unsigned perm)
{
	struct iotlb_shadow *s = t->shadow;
	uint64_t last;
	uint32_t i;

	if (perm < VIO_IOTLB_RO || perm > VIO_IOTLB_RW || range_wraps(iova, size) ||
	    range_wraps((uintptr_t)host, size))
		return -EINVAL;
	if (!s)
		return -ENOMEM;
	last = iova + (size - 1);
	shadow_cut(t, iova, last);
	shadow_make_room(t);
	for (i = 0; i < t->sn && s[i].iova < iova; i++)
		;
	memmove(&s[i + 1], &s[i], (t->sn - i) * sizeof(*s));
	s[i] = (struct iotlb_shadow){ iova, last, (uintptr_t)host, perm };
	t->sn++;
	publish(t);
	atomic_fetch_add_explicit(&t->updates, 1, memory_order_relaxed);
	return 0;
}

int vio_iotlb_invalidate(struct vio_iotlb *t, uint64_t iova, uint64_t size)
{
	if (range_wraps(iova, size))
		return -EINVAL;
	if (!t->shadow)
		return 0; /* nothing held, nothing to forget */
	atomic_fetch_add_explicit(&t->invalidates, 1, memory_order_relaxed);
	shadow_cut(t, iova, iova + (size - 1));
	/* A split may leave one over the bound. */
	shadow_make_room(t);
	publish(t);
	return 0;
}

void vio_iotlb_flush(struct vio_iotlb *t)
{
	if (!t->shadow)
		return;
	t->sn = 0;
	publish(t);
}

void vio_iotlb_report_miss(struct vio_iotlb *t, uint64_t iova, unsigned perm)
{
	atomic_fetch_add_explicit(&t->misses, 1, memory_order_relaxed);
	if (t->on_miss)
		t->on_miss(t->miss_opaque, iova, perm);
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void *vio_iotlb_translate(const struct vio_iotlb *t, uint64_t iova, uint64_t len, unsigned perm,
			  uint64_t *got, int *why)
{
	uint32_t seq, n, lo, hi, i, spins = 0;
	uint64_t host, last, have;
	int err;

	if (len == 0) {
		*why = -EINVAL;
		return NULL;
	}
	for (;;) {
		/* Pairs with the release store of an even sequence in publish. */
		seq = atomic_load_explicit(&t->seq, memory_order_acquire);
		if (seq & 1) {
			/* The writer is mid-publish: a few thousand stores, unless it was preempted. */
			if (++spins % 1024 == 0)
				sched_yield();
			continue;
		}
		n = LD(t->n);
		host = 0;
		have = 0;
		err = -ENOENT;
		/* The last entry starting at or below iova. */
		for (lo = 0, hi = n; lo < hi;) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (LD(t->e[mid].iova) <= iova)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > 0 && LD(t->e[lo - 1].last) >= iova) {
			i = lo - 1;
			err = -EACCES;
			if ((LD(t->e[i].perm) & perm) == perm) {
				err = 0;
				last = LD(t->e[i].last);
				host = LD(t->e[i].host) + (iova - LD(t->e[i].iova));
				have = last - iova >= len - 1 ? len : last - iova + 1;
				/* Neighbours that continue it in both spaces extend the prefix. */
				while (have < len && ++i < n && last != UINT64_MAX &&
				       LD(t->e[i].iova) == last + 1 &&
				       LD(t->e[i].host) == host + have &&
				       (LD(t->e[i].perm) & perm) == perm) {
					uint64_t more = LD(t->e[i].last) - LD(t->e[i].iova) + 1;

					last = LD(t->e[i].last);
					have = more >= len - have ? len : have + more;
				}
			}
		}
		/* The loads above happen before the sequence is checked again. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&t->seq, memory_order_relaxed) == seq)
			break;
	}
	if (err) {
		*why = err;
		return NULL;
	}
	*got = have;
	return (void *)(uintptr_t)host;
}
