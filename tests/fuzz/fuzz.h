/* SPDX-License-Identifier: MIT */
/*
 * What every fuzz target shares: the input reader (a cursor over the bytes
 * libFuzzer or the replayer hands in; reads past the end yield zeroes, so
 * every input is valid) and the invariant check, which aborts so that
 * libFuzzer records the input as a crash and the replayer fails. A target
 * never reads its input any other way and never exits on its own.
 */
#ifndef VIO_FUZZ_H
#define VIO_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry points every target defines (the replayer calls them too). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_empty(const struct fz *f)
{
	return f->n == 0;
}

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

/* Little-endian, like the wire formats the inputs mimic. */
static inline uint64_t fz_bits(struct fz *f, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)fz_u8(f) << (8 * i);
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	return (uint16_t)fz_bits(f, 2);
}

static inline uint32_t fz_u32(struct fz *f)
{
	return (uint32_t)fz_bits(f, 4);
}

static inline uint64_t fz_u64(struct fz *f)
{
	return fz_bits(f, 8);
}

/* Copy up to len bytes (zeroes once the input ends). */
static inline void fz_bytes(struct fz *f, void *dst, size_t len)
{
	size_t k = len < f->n ? len : f->n;

	memcpy(dst, f->p, k);
	memset((uint8_t *)dst + k, 0, len - k);
	f->p += k;
	f->n -= k;
}

/* An invariant of the code under test: on failure, say which and crash. */
#define FZ_CHECK(cond, ...)                                                                 \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
				#cond);                                                     \
			fprintf(stderr, __VA_ARGS__);                                       \
			fputc('\n', stderr);                                                \
			abort();                                                            \
		}                                                                           \
	} while (0)

/*
 * Route the library's log lines through a sink that formats and drops them
 * (every format string and argument is exercised under the sanitizers);
 * VIO_FUZZ_LOG=1 prints them instead.
 */
void fz_log_init(void);

/* Open fds of this process (leak checks across inputs). */
int fz_count_fds(void);

#endif
