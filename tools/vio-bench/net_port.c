/* SPDX-License-Identifier: MIT */
/*
 * Connecting one vhost-user-net port with vio's frontend: the features to
 * ask for, the memory to share (rings, buffers, slack), the net client over
 * the frontend's queues. Never touches a frame.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net_port.h"
#include "vio/net.h"
#include "vio/virtio_spec.h"

static uint64_t wanted(const struct net_port_opts *o)
{
	uint64_t f = VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_NET_F_MAC) |
		     VIO_BIT(VIRTIO_NET_F_STATUS) | VIO_BIT(VIRTIO_F_INDIRECT_DESC);

	if (!o->no_mrg)
		f |= VIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (!o->no_event_idx)
		f |= VIO_BIT(VIRTIO_F_EVENT_IDX);
	if (o->packed)
		f |= VIO_BIT(VIRTIO_F_RING_PACKED);
	if (o->in_order)
		f |= VIO_BIT(VIRTIO_F_IN_ORDER);
	if (o->iommu)
		f |= VIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (o->ctrl) {
		f |= VIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIO_BIT(VIRTIO_NET_F_CTRL_RX) |
		     VIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
		if (o->pairs > 1)
			f |= VIO_BIT(VIRTIO_NET_F_MQ);
	}
	if (o->offloads)
		f |= VIO_BIT(VIRTIO_NET_F_CSUM) | VIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		     VIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		     VIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
	return f;
}

/* Shared memory: per pair a ring of receive buffers and one of transmit slots, rings, slack. */
static uint64_t mem_needed(const struct net_port_opts *o, uint16_t qsize)
{
	uint64_t rx = o->rx_buf_size ? o->rx_buf_size : 65600, tx = o->tx_buf_size ? o->tx_buf_size : 65600;
	uint64_t per_pair = (uint64_t)qsize * (((rx + 63) & ~63ull) + ((tx + 63) & ~63ull)) +
			    2 * (vio_virtq_driver_area_size(wanted(o), qsize, 64) + 4096);
	uint64_t total = o->pairs * per_pair + (4u << 20);

	return (total + 0x1fffff) & ~0x1fffffull;
}

int net_port_open(const struct net_port_opts *o, struct net_port *p, char *err, size_t errlen)
{
	uint16_t qsize = o->qsize ? o->qsize : 256;
	struct vio_vhu_frontend_opts fo = {
		.socket_path = o->socket, .features = wanted(o), .queue_size = qsize,
		.indirect_max = 64,
	};
	struct vio_drv_ctx q[2 * VIO_NET_MAX_PAIRS + 1];
	struct vio_net_client_opts co;
	size_t area_len;
	void *area;
	int r;

	memset(p, 0, sizeof(*p));
	if (!o->pairs || o->pairs > VIO_NET_MAX_PAIRS) {
		snprintf(err, errlen, "queue pairs must be 1 to %d", VIO_NET_MAX_PAIRS);
		return -EINVAL;
	}
	fo.nqueues = 2 * o->pairs + (o->ctrl ? 1 : 0);
	fo.mem_size = mem_needed(o, qsize);
	r = vio_vhu_frontend_connect(&fo, &p->f);
	if (r) {
		snprintf(err, errlen, "cannot set up %s: %s", o->socket, strerror(-r));
		return r;
	}
	p->features = vio_vhu_frontend_features(p->f);
	if (o->packed && !(p->features & VIO_BIT(VIRTIO_F_RING_PACKED))) {
		snprintf(err, errlen, "%s does not offer packed rings", o->socket);
		r = -ENOTSUP;
		goto fail;
	}
	if (o->iommu && !(p->features & VIO_BIT(VIRTIO_F_ACCESS_PLATFORM))) {
		snprintf(err, errlen, "%s does not offer VIRTIO_F_ACCESS_PLATFORM", o->socket);
		r = -ENOTSUP;
		goto fail;
	}
	if (o->ctrl && !(p->features & VIO_BIT(VIRTIO_NET_F_CTRL_VQ))) {
		snprintf(err, errlen, "%s offers no control queue", o->socket);
		r = -ENOTSUP;
		goto fail;
	}
	p->pairs = o->pairs;
	p->ctrl = o->ctrl;
	for (unsigned i = 0; i < fo.nqueues; i++)
		q[i] = *vio_vhu_frontend_queue(p->f, i);
	co = (struct vio_net_client_opts){
		.queues = q, .pairs = o->pairs, .ctrl = o->ctrl ? &q[2 * o->pairs] : NULL,
		.features = p->features, .rx_buf_size = o->rx_buf_size, .tx_buf_size = o->tx_buf_size,
	};
	area_len = vio_net_client_area_size(&co);
	area = vio_vhu_frontend_alloc(p->f, area_len, 4096);
	if (!area) {
		snprintf(err, errlen, "%zu bytes of buffers do not fit the shared memory", area_len);
		r = -ENOMEM;
		goto fail;
	}
	r = vio_net_client_new(&co, area, area_len, &p->cl);
	if (r) {
		snprintf(err, errlen, "net client: %s", strerror(-r));
		goto fail;
	}
	return 0;
fail:
	net_port_close(p);
	return r;
}

void net_port_close(struct net_port *p)
{
	if (p->f)
		vio_vhu_frontend_disconnect(p->f);
	vio_net_client_free(p->cl);
	vio_vhu_frontend_close(p->f);
	memset(p, 0, sizeof(*p));
}
