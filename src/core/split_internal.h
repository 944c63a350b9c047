/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of the split layout (split_device.c, split_driver.c)
 * share: where the event-index words sit, and where each area starts in a
 * ring laid out in one block. Pure arithmetic on a queue's own fields.
 */
#ifndef VIO_SPLIT_INTERNAL_H
#define VIO_SPLIT_INTERNAL_H

#include "virtq_internal.h"

/*
 * Barriers, by the pairs they form (each site in split_device.c and
 * split_driver.c names its letter):
 *  A  driver: release store of avail->idx after descriptors and ring entries
 *     <-> device: acquire load of avail->idx before reading them.
 *  B  device: release store of used->idx after the used entries
 *     <-> driver: acquire load of used->idx before reading them.
 *  C  driver: avail->idx store, full fence, read avail_event / used->flags
 *     <-> device: avail_event / used->flags store, full fence, read avail->idx.
 *  D  device: used->idx store, full fence, read used_event / avail->flags
 *     <-> driver: used_event / avail->flags store, full fence, read used->idx.
 * C and D are store-fence-load on both sides, so at least one side sees the
 * other's store: a kick or an interrupt is never lost while the peer sleeps.
 */

static inline uint16_t *used_event_split(const struct vio_virtq *vq)
{
	return &vq->l.split.avail->ring[vq->size];
}

static inline uint16_t *avail_event_split(const struct vio_virtq *vq)
{
	return (uint16_t *)&vq->l.split.used->ring[vq->size];
}

static inline size_t align_up_split(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline size_t avail_off_split(uint16_t size)
{
	return align_up_split(16u * (size_t)size, VIRTQ_AVAIL_ALIGN);
}

static inline size_t used_off_split(uint16_t size)
{
	return align_up_split(avail_off_split(size) + virtq_avail_bytes(size), VIRTQ_USED_ALIGN);
}

#endif
