/* SPDX-License-Identifier: MIT */
/*
 * What a sender hands the switch, checked before anything is forwarded:
 * the virtio header against the sender's negotiated offloads, the frame's
 * length, and for GSO frames the Ethernet/IP/TCP headers the software
 * segmenter will rely on. Reads the sender's memory, never writes it.
 */
#include <string.h>

#include "net_internal.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define NET_MAX_HDRS 256u /* Ethernet + VLAN + IPv4 with options + TCP with options fit */
#define NET_MIN_MSS 88u   /* Linux's TCP_MIN_MSS */

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Headers of a GSO frame: Ethernet (one optional VLAN tag), IPv4 or IPv6, TCP. 0 or a drop reason. */
static int parse_gso(struct net_frame *f, uint8_t gso)
{
	uint8_t h[NET_MAX_HDRS];
	uint32_t avail = f->len < NET_MAX_HDRS ? f->len : NET_MAX_HDRS;
	uint32_t l3 = NET_ETH_HLEN, l4, hl;
	uint16_t type;

	if (!net_iov_read(f->iov, f->niov, 0, h, avail))
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	type = be16(h + 12);
	if (type == ETH_P_8021Q) {
		if (avail < 18)
			return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
		type = be16(h + 16);
		l3 = 18;
	}
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
		if (type != ETH_P_IPV4 || avail < l3 + 20 || (h[l3] >> 4) != 4 || (h[l3] & 15) < 5 ||
		    h[l3 + 9] != IPPROTO_TCP_)
			return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
		l4 = l3 + (h[l3] & 15) * 4u;
	} else {
		/* Extension headers are not segmented: the next header must be TCP. */
		if (type != ETH_P_IPV6 || avail < l3 + 40 || (h[l3] >> 4) != 6 ||
		    h[l3 + 6] != IPPROTO_TCP_)
			return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
		l4 = l3 + 40;
	}
	if (avail < l4 + 20 || (h[l4 + 12] >> 4) < 5)
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	hl = l4 + (h[l4 + 12] >> 4) * 4u;
	if (hl > avail)
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	f->l3_off = (uint16_t)l3;
	f->l4_off = (uint16_t)l4;
	f->hdrs_len = (uint16_t)hl;
	return 0;
}

int net_frame_parse(struct net_frame *f, const struct virtio_net_hdr_v1 *hdr,
		    const struct iovec *iov, unsigned niov, uint32_t len, unsigned caps)
{
	uint8_t gso = hdr->gso_type;

	if (len < NET_ETH_HLEN)
		return NET_FAIL(VIO_NET_DROP_TX_RUNT);
	if (len > VIO_NET_MAX_FRAME)
		return NET_FAIL(VIO_NET_DROP_TX_OVERSIZE);
	f->iov = iov;
	f->niov = niov;
	f->len = len;
	f->hashed = false;
	f->hdr = *hdr;
	f->hdr.num_buffers = 0;
	f->hdr.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM; /* DATA_VALID / RSC_INFO mean nothing on TX */
	if (__builtin_expect(iov[0].iov_len >= sizeof(f->mac), 1))
		memcpy(f->mac, iov[0].iov_base, sizeof(f->mac));
	else if (!net_iov_read(iov, niov, 0, f->mac, sizeof(f->mac)))
		return NET_FAIL(VIO_NET_DROP_TX_RUNT);
	if (__builtin_expect(!f->hdr.flags && gso == VIRTIO_NET_HDR_GSO_NONE, 1))
		return 0;
	if (f->hdr.flags) {
		/* The checksum field must lie inside the frame. */
		if (!(caps & NET_CAP_CSUM) ||
		    (uint32_t)hdr->csum_start + hdr->csum_offset + 2u > len)
			return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	}
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return 0;
	/* HOST_ECN, UFO and USO are never offered: those types are the sender's error. */
	/* An MSS below TCP's minimum would make thousands of segments of one frame. */
	if (!(f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || hdr->gso_size < NET_MIN_MSS)
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	if (!(gso == VIRTIO_NET_HDR_GSO_TCPV4 && (caps & NET_CAP_TSO4)) &&
	    !(gso == VIRTIO_NET_HDR_GSO_TCPV6 && (caps & NET_CAP_TSO6)))
		return NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD);
	return parse_gso(f, gso);
}

static inline uint32_t mix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	h *= 0x846ca68b;
	h ^= h >> 16;
	return h;
}

uint32_t net_frame_hash(struct net_frame *f)
{
	uint8_t h[NET_ETH_HLEN + 4 + 40 + 4];
	uint32_t avail = f->len < sizeof(h) ? f->len : (uint32_t)sizeof(h);
	uint32_t x = 0, l3 = NET_ETH_HLEN, l4 = 0;
	uint8_t proto = 0;
	uint16_t type;

	if (f->hashed)
		return f->hash;
	/* Symmetric: both directions of a flow land on the same pair. */
	for (unsigned i = 0; i < 6; i++)
		x += (uint32_t)(f->mac[i] ^ f->mac[6 + i]) << (8 * (i & 3));
	if (net_iov_read(f->iov, f->niov, 0, h, avail)) {
		type = be16(h + 12);
		if (type == ETH_P_8021Q && avail >= 18) {
			type = be16(h + 16);
			l3 = 18;
		}
		if (type == ETH_P_IPV4 && avail >= l3 + 20) {
			uint32_t a, b;

			memcpy(&a, h + l3 + 12, 4);
			memcpy(&b, h + l3 + 16, 4);
			x ^= a ^ b;
			proto = h[l3 + 9];
			l4 = l3 + (h[l3] & 15) * 4u;
		} else if (type == ETH_P_IPV6 && avail >= l3 + 40) {
			for (unsigned i = 0; i < 32; i += 4) {
				uint32_t a;

				memcpy(&a, h + l3 + 8 + i, 4);
				x ^= a;
			}
			proto = h[l3 + 6];
			l4 = l3 + 40;
		}
		if ((proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) && l4 + 4 <= avail)
			x ^= (uint32_t)(be16(h + l4) ^ be16(h + l4 + 2)) << 3;
	}
	f->hash = mix32(x);
	f->hashed = true;
	return f->hash;
}
