/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of the packed layout (packed_device.c,
 * packed_driver.c) share: the AVAIL/USED flag arithmetic, ring positions
 * with their wrap counters, and the event suppression decision both sides
 * make. Pure functions of a queue's own fields and the event structures.
 */
#ifndef VIO_PACKED_INTERNAL_H
#define VIO_PACKED_INTERNAL_H

#include "virtq_internal.h"

#define FLAGS_AU_PACKED (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)
#define WRAP_BIT_PACKED (1u << RING_EVENT_WRAP_SHIFT)
#define SHADOW_UNKNOWN_PACKED 0xffffu /* forces the next event flags write */

/* AVAIL/USED bits of a descriptor made available under this driver wrap counter. */
static inline uint16_t avail_bits_packed(bool wrap)
{
	return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/* AVAIL/USED bits of a descriptor marked used under this device wrap counter. */
static inline uint16_t used_bits_packed(bool wrap)
{
	return wrap ? FLAGS_AU_PACKED : 0;
}

static inline bool is_avail_packed(uint16_t flags, bool wrap)
{
	return (flags & FLAGS_AU_PACKED) == avail_bits_packed(wrap);
}

static inline bool is_used_packed(uint16_t flags, bool wrap)
{
	return (flags & FLAGS_AU_PACKED) == used_bits_packed(wrap);
}

/* Move a ring position forward by n <= size slots; crossing the end flips the wrap counter. */
static inline void advance_packed(uint16_t *slot, bool *wrap, uint32_t n, uint16_t size)
{
	uint32_t s = (uint32_t)*slot + n;

	if (s >= size) {
		s -= size;
		*wrap = !*wrap;
	}
	*slot = (uint16_t)s;
}

/*
 * A ring position as one number: both wrap counters start at 1, so positions
 * on the first lap are [0, size) and on the second [size, 2 * size).
 */
static inline uint32_t lin_packed(uint32_t slot, bool wrap, uint16_t size)
{
	return wrap ? slot : slot + size;
}

/*
 * Did the peer's event position (an off_wrap word) get passed by moving our
 * position from old to new? True when it lies in [old, new) modulo 2 * size,
 * the packed form of vring_need_event.
 */
static inline bool event_hit_packed(uint16_t off_wrap, uint32_t old, uint32_t new, uint16_t size)
{
	uint32_t size2 = 2u * size;
	uint32_t ev = lin_packed(off_wrap & (WRAP_BIT_PACKED - 1), off_wrap & WRAP_BIT_PACKED,
				 size);
	uint32_t span = new >= old ? new - old : new + size2 - old;
	uint32_t off = ev >= old ? ev - old : ev + size2 - old;

	return off < span;
}

/*
 * Shared notification decision of both sides: the peer's event suppression
 * structure versus what we made visible between old and new.
 */
static inline bool need_notify_packed(const struct vio_virtq *vq, struct pvirtq_event_suppress *ev,
			       uint32_t old, uint32_t new)
{
	/* Acquire: the peer writes desc before flags with release; see desc no older than flags. */
	uint16_t flags = VQ_LOAD_ACQ(&ev->flags) & 3;

	if (flags == RING_EVENT_FLAGS_DISABLE)
		return false;
	if (flags == RING_EVENT_FLAGS_DESC && vq->event_idx)
		return event_hit_packed(VQ_LOAD(&ev->desc), old, new, vq->size);
	/* ENABLE, reserved 3, or DESC without EVENT_IDX: notify on any progress. */
	return old != new;
}

/*
 * Write our event suppression structure. With DESC the position goes first,
 * then the flags with release (pairs with the acquire in need_notify_packed)
 * so a peer that sees DESC sees this position or a newer one.
 */
static inline void set_event_packed(struct pvirtq_event_suppress *ev, uint16_t *shadow, uint16_t flags,
			     uint16_t off_wrap)
{
	if (flags == RING_EVENT_FLAGS_DESC)
		VQ_STORE(&ev->desc, off_wrap);
	if (*shadow != flags) {
		VQ_STORE_REL(&ev->flags, flags);
		*shadow = flags;
	}
}

#endif
