/* SPDX-License-Identifier: MIT */
/*
 * The one translate, as inline functions: vio_mem_translate and
 * vio_mem_host_to_gpa (mem.c) are these bodies, and the ring code calls them
 * directly so the per-descriptor lookup costs no call. Never add a second
 * way to turn a guest address into a pointer: change these.
 */
#ifndef VIO_MEM_INTERNAL_H
#define VIO_MEM_INTERNAL_H

#include <errno.h>

#include "vio/mem.h"

struct vio_mem {
	uint32_t nregions;
	struct vio_mem_region regions[VIO_MEM_MAX_REGIONS];
};

/* The same as vio_mem_new for a map the caller embeds (transports, tests). */
static inline void vio_mem_init(struct vio_mem *m)
{
	m->nregions = 0;
}

/* True when [addr, addr + len) lies inside [start, start + size); len > 0. */
static inline int vio_mem_inside(uint64_t addr, uint64_t len, uint64_t start, uint64_t size)
{
	return addr >= start && addr - start < size && len <= size - (addr - start);
}

static inline void *vio_mem_translate_inl(const struct vio_mem *m, uint64_t gpa, uint64_t len)
{
	const struct vio_mem_region *r = m->regions, *end = r + m->nregions;

	if (len == 0)
		return NULL;
	for (; r < end; r++) {
		if (vio_mem_inside(gpa, len, r->gpa, r->size))
			return (char *)r->host + (gpa - r->gpa);
	}
	return NULL;
}

static inline int vio_mem_host_to_gpa_inl(const struct vio_mem *m, const void *p, uint64_t len,
					  uint64_t *gpa)
{
	const struct vio_mem_region *r = m->regions, *end = r + m->nregions;

	if (len == 0)
		return -EFAULT;
	for (; r < end; r++) {
		if (vio_mem_inside((uintptr_t)p, len, (uintptr_t)r->host, r->size)) {
			*gpa = r->gpa + ((uintptr_t)p - (uintptr_t)r->host);
			return 0;
		}
	}
	return -EFAULT;
}

#endif
