/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the virtio-net device's parsers, as a driver can reach
 * them: the 12-byte header of every transmitted frame (flags, GSO type and
 * size, checksum start and offset, header length) with the frame behind
 * it, the control queue's commands (any class, command, data and ack
 * shape), and receive buffers of any shape, mergeable or not. Two ports on
 * one switch, no transport: sender A (one pair and a control queue) and
 * receiver B (one pair), their queues driven through real driver-side
 * queues (tests/unit/vq_harness.c) and polled as the switch thread would.
 *
 * Input: byte 0 picks the layout and the features each side negotiates
 * (offloads on A, guest offloads and mergeable buffers on B, indirect,
 * event index); then operations until the input ends (at most FZ_OPS):
 *   0 transmit: a header, a frame length and destination, cut into pieces
 *   1 receive buffer for B: writable length and pieces, or misshaped
 *     (readable only, too short for the header)
 *   2 control command: class, command, data, ack length, pieces
 *   3 poll every queue and reap
 * A final poll and reap ends every input.
 *
 * Checked after every poll: no legal chain breaks a queue; a transmitted
 * chain comes back with used length 0 and its bytes untouched; a control
 * command with an ack byte gets VIRTIO_NET_OK or VIRTIO_NET_ERR and used
 * length 1; a receive buffer's used length fits its writable part, its
 * bytes past that length and any readable part keep the driver's pattern,
 * and a used receive
 * buffer holds a header whose num_buffers is 1 without mergeable buffers;
 * and every frame A transmitted is counted once, as sent or as dropped
 * for what it was (a sent frame that found no port is also tx_no_dest).
 */
#include <errno.h>

#include "fuzz.h"
#include "../unit/vq_harness.h"
#include "vio/net.h"

#define QSIZE 16
#define TX_SLOT (12u << 10)
#define RX_SLOT (4u << 10)
#define CTRL_SLOT 512u
#define GAP 1
#define POISON 0x5a
#define FZ_OPS 96
#define MAX_PIECES 8

struct chain {
	bool busy;
	uint8_t *buf;
	size_t extent; /* bytes of the slot the chain (pieces and gaps) covers */
	struct iovec iov[MAX_PIECES];
	unsigned nout, nin;
	uint32_t in_bytes;
	uint8_t pre[TX_SLOT]; /* the slot as posted */
};

struct port {
	struct vio_net *net;
	struct vio_vdev vdev;
	unsigned nq;
	uint64_t features;
	struct vqh_q q[3];
};

struct fzn {
	struct vqh_mem *m;
	struct vio_switch *sw;
	struct port a, b;
	struct chain tx[QSIZE], rx[QSIZE], ctrl[QSIZE];
	uint64_t tx_returned;
};

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0xa }, MAC_B[6] = { 0x02, 0, 0, 0, 0, 0xb };

#define F(b) VIO_BIT(VIRTIO_NET_F_##b)

static void no_notify(void *opaque)
{
	(void)opaque;
}

static void port_open(struct fzn *z, struct port *p, const uint8_t *mac, uint64_t extra,
		      unsigned nq, bool packed)
{
	struct vio_net_opts no = { .sw = z->sw, .name = "fz", .queue_pairs = 1, .mac = mac,
				   .mtu = 9000 };
	const struct vqh_layout *l = packed ? &vqh_packed : &vqh_split;
	int rc = vio_net_new(&no, &p->net);

	FZ_CHECK(rc == 0, "vio_net_new: %d", rc);
	p->vdev = vio_net_vdev(p->net);
	p->nq = nq;
	p->features = vqh_features(l, F(MAC) | F(STATUS) | extra);
	p->features &= p->vdev.ops->get_features(p->vdev.dev) | VIO_BIT(VIRTIO_F_VERSION_1) |
		       VIO_BIT(VIRTIO_F_RING_PACKED);
	for (unsigned q = 0; q < nq; q++) {
		struct vio_vq_ctx ctx;

		rc = vqh_q_init(&p->q[q], z->m, p->features, QSIZE, MAX_PIECES);
		FZ_CHECK(rc == 0, "vqh_q_init: %d", rc);
		ctx = (struct vio_vq_ctx){ &p->q[q].dev, &z->m->map, no_notify, NULL };
		rc = p->vdev.ops->queue_start(p->vdev.dev, q, &ctx, p->features);
		FZ_CHECK(rc == 0, "queue_start %u: %d", q, rc);
		p->vdev.ops->queue_attach(p->vdev.dev, q);
	}
}

static void port_close(struct port *p)
{
	for (unsigned q = 0; q < p->nq; q++) {
		p->vdev.ops->queue_detach(p->vdev.dev, q);
		p->vdev.ops->queue_stop(p->vdev.dev, q);
	}
	vio_net_free(p->net);
	for (unsigned q = 0; q < p->nq; q++)
		vqh_q_fini(&p->q[q]);
}

static void slots(struct fzn *z, struct chain *c, size_t bytes)
{
	for (unsigned i = 0; i < QSIZE; i++) {
		c[i].buf = vqh_mem_alloc(z->m, bytes, 64);
		FZ_CHECK(c[i].buf, "no memory for a slot");
	}
}

static struct chain *free_chain(struct chain *c)
{
	for (unsigned i = 0; i < QSIZE; i++)
		if (!c[i].busy)
			return &c[i];
	return NULL;
}

/* Lay len bytes from src (or the poison) at buf in at most n pieces, GAP apart. */
static size_t lay(struct fz *in, uint8_t *buf, const uint8_t *src, uint32_t len, unsigned n,
		  struct iovec *iov, unsigned *count)
{
	size_t off = 0, done = 0;

	if (!len)
		return 0;
	if (n > len)
		n = len;
	for (unsigned i = 0; i < n; i++) {
		uint32_t left = len - (uint32_t)done;
		uint32_t l = i + 1 == n ? left : 1 + fz_u8(in) % (left - (n - 1 - i));

		iov[*count] = (struct iovec){ buf + off, l };
		if (src)
			memcpy(buf + off, src + done, l);
		else
			memset(buf + off, POISON, l);
		(*count)++;
		off += l + GAP;
		done += l;
	}
	return off;
}

/* Post c (iov, nout, nin laid out) on q; false if the ring is full. */
static bool post(struct fzn *z, struct vqh_q *q, struct chain *c, size_t extent)
{
	int rc;

	c->extent = extent;
	memcpy(c->pre, c->buf, extent);
	rc = vio_virtq_add(&q->drv, &z->m->map, c->iov, c->nout, c->nin, c);
	if (rc == -ENOSPC)
		return false;
	FZ_CHECK(rc == 0, "vio_virtq_add: %d", rc);
	c->busy = true;
	vio_virtq_kick_prepare(&q->drv);
	return true;
}

static void transmit(struct fzn *z, struct fz *in)
{
	static uint8_t bytes[TX_SLOT];
	struct chain *c = free_chain(z->tx);
	uint8_t sel = fz_u8(in), pieces = fz_u8(in);
	uint32_t len = 12 + (sel & 0x80 ? fz_u16(in) % (TX_SLOT / 2) : fz_u8(in));

	if (!c)
		return;
	fz_bytes(in, bytes, 12); /* the header, as the input has it */
	switch (sel & 3) {
	case 0: memcpy(bytes + 12, MAC_B, 6); break;
	case 1: memset(bytes + 12, 0xff, 6); break;
	case 2: memcpy(bytes + 12, MAC_A, 6); break;
	default: fz_bytes(in, bytes + 12, 6);
	}
	memcpy(bytes + 18, MAC_A, 6);
	/* An IPv4/TCP or IPv6 head now and then, so checksum and GSO paths run deep. */
	bytes[24] = sel & 4 ? 0x86 : 0x08;
	bytes[25] = sel & 4 ? 0xdd : 0x00;
	for (uint32_t i = 26; i < len; i++)
		bytes[i] = (uint8_t)(i * 13 + sel);
	if (sel & 8)
		fz_bytes(in, bytes + 26, 48); /* IP and TCP headers from the input */
	if (sel & 0x40)
		len = fz_u8(in) % 14; /* shorter than a header, or a runt */
	c->nout = c->nin = 0;
	size_t ext = lay(in, c->buf, bytes, len, pieces % MAX_PIECES + 1, c->iov, &c->nout);
	if (c->nout)
		post(z, &z->a.q[1], c, ext);
}

static void receive_buffer(struct fzn *z, struct fz *in)
{
	struct chain *c = free_chain(z->rx);
	uint8_t shape = fz_u8(in), pieces = fz_u8(in);
	uint32_t len = 1 + fz_u16(in) % (RX_SLOT / 2);
	size_t off = 0;

	if (!c)
		return;
	c->nout = c->nin = 0;
	if (shape & 1) /* a readable part first: misshaped */
		off = lay(in, c->buf, NULL, 1 + shape % 64, 1, c->iov, &c->nout);
	if (shape & 2)
		len = 1 + shape % 12; /* no room for the header */
	off += lay(in, c->buf + off, NULL, len, pieces % 4 + 1, c->iov + c->nout, &c->nin);
	c->in_bytes = len;
	post(z, &z->b.q[0], c, off);
}

static void control(struct fzn *z, struct fz *in)
{
	static uint8_t bytes[CTRL_SLOT];
	struct chain *c = free_chain(z->ctrl);
	uint8_t cls = fz_u8(in), cmd = fz_u8(in), dlen = fz_u8(in) % 120, shape = fz_u8(in);
	uint32_t out = 2 + dlen;
	size_t off;

	if (!c || z->a.nq < 3)
		return;
	bytes[0] = cls % 8;
	bytes[1] = cmd % 8;
	fz_bytes(in, bytes + 2, dlen);
	if (shape & 0x80)
		out = shape % 3; /* no class or command */
	c->nout = c->nin = 0;
	off = lay(in, c->buf, bytes, out, shape % 3 + 1, c->iov, &c->nout);
	c->in_bytes = shape & 0x40 ? 0 : 1 + (shape & 0x20 ? shape % 3 : 0);
	off += lay(in, c->buf + off, NULL, c->in_bytes, 1, c->iov + c->nout, &c->nin);
	if (c->nout + c->nin)
		post(z, &z->a.q[2], c, off);
}

/* ---- checks ---- */

static void check_tx(struct chain *c, uint32_t len)
{
	FZ_CHECK(len == 0, "a transmitted chain came back with used length %u", len);
	FZ_CHECK(!memcmp(c->pre, c->buf, c->extent), "the device wrote into a transmitted frame");
}

static void check_ctrl(struct chain *c, uint32_t len)
{
	const uint8_t *ack = c->nin ? c->iov[c->nout].iov_base : NULL;

	if (!c->nin) {
		FZ_CHECK(len == 0, "a command without an ack byte: used length %u", len);
		return;
	}
	FZ_CHECK(len <= 1, "control used length %u", len);
	if (len == 1)
		FZ_CHECK(*ack == VIRTIO_NET_OK || *ack == VIRTIO_NET_ERR, "ack %u", *ack);
	FZ_CHECK(!memcmp(c->pre, c->buf, c->nout ? (size_t)((uint8_t *)c->iov[c->nout].iov_base - c->buf) : 0),
		 "the device wrote into a command's readable part");
}

static void check_rx(const struct port *b, struct chain *c, uint32_t len)
{
	static uint8_t w[RX_SLOT];
	uint8_t *p = w;
	uint16_t nb;

	FZ_CHECK(len <= c->in_bytes, "receive used length %u over its %u writable bytes", len,
		 c->in_bytes);
	for (unsigned k = c->nout; k < c->nout + c->nin; k++) {
		memcpy(p, c->iov[k].iov_base, c->iov[k].iov_len);
		p += c->iov[k].iov_len;
	}
	for (uint32_t i = len; i < c->in_bytes; i++)
		FZ_CHECK(w[i] == POISON, "receive byte %u written past used length %u", i, len);
	/* A readable part (the spec forbids one here) may be ignored, never written. */
	for (unsigned k = 0; k < c->nout; k++)
		FZ_CHECK(!memcmp(c->iov[k].iov_base, c->pre + ((uint8_t *)c->iov[k].iov_base - c->buf),
				 c->iov[k].iov_len),
			 "the device wrote into a receive chain's readable part");
	if (len && !(b->features & F(MRG_RXBUF))) {
		FZ_CHECK(len >= 12 + 14, "a received frame of %u bytes", len);
		memcpy(&nb, w + 10, 2);
		FZ_CHECK(nb == 1 || nb == 0, "num_buffers %u without mergeable buffers", nb);
	}
}

static void reap(struct fzn *z, struct vqh_q *q, void (*chk)(struct chain *, uint32_t))
{
	void *cookies[QSIZE];
	uint32_t lens[QSIZE];
	int n = vio_virtq_get_used_burst(&q->drv, cookies, lens, QSIZE);

	FZ_CHECK(n >= 0, "get_used_burst: %d", n);
	for (int i = 0; i < n; i++) {
		struct chain *c = cookies[i];

		FZ_CHECK(c->busy, "a used chain that was not in flight");
		if (chk)
			chk(c, lens[i]);
		else
			check_rx(&z->b, c, lens[i]);
		if (chk == check_tx)
			z->tx_returned++;
		c->busy = false;
	}
}

static void check_counts(struct fzn *z)
{
	struct vio_net_port_stats st;
	uint64_t accounted;

	FZ_CHECK(vio_switch_port_stats(z->sw, vio_net_port(z->a.net), &st, NULL, 0) == 0, "stats");
	/* A frame that parsed is counted as sent; one that then found no port is also tx_no_dest. */
	accounted = st.tx_packets + st.drops[VIO_NET_DROP_TX_BAD_HEADER] +
		    st.drops[VIO_NET_DROP_TX_RUNT] + st.drops[VIO_NET_DROP_TX_OVERSIZE] +
		    st.drops[VIO_NET_DROP_TX_BAD_OFFLOAD];
	FZ_CHECK(st.drops[VIO_NET_DROP_TX_NO_DEST] <= st.tx_packets, "more tx_no_dest than sent");
	FZ_CHECK(accounted == z->tx_returned, "A returned %llu frames but accounts for %llu",
		 (unsigned long long)z->tx_returned, (unsigned long long)accounted);
}

static void poll_all(struct fzn *z)
{
	struct port *ports[2] = { &z->a, &z->b };

	for (int round = 0; round < 8; round++) {
		int work = 0;

		for (unsigned i = 0; i < 2; i++)
			for (unsigned q = 0; q < ports[i]->nq; q++) {
				int rc = ports[i]->vdev.ops->queue_poll(ports[i]->vdev.dev, q);

				FZ_CHECK(rc >= 0, "queue_poll port %u queue %u: %d", i, q, rc);
				FZ_CHECK(!vio_virtq_is_broken(&ports[i]->q[q].dev),
					 "a legal chain broke port %u queue %u", i, q);
				work += rc;
			}
		if (!work)
			break;
	}
	reap(z, &z->a.q[1], check_tx);
	if (z->a.nq == 3)
		reap(z, &z->a.q[2], check_ctrl);
	reap(z, &z->b.q[0], NULL);
	check_counts(z);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_log_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fzn z;
	static struct vqh_mem mem;
	struct fz in = { data, size };
	uint8_t cfg = fz_u8(&in);
	bool packed = cfg & 1;
	uint64_t common = (cfg & 0x20 ? VIO_BIT(VIRTIO_F_INDIRECT_DESC) : 0) |
			  (cfg & 0x40 ? VIO_BIT(VIRTIO_F_EVENT_IDX) : 0);
	uint64_t fa = common | (cfg & 2 ? F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) : 0) |
		      (cfg & 0x10 ? F(CTRL_VQ) | F(CTRL_RX) | F(CTRL_MAC_ADDR) | F(MQ) : 0);
	uint64_t fb = common | (cfg & 4 ? F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) : 0) |
		      (cfg & 8 ? F(MRG_RXBUF) : 0);
	struct vio_switch_opts so = { 0 };
	int rc;

	/* One region for every input (fresh pages per input would cost most of the time). */
	if (!mem.host) {
		rc = vqh_mem_init(&mem, 2u << 20);
		FZ_CHECK(rc == 0, "vqh_mem_init: %d", rc);
	}
	memset(mem.host, 0, mem.used);
	mem.used = 0;
	memset(&z, 0, sizeof(z));
	z.m = &mem;
	FZ_CHECK(vio_switch_new(&so, &z.sw) == 0, "vio_switch_new");
	port_open(&z, &z.a, MAC_A, fa, cfg & 0x10 ? 3 : 2, packed);
	port_open(&z, &z.b, MAC_B, fb, 2, packed);
	slots(&z, z.tx, TX_SLOT);
	slots(&z, z.rx, RX_SLOT);
	slots(&z, z.ctrl, CTRL_SLOT);

	for (unsigned op = 0; op < FZ_OPS && !fz_empty(&in); op++) {
		switch (fz_u8(&in) % 4) {
		case 0: transmit(&z, &in); break;
		case 1: receive_buffer(&z, &in); break;
		case 2: control(&z, &in); break;
		default: poll_all(&z);
		}
	}
	poll_all(&z);

	port_close(&z.a);
	port_close(&z.b);
	vio_switch_free(z.sw);
	return 0;
}
