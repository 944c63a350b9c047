/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging, the core's side (dirty_log.h): which guest-physical ranges
 * a device queue wrote, told to the transport's sink. Data buffers come as
 * the host addresses a popped chain holds and are turned back into guest
 * addresses through the memory map's one reverse lookup; ring writes are at
 * addresses the transport gave. Runs only while a log is set: with none,
 * the data path pays one branch per burst and never enters this file.
 */
#include "dirty_log.h"
#include "mem_internal.h"
#include "virtq_internal.h"

void vio_virtq_set_dirty_log(struct vio_virtq *vq, const struct vio_dirty_log *d)
{
	if (vq->role == VIO_VQ_DEVICE)
		vq->dlog = d;
}

bool vio_virtq_logging(const struct vio_virtq *vq)
{
	return vq->dlog != NULL;
}

void vio_virtq_log_write(struct vio_virtq *vq, const struct iovec *iov, unsigned n)
{
	const struct vio_dirty_log *d = vq->dlog;
	uint64_t gpa;

	if (!d)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len == 0)
			continue;
		/* The walker put each iovec inside one region, so this cannot miss. */
		if (vio_mem_host_to_gpa_inl(d->gpa_map, iov[i].iov_base, iov[i].iov_len, &gpa) == 0)
			d->write(d->opaque, gpa, iov[i].iov_len);
	}
}

/* Slots [first, first + count) of a ring of `size` entries of `stride` bytes at gpa. */
static void log_slots(const struct vio_dirty_log *d, uint64_t gpa, uint32_t stride,
		      uint16_t size, uint16_t first, uint32_t count)
{
	uint32_t start = first, head;

	if (count >= size) {
		d->write(d->opaque, gpa, (uint64_t)stride * size);
		return;
	}
	head = start + count <= size ? count : size - start;
	d->write(d->opaque, gpa + (uint64_t)stride * start, (uint64_t)stride * head);
	if (head < count)
		d->write(d->opaque, gpa, (uint64_t)stride * (count - head));
}

void vio_dirty_log_used(struct vio_virtq *vq, uint16_t first, const struct vio_used_elem *elems,
			unsigned n)
{
	const struct vio_dirty_log *d = vq->dlog;
	uint32_t slots = 0;

	if (!d->log_ring || n == 0)
		return;
	if (!vq->packed) {
		/* flags and idx, then the used elements (8 bytes each) after them. */
		d->write(d->opaque, d->ring_gpa, 4);
		log_slots(d, d->ring_gpa + 4, 8, vq->size, (uint16_t)(first & (vq->size - 1)), n);
		return;
	}
	/* Packed: each buffer's used descriptor is written at the first of its slots. */
	for (unsigned i = 0; i < n; i++)
		slots += elems[i].ndesc ? elems[i].ndesc : 1;
	log_slots(d, d->desc_gpa, 16, vq->size, first, slots);
}

void vio_dirty_log_notify(struct vio_virtq *vq)
{
	const struct vio_dirty_log *d = vq->dlog;

	if (!d->log_ring)
		return;
	if (vq->packed) {
		d->write(d->opaque, d->ring_gpa, 4); /* device event suppression */
		return;
	}
	d->write(d->opaque, d->ring_gpa, 4);             /* used flags */
	d->write(d->opaque, d->ring_gpa + 4 + 8ull * vq->size, 2); /* avail_event */
}
