/* SPDX-License-Identifier: MIT */
/*
 * The built-in switch: ports (virtio-net devices and taps), MAC learning
 * with aging, flooding of broadcast, multicast and unknown unicast,
 * per-port receive filters and counters. A burst popped from one port is
 * grouped by destination and handed to each destination port's receive
 * queues in one go, each frame copied once from the sender's buffer into
 * the receiver's. All forwarding runs on the switch thread (include/vio/net.h);
 * the control thread only adds and removes ports and reads counters.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mac_table.h"
#include "net_internal.h"

/* What one destination port gets from one burst. */
struct dest {
	unsigned n;
	uint8_t idx[NET_TX_BURST];
};

struct vio_switch {
	pthread_mutex_t lock;  /* control thread: slot allocation */
	atomic_uint nports;    /* slots handed out; published with release after the slot is set */
	/* Odd while the switch thread forwards a burst: a freed slot is refilled only outside one. */
	atomic_uint fwd_seq;
	struct net_port ports[VIO_SWITCH_MAX_PORTS];
	/* switch thread: the learning table and one burst's destinations (kept all-zero between bursts) */
	struct net_mac_table macs;
	struct dest dests[VIO_SWITCH_MAX_PORTS];
	uint16_t touched[VIO_SWITCH_MAX_PORTS];
};

const char *vio_net_drop_str(enum vio_net_drop why)
{
	switch (why) {
	case VIO_NET_DROP_TX_BAD_HEADER: return "tx_bad_header";
	case VIO_NET_DROP_TX_RUNT: return "tx_runt";
	case VIO_NET_DROP_TX_OVERSIZE: return "tx_oversize";
	case VIO_NET_DROP_TX_BAD_OFFLOAD: return "tx_bad_offload";
	case VIO_NET_DROP_TX_NO_DEST: return "tx_no_dest";
	case VIO_NET_DROP_RX_NO_BUFFER: return "rx_no_buffer";
	case VIO_NET_DROP_RX_TOO_BIG: return "rx_too_big";
	case VIO_NET_DROP_RX_BAD_CHAIN: return "rx_bad_chain";
	case VIO_NET_DROP_RX_FILTERED: return "rx_filtered";
	case VIO_NET_DROP_RX_NO_QUEUE: return "rx_no_queue";
	case VIO_NET_DROP_LINK_DOWN: return "link_down";
	case VIO_NET_DROP_CTRL_BAD: return "ctrl_bad";
	case VIO_NET_DROP_COUNT: break;
	}
	return "unknown";
}

int vio_switch_new(const struct vio_switch_opts *o, struct vio_switch **out)
{
	struct vio_switch *sw = calloc(1, sizeof(*sw));

	if (!sw)
		return -ENOMEM;
	pthread_mutex_init(&sw->lock, NULL);
	atomic_init(&sw->nports, 0);
	net_mac_init(&sw->macs, o && o->aging_s ? o->aging_s : 300);
	*out = sw;
	return 0;
}

void vio_switch_free(struct vio_switch *sw)
{
	if (!sw)
		return;
	pthread_mutex_destroy(&sw->lock);
	free(sw);
}

unsigned vio_switch_nports(const struct vio_switch *sw)
{
	return atomic_load_explicit(&sw->nports, memory_order_acquire);
}

int vio_switch_port_stats(const struct vio_switch *sw, unsigned port,
			  struct vio_net_port_stats *st, char *name, size_t name_len)
{
	const struct net_port *p;

	if (port >= vio_switch_nports(sw))
		return -ENOENT;
	p = &sw->ports[port];
	if (!atomic_load_explicit(&p->in_use, memory_order_acquire))
		return -ENOENT;
	st->rx_packets = atomic_load_explicit(&p->ctr.rx_packets, memory_order_relaxed);
	st->rx_bytes = atomic_load_explicit(&p->ctr.rx_bytes, memory_order_relaxed);
	st->tx_packets = atomic_load_explicit(&p->ctr.tx_packets, memory_order_relaxed);
	st->tx_bytes = atomic_load_explicit(&p->ctr.tx_bytes, memory_order_relaxed);
	for (unsigned i = 0; i < VIO_NET_DROP_COUNT; i++)
		st->drops[i] = atomic_load_explicit(&p->ctr.drops[i], memory_order_relaxed);
	st->tx_throttled = atomic_load_explicit(&p->ctr.tx_throttled, memory_order_relaxed);
	if (name && name_len) {
		strncpy(name, p->name, name_len - 1);
		name[name_len - 1] = 0;
	}
	return 0;
}

/*
 * A freed slot may still be looked at by a burst the switch thread began
 * before the port went (it checks in_use first, then reads the slot): wait
 * for that burst to end before the slot is written again. Bursts are short.
 */
static void wait_forward_quiet(struct vio_switch *sw)
{
	unsigned seq = atomic_load(&sw->fwd_seq);

	while ((seq & 1) && atomic_load(&sw->fwd_seq) == seq)
		sched_yield();
}

struct net_port *net_switch_port_add(struct vio_switch *sw, enum net_port_kind kind,
				     const char *name, void *owner)
{
	struct net_port *p = NULL;
	unsigned n, i;
	uint32_t gen = 0;

	pthread_mutex_lock(&sw->lock);
	n = atomic_load_explicit(&sw->nports, memory_order_relaxed);
	/* A deleted port's slot is reused; its generation goes on, so what was learned on it stays stale. */
	for (i = 0; i < n; i++)
		if (!atomic_load_explicit(&sw->ports[i].in_use, memory_order_relaxed))
			break;
	if (i < n || n < VIO_SWITCH_MAX_PORTS) {
		p = &sw->ports[i];
		if (i < n) {
			wait_forward_quiet(sw);
			gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
		}
		memset(p, 0, sizeof(*p));
		p->kind = kind;
		p->owner = owner;
		p->id = i;
		strncpy(p->name, name ? name : "port", sizeof(p->name) - 1);
		atomic_init(&p->link_up, true);
		atomic_init(&p->gen, gen);
		/* Release: the slot is complete before the switch thread can see it in use. */
		atomic_store_explicit(&p->in_use, true, memory_order_release);
		if (i == n)
			atomic_store_explicit(&sw->nports, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&sw->lock);
	return p;
}

void net_switch_port_del(struct vio_switch *sw, struct net_port *p)
{
	/* Entries learned on it go stale at once: frames for them are flooded again. */
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&p->in_use, false, memory_order_release);
}

void net_port_rx_changed(struct vio_switch *sw, struct net_port *p)
{
	unsigned n = 0, lim = p->curr_pairs < p->max_pairs ? p->curr_pairs : p->max_pairs;

	for (unsigned i = 0; i < lim; i++)
		if (p->rxq[i])
			p->active[n++] = p->rxq[i];
	/* Before MQ is set up, or when those queues are stopped: any attached queue will do. */
	for (unsigned i = lim; i < p->max_pairs && n == 0; i++)
		if (p->rxq[i])
			p->active[n++] = p->rxq[i];
	p->nactive = n;
	p->rx_caps = n ? p->active[0]->caps : 0;
}

static inline uint32_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

static inline bool port_ready(const struct net_port *p)
{
	/* Acquire: pairs with the release that published the slot (a reused one too). */
	if (!atomic_load_explicit(&p->in_use, memory_order_acquire))
		return false;
	return p->kind == NET_PORT_VIRTIO ? p->nactive != 0 : p->tap_ready;
}

static inline bool link_up(const struct net_port *p)
{
	return atomic_load_explicit(&p->link_up, memory_order_relaxed);
}

struct put_ctx {
	struct net_rxq *rq;
	struct net_counters *ctr;
};

static int put_rxq(void *opaque, const struct virtio_net_hdr_v1 *hdr, const struct iovec *iov,
		   unsigned niov, uint32_t len, uint32_t patch_off, uint16_t patch)
{
	struct put_ctx *c = opaque;

	return net_rxq_put(c->rq, c->ctr, hdr, iov, niov, len, patch_off, patch);
}

static void deliver_virtio(struct net_port *q, struct net_frame *f, const struct dest *d)
{
	struct net_rxq *pick[NET_TX_BURST];
	struct put_ctx pc = { .ctr = &q->ctr };
	unsigned delivered;

	/* Choose each frame's queue first, so each queue pops its buffers in one burst. */
	for (unsigned i = 0; i < q->nactive; i++)
		q->active[i]->pending = 0;
	for (unsigned i = 0; i < d->n; i++) {
		struct net_frame *fr = &f[d->idx[i]];

		pick[i] = q->nactive == 1 ? q->active[0]
					  : q->active[net_frame_hash(fr) % q->nactive];
		pick[i]->pending++;
	}
	for (unsigned i = 0; i < d->n; i++) {
		struct net_frame *fr = &f[d->idx[i]];
		int r;

		if (!net_filter_accept(&q->filter, fr->mac)) {
			net_drop(&q->ctr, VIO_NET_DROP_RX_FILTERED);
			if (pick[i]->pending)
				pick[i]->pending--;
			continue;
		}
		pc.rq = pick[i];
		delivered = 0;
		r = net_offload_deliver(fr, pc.rq->caps, put_rxq, &pc, &delivered);
		if (r)
			net_drop_rc(&q->ctr, r);
	}
	for (unsigned i = 0; i < q->nactive; i++)
		net_rxq_flush(q->active[i]);
}

static void deliver(struct net_port *q, struct net_frame *f, const struct dest *d)
{
	if (!link_up(q)) {
		for (unsigned i = 0; i < d->n; i++)
			net_drop(&q->ctr, VIO_NET_DROP_LINK_DOWN);
		return;
	}
	if (q->kind == NET_PORT_VIRTIO)
		deliver_virtio(q, f, d);
	else
		for (unsigned i = 0; i < d->n; i++)
			net_tap_put(q->owner, &q->ctr, &f[d->idx[i]]);
}

static void learn(struct vio_switch *sw, struct net_port *p, const uint8_t *src, uint32_t now)
{
	/* A burst from one sender mostly repeats one source: skip the table for it. */
	if (p->last_src_time == now && !memcmp(p->last_src, src, 6))
		return;
	if (src[0] & 1)
		return; /* a multicast source is bogus: never learned */
	net_mac_learn(&sw->macs, src, (uint16_t)p->id,
		      atomic_load_explicit(&p->gen, memory_order_relaxed), now);
	memcpy(p->last_src, src, 6);
	p->last_src_time = now;
}

void net_switch_forward(struct vio_switch *sw, struct net_port *p, struct net_frame *f,
			unsigned n)
{
	struct dest *dests = sw->dests;
	uint16_t *touched = sw->touched;
	unsigned ntouched = 0, nports;
	uint32_t now;

	if (!n)
		return;
	if (n > NET_TX_BURST)
		n = NET_TX_BURST;
	if (!link_up(p)) {
		for (unsigned i = 0; i < n; i++)
			net_drop(&p->ctr, VIO_NET_DROP_LINK_DOWN);
		return;
	}
	atomic_fetch_add(&sw->fwd_seq, 1); /* odd: in a burst (wait_forward_quiet) */
	nports = atomic_load_explicit(&sw->nports, memory_order_acquire);
	now = now_s();
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *dst = f[i].mac;
		unsigned sent = 0;
		uint16_t port;
		uint32_t gen;

		net_count(&p->ctr.tx_packets, 1);
		net_count(&p->ctr.tx_bytes, f[i].len);
		learn(sw, p, f[i].mac + 6, now);
		if (!(dst[0] & 1) && net_mac_lookup(&sw->macs, dst, now, &port, &gen) &&
		    port < nports &&
		    gen == atomic_load_explicit(&sw->ports[port].gen, memory_order_relaxed)) {
			struct net_port *q = &sw->ports[port];

			if (q == p) {
				/* Its destination sits behind the port it came from. */
				net_drop(&p->ctr, VIO_NET_DROP_TX_NO_DEST);
				continue;
			}
			if (!port_ready(q)) {
				net_drop(&q->ctr, VIO_NET_DROP_RX_NO_QUEUE);
				continue;
			}
			if (!dests[port].n)
				touched[ntouched++] = port;
			dests[port].idx[dests[port].n++] = (uint8_t)i;
			continue;
		}
		/* Broadcast, multicast, unknown: every other ready port (its filter decides). */
		for (unsigned k = 0; k < nports; k++) {
			struct net_port *q = &sw->ports[k];

			if (q == p || !port_ready(q))
				continue;
			if (!dests[k].n)
				touched[ntouched++] = (uint16_t)k;
			dests[k].idx[dests[k].n++] = (uint8_t)i;
			sent++;
		}
		if (!sent)
			net_drop(&p->ctr, VIO_NET_DROP_TX_NO_DEST);
	}
	for (unsigned i = 0; i < ntouched; i++) {
		deliver(&sw->ports[touched[i]], f, &dests[touched[i]]);
		dests[touched[i]].n = 0;
	}
	atomic_fetch_add(&sw->fwd_seq, 1);
}
