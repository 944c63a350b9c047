/* SPDX-License-Identifier: MIT */
/*
 * Guest memory map: the regions a driver's addresses may point into, and the
 * one translate function every guest address in vio passes through.
 */
#ifndef VIO_MEM_H
#define VIO_MEM_H

#include <stddef.h>
#include <stdint.h>

#define VIO_MEM_MAX_REGIONS 64

struct vio_mem_region {
	uint64_t gpa;   /* guest physical address (what descriptors carry) */
	uint64_t size;  /* bytes, > 0 */
	void *host;     /* where this process sees the region */
	uint64_t uaddr; /* the frontend's virtual address (vhost-user ring addresses); 0 if unused */
};

struct vio_mem {
	uint32_t nregions;
	struct vio_mem_region regions[VIO_MEM_MAX_REGIONS];
};

/* Empty map. */
void vio_mem_init(struct vio_mem *m);

/*
 * Add a region. -EINVAL for a zero size or a range that wraps 64 bits (as
 * gpa, as uaddr or as host pointer), -EEXIST if it overlaps a region already
 * present in guest-physical space, -ENOSPC when the map is full.
 */
int vio_mem_add(struct vio_mem *m, const struct vio_mem_region *r);

/* Remove the region with exactly this gpa and size: -ENOENT if none. */
int vio_mem_remove(struct vio_mem *m, uint64_t gpa, uint64_t size);

/*
 * Host pointer for [gpa, gpa + len), or NULL unless the whole range lies in
 * one region, len > 0 and nothing overflows. The only way vio turns a guest
 * address into a pointer. Safe from many threads while the map is unchanged.
 */
void *vio_mem_translate(const struct vio_mem *m, uint64_t gpa, uint64_t len);

/* The same for a frontend virtual address (vhost-user SET_VRING_ADDR): the gpa, or -EFAULT. */
int vio_mem_uaddr_to_gpa(const struct vio_mem *m, uint64_t uaddr, uint64_t len, uint64_t *gpa);

/* Driver side: the gpa of host memory [p, p + len) inside one region, or -EFAULT. */
int vio_mem_host_to_gpa(const struct vio_mem *m, const void *p, uint64_t len, uint64_t *gpa);

#endif
