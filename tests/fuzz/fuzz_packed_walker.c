/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the packed ring's device side (packed_device.c: the walker,
 * the one-descriptor fast path, push and the notification decisions) under
 * a driver that writes anything. The input is a few set-up bytes (see
 * fzq_init) and then a stream of operations, each an opcode byte and its
 * arguments: make descriptors available (head last, as a driver does),
 * write indirect table entries or whole tables, scribble a slot's flags
 * (bogus AVAIL/USED bits), pop and push, notification calls, set_pos,
 * remap, raw bytes. fuzz_vq.c checks the invariants after every call. At
 * most FZ_OPS operations per input.
 */
#include "fuzz_vq.h"

#define FZ_OPS 256
#define FZ_CHAIN_MAX 16

static void put_desc(struct fzq *z, struct fz *in, struct pvirtq_desc *d)
{
	uint32_t len;
	uint64_t addr = fzq_addr(z, in, &len);

	d->addr = addr;
	d->len = len;
	d->flags = fz_u8(in); /* NEXT, WRITE, INDIRECT and bits nobody defined */
	d->id = fz_u8(in);    /* ids up to 255: beyond small queues too */
}

/*
 * Make a chain available. cfg bit 6: as written (any flags); else well
 * formed: NEXT on all but the last, readable then writable. cfg bit 7: one
 * indirect descriptor pointing at a table of exactly the chain instead.
 */
static void chain(struct fzq *z, struct fz *in)
{
	uint8_t cfg = fz_u8(in);
	unsigned n = 1 + cfg % FZ_CHAIN_MAX, nout = fz_u8(in) % (n + 1);
	bool raw = cfg & 0x40;
	struct pvirtq_desc d[FZ_CHAIN_MAX];
	uint16_t id = fz_u8(in);
	uint64_t tbl_gpa = 0;
	struct pvirtq_desc *tbl = cfg & 0x80 ? fzq_table(z, n, &tbl_gpa) : NULL;

	for (unsigned i = 0; i < n; i++) {
		put_desc(z, in, &d[i]);
		if (!raw) {
			d[i].flags = (uint16_t)((i + 1 < n && !tbl ? VIRTQ_DESC_F_NEXT : 0) |
						(i >= nout ? VIRTQ_DESC_F_WRITE : 0));
			d[i].id = id; /* the last one's counts */
		}
		if (tbl)
			tbl[i] = d[i];
	}
	if (tbl) {
		struct pvirtq_desc one = { tbl_gpa, n * 16u, id, VIRTQ_DESC_F_INDIRECT };

		fzq_packed_publish(z, &one, 1);
	} else {
		fzq_packed_publish(z, d, n);
	}
}

static void misc(struct fzq *z, struct fz *in)
{
	switch (fz_u8(in) % 4) {
	case 0: fzq_remap(z, in); break;
	case 1: fzq_set_pos(z, in); break;
	case 2: fzq_raw(z, in); break;
	default: {
		/* A slot's flags as anything: AVAIL/USED of either lap, or both, or neither. */
		struct pvirtq_desc *slot = &z->pdesc[fz_u8(in) % z->size];

		slot->flags = fz_u16(in);
		break;
	}
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
	struct pvirtq_desc d;

	fzq_init(&z, &in, true);
	for (unsigned ops = 0; ops < FZ_OPS && !fz_empty(&in); ops++) {
		switch (fz_u8(&in) % 8) {
		case 0:
			/* One descriptor made available as written. */
			put_desc(&z, &in, &d);
			fzq_packed_publish(&z, &d, 1);
			break;
		case 1:
			/* An entry of a table the driver lays out by hand, in the scratch area. */
			put_desc(&z, &in, fzq_scratch(&z, fz_u16(&in)));
			break;
		case 2:
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
