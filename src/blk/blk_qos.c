/* SPDX-License-Identifier: MIT */
/*
 * Rate limits of one virtio-blk device: an IOPS and a bytes-per-second
 * token bucket, shared by the device's queues (each on its own thread) with
 * atomics only. A request takes its tokens when it starts; one that finds
 * too few waits in its queue, in order, until the buckets refill. The other
 * devices never see these buckets: a limited device cannot slow them down.
 */
#include "blk_internal.h"

#define NS_PER_S 1000000000ull

void blk_bucket_set(struct blk_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	if (rate && !burst)
		burst = rate / 10 ? rate / 10 : 1; /* a tenth of a second's worth */
	atomic_store(&b->burst, burst);
	atomic_store(&b->tokens, (int64_t)burst);
	atomic_store(&b->last_ns, now_ns);
	atomic_store(&b->rate, rate);
}

/* Add what the time since the last refill earned, up to the burst. */
static void refill(struct blk_bucket *b, uint64_t rate, uint64_t now_ns)
{
	uint64_t last = atomic_load_explicit(&b->last_ns, memory_order_relaxed);
	uint64_t add, burst;
	int64_t t;

	if (now_ns <= last)
		return;
	add = (now_ns - last) * rate / NS_PER_S;
	if (!add)
		return; /* too soon: let the time add up */
	/* One thread moves the clock; the others see the new tokens. */
	if (!atomic_compare_exchange_strong(&b->last_ns, &last, last + add * NS_PER_S / rate))
		return;
	burst = atomic_load_explicit(&b->burst, memory_order_relaxed);
	t = atomic_fetch_add(&b->tokens, (int64_t)add) + (int64_t)add;
	if (t > (int64_t)burst)
		atomic_fetch_sub(&b->tokens, t - (int64_t)burst);
}

/* Take n tokens if there are: true; false takes nothing. */
static bool take(struct blk_bucket *b, uint64_t n, uint64_t now_ns)
{
	uint64_t rate = atomic_load_explicit(&b->rate, memory_order_relaxed);
	int64_t t;

	if (!rate)
		return true;
	refill(b, rate, now_ns);
	t = atomic_load_explicit(&b->tokens, memory_order_relaxed);
	do {
		/* A request bigger than the burst goes once the bucket is full. */
		uint64_t burst = atomic_load_explicit(&b->burst, memory_order_relaxed);

		if (t < (int64_t)(n < burst ? n : burst))
			return false;
	} while (!atomic_compare_exchange_weak(&b->tokens, &t, t - (int64_t)n));
	return true;
}

static void give_back(struct blk_bucket *b, uint64_t n)
{
	if (atomic_load_explicit(&b->rate, memory_order_relaxed))
		atomic_fetch_add(&b->tokens, (int64_t)n);
}

bool blk_qos_take(struct vio_blk *blk, uint32_t bytes, uint64_t now_ns)
{
	if (!take(&blk->iops, 1, now_ns))
		return false;
	if (!take(&blk->bps, bytes, now_ns)) {
		give_back(&blk->iops, 1);
		return false;
	}
	return true;
}

static uint64_t wait_one(const struct blk_bucket *b, uint64_t n, uint64_t now_ns)
{
	uint64_t rate = atomic_load_explicit(&b->rate, memory_order_relaxed);
	uint64_t burst = atomic_load_explicit(&b->burst, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&b->last_ns, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&b->tokens, memory_order_relaxed);
	uint64_t need, at;

	if (!rate)
		return 0;
	if (n > burst)
		n = burst;
	if (t >= (int64_t)n)
		return 0;
	need = (uint64_t)((int64_t)n - t);
	at = last + (need * NS_PER_S + rate - 1) / rate;
	return at > now_ns ? at - now_ns : 1;
}

uint64_t blk_qos_wait_ns(const struct vio_blk *blk, uint32_t bytes, uint64_t now_ns)
{
	uint64_t a = wait_one(&blk->iops, 1, now_ns), b = wait_one(&blk->bps, bytes, now_ns);

	return a > b ? a : b;
}
