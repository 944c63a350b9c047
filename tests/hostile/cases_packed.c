/* SPDX-License-Identifier: MIT */
/*
 * Hostile packed rings (virtio 1.2, 2.8): the packed walker is its own code,
 * so it meets the same driver: chains longer than the ring, buffer ids
 * beyond it, addresses outside memory, indirect descriptors chained to
 * others or too large, readable after writable. Each case first gets one
 * good request through the ring (so the layout is right and the fault is
 * the case's), then breaks a rule; NEEDS_RESET and the named cause follow.
 */
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"

#define Q 16
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define IND VIRTQ_DESC_F_INDIRECT
#define PACKED VIO_BIT(VIRTIO_F_RING_PACKED)

/* The driver's place in the ring: next slot to fill and its wrap counter. */
struct pring {
	uint16_t slot;
	bool wrap;
};

static struct pvirtq_desc *pdesc(struct hfe *h)
{
	return (struct pvirtq_desc *)h->desc;
}

/* Fill the next slot; its flags (made available) are stored last when `publish`. */
static uint16_t pput(struct hfe *h, struct pring *p, uint64_t addr, uint32_t len, uint16_t id,
		     uint16_t flags, bool publish, uint16_t *flags_out)
{
	struct pvirtq_desc *d = &pdesc(h)[p->slot];
	uint16_t slot = p->slot;

	flags |= p->wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
	d->addr = addr;
	d->len = len;
	d->id = id;
	if (publish)
		__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
	else
		*flags_out = flags;
	if (++p->slot == Q) {
		p->slot = 0;
		p->wrap = !p->wrap;
	}
	return slot;
}

/* A packed ring that has served one good read: the next slots are the case's. */
static int packed_ring(struct hctx *c, struct hfe *h, uint64_t features, struct pring *p)
{
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN };
	volatile uint8_t *status;
	uint16_t head, flags;

	if (setup(c, h, PACKED | features, Q))
		return -1;
	status = hfe_ptr(h, HFE_HDR_OFF + 16);
	if (!(h->features & PACKED))
		return fail(c, "the device does not offer VIRTIO_F_RING_PACKED");
	*p = (struct pring){ .slot = 0, .wrap = true };
	memcpy(hfe_ptr(h, HFE_HDR_OFF), &hdr, sizeof(hdr));
	*status = 0xee;
	head = pput(h, p, HFE_HDR_OFF, 16, 0, NEXT, false, &flags);
	pput(h, p, HFE_DATA_OFF, 512, 0, NEXT | WR, true, NULL);
	pput(h, p, HFE_HDR_OFF + 16, 1, 0, WR, true, NULL);
	__atomic_store_n(&pdesc(h)[head].flags, flags, __ATOMIC_RELEASE);
	hfe_kick(h);
	for (int i = 0; i < 200 && *status == 0xee; i++)
		usleep(10000);
	if (*status != VIRTIO_BLK_S_OK)
		return fail(c, "a good read on the packed ring: status 0x%x", *status);
	return 0;
}

/* Write a chain (elements in order, the head's flags last), kick, expect the fault. */
struct elem {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};

static int packed_fault(struct hctx *c, uint64_t features, const struct elem *e, unsigned n,
			enum vio_virtq_fault want)
{
	struct pring p;
	struct hfe h;
	uint16_t head = 0, flags = 0;

	if (!packed_ring(c, &h, features, &p)) {
		for (unsigned i = 0; i < n; i++) {
			uint16_t f, s = pput(&h, &p, e[i].addr, e[i].len, e[i].id, e[i].flags, i > 0, &f);

			if (i == 0) {
				head = s;
				flags = f;
			}
		}
		__atomic_store_n(&pdesc(&h)[head].flags, flags, __ATOMIC_RELEASE);
		hfe_kick(&h);
		expect_fault(c, &h, want, VIO_VQ_OK);
	}
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

static int c_packed_chain_longer_than_ring(struct hctx *c)
{
	struct elem e[Q + 1];

	for (unsigned i = 0; i <= Q; i++)
		e[i] = (struct elem){ HFE_DATA_OFF, 512, 1, NEXT };
	e[Q].flags = WR;
	return packed_fault(c, 0, e, Q + 1, VIO_VQ_CHAIN_TOO_LONG);
}

static int c_packed_id_beyond_ring(struct hctx *c)
{
	const struct elem e[] = { { HFE_HDR_OFF, 16, Q, NEXT }, { HFE_HDR_OFF + 16, 1, Q, WR } };

	return packed_fault(c, 0, e, 2, VIO_VQ_BAD_HEAD);
}

static int c_packed_addr_outside_memory(struct hctx *c)
{
	const struct elem e[] = { { HFE_HDR_OFF, 16, 1, NEXT },
				  { HFE_MEM_SIZE + 4096ull, 512, 1, NEXT | WR },
				  { HFE_HDR_OFF + 16, 1, 1, WR } };

	return packed_fault(c, 0, e, 3, VIO_VQ_BAD_ADDR);
}

static int c_packed_read_after_write(struct hctx *c)
{
	const struct elem e[] = { { HFE_HDR_OFF, 16, 1, NEXT }, { HFE_HDR_OFF + 16, 1, 1, NEXT | WR },
				  { HFE_DATA_OFF, 512, 1, 0 } };

	return packed_fault(c, 0, e, 3, VIO_VQ_READ_AFTER_WRITE);
}

static int c_packed_indirect_chained(struct hctx *c)
{
	const struct elem e[] = { { HFE_HDR_OFF, 16, 1, NEXT }, { HFE_TABLE_OFF, 48, 1, IND } };

	return packed_fault(c, VIO_BIT(VIRTIO_F_INDIRECT_DESC), e, 2, VIO_VQ_INDIRECT_NEXT);
}

/* 16M entries claimed: far past max(ring size, 256). */
static int c_packed_indirect_huge(struct hctx *c)
{
	const struct elem e[] = { { HFE_TABLE_OFF, 16u << 24, 1, IND } };

	return packed_fault(c, VIO_BIT(VIRTIO_F_INDIRECT_DESC), e, 1, VIO_VQ_BAD_INDIRECT);
}

const struct hcase packed_cases[] = {
	{ "packed-chain-longer-than-ring", c_packed_chain_longer_than_ring },
	{ "packed-id-beyond-ring", c_packed_id_beyond_ring },
	{ "packed-addr-outside-memory", c_packed_addr_outside_memory },
	{ "packed-read-after-write", c_packed_read_after_write },
	{ "packed-indirect-chained", c_packed_indirect_chained },
	{ "packed-indirect-huge", c_packed_indirect_huge },
	{ NULL, NULL },
};
