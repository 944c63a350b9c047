/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net device (virtio 1.2, 5.1) as a switch port: feature offer,
 * config space (MAC, status, queue pairs, MTU), and its queues: TX queues
 * popped in bursts into the switch, RX queues the switch fills, the control
 * queue. Written against the core's device-side queue API only: it knows no
 * transport, never follows a descriptor itself, and allocates nothing on
 * the data path. Queue state belongs to the switch thread from attach to
 * detach; start and stop run on the control thread around them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/token_bucket.h"
#include "net_internal.h"

#define CTRL_BURST 8u
#define CTRL_IOV_CAP 16u

struct net_txq {
	bool started, attached, logged;
	bool throttled; /* the last poll left frames in the ring for the rate limits */
	struct vio_vq_ctx ctx;
	unsigned caps; /* what the sender negotiated: CSUM, HOST_TSO4/6 */
	struct vio_chain chains[NET_TX_BURST];
	struct iovec iov[NET_TX_BURST][NET_TX_IOV_CAP];
	struct vio_used_elem used[NET_TX_BURST];
	struct net_frame frames[NET_TX_BURST];
};

struct net_ctrlq {
	bool started, attached;
	bool fresh; /* started on a new ring (position 0): the driver starts over */
	struct vio_vq_ctx ctx;
	uint64_t features;
	struct vio_chain chains[CTRL_BURST];
	struct iovec iov[CTRL_BURST][CTRL_IOV_CAP];
	struct vio_used_elem used[CTRL_BURST];
};

struct net_pair {
	bool rx_started, rx_attached;
	bool rx_no_ctrl; /* its driver negotiated no control queue */
	struct net_rxq rx;
	struct net_txq tx;
};

struct vio_net {
	struct vio_switch *sw;
	struct net_port *port;
	unsigned pairs;
	uint64_t offered;
	uint16_t mtu;
	bool has_mac;
	uint8_t mac[6];
	pthread_mutex_t cfg_lock; /* the switch thread's MAC_ADDR_SET against config reads */
	struct virtio_net_config cfg;
	struct net_ctrlq ctrl;
	struct net_pair *q;
	/* Rate limits of what its TX queues send into the switch, shared by them. */
	struct vio_bucket pps, bps; /* frames, bits per second */
	_Atomic bool limited;
	uint64_t tx_avg_bits; /* switch thread: recent bits per frame, to size a burst by bits */
};

static bool has(uint64_t f, unsigned bit)
{
	return (f >> bit) & 1;
}

/* Queue q: receive of pair q / 2 (even), transmit (odd), or the control queue (2 * pairs). */
enum qkind { Q_RX, Q_TX, Q_CTRL, Q_BAD };

static enum qkind kind_of(const struct vio_net *net, unsigned q)
{
	if (q < 2 * net->pairs)
		return (q & 1) ? Q_TX : Q_RX;
	return q == 2 * net->pairs ? Q_CTRL : Q_BAD;
}

/* ---- transmit ---- */

static void tx_log_once(struct vio_net *net, struct net_txq *tq, const char *what)
{
	if (tq->logged)
		return;
	tq->logged = true;
	vio_warn(vio_virtq_name(tq->ctx.vq), "%s (not logged again for this queue)", what);
}

/* Turn popped chain c into frame f: 0, or why it is dropped. */
static int tx_frame(struct vio_net *net, struct net_txq *tq, struct vio_chain *c,
		    struct net_frame *f)
{
	struct virtio_net_hdr_v1 hdr;
	struct iovec *iov = c->iov;
	unsigned n = c->nout;
	int r;

	if (c->status) {
		tx_log_once(net, tq, "frame in more segments than the device takes");
		return NET_FAIL(VIO_NET_DROP_TX_OVERSIZE);
	}
	if (c->out_bytes < NET_HDR_LEN) {
		tx_log_once(net, tq, "chain shorter than the virtio-net header");
		return NET_FAIL(VIO_NET_DROP_TX_BAD_HEADER);
	}
	/* The header is copied out once; the frame stays where the driver put it. */
	if (__builtin_expect(iov[0].iov_len >= NET_HDR_LEN, 1)) {
		memcpy(&hdr, iov[0].iov_base, NET_HDR_LEN);
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + NET_HDR_LEN;
		iov[0].iov_len -= NET_HDR_LEN;
	} else {
		size_t skip = NET_HDR_LEN;

		net_iov_read(iov, n, 0, &hdr, NET_HDR_LEN);
		while (n && skip >= iov[0].iov_len) {
			skip -= iov[0].iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + skip;
			iov[0].iov_len -= skip;
		}
	}
	if (n && !iov[0].iov_len) {
		iov++;
		n--;
	}
	if (!n)
		return NET_FAIL(VIO_NET_DROP_TX_RUNT); /* a header and nothing after it */
	r = net_frame_parse(f, &hdr, iov, n, c->out_bytes - NET_HDR_LEN, tq->caps);
	if (r == NET_FAIL(VIO_NET_DROP_TX_BAD_OFFLOAD))
		tx_log_once(net, tq, "offload request it did not negotiate or cannot be done");
	return r;
}

static uint64_t net_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Frames the rate limits let this burst take: 0 to leave them in the ring
 * for now. A frame's bits are known only once it is popped: the burst is
 * sized by the bits recent frames had, so the bit bucket overdraws by about
 * one frame, not by a whole burst.
 */
static unsigned tx_allowance(struct vio_net *net)
{
	uint64_t now = net_now_ns();
	int64_t frames = vio_bucket_avail(&net->pps, now);
	int64_t bits = vio_bucket_avail(&net->bps, now);
	uint64_t n = NET_TX_BURST;

	if (frames <= 0 || bits <= 0)
		return 0;
	if ((uint64_t)frames < n)
		n = (uint64_t)frames;
	if (bits != INT64_MAX) {
		uint64_t by_bits = net->tx_avg_bits ? (uint64_t)bits / net->tx_avg_bits + 1 : 1;

		if (by_bits < n)
			n = by_bits;
	}
	return (unsigned)n;
}

/* Pay for a burst: its frames, and its bits (known only now: the bucket may go into debt). */
static void tx_charge(struct vio_net *net, struct net_txq *tq, unsigned got, unsigned nf)
{
	uint64_t bits = 0;

	for (unsigned i = 0; i < nf; i++)
		bits += (uint64_t)tq->frames[i].len * 8;
	vio_bucket_charge(&net->pps, got);
	vio_bucket_charge(&net->bps, bits);
	if (nf)
		net->tx_avg_bits = net->tx_avg_bits ? (net->tx_avg_bits * 3 + bits / nf) / 4 : bits / nf;
}

static int tx_poll(struct vio_net *net, struct net_txq *tq)
{
	struct vio_virtq *vq = tq->ctx.vq;
	bool limited = atomic_load_explicit(&net->limited, memory_order_relaxed);
	unsigned nf = 0, max = NET_TX_BURST;
	int got;

	/* An idle queue is polled in a loop: look at the ring before setting up a burst. */
	if (!vio_virtq_device_has_avail(vq)) {
		tq->throttled = false;
		return vio_virtq_is_broken(vq) ? -EIO : 0;
	}
	if (limited && !(max = tx_allowance(net))) {
		/* The frames wait in the ring (the sender's queue fills): counted once per wait. */
		if (!tq->throttled)
			net_count(&net->port->ctr.tx_throttled, 1);
		tq->throttled = true;
		return 0;
	}
	tq->throttled = false;
	got = vio_virtq_pop_burst(vq, tq->ctx.mem, tq->chains, max);
	if (got <= 0)
		return got;
	/* Each frame's first line (header, addresses) is another CPU's: ask for them all at once. */
	for (int i = 0; i < got; i++)
		if (tq->chains[i].nout)
			__builtin_prefetch(tq->chains[i].iov[0].iov_base);
	for (int i = 0; i < got; i++) {
		struct vio_chain *c = &tq->chains[i];
		int r = tx_frame(net, tq, c, &tq->frames[nf]);

		/* Nothing is written into a transmit buffer: its used length is 0. */
		tq->used[i] = (struct vio_used_elem){ .id = c->id, .ndesc = c->ndesc, .len = 0 };
		if (r)
			net_drop_rc(&net->port->ctr, r);
		else
			nf++;
	}
	if (limited)
		tx_charge(net, tq, (unsigned)got, nf);
	net_switch_forward(net->sw, net->port, tq->frames, nf);
	/* The frames are copied out: the sender may have its buffers back. */
	vio_virtq_push_burst(vq, tq->used, (unsigned)got);
	if (vio_virtq_device_should_notify(vq) && tq->ctx.notify)
		tq->ctx.notify(tq->ctx.notify_opaque);
	return got;
}

/* ---- control queue ---- */

static void set_cfg_mac(struct vio_net *net, const uint8_t mac[6])
{
	pthread_mutex_lock(&net->cfg_lock);
	memcpy(net->cfg.mac, mac, 6);
	pthread_mutex_unlock(&net->cfg_lock);
}

static int ctrl_poll(struct vio_net *net)
{
	struct net_ctrlq *cq = &net->ctrl;
	struct vio_virtq *vq = cq->ctx.vq;
	int got;

	if (!vio_virtq_device_has_avail(vq))
		return vio_virtq_is_broken(vq) ? -EIO : 0;
	got = vio_virtq_pop_burst(vq, cq->ctx.mem, cq->chains, CTRL_BURST);
	if (got <= 0)
		return got;
	for (int i = 0; i < got; i++) {
		struct vio_chain *c = &cq->chains[i];
		uint8_t ack = VIRTIO_NET_ERR, mac[6];
		bool mac_changed = false;
		uint32_t len = 0;

		if (c->nin && !c->status) {
			ack = net_ctrl_exec(net->sw, net->port, cq->features, c->iov, c->nout,
					    c->out_bytes, mac, &mac_changed);
			if (mac_changed)
				set_cfg_mac(net, mac);
			/* ack is the first device-writable byte (spec 5.1.6.5). */
			*(uint8_t *)c->iov[c->nout].iov_base = ack;
			len = 1;
		}
		if (ack != VIRTIO_NET_OK)
			net_drop(&net->port->ctr, VIO_NET_DROP_CTRL_BAD);
		cq->used[i] = (struct vio_used_elem){ .id = c->id, .ndesc = c->ndesc, .len = len };
	}
	vio_virtq_push_burst(vq, cq->used, (unsigned)got);
	if (vio_virtq_device_should_notify(vq) && cq->ctx.notify)
		cq->ctx.notify(cq->ctx.notify_opaque);
	return got;
}

/* ---- vdev ops ---- */

static uint64_t net_get_features(void *dev)
{
	return ((struct vio_net *)dev)->offered;
}

static uint32_t net_config_len(void *dev)
{
	return sizeof(struct virtio_net_config);
}

static bool cfg_range_ok(uint32_t off, uint32_t len)
{
	return off <= sizeof(struct virtio_net_config) &&
	       len <= sizeof(struct virtio_net_config) - off;
}

static int net_get_config(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct vio_net *net = dev;

	if (!cfg_range_ok(off, len))
		return -EINVAL;
	pthread_mutex_lock(&net->cfg_lock);
	memcpy(buf, (uint8_t *)&net->cfg + off, len);
	pthread_mutex_unlock(&net->cfg_lock);
	return 0;
}

/* Every field is read-only for the driver (spec 5.1.4): accepted and ignored. */
static int net_set_config(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	return cfg_range_ok(off, len) ? 0 : -EINVAL;
}

static unsigned net_max_queues(void *dev)
{
	return 2 * ((struct vio_net *)dev)->pairs + 1;
}

static unsigned tx_caps(uint64_t f)
{
	return (has(f, VIRTIO_NET_F_CSUM) ? NET_CAP_CSUM : 0) |
	       (has(f, VIRTIO_NET_F_HOST_TSO4) ? NET_CAP_TSO4 : 0) |
	       (has(f, VIRTIO_NET_F_HOST_TSO6) ? NET_CAP_TSO6 : 0);
}

static int net_queue_start(void *dev, unsigned q, const struct vio_vq_ctx *ctx, uint64_t features)
{
	struct vio_net *net = dev;
	struct net_pair *pr = q < 2 * net->pairs ? &net->q[q / 2] : NULL;
	struct vio_virtq_pos pos;

	if (!ctx || !ctx->vq || !ctx->mem)
		return -EINVAL;
	/* Legacy headers (10 bytes, guest-endian) are not spoken: VERSION_1 only. */
	if (!has(features, VIRTIO_F_VERSION_1))
		return -ENOTSUP;
	switch (kind_of(net, q)) {
	case Q_RX:
		if (pr->rx_started)
			return -EBUSY;
		net_rxq_init(&pr->rx, ctx, features, net->mtu);
		pr->rx_no_ctrl = !has(features, VIRTIO_NET_F_CTRL_VQ);
		pr->rx_started = true;
		return 0;
	case Q_TX:
		if (pr->tx.started)
			return -EBUSY;
		pr->tx.ctx = *ctx;
		pr->tx.caps = tx_caps(features);
		pr->tx.logged = false;
		for (unsigned i = 0; i < NET_TX_BURST; i++) {
			pr->tx.chains[i].iov = pr->tx.iov[i];
			pr->tx.chains[i].iov_cap = NET_TX_IOV_CAP;
		}
		pr->tx.started = true;
		return 0;
	case Q_CTRL:
		/*
		 * A front-end that keeps the control queue itself (QEMU, DPDK's
		 * virtio-user) never negotiates CTRL_VQ with us: a ring at this
		 * index is then another queue pair's, more than this port has.
		 */
		if (!has(features, VIRTIO_NET_F_CTRL_VQ))
			return -EINVAL;
		if (net->ctrl.started)
			return -EBUSY;
		net->ctrl.ctx = *ctx;
		net->ctrl.features = features;
		/* A queue paused and resumed keeps its position: only a new one resets the filter. */
		net->ctrl.fresh = vio_virtq_get_pos(ctx->vq, &pos) == 0 && pos.avail_idx == 0 &&
				  pos.used_idx == 0;
		for (unsigned i = 0; i < CTRL_BURST; i++) {
			net->ctrl.chains[i].iov = net->ctrl.iov[i];
			net->ctrl.chains[i].iov_cap = CTRL_IOV_CAP;
		}
		net->ctrl.started = true;
		return 0;
	case Q_BAD:
		break;
	}
	return -EINVAL;
}

static void net_queue_attach(void *dev, unsigned q)
{
	struct vio_net *net = dev;
	struct net_pair *pr = q < 2 * net->pairs ? &net->q[q / 2] : NULL;

	switch (kind_of(net, q)) {
	case Q_RX:
		if (!pr->rx_started || pr->rx_attached)
			return;
		if (pr->rx_no_ctrl) {
			/*
			 * No control queue, no filter: whatever an earlier driver
			 * on this port set up through its control queue is gone.
			 */
			net_ctrl_reset(net->port, net->has_mac ? net->mac : NULL);
			net->port->curr_pairs = net->port->max_pairs;
			set_cfg_mac(net, net->mac);
		}
		pr->rx_attached = true;
		net->port->rxq[q / 2] = &pr->rx;
		net_port_rx_changed(net->sw, net->port);
		return;
	case Q_TX:
		if (pr->tx.started)
			pr->tx.attached = true;
		return;
	case Q_CTRL:
		if (!net->ctrl.started || net->ctrl.attached)
			return;
		net->ctrl.attached = true;
		/* A driver that runs the control queue starts from the spec's defaults. */
		if (net->ctrl.fresh) {
			net_ctrl_reset(net->port, net->has_mac ? net->mac : NULL);
			set_cfg_mac(net, net->mac);
			net_port_rx_changed(net->sw, net->port);
		}
		return;
	case Q_BAD:
		return;
	}
}

static void net_queue_detach(void *dev, unsigned q)
{
	struct vio_net *net = dev;
	struct net_pair *pr = q < 2 * net->pairs ? &net->q[q / 2] : NULL;

	switch (kind_of(net, q)) {
	case Q_RX:
		if (!pr->rx_attached)
			return;
		net->port->rxq[q / 2] = NULL;
		net_port_rx_changed(net->sw, net->port);
		net_rxq_drain(&pr->rx);
		pr->rx_attached = false;
		return;
	case Q_TX:
		pr->tx.attached = false;
		return;
	case Q_CTRL:
		net->ctrl.attached = false;
		return;
	case Q_BAD:
		return;
	}
}

static int net_queue_poll(void *dev, unsigned q)
{
	struct vio_net *net = dev;

	switch (kind_of(net, q)) {
	case Q_RX:
		/* Receive queues are filled by other ports' transmit polls. */
		return net->q[q / 2].rx_attached ? 0 : -EINVAL;
	case Q_TX:
		if (!net->q[q / 2].tx.attached)
			return -EINVAL;
		return tx_poll(net, &net->q[q / 2].tx);
	case Q_CTRL:
		if (!net->ctrl.attached)
			return -EINVAL;
		return ctrl_poll(net);
	case Q_BAD:
		break;
	}
	return -EINVAL;
}

static int net_queue_wait_fd(void *dev, unsigned q)
{
	return -1;
}

/*
 * Queues whose poll would move nothing: a receive queue's buffers wait for
 * frames other ports send (a poller would spin on an idle port's posted
 * buffers otherwise, and its kicks change nothing either); a TX queue the
 * rate limits hold back waits for tokens (net_queue_wait_ns says how long).
 */
static bool net_queue_full(void *dev, unsigned q)
{
	struct vio_net *net = dev;

	switch (kind_of(net, q)) {
	case Q_RX:
		return true;
	case Q_TX:
		return net->q[q / 2].tx.throttled;
	default:
		return false;
	}
}

static uint64_t net_queue_wait_ns(void *dev, unsigned q)
{
	struct vio_net *net = dev;
	uint64_t now, a, b;

	if (kind_of(net, q) != Q_TX || !net->q[q / 2].tx.throttled)
		return 0;
	now = net_now_ns();
	a = vio_bucket_wait_ns(&net->pps, 1, now);
	b = vio_bucket_wait_ns(&net->bps, 1, now);
	return a > b ? a : (b ? b : 1);
}

static void net_queue_stop(void *dev, unsigned q)
{
	struct vio_net *net = dev;
	struct net_pair *pr = q < 2 * net->pairs ? &net->q[q / 2] : NULL;

	switch (kind_of(net, q)) {
	case Q_RX:
		/* Detached first by its poller; if nobody attached it, its stash is empty. */
		if (pr->rx_started && !pr->rx_attached)
			net_rxq_drain(&pr->rx);
		pr->rx_started = false;
		return;
	case Q_TX:
		pr->tx.started = false;
		return;
	case Q_CTRL:
		net->ctrl.started = false;
		return;
	case Q_BAD:
		return;
	}
}

static const struct vio_vdev_ops net_vdev_ops = {
	.get_features = net_get_features,
	.config_len = net_config_len,
	.get_config = net_get_config,
	.set_config = net_set_config,
	.max_queues = net_max_queues,
	.queue_start = net_queue_start,
	.queue_poll = net_queue_poll,
	.queue_wait_fd = net_queue_wait_fd,
	.queue_full = net_queue_full,
	.queue_wait_ns = net_queue_wait_ns,
	.queue_stop = net_queue_stop,
	.queue_attach = net_queue_attach,
	.queue_detach = net_queue_detach,
};

/* ---- public ---- */

int vio_net_new(const struct vio_net_opts *o, struct vio_net **out)
{
	unsigned pairs = o->queue_pairs ? o->queue_pairs : 1;
	uint16_t mtu = o->mtu ? o->mtu : 1500;
	struct vio_net *net;

	if (!o->sw || pairs > VIO_NET_MAX_PAIRS || mtu < 68 ||
	    (o->mac && (o->mac[0] & 1)))
		return -EINVAL;
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->q = calloc(pairs, sizeof(*net->q));
	if (!net->q) {
		free(net);
		return -ENOMEM;
	}
	net->sw = o->sw;
	net->pairs = pairs;
	net->mtu = mtu;
	pthread_mutex_init(&net->cfg_lock, NULL);
	net->offered = VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_F_RING_PACKED) |
		       VIO_BIT(VIRTIO_F_EVENT_IDX) | VIO_BIT(VIRTIO_F_INDIRECT_DESC) |
		       VIO_BIT(VIRTIO_F_IN_ORDER) | VIO_BIT(VIRTIO_NET_F_CSUM) |
		       VIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
		       VIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		       VIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		       VIO_BIT(VIRTIO_NET_F_STATUS) | VIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
		       VIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIO_BIT(VIRTIO_NET_F_MQ) |
		       VIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | VIO_BIT(VIRTIO_NET_F_MTU);
	if (o->mac) {
		net->has_mac = true;
		memcpy(net->mac, o->mac, 6);
		net->offered |= VIO_BIT(VIRTIO_NET_F_MAC);
	}
	memcpy(net->cfg.mac, net->mac, 6);
	net->cfg.status = VIRTIO_NET_S_LINK_UP;
	net->cfg.max_virtqueue_pairs = (uint16_t)pairs;
	net->cfg.mtu = mtu;
	net->port = net_switch_port_add(o->sw, NET_PORT_VIRTIO, o->name, net);
	if (!net->port) {
		pthread_mutex_destroy(&net->cfg_lock);
		free(net->q);
		free(net);
		return -ENOSPC;
	}
	net->port->max_pairs = pairs;
	net->port->curr_pairs = pairs;
	net_ctrl_reset(net->port, net->has_mac ? net->mac : NULL);
	/* Without a control queue (QEMU and DPDK keep theirs) every enabled pair is in use. */
	net->port->curr_pairs = pairs;
	*out = net;
	return 0;
}

struct vio_vdev vio_net_vdev(struct vio_net *net)
{
	return (struct vio_vdev){ .ops = &net_vdev_ops, .dev = net };
}

unsigned vio_net_port(const struct vio_net *net)
{
	return net->port->id;
}

void vio_net_set_link(struct vio_net *net, bool up)
{
	atomic_store_explicit(&net->port->link_up, up, memory_order_relaxed);
	pthread_mutex_lock(&net->cfg_lock);
	net->cfg.status = up ? VIRTIO_NET_S_LINK_UP : 0;
	pthread_mutex_unlock(&net->cfg_lock);
}

int vio_net_set_qos(struct vio_net *net, const struct vio_net_qos *qos)
{
	uint64_t now = net_now_ns();

	vio_bucket_set(&net->pps, qos->pps, qos->pps_burst, now);
	vio_bucket_set(&net->bps, qos->bps, qos->bps_burst, now);
	atomic_store(&net->limited, qos->pps || qos->bps);
	return 0;
}

void vio_net_get_qos(const struct vio_net *net, struct vio_net_qos *qos)
{
	*qos = (struct vio_net_qos){
		.pps = atomic_load(&net->pps.rate), .pps_burst = atomic_load(&net->pps.burst),
		.bps = atomic_load(&net->bps.rate), .bps_burst = atomic_load(&net->bps.burst),
	};
}

void vio_net_free(struct vio_net *net)
{
	if (!net)
		return;
	for (unsigned q = 0; q < 2 * net->pairs + 1; q++)
		net_queue_stop(net, q);
	net_switch_port_del(net->sw, net->port);
	pthread_mutex_destroy(&net->cfg_lock);
	free(net->q);
	free(net);
}
