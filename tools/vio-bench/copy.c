/* SPDX-License-Identifier: MIT */
/*
 * vio-bench copy: the machine's own limit for a RAM disk. One thread copies
 * --bs bytes between random offsets of a --size store (huge pages where the
 * kernel gives them, populated first, like viod's RAM engine) and a small
 * set of --iodepth buffers (a guest's request buffers), for --seconds, and
 * prints copies per second. It measures the copy and nothing else: no ring,
 * no request, no other thread, and copies as fast as one thread can here:
 * the next WINDOW blocks known in advance (a burst's), each one's first
 * lines prefetched when it joins the window and its whole source two copies
 * before its turn, writes into the store with streaming stores (what the
 * RAM engine does too).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>


#include "bench.h"
#include "util/parse_num.h"
#include "util/stream_copy.h"

#define P "vio-bench copy"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define LINE 64u
#define AHEAD 2u
#define WINDOW 32u /* blocks known ahead: a queue of 32 requests */
#define HEAD 2048u /* bytes of a block asked for when it joins (256: 3.7-3.9M copies/s, 2048: 4.5-4.8M) */

static void prefetch(const uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += LINE)
		__builtin_prefetch(p + off, 0);
}

/* xorshift64: the next random block. */
static uint64_t next_block(uint64_t *rng, uint64_t nblocks)
{
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	return *rng % nblocks;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vio-bench copy [--size SIZE] [--bs SIZE] [--iodepth N] [--seconds N]\n"
		   "                      [--write] [--machine]\n"
		   "Random --bs copies (4k) out of a --size store (1G) into --iodepth buffers (32)\n"
		   "for --seconds (3), or into the store with --write: the copy a RAM disk makes\n"
		   "per request, alone. --machine: stdout ends with 'copies= gbps='.\n");
}

int vio_bench_copy(int argc, char **argv)
{
	uint64_t size = 1ull << 30, bs = 4096, depth = 32, secs = 3, n = 0, rng = 88172645463325252ull;
	bool write = false, machine = false;
	uint8_t *store, *bufs, *ahead[WINDOW];
	uint64_t t0, t, nblocks;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r = 0;

		if (!strcmp(a, "--size") && v)
			r = parse_size_arg(P, a, v, 4096, 1ull << 40, &size), i++;
		else if (!strcmp(a, "--bs") && v)
			r = parse_size_arg(P, a, v, 1, 4u << 20, &bs), i++;
		else if (!strcmp(a, "--iodepth") && v)
			r = parse_count_arg(P, a, v, 1, 4096, &depth), i++;
		else if (!strcmp(a, "--seconds") && v)
			r = parse_count_arg(P, a, v, 1, 3600, &secs), i++;
		else if (!strcmp(a, "--write"))
			write = true;
		else if (!strcmp(a, "--machine"))
			machine = true;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else
			r = -EINVAL;
		if (r) {
			usage(stderr);
			return 2;
		}
	}
	if (bs > size) {
		fprintf(stderr, P ": --bs larger than --size\n");
		return 2;
	}
	nblocks = size / bs;
	store = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = aligned_alloc(4096, (bs * depth + 4095) / 4096 * 4096);
	if (store == MAP_FAILED || !bufs) {
		fprintf(stderr, "vio-bench copy: out of memory\n");
		return 1;
	}
	(void)madvise(store, size, MADV_HUGEPAGE);
	memset(store, 1, size);
	memset(bufs, 2, bs * depth);
	/* The blocks of the next WINDOW copies are known in advance, as a burst's are. */
	for (unsigned k = 0; k < WINDOW; k++) {
		ahead[k] = store + next_block(&rng, nblocks) * bs;
		prefetch(ahead[k], HEAD < bs ? HEAD : bs);
	}
	t0 = now_ns();
	do {
		/* A batch between clock reads: the clock costs about as much as a copy. */
		for (unsigned k = 0; k < 64; k++, n++) {
			uint8_t *blk = ahead[n % WINDOW], *buf = bufs + (n % depth) * bs;

			prefetch(write ? bufs + ((n + AHEAD) % depth) * bs : ahead[(n + AHEAD) % WINDOW],
				 bs);
			if (write)
				stream_copy(blk, buf, bs);
			else
				memcpy(buf, blk, bs);
			blk = ahead[n % WINDOW] = store + next_block(&rng, nblocks) * bs;
			if (!write)
				prefetch(blk, HEAD < bs ? HEAD : bs);
		}
		stream_fence();
		__asm__ volatile("" ::: "memory"); /* the copies are not dead stores */
		t = now_ns();
	} while (t - t0 < secs * 1000000000ull);
	printf("%s %llu-byte copies, %s store %llu MiB%s: %.0f copies/s, %.2f GB/s\n",
	       write ? "buffer->store" : "store->buffer", (unsigned long long)bs,
	       "random offsets in a", (unsigned long long)(size >> 20),
	       write ? ", streaming stores" : ", prefetched ahead",
	       n * 1e9 / (double)(t - t0), (double)n * (double)bs / (double)(t - t0));
	if (machine)
		printf("copies=%.0f gbps=%.2f\n", n * 1e9 / (double)(t - t0),
		       (double)n * (double)bs / (double)(t - t0));
	munmap(store, size);
	free(bufs);
	return 0;
}
