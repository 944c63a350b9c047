/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net device, its switch and the net client against each other
 * in one process, both layouts, no transport: driver-side and device-side
 * queues over the same rings (tests/unit/vq_harness), the device polled
 * from the test thread as the switch thread would. Covers learning,
 * flooding and aging, mergeable receive with jumbo frames, frames too big
 * for a receiver, misshaped transmit and receive chains, the control queue
 * (MQ pairs, RX mode, MAC table, MAC address) with malformed commands,
 * checksum and TSO offloads carried through or done in software (checked
 * against an independent checksum), IN_ORDER, link state and counters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/mac_table.h"
#include "vio/net.h"
#include "vio/net_client.h"
#include "vq_harness.h"

#define MAXP 2
#define MAXQ (2 * MAXP + 1)
#define NPORTS 3
#define QSIZE 64
#define TMO 2000
#define ETHERTYPE_TEST 0x88b5

struct tport {
	struct vio_net *net;
	struct vio_vdev vdev;
	unsigned pairs, nq;
	bool ctrl;
	uint64_t features;
	struct vqh_q qs[MAXQ];
	struct vio_drv_ctx dctx[MAXQ];
	struct vio_net_client *cl;
	uint8_t mac[6];
	unsigned notifies[MAXQ];
};

struct rig {
	const struct vqh_layout *l;
	struct vqh_mem m;
	struct vio_switch *sw;
	struct tport p[NPORTS];
	unsigned np;
};

/* Per port: what its driver negotiates on top of the layout, EVENT_IDX and INDIRECT_DESC. */
struct port_cfg {
	uint64_t features;
	unsigned pairs;
	uint32_t rx_buf;
	uint16_t qsize;
};

#define F(b) VIO_BIT(VIRTIO_NET_F_##b)
#define MRG F(MRG_RXBUF)
#define CTRL (F(CTRL_VQ) | F(CTRL_RX) | F(MQ) | F(CTRL_MAC_ADDR))
#define OFFL (F(CSUM) | F(GUEST_CSUM) | F(HOST_TSO4) | F(HOST_TSO6) | F(GUEST_TSO4) | F(GUEST_TSO6))

static void count_notify(void *opaque)
{
	(*(unsigned *)opaque)++;
}

/* Run every device queue until nothing moves (bounded). */
static int pump(void *opaque)
{
	struct rig *r = opaque;

	for (int round = 0; round < 64; round++) {
		int work = 0;

		for (unsigned i = 0; i < r->np; i++) {
			struct tport *p = &r->p[i];

			for (unsigned q = 0; q < p->nq; q++) {
				int rc = p->vdev.ops->queue_poll(p->vdev.dev, q);

				if (rc == -EINVAL)
					continue; /* a queue the test left stopped */
				assert_true(rc >= 0);
				work += rc;
			}
		}
		if (!work)
			break;
	}
	return 0;
}

static void mac_of(uint8_t *mac, unsigned i)
{
	static const uint8_t base[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x00 };

	memcpy(mac, base, 6);
	mac[5] = (uint8_t)(i + 1);
}

static void port_open(struct rig *r, const struct port_cfg *pc)
{
	struct tport *p = &r->p[r->np];
	uint16_t qsize = pc->qsize ? pc->qsize : QSIZE;
	struct vio_net_opts no = { .sw = r->sw, .name = "t", .queue_pairs = pc->pairs ? pc->pairs : 1,
				   .mac = p->mac, .mtu = 9000 };
	struct vio_net_client_opts co;
	size_t area;
	void *a;

	memset(p, 0, sizeof(*p));
	mac_of(p->mac, r->np);
	p->pairs = no.queue_pairs;
	p->ctrl = (pc->features & F(CTRL_VQ)) != 0;
	p->nq = 2 * p->pairs + (p->ctrl ? 1 : 0);
	assert_int_equal(vio_net_new(&no, &p->net), 0);
	p->vdev = vio_net_vdev(p->net);
	p->features = vqh_features(r->l, VIO_BIT(VIRTIO_F_EVENT_IDX) |
					     VIO_BIT(VIRTIO_F_INDIRECT_DESC) | F(MAC) | F(STATUS) |
					     pc->features);
	assert_int_equal(p->features & ~p->vdev.ops->get_features(p->vdev.dev), 0);
	for (unsigned q = 0; q < p->nq; q++) {
		struct vio_vq_ctx ctx;

		assert_int_equal(vqh_q_init(&p->qs[q], &r->m, p->features, qsize, 8), 0);
		ctx = (struct vio_vq_ctx){ &p->qs[q].dev, &r->m.map, count_notify, &p->notifies[q] };
		assert_int_equal(p->vdev.ops->queue_start(p->vdev.dev, q, &ctx, p->features), 0);
		p->vdev.ops->queue_attach(p->vdev.dev, q);
		p->dctx[q] = (struct vio_drv_ctx){ &p->qs[q].drv, &r->m.map, NULL, NULL, -1 };
	}
	co = (struct vio_net_client_opts){
		.queues = p->dctx, .pairs = p->pairs, .ctrl = p->ctrl ? &p->dctx[2 * p->pairs] : NULL,
		.features = p->features, .rx_buf_size = pc->rx_buf,
	};
	area = vio_net_client_area_size(&co);
	a = vqh_mem_alloc(&r->m, area, 4096);
	assert_non_null(a);
	assert_int_equal(vio_net_client_new(&co, a, area, &p->cl), 0);
	r->np++;
}

static void rig_open(struct rig *r, const struct vqh_layout *l, unsigned aging,
		     const struct port_cfg *pcs, unsigned n)
{
	struct vio_switch_opts so = { .aging_s = aging };

	memset(r, 0, sizeof(*r));
	r->l = l;
	assert_int_equal(vqh_mem_init(&r->m, 96u << 20), 0);
	assert_int_equal(vio_switch_new(&so, &r->sw), 0);
	for (unsigned i = 0; i < n; i++)
		port_open(r, &pcs[i]);
}

static void rig_close(struct rig *r)
{
	for (unsigned i = 0; i < r->np; i++) {
		struct tport *p = &r->p[i];

		for (unsigned q = 0; q < p->nq; q++) {
			p->vdev.ops->queue_detach(p->vdev.dev, q);
			p->vdev.ops->queue_stop(p->vdev.dev, q);
		}
		vio_net_client_free(p->cl);
		vio_net_free(p->net);
		for (unsigned q = 0; q < p->nq; q++)
			vqh_q_fini(&p->qs[q]);
	}
	vio_switch_free(r->sw);
	vqh_mem_fini(&r->m);
}

static struct vio_net_port_stats stats(struct rig *r, unsigned i)
{
	struct vio_net_port_stats st;

	assert_int_equal(vio_switch_port_stats(r->sw, vio_net_port(r->p[i].net), &st, NULL, 0), 0);
	return st;
}

/* ---- frames ---- */

static uint8_t pat(uint32_t seq, uint32_t off)
{
	return (uint8_t)(seq * 131u + off * 7u + (off >> 8));
}

/* A test frame: dst, src, ethertype 0x88B5, then seq and a pattern. */
static void make_frame(uint8_t *b, uint32_t len, const uint8_t *dst, const uint8_t *src,
		       uint32_t seq)
{
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = ETHERTYPE_TEST >> 8;
	b[13] = ETHERTYPE_TEST & 0xff;
	for (uint32_t i = 14; i < len; i++)
		b[i] = pat(seq, i);
	if (len >= 18)
		memcpy(b + 14, &seq, 4);
}

static bool frame_ok(const uint8_t *b, uint32_t len, uint32_t *seq)
{
	uint32_t s;

	if (len < 18)
		return false;
	memcpy(&s, b + 14, 4);
	for (uint32_t i = 18; i < len; i++)
		if (b[i] != pat(s, i))
			return false;
	*seq = s;
	return true;
}

static uint8_t big[70000], got_buf[70000];

static void send1(struct rig *r, unsigned from, unsigned pair, const uint8_t *dst, uint32_t len,
		  uint32_t seq)
{
	struct vio_net_tx tx = { big, len, NULL };

	make_frame(big, len, dst, r->p[from].mac, seq);
	assert_int_equal(vio_net_client_send(r->p[from].cl, pair, &tx, 1), 1);
	pump(r);
}

/* Frames port i has received on pair (copied into got_buf one by one, checked by the callback). */
static unsigned drain(struct rig *r, unsigned i, unsigned pair, uint32_t *last_len,
		      unsigned *last_nseg)
{
	struct vio_net_rx rx[16];
	unsigned total = 0;
	int n;

	do {
		n = vio_net_client_recv(r->p[i].cl, pair, rx, 16);
		assert_true(n >= 0);
		for (int k = 0; k < n; k++) {
			uint32_t seq;

			assert_int_equal(vio_net_rx_copy(&rx[k], got_buf, sizeof(got_buf)), rx[k].len);
			if (last_len)
				*last_len = rx[k].len;
			if (last_nseg)
				*last_nseg = rx[k].nseg;
			if (((got_buf[12] << 8) | got_buf[13]) == ETHERTYPE_TEST)
				assert_true(frame_ok(got_buf, rx[k].len, &seq));
		}
		total += (unsigned)n;
	} while (n > 0);
	return total;
}

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- learning, flooding, counters ---- */

static void test_flood_and_learn(void **state)
{
	struct port_cfg pc[3] = { { .features = MRG }, { .features = MRG }, { .features = 0 } };
	static const uint8_t unknown[6] = { 0x02, 0xaa, 0, 0, 0, 9 };
	struct rig r;

	rig_open(&r, *state, 0, pc, 3);
	/* Broadcast from A reaches B and C. */
	send1(&r, 0, 0, bcast, 100, 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 2, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 0);
	/* B answers A: A's address was learned, C sees nothing. */
	send1(&r, 1, 0, r.p[0].mac, 200, 2);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 2, 0, NULL, NULL), 0);
	/* A to B, now known too. */
	send1(&r, 0, 0, r.p[1].mac, 300, 3);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 2, 0, NULL, NULL), 0);
	/* Unknown unicast floods. */
	send1(&r, 2, 0, unknown, 64, 4);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	/* A frame to a port's own address comes back to no one. */
	send1(&r, 0, 0, r.p[0].mac, 64, 5);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL) + drain(&r, 2, 0, NULL, NULL), 0);

	assert_int_equal(stats(&r, 0).tx_packets, 3);
	assert_int_equal(stats(&r, 0).tx_bytes, 100 + 300 + 64);
	assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_TX_NO_DEST], 1);
	assert_int_equal(stats(&r, 0).rx_packets, 2);
	assert_int_equal(stats(&r, 0).rx_bytes, 200 + 64);
	assert_int_equal(stats(&r, 1).rx_packets, 3);
	assert_int_equal(stats(&r, 2).rx_packets, 1);
	assert_int_equal(stats(&r, 2).tx_packets, 1);
	rig_close(&r);
}

static void test_aging(void **state)
{
	struct port_cfg pc[3] = { { .features = MRG }, { .features = MRG }, { .features = MRG } };
	struct rig r;

	rig_open(&r, *state, 1, pc, 3);
	send1(&r, 0, 0, bcast, 64, 1);
	drain(&r, 1, 0, NULL, NULL);
	drain(&r, 2, 0, NULL, NULL);
	send1(&r, 2, 0, r.p[0].mac, 64, 2);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 0);
	/* A stays quiet past the aging time: its address is forgotten and frames flood. */
	usleep(2500 * 1000);
	send1(&r, 2, 0, r.p[0].mac, 64, 3);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	rig_close(&r);
}

/* ---- sizes ---- */

static void test_mrg_jumbo(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG, .pairs = 1, .rx_buf = 2048 } };
	static const uint32_t sizes[] = { 60, 64, 1500, 1514, 2036, 2037, 4000, 9000, 9018 };
	uint32_t len = 0;
	unsigned nseg = 0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		send1(&r, 0, 0, bcast, sizes[i], i);
		assert_int_equal(drain(&r, 1, 0, &len, &nseg), 1);
		assert_int_equal(len, sizes[i]);
		/* The header takes 12 bytes of the first 2048-byte buffer. */
		assert_int_equal(nseg, (sizes[i] + 12 + 2047) / 2048);
	}
	assert_int_equal(stats(&r, 1).rx_packets, sizeof(sizes) / sizeof(sizes[0]));
	rig_close(&r);
}

static void test_too_big(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = 0, .pairs = 1, .rx_buf = 1526 } };
	uint32_t len = 0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	send1(&r, 0, 0, bcast, 9000, 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 0);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_RX_TOO_BIG], 1);
	/* The buffer it did not fit is used by the next frame. */
	send1(&r, 0, 0, bcast, 1514, 2);
	assert_int_equal(drain(&r, 1, 0, &len, NULL), 1);
	assert_int_equal(len, 1514);
	rig_close(&r);
}

static void test_burst_in_order(void **state)
{
	struct port_cfg pc[2] = { { .features = VIO_BIT(VIRTIO_F_IN_ORDER) }, { .features = MRG | VIO_BIT(VIRTIO_F_IN_ORDER) } };
	struct vio_net_tx tx[32];
	static uint8_t frames[32][256];
	unsigned got = 0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	for (unsigned round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 32; i++) {
			make_frame(frames[i], 64 + i * 6, bcast, r.p[0].mac, round * 32 + i);
			tx[i] = (struct vio_net_tx){ frames[i], 64 + i * 6, NULL };
		}
		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, tx, 32), 32);
		pump(&r);
		got += drain(&r, 1, 0, NULL, NULL);
	}
	assert_int_equal(got, 640);
	assert_int_equal(stats(&r, 0).tx_packets, 640);
	rig_close(&r);
}

/* ---- misshaped chains ---- */

static void test_tx_misshaped(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG } };
	struct vio_net_client_stats cs;
	struct virtio_net_hdr_v1 h = { 0 };
	struct iovec iov[3];
	uint8_t *s;
	size_t slen;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	s = vio_net_client_scratch(r.p[0].cl, &slen);
	/* A chain shorter than the header. */
	iov[0] = (struct iovec){ s, 5 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 1, 0), 0);
	/* A header and 10 bytes: no Ethernet header. */
	memset(s + 64, 0, 22);
	iov[0] = (struct iovec){ s + 64, 22 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 1, 0), 0);
	/* TSO requested without HOST_TSO4. */
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = 1000;
	memcpy(s + 128, &h, 12);
	make_frame(s + 140, 100, bcast, r.p[0].mac, 9);
	iov[0] = (struct iovec){ s + 128, 112 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 1, 0), 0);
	/* Only writable descriptors: nothing to send. */
	iov[0] = (struct iovec){ s + 512, 100 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 0, 1), 0);
	/* A good frame with its header split 5 + 7 across descriptors, the frame in a third. */
	memset(s + 1024, 0, 12);
	make_frame(s + 1100, 80, bcast, r.p[0].mac, 77);
	iov[0] = (struct iovec){ s + 1024, 5 };
	iov[1] = (struct iovec){ s + 1029, 7 };
	iov[2] = (struct iovec){ s + 1100, 80 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 3, 0), 0);
	/* A header split 5 + 7 with nothing after it. */
	iov[0] = (struct iovec){ s + 1024, 5 };
	iov[1] = (struct iovec){ s + 1029, 7 };
	assert_int_equal(vio_net_client_post_raw(r.p[0].cl, 1, iov, 2, 0), 0);
	pump(&r);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	assert_int_equal(vio_net_client_tx_reap(r.p[0].cl, 0), 0);
	vio_net_client_stats(r.p[0].cl, &cs);
	assert_int_equal(cs.raw_done, 6);
	assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_TX_BAD_HEADER], 2);
	assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_TX_RUNT], 2);
	assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_TX_BAD_OFFLOAD], 1);
	/* Nothing broke: normal traffic still flows. */
	send1(&r, 0, 0, bcast, 500, 5);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	rig_close(&r);
}

static void test_rx_misshaped(void **state)
{
	/* A 4-entry receive queue, so the raw chains reach the head quickly. */
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG, .pairs = 1, .rx_buf = 2048, .qsize = 4 } };
	struct vio_net_client_stats cs;
	struct vio_net_rx rx[4];
	struct iovec iov;
	uint8_t *s;
	size_t slen;
	unsigned got = 0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	s = vio_net_client_scratch(r.p[1].cl, &slen);
	/* Two frames use two buffers; recv hands them out, freeing two ring slots. */
	send1(&r, 0, 0, bcast, 100, 1);
	send1(&r, 0, 0, bcast, 100, 2);
	assert_int_equal(vio_net_client_recv(r.p[1].cl, 0, rx, 4), 2);
	/* Into those slots: a readable-only chain and one with 5 writable bytes. */
	iov = (struct iovec){ s, 100 };
	assert_int_equal(vio_net_client_post_raw(r.p[1].cl, 0, &iov, 1, 0), 0);
	iov = (struct iovec){ s + 256, 5 };
	assert_int_equal(vio_net_client_post_raw(r.p[1].cl, 0, &iov, 0, 1), 0);
	/* Two more frames take the two good buffers; the next meets the bad ones. */
	for (uint32_t i = 3; i <= 5; i++)
		send1(&r, 0, 0, bcast, 100, i);
	got = drain(&r, 1, 0, NULL, NULL);
	vio_net_client_stats(r.p[1].cl, &cs);
	assert_int_equal(cs.raw_done, 2);
	assert_int_equal(cs.raw_last_len, 0);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_RX_BAD_CHAIN], 2);
	/* The frame that met them found no good buffer: counted, not lost silently. */
	assert_int_equal(got + stats(&r, 1).drops[VIO_NET_DROP_RX_NO_BUFFER], 3);
	/* Buffers given back, traffic flows again. */
	send1(&r, 0, 0, bcast, 100, 6);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	rig_close(&r);
}

/* ---- control queue ---- */

static int ctrl(struct rig *r, unsigned i, uint8_t cls, uint8_t cmd, const void *d, size_t len)
{
	return vio_net_client_ctrl(r->p[i].cl, cls, cmd, d, len, pump, r, TMO);
}

/* IPv4/UDP frame to dst with these ports (for flow hashing). */
static uint32_t make_udp(uint8_t *b, const uint8_t *dst, const uint8_t *src, uint16_t sport)
{
	memset(b, 0, 64);
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = 0x08;
	b[14] = 0x45;
	b[17] = 50;
	b[23] = 17;
	b[26] = 10;
	b[29] = 1;
	b[30] = 10;
	b[33] = 2;
	b[34] = (uint8_t)(sport >> 8);
	b[35] = (uint8_t)sport;
	b[37] = 9;
	return 64;
}

static void test_ctrl_mq(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG | CTRL, .pairs = 2 } };
	uint16_t pairs;
	uint8_t cfg[12];
	unsigned q0, q1;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	pairs = 2;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	for (unsigned i = 0; i < 64; i++) {
		struct vio_net_tx tx = { big, make_udp(big, bcast, r.p[0].mac, (uint16_t)(1000 + i)),
					 NULL };

		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, &tx, 1), 1);
		pump(&r);
	}
	q0 = drain(&r, 1, 0, NULL, NULL);
	q1 = drain(&r, 1, 1, NULL, NULL);
	assert_int_equal(q0 + q1, 64);
	assert_true(q0 > 0 && q1 > 0);
	/* Back to one pair: everything on the first. */
	pairs = 1;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	for (unsigned i = 0; i < 16; i++) {
		struct vio_net_tx tx = { big, make_udp(big, bcast, r.p[0].mac, (uint16_t)(2000 + i)),
					 NULL };

		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, &tx, 1), 1);
		pump(&r);
	}
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 16);
	assert_int_equal(drain(&r, 1, 1, NULL, NULL), 0);
	/* Refused: 0 pairs, more than max, short payload, unknown class and command. */
	pairs = 0;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	pairs = 3;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&r, 1, 77, 0, NULL, 0), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MQ, 9, &pairs, 2), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_VLAN, 0, &pairs, 2), VIRTIO_NET_ERR);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_CTRL_BAD], 6);
	/* The config space tells the driver how many pairs there are. */
	assert_int_equal(r.p[1].vdev.ops->get_config(r.p[1].vdev.dev, 0, cfg, 12), 0);
	assert_int_equal(cfg[8] | cfg[9] << 8, 2);
	assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	assert_memory_equal(cfg, r.p[1].mac, 6);
	rig_close(&r);
}

static unsigned deliver_to(struct rig *r, const uint8_t *dst)
{
	send1(r, 0, 0, dst, 80, 1);
	return drain(r, 1, 0, NULL, NULL);
}

static void test_ctrl_filter(void **state)
{
	struct port_cfg pc[2] = { { .features = MRG }, { .features = MRG | CTRL } };
	static const uint8_t other[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	static const uint8_t newmac[6] = { 0x02, 0x77, 0, 0, 0, 1 };
	uint8_t on = 1, off = 0, tbl[4 + 6 + 4 + 6], cfg[6];
	uint32_t one = 1;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	/* Promiscuous by default. */
	assert_int_equal(deliver_to(&r, other), 1);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, other), 0);
	assert_int_equal(deliver_to(&r, r.p[1].mac), 1);
	assert_int_equal(deliver_to(&r, bcast), 1);
	assert_int_equal(deliver_to(&r, mcast), 0);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_RX_FILTERED], 2);
	/* MAC table: one unicast, one multicast address. */
	memcpy(tbl, &one, 4);
	memcpy(tbl + 4, other, 6);
	memcpy(tbl + 10, &one, 4);
	memcpy(tbl + 14, mcast, 6);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tbl, 20),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, other), 1);
	assert_int_equal(deliver_to(&r, mcast), 1);
	/* A table whose counts do not match its length changes nothing. */
	one = 2;
	memcpy(tbl, &one, 4);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tbl, 20),
			 VIRTIO_NET_ERR);
	assert_int_equal(deliver_to(&r, other), 1);
	/* Empty tables, then all-multicast. */
	memset(tbl, 0, 8);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tbl, 8),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, other), 0);
	assert_int_equal(deliver_to(&r, mcast), 0);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, mcast), 1);
	/* A new default address: filtered by it, shown in config space. */
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, newmac, 6),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, newmac), 1);
	assert_int_equal(r.p[1].vdev.ops->get_config(r.p[1].vdev.dev, 0, cfg, 6), 0);
	assert_memory_equal(cfg, newmac, 6);
	/* Refused: a multicast default address, a mode byte of 2, an EXTRA mode never offered. */
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mcast, 6),
			 VIRTIO_NET_ERR);
	on = 2;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
			 VIRTIO_NET_ERR);
	on = 1;
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, &on, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, other), 1);
	rig_close(&r);
}

/* Stop and start every queue of port i again (as a transport does around a memory change). */
static void pause_resume(struct rig *r, unsigned i, uint64_t features)
{
	struct tport *p = &r->p[i];

	for (unsigned q = 0; q < p->nq; q++) {
		p->vdev.ops->queue_detach(p->vdev.dev, q);
		p->vdev.ops->queue_stop(p->vdev.dev, q);
	}
	for (unsigned q = 0; q < p->nq; q++) {
		struct vio_vq_ctx ctx = { &p->qs[q].dev, &r->m.map, count_notify, &p->notifies[q] };

		if (p->vdev.ops->queue_start(p->vdev.dev, q, &ctx, features) == 0)
			p->vdev.ops->queue_attach(p->vdev.dev, q);
	}
}

static void test_ctrl_state_kept(void **state)
{
	struct port_cfg pc[2] = { { .features = MRG }, { .features = MRG | CTRL } };
	static const uint8_t other[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	uint8_t off = 0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(deliver_to(&r, other), 0);
	/* Queues paused and resumed on the same rings: the driver's filter stays. */
	pause_resume(&r, 1, r.p[1].features);
	assert_int_equal(deliver_to(&r, other), 0);
	assert_int_equal(deliver_to(&r, bcast), 1);
	/* A driver without a control queue on the same port: no filter any more. */
	pause_resume(&r, 1, r.p[1].features & ~CTRL);
	assert_int_equal(deliver_to(&r, other), 1);
	rig_close(&r);
}

static void test_ctrl_misshaped(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG | CTRL } };
	struct vio_net_client_stats cs;
	struct iovec iov[2];
	uint8_t *s, off = 0;
	size_t slen;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	s = vio_net_client_scratch(r.p[1].cl, &slen);
	/* A command with no writable byte for the ack, and one of a single byte. */
	s[0] = VIRTIO_NET_CTRL_RX;
	s[1] = VIRTIO_NET_CTRL_RX_PROMISC;
	s[2] = 0;
	iov[0] = (struct iovec){ s, 3 };
	assert_int_equal(vio_net_client_post_raw(r.p[1].cl, 2, iov, 1, 0), 0);
	iov[0] = (struct iovec){ s, 1 };
	iov[1] = (struct iovec){ s + 100, 1 };
	assert_int_equal(vio_net_client_post_raw(r.p[1].cl, 2, iov, 1, 1), 0);
	pump(&r);
	/* The unacknowledged PROMISC 0 was not applied... */
	assert_int_equal(deliver_to(&r, bcast), 1);
	/* ...and a well-formed command after them works. */
	assert_int_equal(ctrl(&r, 1, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	vio_net_client_stats(r.p[1].cl, &cs);
	assert_int_equal(cs.raw_done, 2);
	assert_int_equal(s[100], VIRTIO_NET_ERR);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_CTRL_BAD], 2);
	rig_close(&r);
}

/* ---- offloads ---- */

/* An independent checksum: byte by byte, 32-bit accumulator. */
static uint16_t ref_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* True if the L4 checksum of an IPv4/IPv6 TCP or UDP frame verifies. */
static bool l4_csum_ok(const uint8_t *f, uint32_t len)
{
	uint32_t sum = 0, l3 = 14, l4, l4len;
	bool v6 = rd16(f + 12) == 0x86dd;
	uint8_t proto;

	if (v6) {
		l4 = l3 + 40;
		proto = f[l3 + 6];
		for (unsigned i = 0; i < 32; i += 2)
			sum += rd16(f + l3 + 8 + i);
	} else {
		if (ref_csum(f + l3, (f[l3] & 15) * 4u, 0) != 0xffff)
			return false; /* the IPv4 header checksum */
		l4 = l3 + (f[l3] & 15) * 4u;
		proto = f[l3 + 9];
		for (unsigned i = 0; i < 8; i += 2)
			sum += rd16(f + l3 + 12 + i);
	}
	l4len = len - l4;
	sum += proto + (l4len & 0xffff) + (l4len >> 16);
	return ref_csum(f + l4, l4len, sum) == 0xffff;
}

/* A TCP frame over IPv4 or IPv6 with payload bytes, partial checksum as a driver leaves it. */
static uint32_t make_tcp(uint8_t *b, bool v6, const uint8_t *dst, const uint8_t *src,
			 uint32_t payload, struct virtio_net_hdr_v1 *h, uint16_t mss)
{
	uint32_t l3 = 14, l4 = v6 ? 54 : 34, len = l4 + 20 + payload, sum = 0;

	memset(b, 0, l4 + 20);
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	if (v6) {
		b[12] = 0x86;
		b[13] = 0xdd;
		b[l3] = 0x60;
		b[l3 + 4] = (uint8_t)((20 + payload) >> 8);
		b[l3 + 5] = (uint8_t)(20 + payload);
		b[l3 + 6] = 6;
		b[l3 + 7] = 64;
		b[l3 + 8] = 0xfd;
		b[l3 + 23] = 1;
		b[l3 + 24] = 0xfd;
		b[l3 + 39] = 2;
	} else {
		b[12] = 0x08;
		b[l3] = 0x45;
		b[l3 + 2] = (uint8_t)((20 + 20 + payload) >> 8);
		b[l3 + 3] = (uint8_t)(20 + 20 + payload);
		b[l3 + 4] = 0x12;
		b[l3 + 5] = 0x34;
		b[l3 + 8] = 64;
		b[l3 + 9] = 6;
		b[l3 + 12] = 10;
		b[l3 + 15] = 1;
		b[l3 + 16] = 10;
		b[l3 + 19] = 2;
		sum = ref_csum(b + l3, 20, 0);
		b[l3 + 10] = (uint8_t)(~sum >> 8);
		b[l3 + 11] = (uint8_t)~sum;
	}
	b[l4] = 0x30;
	b[l4 + 1] = 0x39; /* port 12345 */
	b[l4 + 3] = 80;
	b[l4 + 4] = 0x10; /* seq 0x10000000 */
	b[l4 + 12] = 0x50;
	b[l4 + 13] = 0x18 | 0x01; /* ACK PSH FIN */
	for (uint32_t i = 0; i < payload; i++)
		b[l4 + 20 + i] = pat(99, i);
	/* Pseudo-header sum in the checksum field (length of this frame's TCP part). */
	sum = 0;
	if (v6)
		for (unsigned i = 0; i < 32; i += 2)
			sum += rd16(b + l3 + 8 + i);
	else
		for (unsigned i = 0; i < 8; i += 2)
			sum += rd16(b + l3 + 12 + i);
	sum += 6 + 20 + payload;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	b[l4 + 16] = (uint8_t)(sum >> 8);
	b[l4 + 17] = (uint8_t)sum;
	memset(h, 0, sizeof(*h));
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)l4;
	h->csum_offset = 16;
	h->hdr_len = (uint16_t)(l4 + 20);
	if (mss) {
		h->gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
		h->gso_size = mss;
	}
	return len;
}

static void test_offload_csum(void **state)
{
	/* A: sends with CSUM; B: GUEST_CSUM; C: nothing. */
	struct port_cfg pc[3] = { { .features = OFFL }, { .features = MRG | F(GUEST_CSUM) }, { .features = MRG } };
	struct virtio_net_hdr_v1 h;
	struct vio_net_rx rx[4];
	uint32_t len;
	struct rig r;

	rig_open(&r, *state, 0, pc, 3);
	for (int v6 = 0; v6 < 2; v6++) {
		struct vio_net_tx tx;

		len = make_tcp(big, v6, bcast, r.p[0].mac, 1000, &h, 0);
		tx = (struct vio_net_tx){ big, len, &h };
		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, &tx, 1), 1);
		pump(&r);
		/* B finishes the checksum itself: the request is carried through as sent. */
		assert_int_equal(vio_net_client_recv(r.p[1].cl, 0, rx, 4), 1);
		assert_int_equal(rx[0].hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		assert_int_equal(rx[0].hdr.csum_start, h.csum_start);
		assert_int_equal(rx[0].hdr.csum_offset, 16);
		assert_int_equal(vio_net_rx_copy(&rx[0], got_buf, sizeof(got_buf)), len);
		assert_memory_equal(got_buf, big, len);
		/* C gets a finished checksum. */
		assert_int_equal(vio_net_client_recv(r.p[2].cl, 0, rx, 4), 1);
		assert_int_equal(rx[0].hdr.flags, 0);
		assert_int_equal(vio_net_rx_copy(&rx[0], got_buf, sizeof(got_buf)), len);
		assert_true(l4_csum_ok(got_buf, len));
		assert_false(l4_csum_ok(big, len));
	}
	rig_close(&r);
}

static void test_offload_tso(void **state)
{
	/* A: sends TSO; B: takes TSO; C: takes neither TSO nor partial checksums. */
	struct port_cfg pc[3] = { { .features = OFFL }, { .features = MRG | OFFL }, { .features = MRG } };
	const uint32_t payload = 20000, mss = 1448, nseg = (payload + mss - 1) / mss;
	struct virtio_net_hdr_v1 h;
	struct vio_net_rx rx[32];
	static uint8_t seen[20000];
	struct rig r;

	rig_open(&r, *state, 0, pc, 3);
	for (int v6 = 0; v6 < 2; v6++) {
		uint32_t l4 = v6 ? 54 : 34, len = make_tcp(big, v6, bcast, r.p[0].mac, payload, &h,
							      (uint16_t)mss);
		struct vio_net_tx tx = { big, len, &h };
		int n;

		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, &tx, 1), 1);
		pump(&r);
		/* B: one 20 KB frame, GSO header as sent. */
		assert_int_equal(vio_net_client_recv(r.p[1].cl, 0, rx, 32), 1);
		assert_int_equal(rx[0].hdr.gso_type, h.gso_type);
		assert_int_equal(rx[0].hdr.gso_size, mss);
		assert_int_equal(rx[0].hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		assert_int_equal(vio_net_rx_copy(&rx[0], got_buf, sizeof(got_buf)), len);
		assert_memory_equal(got_buf, big, len);
		/* C: MSS-sized segments, every checksum right, payload in order. */
		n = vio_net_client_recv(r.p[2].cl, 0, rx, 32);
		assert_int_equal(n, nseg);
		memset(seen, 0, sizeof(seen));
		for (int i = 0; i < n; i++) {
			uint32_t flen = (uint32_t)vio_net_rx_copy(&rx[i], got_buf, sizeof(got_buf));
			uint32_t plen = flen - l4 - 20, seq;
			uint8_t fl = got_buf[l4 + 13];

			assert_int_equal(rx[i].hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
			assert_int_equal(rx[i].hdr.flags, 0);
			assert_int_equal(plen, i + 1 < n ? mss : payload - (nseg - 1) * mss);
			assert_true(l4_csum_ok(got_buf, flen));
			seq = (uint32_t)got_buf[l4 + 4] << 24 | (uint32_t)got_buf[l4 + 5] << 16 |
			      (uint32_t)got_buf[l4 + 6] << 8 | got_buf[l4 + 7];
			assert_int_equal(seq - 0x10000000u, (uint32_t)i * mss);
			/* FIN and PSH only on the last segment. */
			assert_int_equal(fl & 0x09, i + 1 < n ? 0 : 0x09);
			if (!v6)
				assert_int_equal(rd16(got_buf + 14 + 4), 0x1234 + i);
			memcpy(seen + i * mss, got_buf + l4 + 20, plen);
		}
		for (uint32_t i = 0; i < payload; i++)
			assert_int_equal(seen[i], pat(99, i));
		assert_int_equal(stats(&r, 2).rx_packets, (v6 + 1) * nseg);
	}
	/* An MSS below TCP's minimum (thousands of segments from one frame) is refused. */
	{
		uint32_t len = make_tcp(big, false, bcast, r.p[0].mac, 20000, &h, 10);
		struct vio_net_tx tx = { big, len, &h };

		assert_int_equal(vio_net_client_send(r.p[0].cl, 0, &tx, 1), 1);
		pump(&r);
		assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_TX_BAD_OFFLOAD], 1);
		assert_int_equal(vio_net_client_recv(r.p[2].cl, 0, rx, 32), 0);
	}
	rig_close(&r);
}

/* ---- link ---- */

static void test_link(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG } };
	uint8_t st[2];
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	vio_net_set_link(r.p[1].net, false);
	assert_int_equal(r.p[1].vdev.ops->get_config(r.p[1].vdev.dev, 6, st, 2), 0);
	assert_int_equal(st[0], 0);
	send1(&r, 0, 0, bcast, 100, 1);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 0);
	assert_int_equal(stats(&r, 1).drops[VIO_NET_DROP_LINK_DOWN], 1);
	vio_net_set_link(r.p[1].net, true);
	assert_int_equal(r.p[1].vdev.ops->get_config(r.p[1].vdev.dev, 6, st, 2), 0);
	assert_int_equal(st[0], VIRTIO_NET_S_LINK_UP);
	send1(&r, 0, 0, bcast, 100, 2);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	rig_close(&r);
}

/* ---- rate limits ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Queue 1 is pair 0's TX queue. */
static bool tx_held(struct rig *r, unsigned i)
{
	return r->p[i].vdev.ops->queue_full(r->p[i].vdev.dev, 1);
}

static void send_burst(struct rig *r, uint32_t len, unsigned n)
{
	static uint8_t frames[32][1100];
	struct vio_net_tx tx[32];

	for (unsigned i = 0; i < n; i++) {
		make_frame(frames[i], len, bcast, r->p[0].mac, i);
		tx[i] = (struct vio_net_tx){ frames[i], len, NULL };
	}
	assert_int_equal(vio_net_client_send(r->p[0].cl, 0, tx, n), (int)n);
	pump(r);
}

static void test_rate_limits(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG } };
	struct vio_net_qos q = { .pps = 1000, .pps_burst = 10 };
	unsigned got;
	uint64_t w, t0;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	/* Frames: the burst goes at once, the rest waits in the ring, nothing is dropped. */
	assert_int_equal(vio_net_set_qos(r.p[0].net, &q), 0);
	send_burst(&r, 100, 32);
	got = drain(&r, 1, 0, NULL, NULL);
	assert_true(got >= 10 && got <= 13);
	assert_true(tx_held(&r, 0));
	assert_int_equal(stats(&r, 0).tx_throttled, 1);
	w = r.p[0].vdev.ops->queue_wait_ns(r.p[0].vdev.dev, 1);
	assert_true(w > 0 && w <= 1000000);
	/* The rest goes at the rate: 1 per ms (the bucket holds 10 at most). */
	t0 = mono_ns();
	for (unsigned k = 0; k < 500 && got < 32; k++) {
		usleep(2000);
		pump(&r);
		got += drain(&r, 1, 0, NULL, NULL);
	}
	assert_int_equal(got, 32);
	assert_true(mono_ns() - t0 >= 15000000); /* 19+ frames at 1000/s */
	assert_false(tx_held(&r, 0));
	assert_int_equal(stats(&r, 0).tx_packets, 32);
	vio_net_get_qos(r.p[0].net, &q);
	assert_true(q.pps == 1000 && q.pps_burst == 10 && q.bps == 0);
	rig_close(&r);
}

static void test_bit_rate_limit(void **state)
{
	struct port_cfg pc[2] = { { .features = 0 }, { .features = MRG } };
	/* 1000-byte frames are 8000 bits: a burst of 10 frames' bits goes (and one over, at most). */
	struct vio_net_qos q = { .bps = 800000, .bps_burst = 80000 };
	unsigned got;
	struct rig r;

	rig_open(&r, *state, 0, pc, 2);
	assert_int_equal(vio_net_set_qos(r.p[0].net, &q), 0);
	send_burst(&r, 1000, 32);
	got = drain(&r, 1, 0, NULL, NULL);
	if (got < 10 || got > 12)
		fail_msg("%u frames went at once, want 10 to 12", got);
	assert_true(tx_held(&r, 0));
	/* Lifted: everything waiting goes. */
	q = (struct vio_net_qos){ 0 };
	assert_int_equal(vio_net_set_qos(r.p[0].net, &q), 0);
	pump(&r);
	got += drain(&r, 1, 0, NULL, NULL);
	assert_int_equal(got, 32);
	assert_false(tx_held(&r, 0));
	assert_int_equal(stats(&r, 0).drops[VIO_NET_DROP_RX_NO_BUFFER], 0);
	rig_close(&r);
}

static void test_refuses_legacy(void **state)
{
	struct vio_switch *sw;
	struct vio_net *net, *bad = NULL;
	struct vio_net_opts no = { 0 };
	struct vqh_mem m;
	struct vqh_q q;
	struct vio_vq_ctx ctx;
	struct vio_vdev v;
	uint64_t f = vqh_features(*state, 0) & ~VIO_BIT(VIRTIO_F_VERSION_1);

	assert_int_equal(vio_switch_new(NULL, &sw), 0);
	no.sw = sw;
	assert_int_equal(vio_net_new(&no, &net), 0);
	v = vio_net_vdev(net);
	assert_int_equal(vqh_mem_init(&m, 1 << 20), 0);
	assert_int_equal(vqh_q_init(&q, &m, f, 16, 0), 0);
	ctx = (struct vio_vq_ctx){ &q.dev, &m.map, NULL, NULL };
	assert_int_equal(v.ops->queue_start(v.dev, 0, &ctx, f), -ENOTSUP);
	assert_int_equal(v.ops->queue_start(v.dev, 3, &ctx, f | VIO_BIT(VIRTIO_F_VERSION_1)),
			 -EINVAL);
	/* The control queue's index without CTRL_VQ: a queue pair the port does not have. */
	assert_int_equal(v.ops->queue_start(v.dev, 2, &ctx, f | VIO_BIT(VIRTIO_F_VERSION_1)),
			 -EINVAL);
	assert_int_equal(v.ops->max_queues(v.dev), 3);
	no.queue_pairs = VIO_NET_MAX_PAIRS + 1;
	assert_int_equal(vio_net_new(&no, &bad), -EINVAL);
	assert_null(bad);
	vio_net_free(net);
	vqh_q_fini(&q);
	vqh_mem_fini(&m);
	vio_switch_free(sw);
}

/* Tear port i down the way viod does (queues stopped first, then the port). */
static void port_close(struct rig *r, unsigned i)
{
	struct tport *p = &r->p[i];

	for (unsigned q = 0; q < p->nq; q++) {
		p->vdev.ops->queue_detach(p->vdev.dev, q);
		p->vdev.ops->queue_stop(p->vdev.dev, q);
	}
	vio_net_client_free(p->cl);
	vio_net_free(p->net);
	for (unsigned q = 0; q < p->nq; q++)
		vqh_q_fini(&p->qs[q]);
}

/* A deleted port's slot is reused, and what was learned on it before is not. */
static void test_port_reuse(void **state)
{
	struct port_cfg pc[3] = { { .features = MRG }, { .features = MRG }, { .features = MRG } };
	unsigned old_port, np;
	struct rig r;

	rig_open(&r, *state, 0, pc, 3);
	send1(&r, 1, 0, bcast, 64, 1); /* the switch learns B's address on B's slot */
	assert_int_equal(drain(&r, 0, 0, NULL, NULL) + drain(&r, 2, 0, NULL, NULL), 2);
	old_port = vio_net_port(r.p[1].net);
	port_close(&r, 1);
	/* A new port (with B's address again) takes B's slot. */
	np = r.np;
	r.np = 1;
	port_open(&r, &pc[1]);
	r.np = np;
	assert_int_equal(vio_net_port(r.p[1].net), old_port);
	assert_int_equal(stats(&r, 1).rx_packets, 0);
	/* The entry learned on the old port is stale: the frame floods (D sees it too). */
	send1(&r, 0, 0, r.p[1].mac, 80, 2);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 2, 0, NULL, NULL), 1);
	/* Once the new port speaks, it is learned there: unicast again. */
	send1(&r, 1, 0, r.p[0].mac, 80, 3);
	assert_int_equal(drain(&r, 0, 0, NULL, NULL), 1);
	send1(&r, 0, 0, r.p[1].mac, 80, 4);
	assert_int_equal(drain(&r, 1, 0, NULL, NULL), 1);
	assert_int_equal(drain(&r, 2, 0, NULL, NULL), 0);
	rig_close(&r);
}

/* The switch holds VIO_SWITCH_MAX_PORTS ports, refuses one more, and reuses a freed slot. */
static void test_port_capacity(void **state)
{
	static struct vio_net *nets[VIO_SWITCH_MAX_PORTS];
	struct vio_net_opts no = { .name = "p" };
	struct vio_switch *sw;
	struct vio_net *extra = NULL;

	(void)state;
	assert_int_equal(vio_switch_new(NULL, &sw), 0);
	no.sw = sw;
	for (unsigned i = 0; i < VIO_SWITCH_MAX_PORTS; i++) {
		assert_int_equal(vio_net_new(&no, &nets[i]), 0);
		assert_int_equal(vio_net_port(nets[i]), i);
	}
	assert_int_equal(vio_net_new(&no, &extra), -ENOSPC);
	vio_net_free(nets[700]);
	vio_net_free(nets[5]);
	assert_int_equal(vio_net_new(&no, &nets[5]), 0);
	assert_int_equal(vio_net_port(nets[5]), 5);
	assert_int_equal(vio_net_new(&no, &nets[700]), 0);
	assert_int_equal(vio_net_port(nets[700]), 700);
	assert_int_equal(vio_switch_nports(sw), VIO_SWITCH_MAX_PORTS);
	for (unsigned i = 0; i < VIO_SWITCH_MAX_PORTS; i++)
		vio_net_free(nets[i]);
	vio_switch_free(sw);
}

/* The learning table alone: a full table, aging, and removals in the middle of probe clusters. */
static void test_mac_table(void **state)
{
	static struct net_mac_table t;
	uint8_t m[6] = { 0x02, 0, 0, 0, 0, 0 };
	uint16_t port;
	uint32_t gen;

	net_mac_init(&t, 10);
	for (unsigned i = 0; i < NET_MAC_MAX + 100; i++) {
		m[4] = (uint8_t)(i >> 8);
		m[5] = (uint8_t)i;
		net_mac_learn(&t, m, (uint16_t)(i % 7), i, 100);
	}
	/* The table keeps NET_MAC_MAX live entries; the rest are not learned (they flood). */
	assert_int_equal(t.count, NET_MAC_MAX);
	/* Remove every third; every other one must still be found where it was learned. */
	for (unsigned i = 0; i < NET_MAC_MAX; i += 3) {
		m[4] = (uint8_t)(i >> 8);
		m[5] = (uint8_t)i;
		net_mac_remove(&t, m);
	}
	for (unsigned i = 0; i < NET_MAC_MAX; i++) {
		bool found;

		m[4] = (uint8_t)(i >> 8);
		m[5] = (uint8_t)i;
		found = net_mac_lookup(&t, m, 105, &port, &gen);
		assert_int_equal(found, i % 3 != 0);
		if (found) {
			assert_int_equal(port, i % 7);
			assert_int_equal(gen, i);
		}
	}
	/* A move updates in place; aged entries are forgotten and their slots reused. */
	m[4] = 0;
	m[5] = 1;
	net_mac_learn(&t, m, 42, 9, 106);
	assert_true(net_mac_lookup(&t, m, 106, &port, &gen));
	assert_int_equal(port, 42);
	assert_false(net_mac_lookup(&t, m, 117, &port, &gen));
	m[4] = 0x7f;
	net_mac_learn(&t, m, 3, 0, 200);
	assert_true(net_mac_lookup(&t, m, 200, &port, &gen));
	assert_int_equal(port, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_flood_and_learn),
		VQH_SPLIT(test_aging),
		VQH_BOTH(test_mrg_jumbo),
		VQH_BOTH(test_too_big),
		VQH_BOTH(test_burst_in_order),
		VQH_BOTH(test_tx_misshaped),
		VQH_BOTH(test_rx_misshaped),
		VQH_BOTH(test_ctrl_mq),
		VQH_BOTH(test_ctrl_filter),
		VQH_BOTH(test_ctrl_misshaped),
		VQH_BOTH(test_ctrl_state_kept),
		VQH_BOTH(test_offload_csum),
		VQH_BOTH(test_offload_tso),
		VQH_SPLIT(test_link),
		VQH_BOTH(test_rate_limits),
		VQH_BOTH(test_bit_rate_limit),
		VQH_SPLIT(test_refuses_legacy),
		VQH_BOTH(test_port_reuse),
		cmocka_unit_test(test_port_capacity),
		cmocka_unit_test(test_mac_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
