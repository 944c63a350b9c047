/* SPDX-License-Identifier: MIT */
/*
 * Hostile IOTLB messages (VIRTIO_F_ACCESS_PLATFORM): updates of no size,
 * wrapping the address space, outside guest memory, with garbage types and
 * rights; overlapping updates that take write rights away under the device;
 * invalidations of nothing; a flood past the table's bound; a miss nobody
 * answers. The device refuses what is malformed with a non-zero status and
 * stays connected, waits (without failing) on a miss, fails the queue when
 * it would write through a read-only mapping, and serves again once the
 * front-end maps what it needs.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "core/iotlb_internal.h"
#include "vio/blk.h"

#define Q 16
#define AP VIO_BIT(VIRTIO_F_ACCESS_PLATFORM)

/* One IOTLB_MSG: 0 accepted, HFE_REFUSED, or -errno. */
static int iotlb(struct hfe *h, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr,
		 uint8_t perm)
{
	struct vio_vhu_iotlb_msg m = { .iova = iova, .size = size, .uaddr = uaddr, .perm = perm,
				       .type = type };
	struct vio_vhu_msg reply;
	int r = hfe_call(h, VHOST_USER_IOTLB_MSG, &m, sizeof(m), NULL, 0, &reply);

	if (r)
		return r;
	return reply.p.u64 ? HFE_REFUSED : 0;
}

/* Map IOVA [off, off + len) of guest memory onto itself (IOVA = guest address). */
static int map(struct hfe *h, uint64_t off, uint64_t len, uint8_t perm)
{
	return iotlb(h, VHOST_IOTLB_UPDATE, off, len, (uintptr_t)h->mem.host + off, perm);
}

/*
 * A ring behind the vIOMMU: ring addresses (the user addresses hfe sends)
 * and descriptor addresses (guest addresses) are both IOVAs; the ring
 * starts only once the first are mapped. mapped: map all guest memory.
 */
static int iommu_ring(struct hctx *c, struct hfe *h, bool mapped)
{
	uint64_t host = (uintptr_t)h->mem.host;
	int r;

	if (setup(c, h, AP, Q))
		return -1;
	host = (uintptr_t)h->mem.host;
	if (!(h->features & AP))
		return fail(c, "the device does not offer VIRTIO_F_ACCESS_PLATFORM");
	r = iotlb(h, VHOST_IOTLB_UPDATE, host, HFE_MEM_SIZE, host, VIO_IOTLB_RW);
	if (!r && mapped)
		r = map(h, 0, HFE_MEM_SIZE, VIO_IOTLB_RW);
	if (r)
		return fail(c, "identity IOTLB updates: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	return 0;
}

static int good_read(struct hctx *c, struct hfe *h, const char *when)
{
	int st = hfe_blk(h, VIRTIO_BLK_T_IN, 0, 4096, NULL);

	if (st != VIRTIO_BLK_S_OK)
		return fail(c, "a good read %s: %s", when, st < 0 ? strerror(-st) : "bad status");
	return 0;
}

/* Each refused with a status, the connection still in step, the device still serving. */
static int refused_then_serves(struct hctx *c, uint8_t type, uint64_t iova, uint64_t size,
			       uint64_t uaddr_off, bool uaddr_abs, uint8_t perm, const char *what)
{
	struct hfe h;

	if (!iommu_ring(c, &h, true)) {
		uint64_t uaddr = uaddr_abs ? uaddr_off : (uintptr_t)h.mem.host + uaddr_off;

		if (!expect_refused(c, &h, iotlb(&h, type, iova, size, uaddr, perm), what) &&
		    !expect_survives(c, &h, what))
			good_read(c, &h, "afterwards");
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_iotlb_good(struct hctx *c)
{
	struct hfe h;

	if (!iommu_ring(c, &h, true) && !good_read(c, &h, "through the IOTLB") &&
	    hfe_blk(&h, VIRTIO_BLK_T_OUT, 8, 4096, NULL) != VIRTIO_BLK_S_OK)
		fail(c, "a good write through the IOTLB failed");
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_iotlb_zero_size(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, 0x100000000ull, 0, 0, false,
				   VIO_IOTLB_RW, "a zero-size update");
}

static int c_iotlb_wrapping_iova(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, UINT64_MAX - 4095 + 0x800, 4096, 0,
				   false, VIO_IOTLB_RW, "an update wrapping the IOVA space");
}

static int c_iotlb_wrapping_uaddr(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, 0x100000000ull, 0x2000, UINT64_MAX - 0x1000,
				   true, VIO_IOTLB_RW, "an update wrapping the user address space");
}

static int c_iotlb_outside_memory(struct hctx *c)
{
	/* Past the end of the one region, and a range straddling its end. */
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, 0x100000000ull, 0x2000,
				   HFE_MEM_SIZE - 0x1000, false, VIO_IOTLB_RW,
				   "an update reaching past guest memory");
}

static int c_iotlb_bad_perm(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, 0x100000000ull, 0x1000, 0, false, 0x7f,
				   "an update with rights 0x7f");
}

static int c_iotlb_no_access(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_UPDATE, 0x100000000ull, 0x1000, 0, false, 0,
				   "an update granting no access");
}

static int c_iotlb_bad_type(struct hctx *c)
{
	return refused_then_serves(c, 0xee, 0x1000, 0x1000, 0, false, VIO_IOTLB_RW,
				   "an IOTLB message of type 0xee");
}

static int c_iotlb_miss_from_frontend(struct hctx *c)
{
	return refused_then_serves(c, VHOST_IOTLB_MISS, 0x1000, 0x1000, 0, false, VIO_IOTLB_RW,
				   "a MISS sent to the backend");
}

static int c_iotlb_without_access_platform(struct hctx *c)
{
	struct hfe h;

	if (!setup(c, &h, 0, Q) &&
	    !expect_refused(c, &h, map(&h, 0, HFE_MEM_SIZE, VIO_IOTLB_RW),
			    "an update without ACCESS_PLATFORM agreed"))
		expect_survives(c, &h, "an update without ACCESS_PLATFORM");
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* Invalidations are never refused for their range: nothing mapped there, the whole space, size 0. */
static int c_iotlb_invalidate_unknown(struct hctx *c)
{
	struct hfe h;
	int r;

	if (!iommu_ring(c, &h, true)) {
		r = iotlb(&h, VHOST_IOTLB_INVALIDATE, 0x7000000000ull, 0x1000, 0, 0xff);
		if (r)
			fail(c, "an invalidation of nothing: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
		else if (!good_read(c, &h, "after invalidating nothing") &&
			 (r = iotlb(&h, VHOST_IOTLB_INVALIDATE, 0, 0, 0, 0)) != 0)
			fail(c, "an invalidation of size 0 (all): %s",
			     r == HFE_REFUSED ? "refused" : strerror(-r));
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/*
 * An update over part of an earlier one takes write rights away from the
 * page holding the status byte: the device must not write through it, so
 * the queue fails (NEEDS_RESET) and the byte stays as the driver left it.
 */
static int c_iotlb_overlap_read_only(struct hctx *c)
{
	struct hfe h;
	volatile uint8_t *status;

	if (!iommu_ring(c, &h, true) && !good_read(c, &h, "before the read-only update")) {
		int r = map(&h, HFE_HDR_OFF, 0x1000, VIO_IOTLB_RO);

		status = hfe_ptr(&h, HFE_HDR_OFF + 16);
		if (r) {
			fail(c, "an overlapping read-only update: %s",
			     r == HFE_REFUSED ? "refused" : strerror(-r));
		} else {
			r = hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 512, NULL, 500);
			if (r != -ETIMEDOUT)
				fail(c, "a read whose status byte is read-only completed (%d)", r);
			else if (*status != 0xee)
				fail(c, "the device wrote 0x%x through a read-only mapping", *status);
			else
				expect_fault(c, &h, VIO_VQ_BAD_ADDR, VIO_VQ_OK);
		}
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/*
 * A request whose buffers are not mapped: the device asks (no channel here,
 * so nobody hears it) and waits, neither failing nor completing; the update
 * that maps them lets it complete.
 */
static int c_iotlb_miss_waits(struct hctx *c)
{
	struct hfe h;
	int r;

	if (!iommu_ring(c, &h, false)) {
		r = hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 4096, NULL, 300);
		if (r != -ETIMEDOUT) {
			fail(c, "a read through unmapped IOVAs ended (%d)", r);
		} else if ((r = hfe_wait_needs_reset(&h, 200)) != 0) {
			fail(c, "a miss failed the device (%d)", r);
		} else if ((r = map(&h, 0, HFE_MEM_SIZE, VIO_IOTLB_RW)) != 0) {
			fail(c, "the late update: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
		} else if ((r = hfe_wait_used(&h, 1, 2000)) != 0) {
			fail(c, "the waiting read did not complete after the update");
		} else if (*(volatile uint8_t *)hfe_ptr(&h, HFE_HDR_OFF + 16) != VIRTIO_BLK_S_OK) {
			fail(c, "the waiting read completed with status 0x%x",
			     *(volatile uint8_t *)hfe_ptr(&h, HFE_HDR_OFF + 16));
		}
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/*
 * Nothing mapped, the backend request channel given: the backend asks for
 * each missing page, the rings' first (VHOST_USER_BACKEND_IOTLB_MSG, type
 * MISS, with the rights it needs), and the request completes once the
 * front-end has answered every miss with an update of that page, as QEMU
 * does.
 */
static int answer_misses(struct hctx *c, struct hfe *h, int chan)
{
	uint64_t host = (uintptr_t)h->mem.host, page;
	unsigned misses = 0;
	int r;

	for (int round = 0; round < 40; round++) {
		struct pollfd pfd = { .fd = chan, .events = POLLIN };
		uint8_t hdr[VHOST_USER_HDR_SIZE];
		struct vio_vhu_iotlb_msg m;
		uint32_t req, size;

		if (hfe_wait_used(h, 1, 20) == 0) {
			if (!misses)
				return fail(c, "the request completed without a miss being asked");
			note(c, "%u misses answered", misses);
			return 0;
		}
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		if (vio_vhu_recv_all(chan, hdr, sizeof(hdr)))
			return fail(c, "the backend request channel broke");
		memcpy(&req, hdr, 4);
		memcpy(&size, hdr + 8, 4);
		if (req != VHOST_USER_BACKEND_IOTLB_MSG || size != sizeof(m))
			return fail(c, "channel message %u of %u bytes, not an IOTLB miss", req, size);
		if (vio_vhu_recv_all(chan, &m, sizeof(m)))
			return fail(c, "the backend request channel broke mid-message");
		if (m.type != VHOST_IOTLB_MISS || m.perm < VIO_IOTLB_RO || m.perm > VIO_IOTLB_RW)
			return fail(c, "IOTLB message type %u perm %u from the backend", m.type, m.perm);
		misses++;
		/* The rings' IOVAs are their user addresses (asked for at set-up), the rest guest addresses. */
		page = m.iova & ~0xfffull;
		if (m.iova - host < HFE_MEM_SIZE)
			r = iotlb(h, VHOST_IOTLB_UPDATE, page, 0x1000, page, VIO_IOTLB_RW);
		else if (m.iova < HFE_MEM_SIZE)
			r = map(h, page, 0x1000, VIO_IOTLB_RW);
		else
			return fail(c, "a miss at 0x%llx, outside what the driver used",
				    (unsigned long long)m.iova);
		if (r)
			return fail(c, "the answer to a miss was refused");
	}
	return fail(c, "the request did not complete after 40 rounds of misses");
}

static int c_iotlb_miss_asked(struct hctx *c)
{
	struct hfe h;
	int sv[2] = { -1, -1 }, r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return fail(c, "socketpair: %s", strerror(errno));
	r = hfe_connect(&h, c->sock);
	h.extra_protocol = VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ);
	if (!r)
		r = hfe_negotiate(&h, AP);
	if (!r)
		r = hfe_call(&h, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1, NULL);
	if (!r)
		r = hfe_share_mem(&h, HFE_MEM_SIZE, true);
	if (!r) {
		hfe_ring_layout(&h, Q);
		r = hfe_ring_start(&h);
	}
	if (r) {
		fail(c, "set-up with the backend request channel: %s",
		     r == HFE_REFUSED ? "refused" : strerror(-r));
	} else if (!(h.features & AP)) {
		fail(c, "the device does not offer VIRTIO_F_ACCESS_PLATFORM");
	} else {
		/* Nothing mapped: the rings wait for their misses' answers too. */
		if (hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, 4096, NULL, 100) != -ETIMEDOUT)
			fail(c, "a read through unmapped IOVAs ended at once");
		else if (!answer_misses(c, &h, sv[0]) &&
			 *(volatile uint8_t *)hfe_ptr(&h, HFE_HDR_OFF + 16) != VIRTIO_BLK_S_OK)
			fail(c, "the read completed with status 0x%x",
			     *(volatile uint8_t *)hfe_ptr(&h, HFE_HDR_OFF + 16));
	}
	hfe_close(&h);
	close(sv[0]);
	close(sv[1]);
	return c->why[0] ? -1 : 0;
}

/* Far more distinct pages than the table holds: all accepted, the oldest evicted, no growth. */
static int c_iotlb_flood(struct hctx *c)
{
	struct hfe h;
	int r = 0;

	if (!iommu_ring(c, &h, true)) {
		for (uint64_t i = 0; i < 50000 && !r; i++)
			r = iotlb(&h, VHOST_IOTLB_UPDATE, 0x100000000ull + i * 0x2000, 0x1000,
				  (uintptr_t)h.mem.host + (i % 256) * 0x1000, VIO_IOTLB_RO);
		if (r)
			fail(c, "the flood: %s", r == HFE_REFUSED ? "an update refused" : strerror(-r));
		else if (map(&h, 0, HFE_MEM_SIZE, VIO_IOTLB_RW) == 0)
			good_read(c, &h, "after the flood");
		else
			fail(c, "the update after the flood was refused");
		note(c, "50000 updates");
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

const struct hcase iotlb_cases[] = {
	{ "iotlb-good", c_iotlb_good },
	{ "iotlb-zero-size", c_iotlb_zero_size },
	{ "iotlb-wrapping-iova", c_iotlb_wrapping_iova },
	{ "iotlb-wrapping-uaddr", c_iotlb_wrapping_uaddr },
	{ "iotlb-outside-memory", c_iotlb_outside_memory },
	{ "iotlb-bad-perm", c_iotlb_bad_perm },
	{ "iotlb-no-access", c_iotlb_no_access },
	{ "iotlb-bad-type", c_iotlb_bad_type },
	{ "iotlb-miss-from-frontend", c_iotlb_miss_from_frontend },
	{ "iotlb-without-access-platform", c_iotlb_without_access_platform },
	{ "iotlb-invalidate-unknown", c_iotlb_invalidate_unknown },
	{ "iotlb-overlap-read-only", c_iotlb_overlap_read_only },
	{ "iotlb-miss-waits", c_iotlb_miss_waits },
	{ "iotlb-miss-asked", c_iotlb_miss_asked },
	{ "iotlb-flood", c_iotlb_flood },
	{ NULL, NULL },
};
