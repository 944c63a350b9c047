/* SPDX-License-Identifier: MIT */
/*
 * Log-linear latency histogram: each power of two is split into 32 linear
 * sub-buckets, so a percentile is exact to about 3% whatever the scale.
 */
#include <string.h>

#include "latency.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < (1u << LAT_SUB_BITS))
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	shift = msb - LAT_SUB_BITS;
	/* (msb - SUB_BITS + 1) groups of 32 above the first, index within by the bits under the msb */
	return ((shift + 1) << LAT_SUB_BITS) + (unsigned)((v >> shift) & ((1u << LAT_SUB_BITS) - 1));
}

static uint64_t bucket_top(unsigned b)
{
	unsigned group = b >> LAT_SUB_BITS, sub = b & ((1u << LAT_SUB_BITS) - 1);

	if (group == 0)
		return sub;
	return (((uint64_t)(1u << LAT_SUB_BITS) + sub + 1) << (group - 1)) - 1;
}

void lat_reset(struct lat_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void lat_add(struct lat_hist *h, uint64_t ns)
{
	h->bucket[bucket_of(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void lat_merge(struct lat_hist *into, const struct lat_hist *from)
{
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

uint64_t lat_percentile(const struct lat_hist *h, double pct)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)((double)h->count * pct / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t top = bucket_top(i);
			return top < h->max_ns ? top : h->max_ns;
		}
	}
	return h->max_ns;
}
