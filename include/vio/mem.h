/* SPDX-License-Identifier: MIT */
/**
 * @file mem.h
 * Guest memory map: the regions a driver's addresses may point into, and the
 * one translate function every guest address in vio passes through.
 *
 * A map is an opaque handle. It is changed only by its owner (the transport
 * or the test that made it) while no queue using it runs; any number of
 * threads may translate through an unchanging map.
 */
#ifndef VIO_MEM_H
#define VIO_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "vio/export.h"

/** Regions one map holds at most. */
#define VIO_MEM_MAX_REGIONS 64

/** One region: guest addresses [gpa, gpa + size) are host [host, host + size). */
struct vio_mem_region {
	uint64_t gpa;  /**< guest physical address (what descriptors carry) */
	uint64_t size; /**< bytes, > 0 */
	void *host;    /**< where this process sees the region */
};

/** An opaque memory map. */
struct vio_mem;

/** A new, empty map. 0 or -ENOMEM. */
VIO_API int vio_mem_new(struct vio_mem **out);

/** Free a map (not the memory it describes). NULL is fine. */
VIO_API void vio_mem_free(struct vio_mem *m);

/** Forget every region. */
VIO_API void vio_mem_clear(struct vio_mem *m);

/**
 * Add a region.
 * @return 0, -EINVAL for a zero size or a range that wraps 64 bits (as gpa
 * or as host pointer), -EEXIST if it overlaps a region already present in
 * guest-physical space, -ENOSPC when the map is full.
 */
VIO_API int vio_mem_add(struct vio_mem *m, const struct vio_mem_region *r);

/** Remove the region with exactly this gpa and size: 0 or -ENOENT. */
VIO_API int vio_mem_remove(struct vio_mem *m, uint64_t gpa, uint64_t size);

/** Number of regions. */
VIO_API unsigned vio_mem_nregions(const struct vio_mem *m);

/**
 * Host pointer for [gpa, gpa + len), or NULL unless the whole range lies in
 * one region, len > 0 and nothing overflows. The only way vio turns a guest
 * address into a pointer. A map a vhost-user backend made for a front-end
 * that agreed to VIRTIO_F_ACCESS_PLATFORM translates I/O virtual addresses
 * through its IOTLB instead: then the range must be mapped there, in one
 * contiguous piece, with read and write rights.
 */
VIO_API void *vio_mem_translate(const struct vio_mem *m, uint64_t gpa, uint64_t len);

/** Driver side: the gpa of host memory [p, p + len) inside one region: 0 or -EFAULT. */
VIO_API int vio_mem_host_to_gpa(const struct vio_mem *m, const void *p, uint64_t len,
				uint64_t *gpa);

#endif
