/* SPDX-License-Identifier: MIT */
/*
 * The control queue's commands (spec 5.1.6.5) and the receive filter they
 * program: RX mode (promiscuous, all-multicast), the MAC filter table, the
 * default MAC address, and the number of queue pairs in use. Every command
 * is checked for its exact length and the features it needs before it
 * changes anything; a bad one is refused with VIRTIO_NET_ERR.
 */
#include <string.h>

#include "net_internal.h"

static bool has(uint64_t f, unsigned bit)
{
	return (f >> bit) & 1;
}

void net_ctrl_reset(struct net_port *p, const uint8_t *mac)
{
	struct net_filter *f = &p->filter;

	/* Promiscuous until the driver says otherwise: a driver without CTRL_RX gets everything. */
	memset(f, 0, sizeof(*f));
	f->promisc = true;
	if (mac) {
		f->has_mac = true;
		memcpy(f->mac, mac, 6);
	}
	p->curr_pairs = 1;
}

static bool in_table(const uint8_t (*t)[6], unsigned n, const uint8_t *m)
{
	for (unsigned i = 0; i < n; i++)
		if (!memcmp(t[i], m, 6))
			return true;
	return false;
}

bool net_filter_accept(const struct net_filter *f, const uint8_t dst[6])
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (f->promisc)
		return true;
	if (dst[0] & 1) {
		if (!memcmp(dst, bcast, 6) || f->allmulti || f->multi_overflow)
			return true;
		return in_table(f->multi, f->nmulti, dst);
	}
	if (f->uni_overflow || (f->has_mac && !memcmp(dst, f->mac, 6)))
		return true;
	return in_table(f->uni, f->nuni, dst);
}

/*
 * One table of struct virtio_net_ctrl_mac at byte *off of the command:
 * entries (le32), then 6 bytes each, all inside the command's out_bytes.
 */
static bool mac_table(const struct iovec *out, unsigned nout, uint32_t out_bytes, uint32_t *off,
		      uint8_t (*t)[6], unsigned *n, bool *overflow)
{
	uint32_t entries;

	if (out_bytes - *off < 4 || !net_iov_read(out, nout, *off, &entries, 4))
		return false;
	*off += 4;
	if (entries > (out_bytes - *off) / 6)
		return false;
	/* More than we keep: let them all through (the spec allows it). */
	*overflow = entries > VIO_NET_MAC_TABLE_MAX;
	*n = *overflow ? 0 : entries;
	if (*n && !net_iov_read(out, nout, *off, t, 6u * *n))
		return false;
	*off += 6 * entries;
	return true;
}

uint8_t net_ctrl_exec(struct vio_switch *sw, struct net_port *p, uint64_t negotiated,
		      const struct iovec *out, unsigned nout, uint32_t out_bytes,
		      uint8_t new_mac[6], bool *mac_changed)
{
	uint8_t head[2 + 6], *data = head + 2;
	uint8_t cls, cmd;
	uint32_t len;

	*mac_changed = false;
	if (out_bytes < 2 || !net_iov_read(out, nout, 0, head, out_bytes < 8 ? out_bytes : 8))
		return VIRTIO_NET_ERR;
	cls = head[0];
	cmd = head[1];
	len = out_bytes - 2;
	switch (cls) {
	case VIRTIO_NET_CTRL_RX:
		if (!has(negotiated, VIRTIO_NET_F_CTRL_RX) || len != 1 || data[0] > 1)
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
			p->filter.promisc = data[0];
		else if (cmd == VIRTIO_NET_CTRL_RX_ALLMULTI)
			p->filter.allmulti = data[0];
		else
			return VIRTIO_NET_ERR; /* the EXTRA modes are not offered */
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (!has(negotiated, VIRTIO_NET_F_CTRL_RX) && cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET)
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
			struct net_filter nf = p->filter;
			uint32_t off = 2;

			/* Parse both tables into a copy: a bad command changes nothing. */
			if (!mac_table(out, nout, out_bytes, &off, nf.uni, &nf.nuni,
				       &nf.uni_overflow) ||
			    !mac_table(out, nout, out_bytes, &off, nf.multi, &nf.nmulti,
				       &nf.multi_overflow) ||
			    off != out_bytes)
				return VIRTIO_NET_ERR;
			p->filter = nf;
			return VIRTIO_NET_OK;
		}
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
			if (!has(negotiated, VIRTIO_NET_F_CTRL_MAC_ADDR) || len != 6 || (data[0] & 1))
				return VIRTIO_NET_ERR;
			memcpy(p->filter.mac, data, 6);
			p->filter.has_mac = true;
			memcpy(new_mac, data, 6);
			*mac_changed = true;
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ: {
		uint16_t pairs;

		if (!has(negotiated, VIRTIO_NET_F_MQ) || cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
		    len != 2)
			return VIRTIO_NET_ERR;
		memcpy(&pairs, data, 2);
		if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > p->max_pairs)
			return VIRTIO_NET_ERR;
		p->curr_pairs = pairs;
		net_port_rx_changed(sw, p);
		return VIRTIO_NET_OK;
	}
	default:
		/* VLAN, ANNOUNCE, GUEST_OFFLOADS and the rest are never offered. */
		return VIRTIO_NET_ERR;
	}
}
