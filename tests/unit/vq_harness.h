/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the virtqueue core: one memory region whose guest address
 * differs from its host pointer, queues laid out in it (driver side by
 * vio_virtq_driver_init, device side by vio_virtq_device_init over the same
 * addresses), hand-written ring helpers, and a checked traffic engine in
 * which the device verifies every byte the driver wrote and vice versa.
 * The engine never uses cmocka asserts itself (it may run in a thread); it
 * returns -1 with a message in t->err.
 */
#ifndef VQ_HARNESS_H
#define VQ_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mem_internal.h"
#include "core/virtq_internal.h"

#define VQH_GPA 0x100000000ull
#define VQH_MAX_CHAIN 64
#define VQH_HELD_MAX 16

/* A layout, passed to parametrised tests as their prestate. */
struct vqh_layout {
	const char *name;
	bool packed;
};

extern const struct vqh_layout vqh_split, vqh_packed;

/* Register one test for both layouts / only one. Names say which. */
#define VQH_BOTH(f)                                                        \
	{ "split_" #f, f, NULL, NULL, (void *)&vqh_split },                 \
	{ "packed_" #f, f, NULL, NULL, (void *)&vqh_packed }
#define VQH_SPLIT(f) { "split_" #f, f, NULL, NULL, (void *)&vqh_split }
#define VQH_PACKED(f) { "packed_" #f, f, NULL, NULL, (void *)&vqh_packed }

static inline uint64_t vqh_bit(unsigned b)
{
	return 1ull << b;
}

/* Features for a layout plus extras (VERSION_1 always). */
uint64_t vqh_features(const struct vqh_layout *l, uint64_t extra);

/* ---- memory ---- */

struct vqh_mem {
	uint8_t *host;
	uint64_t gpa;
	size_t len;
	size_t used; /* bump allocator */
	struct vio_mem map;
};

/* A region of len bytes at VQH_GPA (heap memory, so ASan sees overflows). */
int vqh_mem_init(struct vqh_mem *m, size_t len);
void vqh_mem_fini(struct vqh_mem *m);
void *vqh_mem_alloc(struct vqh_mem *m, size_t len, size_t align);
uint64_t vqh_gpa(const struct vqh_mem *m, const void *p);

/* ---- one queue, both sides ---- */

struct vqh_q {
	struct vqh_mem *m;
	uint64_t features;
	uint16_t size, indirect_max;
	struct vio_virtq drv, dev;
	struct vio_virtq_addrs addrs;
	void *area;
	/* device fault callback record */
	unsigned nfaults;
	enum vio_virtq_fault fault;
	unsigned fault_index;
	/* hand-written ring state (tests that bypass the driver side) */
	uint16_t hand_avail;     /* split: next avail idx */
	uint16_t hand_next;      /* packed: next slot */
	bool hand_wrap;          /* packed: its wrap counter */
};

/* Lay out the driver area in m, init both sides, install a counting fault handler. */
int vqh_q_init(struct vqh_q *q, struct vqh_mem *m, uint64_t features, uint16_t size,
	       uint16_t indirect_max);
void vqh_q_fini(struct vqh_q *q);

/* Bytes a queue needs in the region (area + slack). */
size_t vqh_q_bytes(uint64_t features, uint16_t size, uint16_t indirect_max);

/* Split by hand: write a descriptor / make a head available (idx published with release). */
void vqh_split_desc(struct vqh_q *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next);
void vqh_split_publish(struct vqh_q *q, uint16_t head);
/* Split: set avail->idx to an arbitrary value. */
void vqh_split_set_avail_idx(struct vqh_q *q, uint16_t idx);

/*
 * Packed by hand: write n descriptors at the next slots with the avail/used
 * bits of the current wrap counter (other flags from d[i].flags), head last.
 */
void vqh_packed_publish(struct vqh_q *q, const struct pvirtq_desc *d, unsigned n);

/* Split event index words. */
uint16_t *vqh_split_used_event(struct vqh_q *q);  /* written by the driver */
uint16_t *vqh_split_avail_event(struct vqh_q *q); /* written by the device */

/* ---- patterns ---- */

uint8_t vqh_pat(uint32_t seq, uint32_t off, uint32_t salt);
void vqh_fill(void *p, size_t len, uint32_t seq, uint32_t off0, uint32_t salt);
/* Offset of the first mismatch, or -1. */
long vqh_check(const void *p, size_t len, uint32_t seq, uint32_t off0, uint32_t salt);

/* ---- checked traffic ---- */

struct vqh_traffic_cfg {
	uint16_t max_chain; /* iovecs per chain, 1..64 */
	uint16_t max_len;   /* bytes per iovec, >= 1 */
	uint16_t burst;     /* adds / pops per step, >= 1 */
	bool ooo;           /* device holds back chains and completes them reversed */
};

struct vqh_shape {
	uint16_t n, nout;
	uint16_t len[VQH_MAX_CHAIN];
	uint32_t out_bytes, in_bytes;
};

struct vqh_req {
	uint32_t seq;
	bool busy;
	uint8_t *buf; /* slot memory */
};

struct vqh_traffic {
	struct vqh_q *q;
	struct vqh_traffic_cfg cfg;
	uint64_t target;   /* total chains to move */
	size_t slot_bytes;
	struct vqh_req *reqs; /* q->size slots */
	uint16_t *free_slots;
	unsigned nfree_slots;
	/* driver side */
	uint64_t added, reaped;
	uint32_t max_reaped_seq;
	uint64_t reordered; /* reaped after a later sequence number */
	uint64_t steps;
	/* device side */
	uint64_t popped;
	struct vio_used_elem held[VQH_HELD_MAX];
	unsigned nheld;
	struct vio_chain *chains;
	struct iovec *iovs;
	uint64_t slots_used; /* device: ring slots consumed (ndesc sum) */
	/* shared */
	atomic_bool stop;
	atomic_flag err_taken;
	char err[512];
};

/* Region bytes the traffic buffers need for a queue of this size. */
size_t vqh_traffic_bytes(uint16_t size, const struct vqh_traffic_cfg *cfg);
int vqh_traffic_init(struct vqh_traffic *t, struct vqh_q *q, const struct vqh_traffic_cfg *cfg);
void vqh_traffic_fini(struct vqh_traffic *t);
void vqh_shape(const struct vqh_traffic *t, uint32_t seq, struct vqh_shape *s);
/* Written length the device reports for seq (varies, 0..in_bytes). */
uint32_t vqh_wlen(uint32_t seq, uint32_t in_bytes);

/* Driver: add up to max chains (stops at -ENOSPC or target), then kick_prepare. Returns added. */
int vqh_drv_fill(struct vqh_traffic *t, unsigned max, bool *kick);
/* Driver: reap and check everything used. Returns reaped. */
int vqh_drv_reap(struct vqh_traffic *t);
/* Device: pop up to max, check, write, push (or hold). flush: push held ones. Returns popped. */
int vqh_dev_serve(struct vqh_traffic *t, unsigned max);
void vqh_dev_flush(struct vqh_traffic *t);
/* Move t->target more chains in one thread / in two threads. 0 or -1 (see t->err). */
int vqh_run(struct vqh_traffic *t, uint64_t ops);
int vqh_run_threads(struct vqh_traffic *t, uint64_t ops);

#endif
