/* SPDX-License-Identifier: MIT */
/*
 * The token bucket of token_bucket.h. Any thread may take or charge; one
 * refill at a time moves the clock (a compare-and-swap on last_ns), so
 * tokens are never earned twice for the same time. No locks, no sleeping.
 */
#include "token_bucket.h"

#define NS_PER_S 1000000000ull

void vio_bucket_set(struct vio_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	if (rate && !burst)
		burst = rate / 10 ? rate / 10 : 1; /* a tenth of a second's worth */
	atomic_store(&b->burst, burst);
	atomic_store(&b->tokens, (int64_t)burst);
	atomic_store(&b->last_ns, now_ns);
	atomic_store(&b->rate, rate);
}

/* Add what the time since the last refill earned, up to the burst. */
static void refill(struct vio_bucket *b, uint64_t rate, uint64_t now_ns)
{
	uint64_t last = atomic_load_explicit(&b->last_ns, memory_order_relaxed);
	int64_t burst = (int64_t)atomic_load_explicit(&b->burst, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&b->tokens, memory_order_relaxed);
	uint64_t room = t < burst ? (uint64_t)(burst - t) : 0, add, next;
	unsigned __int128 earned;

	if (now_ns <= last)
		return;
	/* 128 bits: a rate of gigabytes per second times nanoseconds overflows 64. */
	earned = (unsigned __int128)(now_ns - last) * rate / NS_PER_S;
	if (earned >= room) {
		add = room; /* full: the time beyond that earns nothing */
		next = now_ns;
	} else if (earned) {
		add = (uint64_t)earned;
		next = last + (uint64_t)((unsigned __int128)add * NS_PER_S / rate);
	} else {
		return; /* too soon: let the time add up */
	}
	/* One thread moves the clock; the others see the new tokens. */
	if (!atomic_compare_exchange_strong(&b->last_ns, &last, next))
		return;
	t = atomic_fetch_add(&b->tokens, (int64_t)add) + (int64_t)add;
	if (t > burst)
		atomic_fetch_sub(&b->tokens, t - burst);
}

bool vio_bucket_take(struct vio_bucket *b, uint64_t n, uint64_t now_ns)
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

void vio_bucket_give_back(struct vio_bucket *b, uint64_t n)
{
	if (atomic_load_explicit(&b->rate, memory_order_relaxed))
		atomic_fetch_add(&b->tokens, (int64_t)n);
}

int64_t vio_bucket_avail(struct vio_bucket *b, uint64_t now_ns)
{
	uint64_t rate = atomic_load_explicit(&b->rate, memory_order_relaxed);

	if (!rate)
		return INT64_MAX;
	refill(b, rate, now_ns);
	return atomic_load_explicit(&b->tokens, memory_order_relaxed);
}

void vio_bucket_charge(struct vio_bucket *b, uint64_t n)
{
	if (atomic_load_explicit(&b->rate, memory_order_relaxed))
		atomic_fetch_sub(&b->tokens, (int64_t)n);
}

uint64_t vio_bucket_wait_ns(const struct vio_bucket *b, uint64_t n, uint64_t now_ns)
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
	if (!n)
		n = 1;
	if (t >= (int64_t)n)
		return 0;
	need = (uint64_t)((int64_t)n - t);
	at = last + (uint64_t)(((unsigned __int128)need * NS_PER_S + rate - 1) / rate);
	return at > now_ns ? at - now_ns : 1;
}
