/* SPDX-License-Identifier: MIT */
/*
 * Reading pieces of a frame that lies scattered over iovecs, and the
 * Internet checksum over such a list. Only ever reads the memory the
 * iovecs name, never past their lengths; never writes it.
 */
#include <string.h>

#include "net_internal.h"

bool net_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		memcpy(d, (const uint8_t *)iov[i].iov_base + off, l);
		d += l;
		len -= l;
		off = 0;
	}
	return len == 0;
}

unsigned net_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		       struct iovec *out, unsigned cap)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		if (k == cap)
			return 0;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = l;
		k++;
		len -= l;
		off = 0;
	}
	return len ? 0 : k;
}

/* Sum of the big-endian 16-bit words of p[0, len) (a trailing byte is a high byte), folded. */
static uint16_t sum16(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	uint32_t w;

	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&w, p, 4);
		s += __builtin_bswap32(w);
	}
	if (len >= 2) {
		s += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

uint16_t net_csum_iov(const struct iovec *iov, unsigned n, size_t off, size_t len, uint32_t seed)
{
	uint64_t s = seed;
	size_t pos = 0; /* bytes summed so far: an odd count shifts the next piece by a byte */

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		uint16_t part;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		part = sum16((const uint8_t *)iov[i].iov_base + off, l);
		/* Ones' complement sums commute with a byte swap: a piece at an odd position swaps. */
		s += (pos & 1) ? (uint16_t)(part << 8 | part >> 8) : part;
		pos += l;
		len -= l;
		off = 0;
	}
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}
