/* SPDX-License-Identifier: MIT */
/*
 * The guest memory map and its translate function. Every guest address in
 * the data path comes through vio_mem_translate (whose body, in
 * mem_internal.h, the rings inline); it must never return a pointer to a
 * range that is not wholly inside one region.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem_internal.h"

int vio_mem_new(struct vio_mem **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void vio_mem_free(struct vio_mem *m)
{
	free(m);
}

void vio_mem_clear(struct vio_mem *m)
{
	vio_mem_init(m);
}

static int range_wraps(uint64_t start, uint64_t size)
{
	return size == 0 || start + size - 1 < start;
}

int vio_mem_add(struct vio_mem *m, const struct vio_mem_region *r)
{
	if (range_wraps(r->gpa, r->size) || range_wraps((uintptr_t)r->host, r->size))
		return -EINVAL;
	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct vio_mem_region *o = &m->regions[i];
		if (r->gpa <= o->gpa + o->size - 1 && o->gpa <= r->gpa + r->size - 1)
			return -EEXIST;
	}
	if (m->nregions == VIO_MEM_MAX_REGIONS)
		return -ENOSPC;
	m->regions[m->nregions++] = *r;
	return 0;
}

int vio_mem_remove(struct vio_mem *m, uint64_t gpa, uint64_t size)
{
	for (uint32_t i = 0; i < m->nregions; i++) {
		if (m->regions[i].gpa == gpa && m->regions[i].size == size) {
			m->regions[i] = m->regions[--m->nregions];
			return 0;
		}
	}
	return -ENOENT;
}

unsigned vio_mem_nregions(const struct vio_mem *m)
{
	return m->nregions;
}

void *vio_mem_translate(const struct vio_mem *m, uint64_t gpa, uint64_t len)
{
	return vio_mem_translate_inl(m, gpa, len, VIO_MEM_RW);
}

int vio_mem_why(const struct vio_mem *m, uint64_t addr, uint64_t len, unsigned perm, bool whole)
{
	uint64_t got, start = addr;
	bool pieces = false;
	int why;

	if (!m->iotlb)
		return -EFAULT;
	/* Walk the pieces that translate up to the first one that does not. */
	while (len) {
		if (!vio_iotlb_translate(m->iotlb, addr, len, perm, &got, &why)) {
			if (why != -ENOENT)
				return -EFAULT;
			vio_iotlb_report_miss(m->iotlb, addr, perm);
			return -EAGAIN;
		}
		if (got == len && !pieces)
			break;
		pieces = true;
		addr += got;
		len -= got;
	}
	if (pieces && whole)
		return -EFAULT; /* every piece maps, but not as the one range the caller needs */
	/*
	 * It all maps now: an update landed since the caller's lookup. Report
	 * a miss anyway, so that a queue that sleeps on this answer is sure to
	 * be kicked by the update it brings.
	 */
	vio_iotlb_report_miss(m->iotlb, start, perm);
	return -EAGAIN;
}

int vio_mem_host_to_gpa(const struct vio_mem *m, const void *p, uint64_t len, uint64_t *gpa)
{
	return vio_mem_host_to_gpa_inl(m, p, len, gpa);
}
