/* SPDX-License-Identifier: MIT */
/* Latency histogram for the benchmarks: log-linear buckets, ~3% resolution, no allocation. */
#ifndef VIO_BENCH_LATENCY_H
#define VIO_BENCH_LATENCY_H

#include <stdint.h>

#define LAT_SUB_BITS 5
#define LAT_BUCKETS (64 << LAT_SUB_BITS)

struct lat_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint32_t bucket[LAT_BUCKETS];
};

void lat_reset(struct lat_hist *h);
void lat_add(struct lat_hist *h, uint64_t ns);
void lat_merge(struct lat_hist *into, const struct lat_hist *from);
/* The value below which `pct` percent of samples fall (bucket upper bound), in ns. */
uint64_t lat_percentile(const struct lat_hist *h, double pct);

#endif
