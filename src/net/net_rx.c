/* SPDX-License-Identifier: MIT */
/*
 * A port's receive queues: popping the driver's buffers (kept in a small
 * stash until a frame uses them, oldest first, so IN_ORDER holds), copying
 * one frame and its virtio header into one buffer or, with MRG_RXBUF, over
 * as many as it needs with num_buffers set, and publishing used buffers
 * once per burst. Frames are copied once, from the sender's buffer into the
 * receiver's. A buffer that is misshaped (nothing writable, no room for
 * the header) is returned empty and counted; it never stops the queue.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "net_internal.h"

static bool has(uint64_t f, unsigned bit)
{
	return (f >> bit) & 1;
}

void net_rxq_init(struct net_rxq *rq, const struct vio_vq_ctx *ctx, uint64_t features,
		  uint16_t mtu)
{
	memset(rq, 0, sizeof(*rq));
	rq->ctx = *ctx;
	rq->caps = (has(features, VIRTIO_NET_F_GUEST_CSUM) ? NET_CAP_CSUM : 0) |
		   (has(features, VIRTIO_NET_F_GUEST_TSO4) ? NET_CAP_TSO4 : 0) |
		   (has(features, VIRTIO_NET_F_GUEST_TSO6) ? NET_CAP_TSO6 : 0) |
		   (has(features, VIRTIO_NET_F_MRG_RXBUF) ? NET_CAP_MRG : 0);
	/* With MTU negotiated, non-GSO frames beyond MTU + Ethernet (+ VLAN tag) are not passed. */
	rq->max_frame = has(features, VIRTIO_NET_F_MTU) ? mtu + NET_ETH_HLEN + 4u : 0;
	rq->logging = vio_virtq_logging(ctx->vq); /* fixed until the queue stops */
	for (unsigned i = 0; i < NET_RX_STASH; i++) {
		rq->stash[i].iov = rq->iov[i];
		rq->stash[i].iov_cap = NET_RX_IOV_CAP;
	}
}

static void push_used(struct net_rxq *rq)
{
	if (!rq->nused)
		return;
	vio_virtq_push_burst(rq->ctx.vq, rq->used, rq->nused);
	rq->nused = 0;
}

/* Live migration: the first len bytes of the buffer's writable part were written. */
static __attribute__((noinline)) void log_written(struct net_rxq *rq, const struct vio_chain *c,
						 uint32_t len)
{
	for (unsigned i = 0; i < c->nin && len; i++) {
		struct iovec v = c->iov[c->nout + i];

		if (v.iov_len > len)
			v.iov_len = len;
		vio_virtq_log_write(rq->ctx.vq, &v, 1);
		len -= (uint32_t)v.iov_len;
	}
}

/* Called once the frame is wholly written into c: the moment to log it. */
static void add_used(struct net_rxq *rq, const struct vio_chain *c, uint32_t len)
{
	if (__builtin_expect(rq->logging, 0) && len)
		log_written(rq, c, len);
	if (rq->nused == NET_RX_USED)
		push_used(rq);
	rq->used[rq->nused++] = (struct vio_used_elem){ .id = c->id, .ndesc = c->ndesc, .len = len };
	rq->dirty = true;
}

void net_rxq_flush(struct net_rxq *rq)
{
	if (!rq->dirty)
		return;
	rq->dirty = false;
	push_used(rq);
	if (vio_virtq_device_should_notify(rq->ctx.vq) && rq->ctx.notify)
		rq->ctx.notify(rq->ctx.notify_opaque);
}

/* Pop what fits after the stash's tail (two calls when the ring of slots wraps). */
static int refill(struct net_rxq *rq, unsigned want)
{
	unsigned got_total = 0;

	if (want > NET_RX_STASH - rq->count)
		want = NET_RX_STASH - rq->count;
	while (want) {
		unsigned tail = (rq->head + rq->count) % NET_RX_STASH;
		unsigned n = want < NET_RX_STASH - tail ? want : NET_RX_STASH - tail;
		int got = vio_virtq_pop_burst(rq->ctx.vq, rq->ctx.mem, &rq->stash[tail], n);

		if (got < 0)
			return got_total ? (int)got_total : got;
		/* The buffers are about to be written: fetch their first lines for writing now. */
		for (int i = 0; i < got; i++) {
			const struct vio_chain *c = &rq->stash[tail + i];

			if (c->nin)
				__builtin_prefetch(c->iov[c->nout].iov_base, 1);
		}
		rq->count += (unsigned)got;
		got_total += (unsigned)got;
		if ((unsigned)got < n)
			break;
		want -= n;
	}
	return (int)got_total;
}

static inline struct vio_chain *stash_at(struct net_rxq *rq, unsigned k)
{
	return &rq->stash[(rq->head + k) % NET_RX_STASH];
}

/* Writable bytes of a chain (a chain cut short by its iovec room offers what was recorded). */
static uint32_t room(const struct vio_chain *c)
{
	uint32_t r = 0;

	if (!c->status)
		return c->in_bytes;
	for (unsigned i = 0; i < c->nin; i++)
		r += (uint32_t)c->iov[c->nout + i].iov_len;
	return r;
}

static void log_once(struct net_rxq *rq, const char *what)
{
	if (rq->logged)
		return;
	rq->logged = true;
	vio_warn(vio_virtq_name(rq->ctx.vq), "%s (not logged again for this queue)", what);
}

/* Drop bad chains at the stash head (returned empty, in order). */
static void skip_bad_head(struct net_rxq *rq, struct net_counters *ctr)
{
	while (rq->count) {
		struct vio_chain *c = stash_at(rq, 0);

		if (room(c) >= NET_HDR_LEN)
			return;
		log_once(rq, "receive buffer with no room for the virtio header");
		add_used(rq, c, 0);
		net_drop(ctr, VIO_NET_DROP_RX_BAD_CHAIN);
		rq->head = (rq->head + 1) % NET_RX_STASH;
		rq->count--;
	}
}

/* Scatter len bytes of src into the writable part of chain c starting at byte off. */
struct cursor {
	struct net_rxq *rq;
	unsigned k;    /* stash index of the chain being written */
	unsigned iov;  /* writable iovec inside it */
	size_t off;    /* offset inside that iovec */
};

static void cursor_write(struct cursor *w, const uint8_t *src, size_t len)
{
	while (len) {
		struct vio_chain *c = stash_at(w->rq, w->k);
		struct iovec *d;
		size_t n;

		if (w->iov >= c->nin) {
			w->k++;
			w->iov = 0;
			w->off = 0;
			continue;
		}
		d = &c->iov[c->nout + w->iov];
		n = d->iov_len - w->off;
		if (n > len)
			n = len;
		memcpy((uint8_t *)d->iov_base + w->off, src, n);
		src += n;
		len -= n;
		w->off += n;
		if (w->off == d->iov_len) {
			w->iov++;
			w->off = 0;
		}
	}
}

int net_rxq_put(struct net_rxq *rq, struct net_counters *ctr, const struct virtio_net_hdr_v1 *hdr,
		const struct iovec *iov, unsigned niov, uint32_t len, uint32_t patch_off,
		uint16_t patch)
{
	const uint32_t need = NET_HDR_LEN + len;
	const bool mrg = rq->caps & NET_CAP_MRG;
	struct virtio_net_hdr_v1 h;
	struct cursor w = { .rq = rq };
	uint32_t total = 0, last = 0;
	unsigned k = 0, want, budget = 2 * NET_RX_STASH;

	if (rq->pending)
		rq->pending--;
	if (rq->max_frame && hdr->gso_type == VIRTIO_NET_HDR_GSO_NONE && len > rq->max_frame)
		return NET_FAIL(VIO_NET_DROP_RX_TOO_BIG);
	/* Find the buffers: one that holds it all, or (mergeable) as many as it takes. */
	for (;;) {
		struct vio_chain *c;
		uint32_t r;

		if (k == rq->count) {
			int got;

			/* A driver feeding nothing but misshaped buffers cannot keep us here. */
			if (budget-- == 0)
				return NET_FAIL(VIO_NET_DROP_RX_NO_BUFFER);
			want = mrg ? (need - total + 1499) / 1500 : 1;

			if (rq->count == NET_RX_STASH)
				return NET_FAIL(VIO_NET_DROP_RX_TOO_BIG);
			got = refill(rq, want + rq->pending);
			if (got <= 0)
				return NET_FAIL(VIO_NET_DROP_RX_NO_BUFFER);
			if (k == 0)
				skip_bad_head(rq, ctr);
			continue;
		}
		c = stash_at(rq, k);
		r = room(c);
		if (r < NET_HDR_LEN && (k == 0 || !r)) {
			/* Misshaped: the head one is returned; one inside a frame ends the frame. */
			if (k == 0) {
				skip_bad_head(rq, ctr);
				continue;
			}
			log_once(rq, "receive buffer with nothing writable");
			return NET_FAIL(VIO_NET_DROP_RX_BAD_CHAIN);
		}
		if (!mrg) {
			if (r < need)
				return NET_FAIL(VIO_NET_DROP_RX_TOO_BIG);
			k = 1;
			last = need;
			break;
		}
		k++;
		if (total + r >= need) {
			last = need - total;
			break;
		}
		total += r;
		if (k == NET_MAX_BUFFERS)
			return NET_FAIL(VIO_NET_DROP_RX_TOO_BIG);
	}

	h = *hdr;
	h.num_buffers = (uint16_t)k;
	/* One buffer of one iovec with the whole frame: the common case, two copies of memory. */
	if (k == 1 && stash_at(rq, 0)->nin == 1 && niov == 1) {
		struct vio_chain *c = stash_at(rq, 0);
		uint8_t *d = c->iov[c->nout].iov_base;

		memcpy(d, &h, NET_HDR_LEN);
		memcpy(d + NET_HDR_LEN, iov[0].iov_base, len);
		if (patch_off < len) {
			d[NET_HDR_LEN + patch_off] = (uint8_t)(patch >> 8);
			d[NET_HDR_LEN + patch_off + 1] = (uint8_t)patch;
		}
	} else {
		uint8_t pb[2] = { (uint8_t)(patch >> 8), (uint8_t)patch };
		uint32_t done = 0;

		cursor_write(&w, (const uint8_t *)&h, NET_HDR_LEN);
		for (unsigned i = 0; i < niov && done < len; i++) {
			uint32_t n = iov[i].iov_len < len - done ? (uint32_t)iov[i].iov_len : len - done;
			const uint8_t *src = iov[i].iov_base;
			uint32_t ps, pe;

			/* The completed checksum replaces two bytes on the way through. */
			if (patch_off < len && patch_off < done + n && patch_off + 2 > done) {
				ps = (patch_off > done ? patch_off : done) - done;
				pe = (patch_off + 2 < done + n ? patch_off + 2 : done + n) - done;
				cursor_write(&w, src, ps);
				cursor_write(&w, &pb[done + ps - patch_off], pe - ps);
				cursor_write(&w, src + pe, n - pe);
			} else {
				cursor_write(&w, src, n);
			}
			done += n;
		}
	}
	/* Every buffer but the last is used to its full length (spec 5.1.6.4.2). */
	for (unsigned i = 0; i < k; i++) {
		struct vio_chain *c = stash_at(rq, 0);

		add_used(rq, c, i + 1 < k ? room(c) : last);
		rq->head = (rq->head + 1) % NET_RX_STASH;
		rq->count--;
	}
	net_count(&ctr->rx_packets, 1);
	net_count(&ctr->rx_bytes, len);
	return 0;
}

void net_rxq_drain(struct net_rxq *rq)
{
	while (rq->count) {
		add_used(rq, stash_at(rq, 0), 0);
		rq->head = (rq->head + 1) % NET_RX_STASH;
		rq->count--;
	}
	net_rxq_flush(rq);
}
