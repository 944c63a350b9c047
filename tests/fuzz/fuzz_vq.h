/* SPDX-License-Identifier: MIT */
/*
 * The device-side queue harness the two walker targets share. Guest memory
 * is a set of heap blocks, each its own region of the map and each exactly
 * as large as what it holds, so that a read one byte past a descriptor
 * table, an indirect table or a ring lands in an AddressSanitizer redzone:
 *  - A, 32 KiB at FZQ_A_GPA: data buffers and a scratch table area;
 *  - B, 4 KiB, right after A in guest-physical space but elsewhere in the
 *    host: a buffer straddling the two must be refused;
 *  - the ring's three parts (split: descriptor table, available ring, used
 *    ring; packed: descriptor ring, driver and device event structures);
 *  - indirect tables, each allocated at exactly its length (FZQ_TABLES of
 *    them live at a time, the oldest replaced).
 * The layout targets write the ring as a driver would (or worse); this
 * harness pops through the public vio_virtq_pop_burst, pushes back what
 * was popped, and checks after every call:
 *  - pop returns -EIO or 0..n; a chain's iovecs number at most iov_cap,
 *    are non-empty, lie wholly inside one block, and add up to
 *    out/in_bytes; its id is below the queue size and it took 1..size
 *    ring slots;
 *  - the ring position moves by exactly what was returned;
 *  - pop writes nothing to guest memory (packed: the device event only),
 *    push writes only the used ring (packed: the descriptor ring);
 *  - a fault is reported to the owner exactly once and then every call is
 *    inert: its documented result, no byte of guest memory written.
 */
#ifndef VIO_FUZZ_VQ_H
#define VIO_FUZZ_VQ_H

#include "fuzz.h"
#include "core/mem_internal.h"
#include "core/virtq_internal.h"

#define FZQ_A_GPA 0x100000000ull
#define FZQ_A_LEN (32u << 10)
#define FZQ_B_LEN 4096u
#define FZQ_SCRATCH_LEN (8u << 10) /* start of A: tables written entry by entry */
#define FZQ_TABLES 24
#define FZQ_BURST_MAX 64
#define FZQ_HELD_MAX 512

/* One block of guest memory and its region. */
struct fzq_block {
	uint8_t *p;
	size_t len;
	uint64_t gpa;
	uint8_t *snap; /* its bytes before a call that may not write there */
	bool ring;     /* part of the ring (dropped by the "rings gone" remap) */
};

enum { FZQ_BLK_A, FZQ_BLK_B, FZQ_BLK_R0, FZQ_BLK_R1, FZQ_BLK_R2, FZQ_BLK_T0 };
#define FZQ_NBLOCKS (FZQ_BLK_T0 + FZQ_TABLES)

struct fzq {
	bool packed;
	uint16_t size;
	uint16_t iov_cap;
	struct fzq_block blk[FZQ_NBLOCKS];
	unsigned next_table;         /* the table block replaced next */
	unsigned map_mode;           /* 0 all, 1 all but B, 2 all but the ring, 3 nothing */
	struct vio_mem map;          /* what pops translate through, per map_mode */
	struct vio_virtq dev;
	unsigned nfaults, fault_index;
	/* the driver's side, written by hand */
	struct virtq_desc *sdesc;    /* split */
	struct virtq_avail *avail;
	struct virtq_used *used;
	struct pvirtq_desc *pdesc;   /* packed */
	struct pvirtq_event_suppress *drv_event, *dev_event;
	uint16_t hand_avail;         /* split: the driver's next avail index */
	uint16_t hand_next;          /* packed: next slot */
	bool hand_wrap;              /*         and its wrap counter */
	struct vio_used_elem held[FZQ_HELD_MAX];
	unsigned nheld;
};

/* Read the set-up bytes (features, size, iov_cap) and build the queue. */
void fzq_init(struct fzq *z, struct fz *in, bool packed);
void fzq_fini(struct fzq *z);

/* A guest address and a length from the input, biased toward interesting places. */
uint64_t fzq_addr(struct fzq *z, struct fz *in, uint32_t *len);

/* A new indirect table of n entries (16 bytes each) in a block of its own; its gpa in *gpa. */
void *fzq_table(struct fzq *z, unsigned n, uint64_t *gpa);

/* Where scratch table entries go: slot v of the area at the start of A, and its gpa. */
void *fzq_scratch(struct fzq *z, uint16_t v);

/* The driver's side, by hand. */
void fzq_split_publish(struct fzq *z, uint16_t head);
void fzq_split_set_avail_idx(struct fzq *z, uint16_t idx);
/* Packed: n descriptors at the next slots with the current lap's AVAIL/USED bits, head last. */
void fzq_packed_publish(struct fzq *z, const struct pvirtq_desc *d, unsigned n);

/* The operations both layouts have. Each reads its arguments from the input. */
void fzq_pop(struct fzq *z, struct fz *in);
void fzq_notify(struct fzq *z, struct fz *in);
void fzq_remap(struct fzq *z, struct fz *in);
void fzq_set_pos(struct fzq *z, struct fz *in);
void fzq_raw(struct fzq *z, struct fz *in);

#endif
