/* SPDX-License-Identifier: MIT */
/*
 * The one translate, as inline functions: vio_mem_translate and
 * vio_mem_host_to_gpa (mem.c) are these bodies, and the ring code calls them
 * directly so the per-descriptor lookup costs no call. Never add a second
 * way to turn a guest address into a pointer: change these. With an IOTLB
 * attached (VIRTIO_F_ACCESS_PLATFORM) addresses are IOVAs, looked up there
 * with the access the device needs; without one they are guest-physical.
 */
#ifndef VIO_MEM_INTERNAL_H
#define VIO_MEM_INTERNAL_H

#include <errno.h>
#include <stdbool.h>

#include "iotlb_internal.h"
#include "vio/mem.h"

/* What the device does with a range: the rights a translation needs. */
#define VIO_MEM_READ VIO_IOTLB_RO
#define VIO_MEM_WRITE VIO_IOTLB_WO
#define VIO_MEM_RW VIO_IOTLB_RW

struct vio_mem {
	uint32_t nregions;
	struct vio_iotlb *iotlb; /* non-NULL: addresses are IOVAs translated here (not regions) */
	struct vio_mem_region regions[VIO_MEM_MAX_REGIONS];
};

/* The same as vio_mem_new for a map the caller embeds (transports, tests). */
static inline void vio_mem_init(struct vio_mem *m)
{
	m->nregions = 0;
	m->iotlb = NULL;
}

/* True when [addr, addr + len) lies inside [start, start + size); len > 0. */
static inline int vio_mem_inside(uint64_t addr, uint64_t len, uint64_t start, uint64_t size)
{
	return addr >= start && addr - start < size && len <= size - (addr - start);
}

static inline void *vio_mem_translate_gpa_inl(const struct vio_mem *m, uint64_t gpa, uint64_t len)
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

/*
 * The host pointer of the longest prefix of [addr, addr + len) that is
 * contiguous in this process, its length in *got (the whole range without
 * an IOTLB), for a device that accesses it as perm (VIO_MEM_*). NULL: see
 * vio_mem_why.
 */
static inline void *vio_mem_translate_part_inl(const struct vio_mem *m, uint64_t addr,
					       uint64_t len, unsigned perm, uint64_t *got)
{
	if (__builtin_expect(m->iotlb != NULL, 0)) {
		int why;

		return vio_iotlb_translate(m->iotlb, addr, len, perm, got, &why);
	}
	*got = len;
	return vio_mem_translate_gpa_inl(m, addr, len);
}

/* The whole range as one pointer, or NULL. */
static inline void *vio_mem_translate_inl(const struct vio_mem *m, uint64_t addr, uint64_t len,
					  unsigned perm)
{
	uint64_t got;
	void *p = vio_mem_translate_part_inl(m, addr, len, perm, &got);

	return p && got == len ? p : NULL;
}

/*
 * Why [addr, addr + len) did not translate for perm: -EAGAIN when a piece
 * of it is not in the IOTLB yet (the miss was reported to the IOTLB's owner,
 * who asks the front-end: try again after its update) or an update landed
 * since the failed lookup; else -EFAULT (outside memory, forbidden by the
 * rights, or in pieces when whole, the caller needing one range).
 */
int vio_mem_why(const struct vio_mem *m, uint64_t addr, uint64_t len, unsigned perm, bool whole);

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
