/* SPDX-License-Identifier: MIT */
/*
 * The backend's memory table: mapping the front-end's regions, building the
 * translate map from them, and turning front-end virtual addresses (what
 * ring addresses are) into guest addresses. Never maps a region it has not
 * checked (a memory file, the region inside it, within the connection's
 * budget), guards what the front-end could still shrink, never keeps a
 * mapping of a region it dropped, and is only called with every queue
 * paused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"

void vhu_region_unmap(struct vhu_region *r)
{
	if (r->guard) {
		vhu_guard_remove(r->guard);
		free(r->guard);
	}
	if (r->map)
		munmap(r->map, r->map_len);
	memset(r, 0, sizeof(*r));
}

/*
 * Only a file can back guest memory: a memfd, a tmpfs or hugetlbfs file, a
 * regular file. Anything else (a device, a pipe, a socket) could do
 * anything when mapped or touched.
 */
static int check_fd(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d, int fd,
		    struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode)) {
		vio_warn(b->name, "memory region fd is not a memory file (memfd, tmpfs, hugetlbfs "
			 "or regular file)");
		return -EINVAL;
	}
	if (st->st_size < 0 || d->mmap_offset > (uint64_t)st->st_size ||
	    d->memory_size > (uint64_t)st->st_size - d->mmap_offset) {
		vio_warn(b->name, "memory region of %llu bytes at file offset %llu lies past the end "
			 "of its %lld-byte file", (unsigned long long)d->memory_size,
			 (unsigned long long)d->mmap_offset, (long long)st->st_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * A file the front-end can still shrink faults with SIGBUS once a page past
 * its new end is touched: guard the mapping unless seals forbid shrinking
 * (QEMU's memory-backend-memfd seals by default).
 */
int vhu_region_guard(struct vio_vhu_backend *b, int fd, struct vhu_region *r)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals >= 0 && (seals & F_SEAL_SHRINK))
		return 0;
	if (!vhu_guard_active()) {
		if (!b->unsealed_warned)
			vio_warn(b->name, "guest memory is not sealed against shrinking and the "
				 "SIGBUS guard is off: a front-end truncating it kills this process");
		b->unsealed_warned = true;
		return 0;
	}
	r->guard = malloc(sizeof(*r->guard));
	if (!r->guard)
		return -ENOMEM;
	*r->guard = (struct vhu_guard){ .start = r->map, .len = r->map_len, .lost = &b->mem_lost,
					.wake_fd = b->lost_fd, .slot = -1 };
	if (vhu_guard_add(r->guard)) {
		free(r->guard);
		r->guard = NULL;
		return -ENOSPC;
	}
	return 0;
}

int vhu_region_map(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d, int fd,
		   uint64_t budget, struct vhu_region *out)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t align = page > 0 ? (uint64_t)page : 4096;
	uint64_t map_off, lead, len;
	struct stat st;
	void *p;
	int r;

	memset(out, 0, sizeof(*out));
	if (d->memory_size == 0 || d->guest_phys_addr + d->memory_size - 1 < d->guest_phys_addr ||
	    d->userspace_addr + d->memory_size - 1 < d->userspace_addr)
		return -EINVAL;
	r = check_fd(b, d, fd, &st);
	if (r)
		return r;
	/* hugetlbfs wants offsets in whole huge pages: it reports that size as st_blksize. */
	if (st.st_blksize > 0 && (uint64_t)st.st_blksize > align &&
	    !(st.st_blksize & (st.st_blksize - 1)))
		align = (uint64_t)st.st_blksize;
	map_off = d->mmap_offset & ~(align - 1);
	lead = d->mmap_offset - map_off;
	len = d->memory_size + lead;
	if (len < d->memory_size || len + align - 1 < len || len > SIZE_MAX / 2)
		return -EINVAL;
	len = (len + align - 1) & ~(align - 1);
	if (len > budget) {
		vio_warn(b->name, "memory region of %llu bytes exceeds the %llu bytes of guest memory "
			 "still allowed", (unsigned long long)len, (unsigned long long)budget);
		return -E2BIG;
	}
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
	r = vhu_region_guard(b, fd, out);
	if (r)
		vhu_region_unmap(out);
	return r;
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
	vhu_iotlb_attach(b);
	vhu_queues_remap(b);
}

void vhu_mem_replace(struct vio_vhu_backend *b, const struct vhu_region *regs, unsigned n)
{
	vhu_mem_unmap_all(b);
	memcpy(b->regions, regs, n * sizeof(regs[0]));
	b->nregions = n;
	for (unsigned i = 0; i < n; i++)
		b->mapped_bytes += regs[i].map_len;
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
	b->mapped_bytes += reg->map_len;
	mem_changed(b);
	return 0;
}

static struct vhu_region *find_region(struct vio_vhu_backend *b,
				      const struct vio_vhu_mem_region *d)
{
	for (unsigned i = 0; i < b->nregions; i++) {
		struct vhu_region *r = &b->regions[i];

		if (r->r.gpa == d->guest_phys_addr && r->r.size == d->memory_size &&
		    r->uaddr == d->userspace_addr)
			return r;
	}
	return NULL;
}

bool vhu_mem_ref(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d)
{
	struct vhu_region *r = find_region(b, d);

	if (!r)
		return false;
	r->extra_refs++;
	return true;
}

bool vhu_mem_unref(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d)
{
	struct vhu_region *r = find_region(b, d);

	if (!r || !r->extra_refs)
		return false;
	r->extra_refs--;
	return true;
}

int vhu_mem_remove(struct vio_vhu_backend *b, const struct vio_vhu_mem_region *d)
{
	for (unsigned i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		if (r->r.gpa != d->guest_phys_addr || r->r.size != d->memory_size ||
		    r->uaddr != d->userspace_addr)
			continue;
		b->mapped_bytes -= b->regions[i].map_len;
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
	b->mapped_bytes = 0;
	vio_mem_init(&b->mem);
	vhu_iotlb_attach(b);
	atomic_store(&b->mem_lost, false);
	b->lost_handled = false;
}

void vhu_mem_check_lost(struct vio_vhu_backend *b)
{
	uint64_t v;

	if (read(b->lost_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (!atomic_load(&b->mem_lost) || b->lost_handled)
		return;
	b->lost_handled = true;
	vio_err(b->name, "the front-end shrank guest memory under a running device: device failed "
		"(needs reset) until it sends a new memory table");
	vhu_pause_all(b);
	vio_device_set_needs_reset(&b->dev);
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
