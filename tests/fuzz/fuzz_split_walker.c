/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the split ring's device side (split_device.c: the walker,
 * the one-descriptor fast path, push and the notification decisions) under
 * a driver that writes anything. The input is a few set-up bytes (see
 * fzq_init) and then a stream of operations, each an opcode byte and its
 * arguments: write a descriptor, an indirect table entry or a whole chain,
 * publish a head, move avail->idx, pop and push, notification calls,
 * set_pos, remap, raw bytes. fuzz_vq.c checks the invariants after every
 * call. At most FZ_OPS operations per input, so every input is cheap.
 */
#include "fuzz_vq.h"

#define FZ_OPS 256

/* One descriptor of the ring or of a table: address, length, flags, next. */
static void put_desc(struct fzq *z, struct fz *in, struct virtq_desc *d)
{
	uint32_t len;
	uint64_t addr = fzq_addr(z, in, &len);

	d->addr = addr;
	d->len = len;
	d->flags = fz_u8(in); /* NEXT, WRITE, INDIRECT and bits nobody defined */
	d->next = fz_u8(in);
}

/*
 * A well-formed chain, so deep states are reached often: n descriptors at
 * consecutive indices (readable then writable, linked by NEXT), or one
 * indirect descriptor pointing at a table of exactly n entries built the
 * same way. Then publish its head.
 */
static void chain(struct fzq *z, struct fz *in)
{
	uint8_t cfg = fz_u8(in);
	uint16_t size = z->size, head = fz_u8(in) % size;
	unsigned n = 1 + cfg % 16, nout = fz_u8(in) % (n + 1);
	uint64_t tbl_gpa = 0;
	struct virtq_desc *tbl = cfg & 0x80 ? fzq_table(z, n, &tbl_gpa) : NULL;

	for (unsigned i = 0; i < n; i++) {
		struct virtq_desc d;

		put_desc(z, in, &d);
		d.flags = (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
				     (i >= nout ? VIRTQ_DESC_F_WRITE : 0));
		if (tbl) {
			d.next = (uint16_t)(i + 1);
			tbl[i] = d;
		} else {
			d.next = (uint16_t)((head + i + 1) % size);
			z->sdesc[(head + i) % size] = d;
		}
	}
	if (tbl)
		z->sdesc[head] = (struct virtq_desc){ tbl_gpa, n * 16u, VIRTQ_DESC_F_INDIRECT, 0 };
	fzq_split_publish(z, head);
}

static void misc(struct fzq *z, struct fz *in)
{
	switch (fz_u8(in) % 4) {
	case 0: fzq_remap(z, in); break;
	case 1: fzq_set_pos(z, in); break;
	case 2: fzq_raw(z, in); break;
	default:
		/* The driver's index anywhere (too far ahead, behind); it publishes from there. */
		fzq_split_set_avail_idx(z, fz_u16(in));
		break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_log_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct fzq z;
	struct virtq_desc d;

	fzq_init(&z, &in, false);
	for (unsigned ops = 0; ops < FZ_OPS && !fz_empty(&in); ops++) {
		switch (fz_u8(&in) % 8) {
		case 0:
			put_desc(&z, &in, &d);
			z.sdesc[fz_u8(&in) % z.size] = d;
			break;
		case 1:
			/* An entry of a table the driver lays out by hand, in the scratch area. */
			put_desc(&z, &in, fzq_scratch(&z, fz_u16(&in)));
			break;
		case 2:
			/* Any head, the queue's size and beyond included. */
			fzq_split_publish(&z, fz_u16(&in) % (2u * z.size + 1));
			break;
		case 3: chain(&z, &in); break;
		case 4:
		case 5: fzq_pop(&z, &in); break;
		case 6: fzq_notify(&z, &in); break;
		default: misc(&z, &in); break;
		}
	}
	fzq_fini(&z);
	return 0;
}
