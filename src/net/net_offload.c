/* SPDX-License-Identifier: MIT */
/*
 * Offloads a receiver did not negotiate, done in software on the way into
 * its buffers: a partial checksum completed (RFC 1071 over csum_start..end,
 * the sender's pseudo-header sum included), a TCP GSO frame cut into MSS
 * segments with IPv4/IPv6 lengths, IPv4 ids, TCP sequence numbers, flags
 * and every checksum recomputed. Headers are rebuilt in a stack buffer;
 * payload is still copied once, from the sender's buffer into the
 * receiver's. Never writes the sender's memory.
 */
#include <string.h>

#include "net_internal.h"

#define SEG_HDRS_MAX 256u
#define SEG_IOV_MAX (NET_TX_IOV_CAP + 1u)
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

/* The value a checksum field gets: the complement; 0 is sent as its twin 0xffff (UDP's "none"). */
static inline uint16_t csum_final(uint16_t folded)
{
	uint16_t c = (uint16_t)~folded;

	return c ? c : 0xffff;
}

static int deliver_segments(const struct net_frame *f, unsigned rx_caps, net_put_fn *put,
			    void *opaque, unsigned *delivered)
{
	const bool v4 = (f->hdr.gso_type & 0x7f) == VIRTIO_NET_HDR_GSO_TCPV4;
	const uint32_t l3 = f->l3_off, l4 = f->l4_off, hl = f->hdrs_len;
	const uint32_t mss = f->hdr.gso_size, payload = f->len - hl, tcp_hl = hl - l4;
	const uint32_t nseg = payload ? (payload + mss - 1) / mss : 1;
	struct virtio_net_hdr_v1 out = { 0 };
	uint8_t orig[SEG_HDRS_MAX], s[SEG_HDRS_MAX];
	struct iovec iov[SEG_IOV_MAX];
	uint16_t ip_id;
	uint32_t seq;

	if (!net_iov_read(f->iov, f->niov, 0, orig, hl))
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	ip_id = v4 ? rd16(orig + l3 + 4) : 0;
	seq = rd32(orig + l4 + 4);
	/* We checked every checksum we wrote: a receiver that can use that learns it. */
	if (rx_caps & NET_CAP_CSUM)
		out.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	out.num_buffers = 0;
	for (uint32_t k = 0; k < nseg; k++) {
		uint32_t seg = k + 1 < nseg ? mss : payload - k * mss;
		uint32_t tcp_len = tcp_hl + seg;
		uint32_t pseudo;
		unsigned n;
		int r;

		memcpy(s, orig, hl);
		if (v4) {
			wr16(s + l3 + 2, (uint16_t)(l4 - l3 + tcp_len));
			wr16(s + l3 + 4, (uint16_t)(ip_id + k));
			wr16(s + l3 + 10, 0);
			iov[0] = (struct iovec){ s + l3, l4 - l3 };
			wr16(s + l3 + 10, csum_final(net_csum_iov(iov, 1, 0, l4 - l3, 0)));
			/* Pseudo header: addresses, protocol, TCP length. */
			iov[0] = (struct iovec){ s + l3 + 12, 8 };
			pseudo = net_csum_iov(iov, 1, 0, 8, 6u + tcp_len);
		} else {
			wr16(s + l3 + 4, (uint16_t)tcp_len);
			iov[0] = (struct iovec){ s + l3 + 8, 32 };
			pseudo = net_csum_iov(iov, 1, 0, 32, 6u + (tcp_len & 0xffff) + (tcp_len >> 16));
		}
		wr32(s + l4 + 4, seq + k * mss);
		if (k > 0)
			s[l4 + 13] &= (uint8_t)~TCP_CWR;
		if (k + 1 < nseg)
			s[l4 + 13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		wr16(s + l4 + 16, 0);
		iov[0] = (struct iovec){ s, hl };
		n = seg ? net_iov_slice(f->iov, f->niov, hl + k * mss, seg, iov + 1, SEG_IOV_MAX - 1)
			: 0;
		if (seg && !n)
			return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
		/* TCP header then payload: the header's length is a multiple of 4, parity holds. */
		wr16(s + l4 + 16, csum_final(net_csum_iov(iov, n + 1, l4, tcp_len, pseudo)));
		r = put(opaque, &out, iov, n + 1, hl + seg, UINT32_MAX, 0);
		/* A receiver out of buffers gets none of the rest: stop, do not grind on. */
		if (r)
			return r;
		(*delivered)++;
	}
	return 0;
}

int net_offload_deliver(const struct net_frame *f, unsigned rx_caps, net_put_fn *put,
			void *opaque, unsigned *delivered)
{
	struct virtio_net_hdr_v1 h = f->hdr;
	int r;

	if (__builtin_expect(!h.flags && h.gso_type == VIRTIO_NET_HDR_GSO_NONE, 1)) {
		r = put(opaque, &h, f->iov, f->niov, f->len, UINT32_MAX, 0);
		goto one;
	}
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		unsigned need = h.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 ? NET_CAP_TSO4 : NET_CAP_TSO6;

		if ((rx_caps & (need | NET_CAP_CSUM)) == (need | NET_CAP_CSUM)) {
			r = put(opaque, &h, f->iov, f->niov, f->len, UINT32_MAX, 0);
			goto one;
		}
		return deliver_segments(f, rx_caps, put, opaque, delivered);
	}
	if (rx_caps & NET_CAP_CSUM) {
		/* The receiver finishes the checksum itself: carry the request through. */
		r = put(opaque, &h, f->iov, f->niov, f->len, UINT32_MAX, 0);
	} else {
		uint32_t at = (uint32_t)h.csum_start + h.csum_offset;
		uint16_t c = csum_final(net_csum_iov(f->iov, f->niov, h.csum_start,
						     f->len - h.csum_start, 0));

		h.flags = 0;
		h.csum_start = h.csum_offset = 0;
		r = put(opaque, &h, f->iov, f->niov, f->len, at, c);
	}
one:
	if (!r)
		(*delivered)++;
	return r;
}
