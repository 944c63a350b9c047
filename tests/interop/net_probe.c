/* SPDX-License-Identifier: MIT */
/*
 * net_probe: vio's frontend against a running switch (viod) over real
 * sockets, three ports: A (offloads, mergeable buffers), B (two queue
 * pairs, control queue, offloads), C (nothing: no mergeable buffers, small
 * receive buffers, an 8-entry ring). Checks flooding, learning, jumbo
 * frames over mergeable buffers, a frame too big for C, MQ pairs and the
 * receive filter through the control queue, TSO and checksums carried to B
 * and done in software for C, and sends misshaped chains; prints
 * "PASS: name" / "FAIL: name: why" per check and "EXPECT SOCKET COUNTER N"
 * lines for the drop counters viod must show afterwards. Every wait is
 * bounded. Usage: net_probe [--packed] SOCK_A SOCK_B SOCK_C
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../tools/vio-bench/net_port.h"
#include "vio/net.h"

#define ETYPE 0x88b5
#define TMO_MS 3000
#define QUIET_MS 150

static const char *prefix = "net_probe";
static int failures;
static uint8_t frame[70000], frame2[128], got[70000];

static const uint8_t MAC_A[6] = { 0x02, 0xa0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0xb0, 0, 0, 0, 0x0b };
static const uint8_t MAC_C[6] = { 0x02, 0xc0, 0, 0, 0, 0x0c };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void pass(const char *name)
{
	printf("PASS: %s/%s\n", prefix, name);
}

static void __attribute__((format(printf, 2, 3))) fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s/%s: ", prefix, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

static void check(const char *name, bool ok, const char *why)
{
	if (ok)
		pass(name);
	else
		fail(name, "%s", why);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t pat(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31 + i * 7 + (i >> 8));
}

static uint32_t test_frame(uint8_t *b, uint32_t len, const uint8_t *dst, const uint8_t *src,
			   uint32_t seq)
{
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = ETYPE >> 8;
	b[13] = ETYPE & 0xff;
	memcpy(b + 14, &seq, 4);
	for (uint32_t i = 18; i < len; i++)
		b[i] = pat(seq, i);
	return len;
}

static bool test_frame_ok(const uint8_t *b, uint32_t len, uint32_t seq)
{
	uint32_t s;

	if (len < 18 || ((b[12] << 8) | b[13]) != ETYPE)
		return false;
	memcpy(&s, b + 14, 4);
	if (s != seq)
		return false;
	for (uint32_t i = 18; i < len; i++)
		if (b[i] != pat(seq, i))
			return false;
	return true;
}

static bool send_raw(struct net_port *p, const void *data, uint32_t len,
		     const struct virtio_net_hdr_v1 *h)
{
	struct vio_net_tx tx = { data, len, h };
	uint64_t end = now_ms() + TMO_MS;

	while (now_ms() < end) {
		int r = vio_net_client_send(p->cl, 0, &tx, 1);

		if (r == 1)
			return true;
		if (r < 0)
			return false;
	}
	return false;
}

static bool send_test(struct net_port *p, const uint8_t *dst, const uint8_t *src, uint32_t len,
		      uint32_t seq)
{
	return send_raw(p, frame, test_frame(frame, len, dst, src, seq), NULL);
}

/*
 * Receive on pair until want frames arrived (or the time is up); with
 * want 0, listen for QUIET_MS. The last frame lands in got / *len / *nseg.
 */
static unsigned recv_n(struct net_port *p, unsigned pair, unsigned want, uint32_t *len,
		       unsigned *nseg, struct virtio_net_hdr_v1 *hdr)
{
	static struct vio_net_rx rx[32];
	uint64_t end = now_ms() + (want ? TMO_MS : QUIET_MS);
	unsigned n = 0;

	while (now_ms() < end && (!want || n < want)) {
		int r = vio_net_client_recv(p->cl, pair, rx, 32);

		if (r < 0)
			return n;
		for (int i = 0; i < r; i++) {
			uint32_t l = (uint32_t)vio_net_rx_copy(&rx[i], got, sizeof(got));

			if (len)
				*len = l;
			if (nseg)
				*nseg = rx[i].nseg;
			if (hdr)
				*hdr = rx[i].hdr;
		}
		n += (unsigned)r;
	}
	return n;
}

/* Everything waiting on every pair of p, dropped. */
static void flush(struct net_port *p)
{
	for (unsigned q = 0; q < p->pairs; q++)
		recv_n(p, q, 0, NULL, NULL, NULL);
}

/* ---- checksums, for frames the switch finished ---- */

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static bool tcp4_ok(const uint8_t *f, uint32_t len)
{
	uint32_t l4 = 14 + (f[14] & 15) * 4u, sum = 0, tl = len - l4;

	if (csum(f + 14, (f[14] & 15) * 4u, 0) != 0xffff)
		return false;
	for (unsigned i = 0; i < 8; i += 2)
		sum += (uint32_t)(f[26 + i] << 8 | f[27 + i]);
	sum += 6 + tl;
	return csum(f + l4, tl, sum) == 0xffff;
}

/* A TCP/IPv4 frame of payload bytes, TSO'd at mss, partial checksum as a driver sends it. */
static uint32_t tso_frame(uint8_t *b, uint32_t payload, uint16_t mss, struct virtio_net_hdr_v1 *h)
{
	uint32_t len = 54 + payload, sum = 0;

	memset(b, 0, 54);
	memcpy(b, BCAST, 6);
	memcpy(b + 6, MAC_A, 6);
	b[12] = 0x08;
	b[14] = 0x45;
	b[16] = (uint8_t)((40 + payload) >> 8);
	b[17] = (uint8_t)(40 + payload);
	b[22] = 64;
	b[23] = 6;
	b[26] = 10, b[29] = 1, b[30] = 10, b[33] = 2;
	sum = csum(b + 14, 20, 0);
	b[24] = (uint8_t)(~sum >> 8);
	b[25] = (uint8_t)~sum;
	b[35] = 80;
	b[37] = 81;
	b[46] = 0x50;
	b[47] = 0x18;
	for (uint32_t i = 0; i < payload; i++)
		b[54 + i] = pat(5, i);
	sum = 0;
	for (unsigned i = 0; i < 8; i += 2)
		sum += (uint32_t)(b[26 + i] << 8 | b[27 + i]);
	sum = csum(NULL, 0, sum + 6 + 20 + payload);
	b[50] = (uint8_t)(sum >> 8);
	b[51] = (uint8_t)sum;
	*h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					 .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
					 .gso_size = mss, .csum_start = 34, .csum_offset = 16 };
	return len;
}

static uint32_t udp_frame(uint8_t *b, const uint8_t *dst, uint16_t sport)
{
	memset(b, 0, 64);
	memcpy(b, dst, 6);
	memcpy(b + 6, MAC_A, 6);
	b[12] = 0x08;
	b[14] = 0x45;
	b[17] = 50;
	b[23] = 17;
	b[26] = 10, b[29] = 1, b[30] = 10, b[33] = 2;
	b[34] = (uint8_t)(sport >> 8);
	b[35] = (uint8_t)sport;
	b[37] = 9;
	return 64;
}

/* ---- the checks ---- */

static void expect(const char *sock, const char *counter, unsigned n)
{
	printf("EXPECT %s %s %u\n", sock, counter, n);
}

int main(int argc, char **argv)
{
	struct net_port_opts oa = { .pairs = 1, .offloads = true, .rx_buf_size = 2048,
				    .tx_buf_size = 65600 };
	struct net_port_opts ob = { .pairs = 2, .ctrl = true, .offloads = true, .rx_buf_size = 2048 };
	struct net_port_opts oc = { .pairs = 1, .no_mrg = true, .rx_buf_size = 1526, .qsize = 8 };
	struct net_port a, b, c;
	struct virtio_net_hdr_v1 h;
	char err[256];
	uint32_t len = 0;
	unsigned nseg = 0, n, n0, n1;
	int ai = 1;
	bool packed = false;

	if (argc > 1 && !strcmp(argv[1], "--packed")) {
		packed = true;
		ai++;
	}
	if (argc - ai != 3) {
		fprintf(stderr, "usage: net_probe [--packed] SOCK_A SOCK_B SOCK_C\n");
		return 2;
	}
	prefix = packed ? "packed" : "split";
	oa.packed = ob.packed = oc.packed = packed;
	oa.socket = argv[ai];
	ob.socket = argv[ai + 1];
	oc.socket = argv[ai + 2];
	if (net_port_open(&oa, &a, err, sizeof(err)) || net_port_open(&ob, &b, err, sizeof(err)) ||
	    net_port_open(&oc, &c, err, sizeof(err))) {
		fail("connect", "%s", err);
		return 1;
	}
	pass("connect");

	/* Flooding and learning. */
	send_test(&a, BCAST, MAC_A, 100, 1);
	n0 = recv_n(&b, 0, 1, &len, NULL, NULL) + recv_n(&b, 1, 0, NULL, NULL, NULL);
	check("broadcast-to-B", n0 == 1 && test_frame_ok(got, len, 1), "B did not get it once, intact");
	n = recv_n(&c, 0, 1, &len, NULL, NULL);
	check("broadcast-to-C", n == 1 && test_frame_ok(got, len, 1), "C did not get it once, intact");
	send_test(&b, MAC_A, MAC_B, 200, 2);
	n = recv_n(&a, 0, 1, &len, NULL, NULL);
	check("learned-A", n == 1 && test_frame_ok(got, len, 2), "A did not get B's answer");
	check("learned-not-C", recv_n(&c, 0, 0, NULL, NULL, NULL) == 0,
	      "C got a frame for A's learned address");
	send_test(&c, BCAST, MAC_C, 80, 3);
	flush(&a);
	flush(&b);

	/* Jumbo frames: mergeable buffers on B, too big for C's 1526-byte buffers. */
	send_test(&a, MAC_B, MAC_A, 9000, 4);
	n = recv_n(&b, 0, 1, &len, &nseg, NULL) + recv_n(&b, 1, 0, NULL, NULL, NULL);
	if (n == 1 && len == 9000 && nseg == 5 && test_frame_ok(got, len, 4))
		pass("jumbo-mergeable");
	else
		fail("jumbo-mergeable", "%u frames, last %u bytes in %u buffers", n, len, nseg);
	send_test(&a, MAC_C, MAC_A, 9000, 5);
	check("too-big-dropped", recv_n(&c, 0, 0, NULL, NULL, NULL) == 0,
	      "C got a 9000-byte frame in 1526-byte buffers");
	expect(oc.socket, "rx_too_big", 1);
	send_test(&a, MAC_C, MAC_A, 1514, 6);
	n = recv_n(&c, 0, 1, &len, NULL, NULL);
	check("after-too-big", n == 1 && len == 1514 && test_frame_ok(got, len, 6),
	      "C got nothing after the drop");

	/* MQ through the control queue. */
	{
		uint16_t pairs = 2;
		unsigned errs = 0;

		if (vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
					&pairs, 2, NULL, NULL, TMO_MS) != VIRTIO_NET_OK)
			fail("mq-pairs-set", "VQ_PAIRS_SET 2 refused");
		for (uint16_t i = 0; i < 64; i++)
			send_raw(&a, frame, udp_frame(frame, MAC_B, (uint16_t)(1000 + i)), NULL);
		n0 = recv_n(&b, 0, 0, NULL, NULL, NULL);
		n1 = recv_n(&b, 1, 64 - n0, NULL, NULL, NULL);
		if (n0 + n1 == 64 && n0 && n1)
			pass("mq-both-pairs");
		else
			fail("mq-both-pairs", "pair 0 got %u, pair 1 got %u of 64 flows", n0, n1);
		pairs = 0;
		errs += vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
					    &pairs, 2, NULL, NULL, TMO_MS) == VIRTIO_NET_ERR;
		pairs = 3;
		errs += vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
					    &pairs, 2, NULL, NULL, TMO_MS) == VIRTIO_NET_ERR;
		errs += vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
					    &pairs, 1, NULL, NULL, TMO_MS) == VIRTIO_NET_ERR;
		errs += vio_net_client_ctrl(b.cl, 99, 0, NULL, 0, NULL, NULL, TMO_MS) == VIRTIO_NET_ERR;
		check("ctrl-malformed-refused", errs == 4, "a bad command was acknowledged OK");
	}

	/* Receive filter: promiscuous off, then the default address set by the driver. */
	{
		static const uint8_t other[6] = { 0x02, 0x99, 0, 0, 0, 1 };
		uint8_t off = 0, on = 1, cfg[6];

		if (vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1,
					NULL, NULL, TMO_MS) != VIRTIO_NET_OK)
			fail("filter", "PROMISC 0 refused");
		send_test(&a, other, MAC_A, 64, 7);
		n = recv_n(&b, 0, 0, NULL, NULL, NULL) + recv_n(&b, 1, 0, NULL, NULL, NULL);
		check("filter-unknown-refused", n == 0, "B got a frame for an address it does not have");
		check("filter-others-still-flooded", recv_n(&c, 0, 1, NULL, NULL, NULL) == 1,
		      "C (promiscuous) did not get it");
		expect(ob.socket, "rx_filtered", 1);
		if (vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, other,
					6, NULL, NULL, TMO_MS) != VIRTIO_NET_OK)
			fail("filter", "MAC_ADDR_SET refused");
		send_test(&a, other, MAC_A, 64, 8);
		n = recv_n(&b, 0, 1, NULL, NULL, NULL);
		n += n ? 0 : recv_n(&b, 1, 1, NULL, NULL, NULL);
		check("filter-own-address", n == 1, "B did not get a frame for its new address");
		check("config-mac", vio_vhu_frontend_get_config(b.f, 0, cfg, 6) == 0 &&
			!memcmp(cfg, other, 6), "config space does not show the new address");
		vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1, NULL,
				    NULL, TMO_MS);
		flush(&c);
	}

	/* TSO: carried to B, which takes it; segmented, checksummed for C. */
	{
		uint32_t flen = tso_frame(frame, 6000, 1448, &h);
		unsigned segs = 0, good = 0;
		struct virtio_net_hdr_v1 rh;

		send_raw(&a, frame, flen, &h);
		n = recv_n(&b, 0, 1, &len, NULL, &rh);
		n += n ? 0 : recv_n(&b, 1, 1, &len, NULL, &rh);
		check("tso-carried", n == 1 && len == flen && rh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 &&
		      rh.gso_size == 1448 && !memcmp(got, frame, flen),
		      "B did not get the GSO frame as sent");
		for (uint64_t end = now_ms() + TMO_MS; segs < 5 && now_ms() < end;) {
			struct vio_net_rx rx[8];
			int r = vio_net_client_recv(c.cl, 0, rx, 8);

			for (int i = 0; i < r; i++) {
				len = (uint32_t)vio_net_rx_copy(&rx[i], got, sizeof(got));
				segs++;
				good += rx[i].hdr.gso_type == 0 && len <= 54 + 1448 &&
					tcp4_ok(got, len);
			}
		}
		if (segs == 5 && good == 5)
			pass("tso-segmented");
		else
			fail("tso-segmented", "C got %u segments, %u with right checksums (want 5)",
			     segs, good);
	}

	/* Misshaped chains: counted, never fatal. */
	{
		size_t slen;
		uint8_t *s = vio_net_client_scratch(a.cl, &slen);
		struct iovec iov[2];
		struct vio_net_client_stats st;

		iov[0] = (struct iovec){ s, 5 }; /* shorter than the header */
		vio_net_client_post_raw(a.cl, 1, iov, 1, 0);
		memset(s + 64, 0, 22); /* a header and 10 bytes */
		iov[0] = (struct iovec){ s + 64, 22 };
		vio_net_client_post_raw(a.cl, 1, iov, 1, 0);
		/* GSO TCPv4 over a frame that is not IPv4/TCP */
		h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						.gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 100,
						.csum_start = 14, .csum_offset = 16 };
		memcpy(s + 128, &h, 12);
		test_frame(s + 140, 300, BCAST, MAC_A, 9);
		iov[0] = (struct iovec){ s + 128, 312 };
		vio_net_client_post_raw(a.cl, 1, iov, 1, 0);
		/* a checksum field past the frame's end */
		h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						.csum_start = 90, .csum_offset = 16 };
		memcpy(s + 512, &h, 12);
		test_frame(s + 524, 100, BCAST, MAC_A, 10);
		iov[0] = (struct iovec){ s + 512, 112 };
		vio_net_client_post_raw(a.cl, 1, iov, 1, 0);
		expect(oa.socket, "tx_bad_header", 1);
		expect(oa.socket, "tx_runt", 1);
		expect(oa.socket, "tx_bad_offload", 2);
		vio_net_client_tx_reap(a.cl, 0);
		for (uint64_t end = now_ms() + TMO_MS; now_ms() < end;) {
			vio_net_client_tx_reap(a.cl, 0);
			vio_net_client_stats(a.cl, &st);
			if (st.raw_done == 4)
				break;
		}
		check("tx-misshaped-returned", st.raw_done == 4, "the switch did not return them all");
		check("tx-misshaped-not-forwarded", recv_n(&c, 0, 0, NULL, NULL, NULL) == 0,
		      "a misshaped frame came out of the switch");
		flush(&b);

		/* C's 8-entry ring: two buffers out, two misshaped chains posted into the gap. */
		s = vio_net_client_scratch(c.cl, &slen);
		/*
		 * The gap is what the last recv handed out (the next recv gives it
		 * back), so both frames must come in one recv: they go in one
		 * published burst, and C waits until they have landed.
		 */
		struct vio_net_rx rx[8];
		struct vio_net_tx two[2] = { { frame, test_frame(frame, 100, MAC_C, MAC_A, 11), NULL },
					     { frame2, test_frame(frame2, 100, MAC_C, MAC_A, 12), NULL } };
		uint64_t end = now_ms() + TMO_MS;
		int r = 0;

		while (r < 2 && now_ms() < end)
			r += vio_net_client_send(a.cl, 0, two + r, 2 - (unsigned)r);
		vio_net_client_wait(c.cl, 0, TMO_MS);
		end = now_ms() + 300;
		while (now_ms() < end)
			;
		r = vio_net_client_recv(c.cl, 0, rx, 8);
		if (r == 2)
			pass("rx-two-in-one");
		else
			fail("rx-two-in-one", "C took %d frames in one receive, want 2", r);
		iov[0] = (struct iovec){ s, 100 }; /* readable only */
		vio_net_client_post_raw(c.cl, 0, iov, 1, 0);
		iov[0] = (struct iovec){ s + 256, 5 }; /* no room for the header */
		vio_net_client_post_raw(c.cl, 0, iov, 0, 1);
		/* Six good buffers take six frames; the seventh meets the bad ones. */
		for (uint32_t i = 0; i < 7; i++)
			send_test(&a, MAC_C, MAC_A, 100, 20 + i);
		expect(oc.socket, "rx_bad_chain", 2);
		expect(oc.socket, "rx_no_buffer", 1);
		/* Nothing is received before the sends: those six stay in the ring meanwhile. */
		end = now_ms() + 300;
		while (now_ms() < end)
			;
		n = recv_n(&c, 0, 6, NULL, NULL, NULL);
		vio_net_client_stats(c.cl, &st);
		check("rx-misshaped", n == 6 && st.raw_done == 2 && st.raw_last_len == 0,
		      "misshaped receive chains were not returned empty");
		send_test(&a, MAC_C, MAC_A, 100, 30);
		check("rx-after-misshaped", recv_n(&c, 0, 1, NULL, NULL, NULL) == 1,
		      "C got nothing after the misshaped chains");

		/* A control command with no byte for the ack. */
		s = vio_net_client_scratch(b.cl, &slen);
		s[0] = VIRTIO_NET_CTRL_RX;
		s[1] = VIRTIO_NET_CTRL_RX_PROMISC;
		s[2] = 0;
		iov[0] = (struct iovec){ s, 3 };
		vio_net_client_post_raw(b.cl, 4, iov, 1, 0);
		/* ...then a good one, which also reaps it */
		uint8_t on = 1;
		check("ctrl-after-misshaped",
		      vio_net_client_ctrl(b.cl, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1,
					  NULL, NULL, TMO_MS) == VIRTIO_NET_OK,
		      "the control queue stopped answering");
		vio_net_client_stats(b.cl, &st);
		check("ctrl-misshaped-returned", st.raw_done == 1, "the ack-less command never came back");
		/* VQ_PAIRS_SET 0 and 3, a short one, an unknown class, the ack-less one. */
		expect(ob.socket, "ctrl_bad", 5);
	}

	net_port_close(&c);
	net_port_close(&b);
	net_port_close(&a);
	return failures ? 1 : 0;
}
