/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging for live migration, the core's side: a transport hands a
 * device queue a sink for "the device wrote guest-physical range [gpa,
 * gpa + len)" and the queue calls it for every used-ring and descriptor
 * write it makes; device types call vio_virtq_log_write (virtq.h) for the
 * data buffers they filled. The core never learns what the sink does with
 * the ranges (vhost-user sets bits in the front-end's shared bitmap).
 */
#ifndef VIO_DIRTY_LOG_H
#define VIO_DIRTY_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "vio/mem.h"

struct vio_virtq;
struct vio_used_elem;

struct vio_dirty_log {
	/* The device wrote [gpa, gpa + len); len > 0. Called on the queue's owner thread. */
	void (*write)(void *opaque, uint64_t gpa, uint64_t len);
	void *opaque;
	/*
	 * Guest-physical memory map for turning the host addresses of popped
	 * buffers back into guest-physical ones (the memory table, whatever
	 * address space descriptors use).
	 */
	const struct vio_mem *gpa_map;
	/*
	 * Log ring writes too (vhost-user: VHOST_VRING_F_LOG). Split: the used
	 * ring is at guest-physical ring_gpa; packed: the descriptor ring at
	 * desc_gpa and the device event area at ring_gpa.
	 */
	bool log_ring;
	uint64_t ring_gpa;
	uint64_t desc_gpa;
};

/*
 * Device side, control thread, queue not being polled: log through d (kept
 * by pointer, must outlive its use) or stop logging (d NULL).
 */
void vio_virtq_set_dirty_log(struct vio_virtq *vq, const struct vio_dirty_log *d);

/* virtq.c calls these only when a log is set. */
/* n used elements were just written from used slot (split: used index) first on. */
void vio_dirty_log_used(struct vio_virtq *vq, uint16_t first, const struct vio_used_elem *elems,
			unsigned n);
/* The device wrote its notification suppression fields. */
void vio_dirty_log_notify(struct vio_virtq *vq);

#endif
