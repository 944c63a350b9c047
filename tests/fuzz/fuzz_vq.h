/* SPDX-License-Identifier: MIT */
/*
 * The device-side queue harness the two walker targets share. A ring lives
 * in region A (64 KiB of heap at guest address VQH_GPA, laid out by
 * tests/unit/vq_harness.c), with an indirect-table area and a data area
 * after it; region B (4 KiB of heap) sits right after A in guest-physical
 * space but elsewhere in the host, so a buffer straddling the two must be
 * refused. The layout target writes the ring from its input; this harness
 * pops through the public vio_virtq_pop_burst, pushes back what was
 * popped, and checks after every call:
 *  - pop returns -EIO or 0..n; a chain's iovecs number at most iov_cap,
 *    are non-empty, lie wholly inside A or B, and add up to out/in_bytes;
 *    its id is below the queue size and it took 1..size ring slots;
 *  - the ring position moves by exactly what was returned;
 *  - pop writes nothing to guest memory (packed: the device event only),
 *    push writes only the used ring (packed: the descriptor ring);
 *  - a fault is reported to the owner exactly once and then every call is
 *    inert: its documented result, no byte of guest memory written.
 */
#ifndef VIO_FUZZ_VQ_H
#define VIO_FUZZ_VQ_H

#include "fuzz.h"
#include "../unit/vq_harness.h"

#define FZQ_A_LEN (64u << 10)
#define FZQ_B_LEN 4096u
#define FZQ_TABLES_LEN (16u << 10)
#define FZQ_BURST_MAX 64
#define FZQ_HELD_MAX 512

struct fzq {
	bool packed;
	struct vqh_mem m;     /* region A, and the full map (A + B) */
	uint8_t *b;           /* region B */
	uint64_t b_gpa;
	struct vqh_q q;
	uint8_t *tables, *data;
	size_t data_len;
	struct vio_mem map_a, map_b, map_none;
	const struct vio_mem *map; /* what pops translate through (remap changes it) */
	uint16_t iov_cap;
	uint8_t *snap;        /* A then B, before a call that must not write there */
	struct vio_used_elem held[FZQ_HELD_MAX];
	unsigned nheld;
};

/* Read the set-up bytes (features, size, iov_cap) and build the queue; false: input unusable. */
bool fzq_init(struct fzq *z, struct fz *in, bool packed);
void fzq_fini(struct fzq *z);

/* A guest address and a length from the input, biased toward interesting places. */
uint64_t fzq_addr(struct fzq *z, struct fz *in, uint32_t *len);

/* The operations both layouts have. Each reads its arguments from the input. */
void fzq_pop(struct fzq *z, struct fz *in);
void fzq_notify(struct fzq *z, struct fz *in);
void fzq_remap(struct fzq *z, struct fz *in);
void fzq_set_pos(struct fzq *z, struct fz *in);
void fzq_raw(struct fzq *z, struct fz *in);

#endif
