/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net driver side: transmit slots and receive buffers in shared
 * memory, frames copied into transmit slots and handed out in place from
 * receive buffers (mergeable ones reassembled by num_buffers), control
 * commands with their ack. Knows no transport; checks every used length
 * and num_buffers the device returns before it believes them; never
 * allocates after creation.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vio/net_client.h"

#define HDR 12u
#define SCRATCH_BYTES 65536u
#define CTRL_DATA_MAX 4096u
#define CTRL_BYTES 8192u
#define REAP_BURST 64u

struct tx_slot {
	uint8_t *mem;
	struct tx_slot *next;
};

struct rx_buf {
	uint8_t *mem;
};

struct client_pair {
	struct vio_drv_ctx rx, tx;
	/* receive */
	unsigned nrx;
	struct rx_buf *bufs;
	struct rx_buf **repost; /* handed out by the last recv: posted again by the next */
	unsigned nrepost;
	void **bl_cookie;       /* used buffers reaped, not yet assembled (ring of nrx) */
	uint32_t *bl_len;
	unsigned bl_head, bl_count;
	/* transmit */
	unsigned ntx, inflight;
	struct tx_slot *slots, *free;
};

struct vio_net_client {
	uint64_t features;
	bool mrg;
	uint32_t rx_size, tx_size;
	unsigned pairs;
	struct vio_drv_ctx ctrl;
	bool has_ctrl, ctrl_busy;
	uint8_t *ctrl_mem;
	uint8_t *scratch;
	char raw_cookie; /* its address marks raw chains */
	struct vio_net_client_stats st;
	struct client_pair p[];
};

static bool has(uint64_t f, unsigned bit)
{
	return (f >> bit) & 1;
}

static uint32_t rx_size_of(const struct vio_net_client_opts *o)
{
	if (o->rx_buf_size)
		return o->rx_buf_size;
	if (has(o->features, VIRTIO_NET_F_MRG_RXBUF))
		return 2048;
	if (has(o->features, VIRTIO_NET_F_GUEST_TSO4) || has(o->features, VIRTIO_NET_F_GUEST_TSO6))
		return HDR + VIO_NET_MAX_FRAME;
	return HDR + 9018;
}

static uint32_t tx_size_of(const struct vio_net_client_opts *o)
{
	if (o->tx_buf_size)
		return o->tx_buf_size;
	if (has(o->features, VIRTIO_NET_F_HOST_TSO4) || has(o->features, VIRTIO_NET_F_HOST_TSO6))
		return HDR + VIO_NET_MAX_FRAME;
	return HDR + 9018;
}

static size_t align64(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

size_t vio_net_client_area_size(const struct vio_net_client_opts *o)
{
	size_t n = SCRATCH_BYTES + CTRL_BYTES;
	size_t rx = align64(rx_size_of(o)), tx = align64(tx_size_of(o));

	for (unsigned i = 0; i < o->pairs; i++)
		n += vio_virtq_num_free(o->queues[2 * i].vq) * rx +
		     vio_virtq_num_free(o->queues[2 * i + 1].vq) * tx;
	return n;
}

void vio_net_client_free(struct vio_net_client *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->pairs; i++) {
		free(c->p[i].bufs);
		free(c->p[i].repost);
		free(c->p[i].bl_cookie);
		free(c->p[i].bl_len);
		free(c->p[i].slots);
	}
	free(c);
}

static int post_rx(struct vio_net_client *c, struct client_pair *p, struct rx_buf *b)
{
	struct iovec iov = { b->mem, c->rx_size };

	return vio_virtq_add(p->rx.vq, p->rx.mem, &iov, 0, 1, b);
}

static void kick(const struct vio_drv_ctx *ctx)
{
	if (vio_virtq_kick_prepare(ctx->vq) && ctx->kick)
		ctx->kick(ctx->kick_opaque);
}

static int pair_init(struct vio_net_client *c, struct client_pair *p, uint8_t **cur)
{
	p->nrx = vio_virtq_num_free(p->rx.vq);
	p->ntx = vio_virtq_num_free(p->tx.vq);
	p->bufs = calloc(p->nrx ? p->nrx : 1, sizeof(*p->bufs));
	p->repost = calloc(p->nrx ? p->nrx : 1, sizeof(*p->repost));
	p->bl_cookie = calloc(p->nrx ? p->nrx : 1, sizeof(*p->bl_cookie));
	p->bl_len = calloc(p->nrx ? p->nrx : 1, sizeof(*p->bl_len));
	p->slots = calloc(p->ntx ? p->ntx : 1, sizeof(*p->slots));
	if (!p->bufs || !p->repost || !p->bl_cookie || !p->bl_len || !p->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < p->nrx; i++) {
		p->bufs[i].mem = *cur;
		*cur += align64(c->rx_size);
	}
	for (unsigned i = p->ntx; i-- > 0;) {
		p->slots[i].mem = *cur + (size_t)i * align64(c->tx_size);
		p->slots[i].next = p->free;
		p->free = &p->slots[i];
	}
	*cur += (size_t)p->ntx * align64(c->tx_size);
	vio_virtq_driver_disable_cb(p->rx.vq);
	vio_virtq_driver_disable_cb(p->tx.vq);
	for (unsigned i = 0; i < p->nrx; i++) {
		int r = post_rx(c, p, &p->bufs[i]);

		if (r)
			return r;
	}
	kick(&p->rx);
	return 0;
}

int vio_net_client_new(const struct vio_net_client_opts *o, void *area, size_t area_len,
		       struct vio_net_client **out)
{
	struct vio_net_client *c;
	uint8_t *cur = area;
	uint64_t gpa;
	size_t need;
	int r;

	if (!o || !o->queues || !o->pairs || o->pairs > VIO_NET_MAX_PAIRS || !area ||
	    ((uintptr_t)area & 63))
		return -EINVAL;
	if (rx_size_of(o) < HDR + 1 || tx_size_of(o) < HDR + 14)
		return -EINVAL;
	need = vio_net_client_area_size(o);
	if (area_len < need)
		return -EINVAL;
	for (unsigned i = 0; i < 2 * o->pairs; i++) {
		if (!o->queues[i].vq || !o->queues[i].mem)
			return -EINVAL;
		if (vio_mem_host_to_gpa(o->queues[i].mem, area, need, &gpa))
			return -EFAULT;
	}
	c = calloc(1, sizeof(*c) + o->pairs * sizeof(c->p[0]));
	if (!c)
		return -ENOMEM;
	c->features = o->features;
	c->mrg = has(o->features, VIRTIO_NET_F_MRG_RXBUF);
	c->rx_size = rx_size_of(o);
	c->tx_size = tx_size_of(o);
	c->pairs = o->pairs;
	c->scratch = cur;
	cur += SCRATCH_BYTES;
	c->ctrl_mem = cur;
	cur += CTRL_BYTES;
	if (o->ctrl && o->ctrl->vq) {
		c->ctrl = *o->ctrl;
		c->has_ctrl = true;
		vio_virtq_driver_disable_cb(c->ctrl.vq);
	}
	for (unsigned i = 0; i < o->pairs; i++) {
		c->p[i].rx = o->queues[2 * i];
		c->p[i].tx = o->queues[2 * i + 1];
		r = pair_init(c, &c->p[i], &cur);
		if (r) {
			vio_net_client_free(c);
			return r;
		}
	}
	*out = c;
	return 0;
}

/* ---- transmit ---- */

static int tx_reap(struct vio_net_client *c, struct client_pair *p)
{
	void *cookies[REAP_BURST];
	uint32_t lens[REAP_BURST];
	int got;

	do {
		got = vio_virtq_get_used_burst(p->tx.vq, cookies, lens, REAP_BURST);
		if (got < 0)
			return got;
		for (int i = 0; i < got; i++) {
			struct tx_slot *s = cookies[i];

			if (cookies[i] == &c->raw_cookie) {
				c->st.raw_done++;
				c->st.raw_last_len = lens[i];
				continue;
			}
			s->next = p->free;
			p->free = s;
			p->inflight--;
		}
	} while (got == (int)REAP_BURST);
	return (int)p->inflight;
}

int vio_net_client_tx_reap(struct vio_net_client *c, unsigned pair)
{
	if (pair >= c->pairs)
		return -EINVAL;
	return tx_reap(c, &c->p[pair]);
}

int vio_net_client_send(struct vio_net_client *c, unsigned pair, const struct vio_net_tx *tx,
			unsigned n)
{
	struct client_pair *p;
	unsigned sent = 0;
	int r;

	if (pair >= c->pairs)
		return -EINVAL;
	p = &c->p[pair];
	if (!p->free || p->inflight > p->ntx / 2) {
		r = tx_reap(c, p);
		if (r < 0)
			return r;
	}
	for (; sent < n; sent++) {
		const struct vio_net_tx *t = &tx[sent];
		struct tx_slot *s = p->free;
		struct virtio_net_hdr_v1 *h;
		struct iovec iov;

		if (t->len > c->tx_size - HDR || !t->data)
			return sent ? (int)sent : -EINVAL;
		if (!s) {
			c->st.tx_full += n - sent;
			break;
		}
		h = (struct virtio_net_hdr_v1 *)s->mem;
		if (t->hdr) {
			*h = *t->hdr;
			h->num_buffers = 0;
		} else {
			memset(h, 0, HDR);
		}
		memcpy(s->mem + HDR, t->data, t->len);
		iov = (struct iovec){ s->mem, HDR + t->len };
		r = vio_virtq_add(p->tx.vq, p->tx.mem, &iov, 1, 0, s);
		if (r) {
			if (r == -ENOSPC) {
				c->st.tx_full += n - sent;
				break;
			}
			return sent ? (int)sent : r;
		}
		p->free = s->next;
		p->inflight++;
		c->st.tx_packets++;
		c->st.tx_bytes += t->len;
	}
	if (sent)
		kick(&p->tx);
	return (int)sent;
}

/* ---- receive ---- */

/* Reap used receive buffers into the backlog ring. */
static int rx_reap(struct client_pair *p)
{
	while (p->bl_count < p->nrx) {
		unsigned tail = (p->bl_head + p->bl_count) % p->nrx;
		unsigned room = p->nrx - p->bl_count;
		unsigned n = room < p->nrx - tail ? room : p->nrx - tail;
		int got = vio_virtq_get_used_burst(p->rx.vq, &p->bl_cookie[tail], &p->bl_len[tail], n);

		if (got < 0)
			return got;
		p->bl_count += (unsigned)got;
		if ((unsigned)got < n)
			break;
	}
	return 0;
}

static void bl_pop(struct client_pair *p, unsigned k)
{
	p->bl_head = (p->bl_head + k) % p->nrx;
	p->bl_count -= k;
}

static void *bl_cookie(const struct client_pair *p, unsigned i)
{
	return p->bl_cookie[(p->bl_head + i) % p->nrx];
}

static uint32_t bl_len(const struct client_pair *p, unsigned i)
{
	return p->bl_len[(p->bl_head + i) % p->nrx];
}

/* A buffer the device got wrong: count it, post it again with the next batch. */
static void rx_bad(struct vio_net_client *c, struct client_pair *p, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		void *ck = bl_cookie(p, i);

		if (ck != &c->raw_cookie)
			p->repost[p->nrepost++] = ck;
	}
	bl_pop(p, k);
	c->st.rx_errors++;
}

int vio_net_client_recv(struct vio_net_client *c, unsigned pair, struct vio_net_rx *rx,
			unsigned n)
{
	struct client_pair *p;
	unsigned got = 0;
	int r;

	if (pair >= c->pairs)
		return -EINVAL;
	p = &c->p[pair];
	/* Reap first: used raw chains (post_raw) free the descriptors the reposts need. */
	r = rx_reap(p);
	if (r)
		return r;
	if (p->nrepost) {
		for (unsigned i = 0; i < p->nrepost; i++)
			if (post_rx(c, p, p->repost[i]))
				c->st.rx_errors++; /* cannot happen: the ring has room for every buffer */
		p->nrepost = 0;
		kick(&p->rx);
	}
	while (got < n && p->bl_count) {
		struct vio_net_rx *f = &rx[got];
		struct rx_buf *b = bl_cookie(p, 0);
		uint32_t len = bl_len(p, 0), total;
		unsigned k;

		if (bl_cookie(p, 0) == &c->raw_cookie) {
			c->st.raw_done++;
			c->st.raw_last_len = len;
			bl_pop(p, 1);
			continue;
		}
		if (len < HDR || len > c->rx_size) {
			rx_bad(c, p, 1);
			continue;
		}
		memcpy(&f->hdr, b->mem, HDR);
		k = c->mrg ? f->hdr.num_buffers : 1;
		if (k == 0 || k > VIO_NET_CLIENT_MAX_SEGS) {
			rx_bad(c, p, 1);
			continue;
		}
		if (k > p->bl_count)
			break; /* the rest of this frame is not used yet */
		f->seg[0] = (struct iovec){ b->mem + HDR, len - HDR };
		total = len - HDR;
		for (unsigned i = 1; i < k; i++) {
			struct rx_buf *bi = bl_cookie(p, i);
			uint32_t li = bl_len(p, i);

			if (bi == (void *)&c->raw_cookie || li > c->rx_size) {
				k = i;
				total = UINT32_MAX;
				break;
			}
			f->seg[i] = (struct iovec){ bi->mem, li };
			total += li;
		}
		if (total == UINT32_MAX) {
			rx_bad(c, p, k);
			continue;
		}
		f->nseg = k;
		f->len = total;
		for (unsigned i = 0; i < k; i++)
			p->repost[p->nrepost++] = bl_cookie(p, i);
		bl_pop(p, k);
		c->st.rx_packets++;
		c->st.rx_bytes += total;
		got++;
	}
	return (int)got;
}

size_t vio_net_rx_copy(const struct vio_net_rx *rx, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < rx->nseg && done < len; i++) {
		size_t l = rx->seg[i].iov_len < len - done ? rx->seg[i].iov_len : len - done;

		memcpy((uint8_t *)dst + done, rx->seg[i].iov_base, l);
		done += l;
	}
	return done;
}

static void wait_fd(const struct vio_drv_ctx *ctx, struct vio_virtq *vq, int ms)
{
	struct pollfd pfd = { .fd = ctx->call_fd, .events = POLLIN };
	uint64_t v;

	if (ctx->call_fd < 0) {
		struct timespec ts = { 0, 100000 };

		nanosleep(&ts, NULL);
		return;
	}
	/* Interrupts on; if buffers slipped in meanwhile, do not sleep. */
	if (vio_virtq_driver_enable_cb(vq) && poll(&pfd, 1, ms) > 0 &&
	    read(ctx->call_fd, &v, sizeof(v)) < 0)
		v = 0;
	vio_virtq_driver_disable_cb(vq);
}

int vio_net_client_wait(struct vio_net_client *c, unsigned pair, int timeout_ms)
{
	struct client_pair *p;

	if (pair >= c->pairs)
		return -EINVAL;
	p = &c->p[pair];
	if (p->bl_count)
		return 1;
	wait_fd(&p->rx, p->rx.vq, timeout_ms);
	if (rx_reap(p))
		return -EIO;
	return p->bl_count ? 1 : 0;
}

/* ---- control queue ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The command in flight came back: 1 (its used length in *len); raw chains are counted. */
static int ctrl_reap(struct vio_net_client *c, uint32_t *len)
{
	void *cookie;
	uint32_t l;
	int got;

	for (;;) {
		got = vio_virtq_get_used_burst(c->ctrl.vq, &cookie, &l, 1);
		if (got <= 0)
			return got;
		if (cookie != &c->raw_cookie)
			break;
		c->st.raw_done++;
		c->st.raw_last_len = l;
	}
	c->ctrl_busy = false;
	*len = l;
	return 1;
}

int vio_net_client_ctrl(struct vio_net_client *c, uint8_t cls, uint8_t cmd, const void *data,
			size_t len, int (*progress)(void *opaque), void *opaque,
			unsigned timeout_ms)
{
	uint8_t *ack = c->ctrl_mem + CTRL_BYTES - 64;
	uint64_t deadline = now_ms() + timeout_ms;
	struct iovec iov[2];
	uint32_t used = 0;
	int r;

	if (!c->has_ctrl)
		return -ENOTSUP;
	if (len > CTRL_DATA_MAX || (len && !data))
		return -EINVAL;
	if (c->ctrl_busy && ctrl_reap(c, &used) <= 0)
		return -EBUSY; /* an earlier command that timed out is still with the device */
	c->ctrl_mem[0] = cls;
	c->ctrl_mem[1] = cmd;
	if (len)
		memcpy(c->ctrl_mem + 2, data, len);
	*ack = 0xff;
	iov[0] = (struct iovec){ c->ctrl_mem, 2 + len };
	iov[1] = (struct iovec){ ack, 1 };
	r = vio_virtq_add(c->ctrl.vq, c->ctrl.mem, iov, 1, 1, c->ctrl_mem);
	if (r)
		return r;
	c->ctrl_busy = true;
	kick(&c->ctrl);
	for (;;) {
		r = ctrl_reap(c, &used);
		if (r < 0)
			return -EIO;
		if (r)
			break;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		if (progress)
			progress(opaque);
		else
			wait_fd(&c->ctrl, c->ctrl.vq, 10);
	}
	if (used < 1 || *ack > VIRTIO_NET_ERR)
		return -EIO;
	return *ack;
}

/* ---- raw chains, stats ---- */

int vio_net_client_post_raw(struct vio_net_client *c, unsigned q, const struct iovec *iov,
			    unsigned nout, unsigned nin)
{
	const struct vio_drv_ctx *ctx;
	int r;

	if (q == 2 * c->pairs && c->has_ctrl)
		ctx = &c->ctrl;
	else if (q < 2 * c->pairs)
		ctx = (q & 1) ? &c->p[q / 2].tx : &c->p[q / 2].rx;
	else
		return -EINVAL;
	r = vio_virtq_add(ctx->vq, ctx->mem, iov, nout, nin, &c->raw_cookie);
	if (!r)
		kick(ctx);
	return r;
}

void *vio_net_client_scratch(struct vio_net_client *c, size_t *len)
{
	*len = SCRATCH_BYTES;
	return c->scratch;
}

void vio_net_client_stats(const struct vio_net_client *c, struct vio_net_client_stats *st)
{
	*st = c->st;
}
