/* SPDX-License-Identifier: MIT */
/*
 * The backend's memory table: mapping the front-end's regions, building the
 * translate map from them, and turning front-end virtual addresses (what
 * ring addresses are) into guest addresses. Never maps a region it has not
 * checked, never keeps a mapping of a region it dropped, and is only called
 * with every queue paused.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"

void vhu_region_unmap(struct vhu_region *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	memset(r, 0, sizeof(*r));
}

int vhu_region_map(const struct vio_vhu_mem_region *d, int fd, struct vhu_region *out)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t align = page > 0 ? (uint64_t)page : 4096;
	uint64_t map_off, lead, len;
	struct stat st;
	void *p;

	bool have_st = fstat(fd, &st) == 0;

	/* hugetlbfs wants offsets in whole huge pages: it reports that size as st_blksize. */
	if (have_st && st.st_blksize > 0 && (uint64_t)st.st_blksize > align &&
	    !(st.st_blksize & (st.st_blksize - 1)))
		align = (uint64_t)st.st_blksize;
	if (d->memory_size == 0 || d->guest_phys_addr + d->memory_size - 1 < d->guest_phys_addr ||
	    d->userspace_addr + d->memory_size - 1 < d->userspace_addr)
		return -EINVAL;
	/*
	 * A file (memfd, tmpfs, hugetlbfs) must hold the whole region: pages
	 * past its end map all the same, and the first touch of one (a ring,
	 * a buffer) raises SIGBUS in whichever thread makes it.
	 */
	if (have_st && S_ISREG(st.st_mode) &&
	    (d->mmap_offset > (uint64_t)st.st_size ||
	     d->memory_size > (uint64_t)st.st_size - d->mmap_offset))
		return -EINVAL;
	map_off = d->mmap_offset & ~(align - 1);
	lead = d->mmap_offset - map_off;
	len = d->memory_size + lead;
	if (len < d->memory_size || len + align - 1 < len || len > SIZE_MAX / 2)
		return -EINVAL;
	len = (len + align - 1) & ~(align - 1);
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		 (off_t)map_off);
	if (p == MAP_FAILED)
		return -errno;
	out->map = p;
	out->map_len = (size_t)len;
	out->uaddr = d->userspace_addr;
	out->r = (struct vio_mem_region){
		.gpa = d->guest_phys_addr,
		.size = d->memory_size,
		.host = (char *)p + lead,
	};
	return 0;
}

/* Build a translate map from a region list; checks overlaps and wrap-around. */
static int build_mem(struct vio_mem *m, const struct vhu_region *regs, unsigned n)
{
	vio_mem_init(m);
	for (unsigned i = 0; i < n; i++) {
		int r;

		/* The front-end's addresses must not wrap either: ring addresses use them. */
		if (regs[i].uaddr + regs[i].r.size - 1 < regs[i].uaddr)
			return -EINVAL;
		r = vio_mem_add(m, &regs[i].r);
		if (r)
			return r;
	}
	return 0;
}

int vhu_mem_check(const struct vhu_region *regs, unsigned n)
{
	struct vio_mem check;

	return build_mem(&check, regs, n);
}

/* Install the map for the current list and point every ring at it again. */
static void mem_changed(struct vio_vhu_backend *b)
{
	if (build_mem(&b->mem, b->regions, b->nregions))
		vio_mem_init(&b->mem); /* cannot happen: every caller checked the same list */
	vhu_queues_remap(b);
}

void vhu_mem_replace(struct vio_vhu_backend *b, const struct vhu_region *regs, unsigned n)
{
	vhu_mem_unmap_all(b);
	memcpy(b->regions, regs, n * sizeof(regs[0]));
	b->nregions = n;
	mem_changed(b);
}

int vhu_mem_add(struct vio_vhu_backend *b, const struct vhu_region *reg)
{
	struct vhu_region regs[VIO_VHU_MAX_MEM_SLOTS + 1];
	int r;

	if (b->nregions == VIO_VHU_MAX_MEM_SLOTS)
		return -ENOSPC;
	memcpy(regs, b->regions, b->nregions * sizeof(regs[0]));
	regs[b->nregions] = *reg;
	r = vhu_mem_check(regs, b->nregions + 1);
	if (r)
		return r;
	b->regions[b->nregions++] = *reg;
	mem_changed(b);
	return 0;
}

int vhu_mem_remove(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d)
{
	for (unsigned i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		if (r->r.gpa != d->guest_phys_addr || r->r.size != d->memory_size ||
		    r->uaddr != d->userspace_addr)
			continue;
		vhu_region_unmap(&b->regions[i]);
		b->regions[i] = b->regions[--b->nregions];
		memset(&b->regions[b->nregions], 0, sizeof(b->regions[0]));
		mem_changed(b);
		return 0;
	}
	return -ENOENT;
}

void vhu_mem_unmap_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->nregions; i++)
		vhu_region_unmap(&b->regions[i]);
	b->nregions = 0;
	vio_mem_init(&b->mem);
}

int vhu_uaddr_to_gpa(const struct vio_vhu_backend *b, uint64_t uaddr, uint64_t len,
		     uint64_t *gpa)
{
	if (len == 0)
		return -EFAULT;
	for (unsigned i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		if (vio_mem_inside(uaddr, len, r->uaddr, r->r.size)) {
			*gpa = r->r.gpa + (uaddr - r->uaddr);
			return 0;
		}
	}
	return -EFAULT;
}
