/* SPDX-License-Identifier: MIT */
/*
 * Hostile control messages: truncated or stalled framing, size fields that
 * lie, memory tables with too many, zero, overlapping, wrapping or
 * past-the-file regions, ring sizes 0 / 65536 / not a power of two, ring
 * addresses outside memory, unknown and unsupported requests, and
 * GET_VRING_BASE on a ring that never started. The backend must refuse (a
 * non-zero ack) or hang up, never act on the message, never hang.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"
#include "vio/vhost_user.h"

#define NEED_REPLY VHOST_USER_NEED_REPLY_MASK

/* A header whose size field says size, followed by only plen payload bytes. */
static int send_framed(struct hfe *h, uint32_t req, uint32_t flags, uint32_t size,
		       const void *payload, size_t plen, const int *fds, unsigned nfds)
{
	uint8_t *buf = malloc(VHOST_USER_HDR_SIZE + plen);
	int r;

	if (!buf)
		return -ENOMEM;
	flags |= (flags & VHOST_USER_VERSION_MASK) ? 0 : VHOST_USER_VERSION;
	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (plen)
		memcpy(buf + VHOST_USER_HDR_SIZE, payload, plen);
	r = hfe_send_raw(h->sock, buf, VHOST_USER_HDR_SIZE + plen, fds, nfds);
	free(buf);
	return r;
}

static int c_truncated_header(struct hctx *c)
{
	uint32_t hdr[3] = { VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0 };
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_send_raw(h.sock, hdr, 6, NULL, 0);
	hfe_close(&h);
	return r ? fail(c, "send: %s", strerror(-r)) : 0;
}

static int c_truncated_payload(struct hctx *c)
{
	struct vio_vhu_vring_addr a = { 0 };
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = send_framed(&h, VHOST_USER_SET_VRING_ADDR, 0, sizeof(a), &a, 20, NULL, 0);
	hfe_close(&h);
	return r ? fail(c, "send: %s", strerror(-r)) : 0;
}

/* Half a message, then silence: the backend must give up on it, not wait forever. */
static int c_stalled_payload(struct hctx *c)
{
	struct vio_vhu_vring_addr a = { 0 };
	struct hfe h;

	if (!negotiated(c, &h)) {
		send_framed(&h, VHOST_USER_SET_VRING_ADDR, 0, sizeof(a), &a, 20, NULL, 0);
		expect_hangup(c, &h, 4000, "half a SET_VRING_ADDR");
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Size fields larger than the payload, in the header and inside payloads. */
static int c_size_beyond_payload(struct hctx *c)
{
	struct hfe h;
	uint64_t v[2] = { VIO_BIT(VIRTIO_F_VERSION_1), 0 };
	struct vio_vhu_config cfg = { .offset = 0, .size = 200 };
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r;
	} t = { .nregions = 4 };
	struct hfe_mem mem = { .fd = -1 };
	struct vio_vhu_msg m;
	int r;

	/* SET_FEATURES is 8 bytes: 16 is a lie the codec must not read as two requests. */
	if (!negotiated(c, &h)) {
		send_framed(&h, VHOST_USER_SET_FEATURES, NEED_REPLY, 16, v, 16, NULL, 0);
		expect_rejected(c, &h, VHOST_USER_SET_FEATURES, "a 16-byte SET_FEATURES");
	}
	hfe_close(&h);
	/* A size no message has; the backend cannot read it away. */
	if (!negotiated(c, &h)) {
		send_framed(&h, VHOST_USER_SET_VRING_NUM, NEED_REPLY, 0xffffffffu, v, 8, NULL, 0);
		expect_hangup(c, &h, 3000, "SET_VRING_NUM announcing 4 GiB");
	}
	hfe_close(&h);
	/* GET_CONFIG asking for 200 bytes in a message that has room for 8. */
	if (!negotiated(c, &h)) {
		r = hfe_call(&h, VHOST_USER_GET_CONFIG, &cfg, VIO_VHU_CONFIG_HDR_SIZE + 8, NULL, 0,
			     &m);
		if (r == 0)
			fail(c, "GET_CONFIG of 200 bytes in an 8-byte payload was answered");
		else if (r != HFE_REFUSED && r != -ECONNRESET)
			fail(c, "GET_CONFIG with a lying size: %s", strerror(-r));
		else if (r == HFE_REFUSED)
			expect_survives(c, &h, "a lying GET_CONFIG");
	}
	hfe_close(&h);
	/* A memory table announcing 4 regions and carrying 1. */
	if (!negotiated(c, &h) && !hfe_mem_new(&mem, HFE_MEM_SIZE, true)) {
		t.r = (struct vio_vhu_mem_region){ 0, HFE_MEM_SIZE, (uintptr_t)mem.host, 0 };
		r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &mem.fd, 1, NULL);
		expect_refused(c, &h, r, "SET_MEM_TABLE of 4 regions carrying 1");
	}
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

/* A memory table of n regions on one memfd, each region `size` bytes at `step` apart. */
static int mem_table(struct hfe *h, struct hfe_mem *mem, unsigned n, uint32_t nregions,
		     uint64_t size, uint64_t step, uint32_t bytes)
{
	struct vio_vhu_mem_region r[9];
	uint8_t buf[8 + sizeof(r)];
	int fds[9];

	for (unsigned i = 0; i < n; i++) {
		r[i] = (struct vio_vhu_mem_region){ i * step, size, (uintptr_t)mem->host + i * step,
						    i * step };
		fds[i] = mem->fd;
	}
	memcpy(buf, &nregions, 4);
	memset(buf + 4, 0, 4);
	memcpy(buf + 8, r, n * sizeof(r[0]));
	if (bytes > VIO_VHU_MAX_PAYLOAD) {
		/* Past the codec's limit: frame it by hand, with NEED_REPLY. */
		int e = send_framed(h, VHOST_USER_SET_MEM_TABLE, NEED_REPLY, bytes, buf, bytes, fds,
				    n > 8 ? 8 : n);
		return e ? e : 2;
	}
	return hfe_call(h, VHOST_USER_SET_MEM_TABLE, buf, bytes, fds, n > 8 ? 8 : n, NULL);
}

static int c_too_many_regions(struct hctx *c)
{
	struct hfe_mem mem = { .fd = -1 };
	struct hfe h;
	int r;

	if (hfe_mem_new(&mem, 9 * 4096, true))
		return fail(c, "memfd");
	if (!negotiated(c, &h)) {
		r = mem_table(&h, &mem, 9, 9, 4096, 4096, 8 + 9 * 32);
		if (r == 2)
			expect_rejected(c, &h, VHOST_USER_SET_MEM_TABLE, "SET_MEM_TABLE of 9 regions");
		else
			expect_refused(c, &h, r, "SET_MEM_TABLE of 9 regions");
	}
	hfe_close(&h);
	if (!negotiated(c, &h)) {
		r = mem_table(&h, &mem, 8, 9, 4096, 4096, 8 + 8 * 32);
		expect_refused(c, &h, r, "SET_MEM_TABLE saying 9 regions, carrying 8");
	}
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

/* ADD_MEM_REG past the slots the backend has (GET_MAX_MEM_SLOTS). */
static int c_add_mem_reg_beyond_slots(struct hctx *c)
{
	struct hfe_mem mem = { .fd = -1 };
	uint64_t slots = 0;
	struct hfe h;
	int r;

	if (negotiated(c, &h))
		goto out;
	r = hfe_get_u64(&h, VHOST_USER_GET_MAX_MEM_SLOTS, &slots);
	if (r || slots == 0 || slots > 512) {
		fail(c, "GET_MAX_MEM_SLOTS: %s (%llu)", r ? strerror(-r) : "implausible",
		     (unsigned long long)slots);
		goto out;
	}
	if (hfe_mem_new(&mem, (slots + 1) * 4096, true)) {
		fail(c, "memfd");
		goto out;
	}
	for (uint64_t i = 0; i <= slots; i++) {
		struct vio_vhu_mem_single s = {
			.region = { i * 4096, 4096, (uintptr_t)mem.host + i * 4096, i * 4096 },
		};

		r = hfe_call(&h, VHOST_USER_ADD_MEM_REG, &s, sizeof(s), &mem.fd, 1, NULL);
		if (i < slots && r) {
			fail(c, "ADD_MEM_REG %llu of %llu: %s", (unsigned long long)i + 1,
			     (unsigned long long)slots, r == HFE_REFUSED ? "refused" : strerror(-r));
			break;
		}
		if (i == slots)
			expect_refused(c, &h, r, "one region more than GET_MAX_MEM_SLOTS");
	}
	if (!c->why[0])
		expect_survives(c, &h, "a full slot table");
out:
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

/* No memory at all, and a ring set up on it: nothing may start. */
static int c_zero_regions(struct hctx *c)
{
	uint32_t t[2] = { 0, 0 };
	struct hfe h;
	int r;

	if (negotiated(c, &h))
		goto out;
	r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, t, sizeof(t), NULL, 0, NULL);
	if (r < 0) {
		fail(c, "SET_MEM_TABLE of 0 regions: %s", strerror(-r));
		goto out;
	}
	if (hfe_mem_new(&h.mem, HFE_MEM_SIZE, true)) {
		fail(c, "memfd");
		goto out;
	}
	hfe_ring_layout(&h, 16);
	r = hfe_ring_start(&h);
	if (r < 0 && r != -ECONNRESET) {
		fail(c, "ring set-up without memory: %s", strerror(-r));
		goto out;
	}
	if (r == 0 && hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 512, NULL, 300) != -ETIMEDOUT)
		fail(c, "a ring was served with no memory table");
	if (!c->why[0])
		expect_survives(c, &h, "a ring without memory");
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* One region as given, on a 4 KiB sealed memfd; it must be refused. */
static int refuse_region(struct hctx *c, const struct vio_vhu_mem_region *d, const char *what)
{
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r;
	} t = { .nregions = 1, .r = *d };
	struct hfe_mem mem = { .fd = -1 };
	struct hfe h;
	int r;

	if (hfe_mem_new(&mem, 4096, true))
		return fail(c, "memfd");
	if (!t.r.userspace_addr)
		t.r.userspace_addr = (uintptr_t)mem.host;
	if (!negotiated(c, &h)) {
		r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &mem.fd, 1, NULL);
		expect_refused(c, &h, r, what);
	}
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

static int c_region_past_file_end(struct hctx *c)
{
	struct vio_vhu_mem_region big = { 0, 1u << 20, 0, 0 };
	struct vio_vhu_mem_region off = { 0, 4096, 0, 1u << 30 };

	refuse_region(c, &big, "a 1 MiB region on a 4 KiB memfd");
	refuse_region(c, &off, "a region at offset 1 GiB of a 4 KiB memfd");
	return c->why[0] ? -1 : 0;
}

static int c_region_bad_ranges(struct hctx *c)
{
	struct vio_vhu_mem_region gwrap = { 0xfffffffffffff000ull, 8192, 0, 0 };
	struct vio_vhu_mem_region uwrap = { 0, 8192, 0xfffffffffffff000ull, 0 };
	struct vio_vhu_mem_region empty = { 0, 0, 0, 0 };

	refuse_region(c, &gwrap, "a region whose guest range wraps");
	refuse_region(c, &uwrap, "a region whose user range wraps");
	refuse_region(c, &empty, "a region of 0 bytes");
	return c->why[0] ? -1 : 0;
}

static int c_regions_overlap(struct hctx *c)
{
	struct hfe_mem mem = { .fd = -1 };
	struct hfe h;
	int r;

	if (hfe_mem_new(&mem, 2 * 4096, true))
		return fail(c, "memfd");
	if (!negotiated(c, &h)) {
		r = mem_table(&h, &mem, 2, 2, 8192, 4096, 8 + 2 * 32);
		expect_refused(c, &h, r, "two regions overlapping in guest memory");
	}
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

static int c_ring_size_0_65536(struct hctx *c)
{
	static const uint32_t sizes[] = { 0, 65536, 0xffffffffu };
	struct hfe h;

	if (!negotiated(c, &h)) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !c->why[0]; i++) {
			char what[48];
			int r = hfe_call_state(&h, VHOST_USER_SET_VRING_NUM, 0, sizes[i]);

			snprintf(what, sizeof(what), "ring size %u", sizes[i]);
			expect_refused(c, &h, r, what);
			if (h.sock < 0)
				break;
		}
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* A split ring of 100 entries: refused, or never served. */
static int c_ring_size_not_pow2(struct hctx *c)
{
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_negotiate(&h, 0);
	if (!r)
		r = hfe_share_mem(&h, HFE_MEM_SIZE, true);
	if (r) {
		fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
		goto out;
	}
	hfe_ring_layout(&h, 100);
	r = hfe_ring_start(&h);
	if (r == HFE_REFUSED || r == -ECONNRESET) {
		note(c, "refused");
		goto out;
	}
	if (r) {
		fail(c, "ring set-up: %s", strerror(-r));
		goto out;
	}
	if (hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 512, NULL, 300) != -ETIMEDOUT)
		fail(c, "a split ring of 100 entries was served");
	else
		expect_survives(c, &h, "a split ring of 100 entries");
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Ring addresses that are not inside the memory table (or not aligned): never served. */
static int bad_ring_addr(struct hctx *c, int which, uint64_t addr, const char *what)
{
	struct vio_vhu_vring_addr a;
	uint64_t qidx = 0;
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	if (!r)
		r = hfe_negotiate(&h, 0);
	if (!r)
		r = hfe_share_mem(&h, HFE_MEM_SIZE, true);
	if (r) {
		hfe_close(&h);
		return fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	}
	hfe_ring_layout(&h, 16);
	a = (struct vio_vhu_vring_addr){ .desc_user_addr = (uintptr_t)h.desc,
					 .used_user_addr = (uintptr_t)h.used,
					 .avail_user_addr = (uintptr_t)h.avail };
	if (which == 0)
		a.desc_user_addr = addr;
	else if (which == 1)
		a.avail_user_addr = addr;
	else
		a.used_user_addr = addr;
	h.kick_fd = hfe_eventfd();
	h.call_fd = hfe_eventfd();
	r = hfe_call_state(&h, VHOST_USER_SET_VRING_NUM, 0, 16);
	if (!r)
		r = hfe_call(&h, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL);
	if (!r)
		r = hfe_call(&h, VHOST_USER_SET_VRING_KICK, &qidx, 8, &h.kick_fd, 1, NULL);
	if (!r)
		r = hfe_call(&h, VHOST_USER_SET_VRING_CALL, &qidx, 8, &h.call_fd, 1, NULL);
	if (!r)
		r = hfe_call_state(&h, VHOST_USER_SET_VRING_ENABLE, 0, 1);
	if (r == 0) {
		if (hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 512, NULL, 300) != -ETIMEDOUT)
			fail(c, "%s: the ring was served", what);
		else
			expect_survives(c, &h, what);
	} else if (r < 0 && r != -ECONNRESET) {
		fail(c, "%s: %s", what, strerror(-r));
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_ring_addr_outside_memory(struct hctx *c)
{
	struct hfe_mem probe = { .fd = -1 };
	uint64_t base;

	/* Where the region will be mapped is unknown before set-up: use a fresh mapping's place. */
	if (hfe_mem_new(&probe, HFE_MEM_SIZE, true))
		return fail(c, "memfd");
	base = (uintptr_t)probe.host;
	hfe_mem_free(&probe);
	bad_ring_addr(c, 0, base + (64ull << 30), "a descriptor table far outside memory");
	bad_ring_addr(c, 0, 0xffffffffffffff00ull, "a descriptor table wrapping the address space");
	bad_ring_addr(c, 1, base + HFE_AVAIL_OFF + 1, "an odd available-ring address");
	return c->why[0] ? -1 : 0;
}

static int c_unknown_requests(struct hctx *c)
{
	static uint8_t big[60000];
	uint8_t junk[200] = { 1 };
	struct hfe h;

	if (negotiated(c, &h))
		goto out;
	/* An unknown id owed an answer: refused, in step. */
	send_framed(&h, 99, NEED_REPLY, 0, NULL, 0, NULL, 0);
	expect_rejected(c, &h, 99, "unknown request 99 with NEED_REPLY");
	if (h.sock >= 0 && !c->why[0]) {
		send_framed(&h, 50, 0, sizeof(junk), junk, sizeof(junk), NULL, 0);
		expect_survives(c, &h, "unknown request 50 with 200 bytes");
	}
	if (h.sock >= 0 && !c->why[0]) {
		send_framed(&h, 60, 0, sizeof(big), big, sizeof(big), NULL, 0);
		expect_survives(c, &h, "unknown request 60 with 60000 bytes");
	}
	if (h.sock >= 0 && !c->why[0]) {
		send_framed(&h, 0, NEED_REPLY, 0, NULL, 0, NULL, 0);
		expect_rejected(c, &h, 0, "request 0 with NEED_REPLY");
	}
	hfe_close(&h);
	/* An unknown id announcing 2 GiB: nothing can be read away, hang up. */
	if (!negotiated(c, &h)) {
		send_framed(&h, 60, 0, 0x7fffffffu, junk, sizeof(junk), NULL, 0);
		expect_hangup(c, &h, 4000, "unknown request announcing 2 GiB");
	}
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Header flags no front-end sends: a reply bit, another version. */
static int c_bad_header_flags(struct hctx *c)
{
	struct hfe h;

	if (!negotiated(c, &h)) {
		send_framed(&h, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_MASK, 0, NULL, 0, NULL, 0);
		expect_survives(c, &h, "a request with the REPLY flag");
	}
	hfe_close(&h);
	if (!negotiated(c, &h)) {
		send_framed(&h, VHOST_USER_GET_FEATURES, 2, 0, NULL, 0, NULL, 0);
		expect_survives(c, &h, "a request of version 2");
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Requests vio knows but does not implement, with what they carry. */
static int c_unsupported_requests(struct hctx *c)
{
	uint64_t log[2] = { 4096, 0 }, v = 0;
	struct hfe_mem mem = { .fd = -1 };
	struct hfe h;
	int r;

	if (negotiated(c, &h) || hfe_mem_new(&mem, 4096, true))
		goto out;
	r = hfe_call(&h, VHOST_USER_SET_LOG_BASE, log, sizeof(log), &mem.fd, 1, NULL);
	expect_refused(c, &h, r, "SET_LOG_BASE without LOG_SHMFD agreed (cases_log.c: with it)");
	if (h.sock >= 0) {
		r = hfe_call_u64(&h, VHOST_USER_SEND_RARP, v);
		expect_refused(c, &h, r, "SEND_RARP");
	}
	hfe_close(&h);
	/* IOTLB_MSG is owed a u64 reply: a refusal, or a hang-up, never silence. */
	if (!negotiated(c, &h)) {
		uint8_t iotlb[32] = { 0 };

		r = hfe_call(&h, VHOST_USER_IOTLB_MSG, iotlb, sizeof(iotlb), NULL, 0, NULL);
		if (r == -ETIMEDOUT)
			fail(c, "IOTLB_MSG: no reply and no hang-up in %d ms", HFE_TIMEOUT_MS);
		else if (r != -ECONNRESET && r != 0 && r != -EPROTO)
			fail(c, "IOTLB_MSG: %s", strerror(-r));
	}
out:
	hfe_close(&h);
	hfe_mem_free(&mem);
	return c->why[0] ? -1 : 0;
}

/* GET_VRING_BASE of ring index: a reply naming it (or, when hangup_ok, a hang-up). */
static int vring_base(struct hctx *c, struct hfe *h, uint32_t index, bool hangup_ok,
		      const char *what)
{
	struct vio_vhu_vring_state s = { .index = index };
	struct vio_vhu_msg m;
	int r = hfe_call(h, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &m);

	if (r == -ECONNRESET && hangup_ok) {
		note(c, "%s: hung up", what);
		return 1;
	}
	if (r)
		return fail(c, "%s: %s", what, r == HFE_REFUSED ? "refused" :
			    r == -ETIMEDOUT ? "no reply and no hang-up" : strerror(-r));
	if (m.p.state.index != index)
		return fail(c, "%s: the reply names ring %u", what, m.p.state.index);
	return 0;
}

static int c_get_vring_base_unstarted(struct hctx *c)
{
	struct hfe h;
	int r = hfe_connect(&h, c->sock);

	/* First thing on a connection: a reply or a hang-up, not silence. */
	if (r)
		fail(c, "connect: %s", strerror(-r));
	else
		vring_base(c, &h, 0, true, "GET_VRING_BASE as the first message");
	hfe_close(&h);
	/* After negotiation (QEMU stops rings that never ran): answered, twice; ring 200 too. */
	if (!c->why[0] && !negotiated(c, &h) &&
	    !vring_base(c, &h, 0, false, "GET_VRING_BASE of a ring never set up") &&
	    !vring_base(c, &h, 0, false, "a second GET_VRING_BASE"))
		vring_base(c, &h, 200, true, "GET_VRING_BASE of ring 200");
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Ring indices past the device's queues, reserved bits, features never offered. */
static int c_bad_indices_and_features(struct hctx *c)
{
	struct hfe h;
	int efd = hfe_eventfd(), r;
	uint64_t v;

	if (negotiated(c, &h))
		goto out;
	r = hfe_call_state(&h, VHOST_USER_SET_VRING_NUM, 255, 16);
	expect_refused(c, &h, r, "SET_VRING_NUM of ring 255");
	v = 200;
	if (h.sock >= 0) {
		r = hfe_call(&h, VHOST_USER_SET_VRING_KICK, &v, 8, &efd, 1, NULL);
		expect_refused(c, &h, r, "SET_VRING_KICK of ring 200");
	}
	v = 1ull << 20;
	if (h.sock >= 0) {
		r = hfe_call(&h, VHOST_USER_SET_VRING_CALL, &v, 8, &efd, 1, NULL);
		expect_refused(c, &h, r, "SET_VRING_CALL with a reserved bit");
	}
	v = VHOST_USER_VRING_NOFD_MASK;
	if (h.sock >= 0) {
		r = hfe_call(&h, VHOST_USER_SET_VRING_KICK, &v, 8, &efd, 1, NULL);
		expect_refused(c, &h, r, "SET_VRING_KICK saying NOFD with an fd");
	}
	if (h.sock >= 0) {
		r = hfe_call_u64(&h, VHOST_USER_SET_FEATURES,
				 VIO_BIT(63) | VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
		expect_refused(c, &h, r, "SET_FEATURES with bit 63");
	}
	if (h.sock >= 0) {
		r = hfe_call_u64(&h, VHOST_USER_SET_STATUS, 0x1ff);
		expect_refused(c, &h, r, "SET_STATUS 0x1ff");
	}
	if (h.sock >= 0) {
		struct vio_vhu_config cfg = { .offset = 0xfffffff0u, .size = 8 };
		struct vio_vhu_msg m;

		r = hfe_call(&h, VHOST_USER_GET_CONFIG, &cfg, VIO_VHU_CONFIG_HDR_SIZE + 8, NULL, 0,
			     &m);
		if (r == 0)
			fail(c, "GET_CONFIG at offset 0xfffffff0 was answered");
	}
	if (!c->why[0])
		expect_survives(c, &h, "bad indices");
out:
	close(efd);
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

const struct hcase msg_cases[] = {
	{ "msg-truncated-header", c_truncated_header },
	{ "msg-truncated-payload", c_truncated_payload },
	{ "msg-stalled-payload", c_stalled_payload },
	{ "msg-size-beyond-payload", c_size_beyond_payload },
	{ "msg-too-many-regions", c_too_many_regions },
	{ "msg-add-mem-reg-beyond-slots", c_add_mem_reg_beyond_slots },
	{ "msg-zero-regions", c_zero_regions },
	{ "msg-region-past-file-end", c_region_past_file_end },
	{ "msg-region-bad-ranges", c_region_bad_ranges },
	{ "msg-regions-overlap", c_regions_overlap },
	{ "msg-ring-size-0-65536", c_ring_size_0_65536 },
	{ "msg-ring-size-not-pow2", c_ring_size_not_pow2 },
	{ "msg-ring-addr-outside-memory", c_ring_addr_outside_memory },
	{ "msg-unknown-requests", c_unknown_requests },
	{ "msg-bad-header-flags", c_bad_header_flags },
	{ "msg-unsupported-requests", c_unsupported_requests },
	{ "msg-get-vring-base-unstarted", c_get_vring_base_unstarted },
	{ "msg-bad-indices-and-features", c_bad_indices_and_features },
	{ NULL, NULL },
};
