/* SPDX-License-Identifier: MIT */
/*
 * Copying into memory around the cache: whole 64-byte lines with streaming
 * (non-temporal) stores, the unaligned edges with memcpy, so a line being
 * replaced is never loaded first. The RAM engine writes its store this
 * way, and vio-bench copy measures the same copy as the RAM row's limit.
 * The stores are weakly ordered: stream_fence() before anything another
 * thread may act on.
 */
#ifndef VIO_UTIL_STREAM_COPY_H
#define VIO_UTIL_STREAM_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define STREAM_LINE 64u

static inline void stream_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
#if defined(__SSE2__)
	size_t head = (size_t)(-(uintptr_t)dst & (STREAM_LINE - 1));

	if (len >= head + STREAM_LINE) {
		memcpy(dst, src, head);
		dst += head, src += head, len -= head;
		for (; len >= STREAM_LINE; dst += STREAM_LINE, src += STREAM_LINE, len -= STREAM_LINE)
			for (unsigned k = 0; k < STREAM_LINE; k += 16)
				_mm_stream_si128((__m128i *)(dst + k),
						 _mm_loadu_si128((const __m128i *)(src + k)));
	}
#endif
	memcpy(dst, src, len);
}

static inline void stream_fence(void)
{
#if defined(__SSE2__)
	_mm_sfence();
#endif
}

#endif
