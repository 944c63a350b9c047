/* SPDX-License-Identifier: MIT */
/*
 * The device IOTLB (VIRTIO_F_ACCESS_PLATFORM): I/O virtual addresses to
 * host pointers with access rights, as the front-end's vIOMMU granted
 * them. One writer (the transport's control thread) changes it while any
 * number of data-path threads look up through vio_mem_translate: a
 * sequence lock, every field an atomic, so readers never wait and never
 * see a torn entry. Bounded: a full table evicts, it never grows.
 */
#ifndef VIO_IOTLB_INTERNAL_H
#define VIO_IOTLB_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Access rights, as vhost_iotlb_msg's perm carries them. */
#define VIO_IOTLB_RO 1u
#define VIO_IOTLB_WO 2u
#define VIO_IOTLB_RW 3u

/* Entries one table holds unless its owner asks for another bound. */
#define VIO_IOTLB_DEFAULT_MAX 2048u

/* One mapping [iova, last] -> [host, host + last - iova]; last, not size: no overflow. */
struct vio_iotlb_entry {
	_Atomic uint64_t iova, last, host;
	_Atomic uint32_t perm;
};

/* Called (any data-path thread) when a lookup found nothing at iova: ask the front-end. */
typedef void vio_iotlb_miss_fn(void *opaque, uint64_t iova, unsigned perm);

struct vio_iotlb {
	_Atomic uint32_t seq;  /* odd while the writer changes entries */
	_Atomic uint32_t n;    /* entries in use, sorted by iova, never overlapping */
	uint32_t cap;
	uint32_t evict_next;   /* writer only: the victim when full */
	uint32_t sn;           /* writer only: entries in shadow */
	struct vio_iotlb_entry *e;
	struct iotlb_shadow *shadow; /* writer only: the sorted copy it edits, cap + 1 slots */
	vio_iotlb_miss_fn *on_miss;
	void *miss_opaque;
	/* Traffic, for the owner's statistics. */
	_Atomic uint64_t misses, updates, invalidates, denied, evictions;
};

/*
 * An empty table of at most cap entries (0: VIO_IOTLB_DEFAULT_MAX) that
 * holds nothing until vio_iotlb_alloc gives it its storage (0 or -ENOMEM;
 * again: 0), so a device that never sees an IOMMU costs no memory. A table
 * without storage misses every lookup and refuses updates (-ENOMEM).
 * vio_iotlb_destroy frees the storage (the table stays usable, empty).
 */
void vio_iotlb_init(struct vio_iotlb *t, uint32_t cap);
int vio_iotlb_alloc(struct vio_iotlb *t);
void vio_iotlb_destroy(struct vio_iotlb *t);
void vio_iotlb_set_miss_fn(struct vio_iotlb *t, vio_iotlb_miss_fn *fn, void *opaque);

/*
 * Writer side (one thread). Update: perm 1..3, size > 0, neither range
 * wraps; what it overlaps is replaced. 0, -EINVAL or -ENOMEM. Invalidate: forget
 * [iova, iova + size), trimming entries that straddle it; 0 or -EINVAL.
 */
int vio_iotlb_update(struct vio_iotlb *t, uint64_t iova, uint64_t size, void *host, unsigned perm);
int vio_iotlb_invalidate(struct vio_iotlb *t, uint64_t iova, uint64_t size);
void vio_iotlb_flush(struct vio_iotlb *t);
uint32_t vio_iotlb_count(const struct vio_iotlb *t);

/*
 * Reader side (any thread): the host pointer of the longest prefix of
 * [iova, iova + len) that maps contiguously in host memory with every right
 * in perm, its length in *got (1..len). NULL when nothing maps iova
 * (*why -ENOENT: a miss) or what maps it lacks a right (*why -EACCES).
 */
void *vio_iotlb_translate(const struct vio_iotlb *t, uint64_t iova, uint64_t len, unsigned perm,
			  uint64_t *got, int *why);

/* A miss the data path cannot pass: count it and tell the owner (on_miss). */
void vio_iotlb_report_miss(struct vio_iotlb *t, uint64_t iova, unsigned perm);

#endif
