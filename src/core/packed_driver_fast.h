/* SPDX-License-Identifier: MIT */
/*
 * The packed driver's per-buffer path, inline: a buffer of one descriptor
 * added, a burst published, used buffers reaped. packed_driver.c builds its
 * layout functions on it, and virtq.c runs it straight behind the open
 * driver door, so a driver moving one buffer at a time pays for no second
 * call and no second check (measured: vio-bench ring, packed, burst 1).
 * Chains, indirect tables, in-order batches and faults stay out of line in
 * packed_driver.c.
 */
#ifndef VIO_PACKED_DRIVER_FAST_H
#define VIO_PACKED_DRIVER_FAST_H

#include "mem_internal.h"
#include "packed_internal.h"

/* Out of line in packed_driver.c: IN_ORDER reaping, and a used descriptor not in flight. */
int vio_virtq_get_used_in_order_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				       unsigned n);
int vio_virtq_bad_used_packed(struct vio_virtq *vq, unsigned got);

/*
 * Make head_flags the flags of the chain at head: at once if an earlier
 * chain of this burst holds back the burst's first head, else hold this one
 * back until publish. A flags word always has AVAIL or USED set, never 0.
 */
static inline void post_head_packed(struct vio_virtq_packed *p, uint16_t head, uint16_t head_flags)
{
	if (p->pending_flags) {
		/*
		 * Release: this chain's descriptors before its head. Pairs with the
		 * device's acquire of the head flags; it cannot get here before the
		 * burst's first head, published in publish.
		 */
		VQ_STORE_REL(&p->desc[head].flags, head_flags);
	} else {
		p->pending_slot = head;
		p->pending_flags = head_flags;
	}
}

/* One buffer of one descriptor, the common case: no chain, nothing to undo. */
static inline int add_one_packed(struct vio_virtq *vq, const struct vio_mem *mem,
				 const struct iovec *iov, bool writable, void *cookie)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct vio_virtq_drv_state *st;
	struct pvirtq_desc *d;
	uint16_t head, next, id;
	bool wrap;
	uint64_t gpa;

	if (!vq->num_free)
		return -ENOSPC;
	/* Translated before anything else is loaded: fewer live registers, no spills. */
	if (vio_mem_host_to_gpa_inl(mem, iov->iov_base, iov->iov_len, &gpa))
		return -EFAULT;
	head = p->next_avail;
	next = head + 1;
	wrap = p->avail_wrap_drv;
	/* In order, a buffer is named by its head slot (see add_chain_packed). */
	id = vq->in_order ? head : p->free_id;
	if (id >= vq->size)
		return -ENOSPC; /* cannot happen while num_free is right */
	d = &p->desc[head];
	VQ_STORE(&d->addr, gpa);
	VQ_STORE(&d->len, (uint32_t)iov->iov_len);
	VQ_STORE(&d->id, id);
	if (next == vq->size) {
		next = 0;
		p->avail_wrap_drv = !wrap;
	}
	p->next_avail = next;
	st = &vq->drv[id];
	st->cookie = cookie;
	st->ndesc = 1;
	if (!vq->in_order)
		p->free_id = st->next;
	vq->num_free--;
	post_head_packed(p, head, (writable ? VIRTQ_DESC_F_WRITE : 0) | avail_bits_packed(wrap));
	return 0;
}

/* Make the burst's first head available: from here the device may take the whole burst. */
static inline void publish_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	if (p->pending_flags) {
		/*
		 * Release: every descriptor of the burst (later heads included)
		 * before its first head. Pairs with the device's acquire of the
		 * head flags in vio_virtq_pop_burst_packed / walk_chain_packed.
		 */
		VQ_STORE_REL(&p->desc[p->pending_slot].flags, p->pending_flags);
		p->pending_flags = 0;
	}
}

/* Reap up to n used buffers (in order or not); 0 if none, -EIO if the device lied at once. */
static inline int get_used_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens, unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	/* Working copies in registers: stores through drv[] and cookies[] could alias them. */
	uint16_t slot = p->last_used, free_id = p->free_id, num_free = vq->num_free;
	uint16_t want = used_bits_packed(p->used_wrap_drv); /* AVAIL/USED bits of a used slot */
	void **c = cookies, **end = cookies + n;
	bool bad = false;

	if (vq->in_order)
		return vio_virtq_get_used_in_order_packed(vq, cookies, lens, n);
	for (; c < end; c++, lens++) {
		const struct pvirtq_desc *d = &p->desc[slot];
		/*
		 * Acquire: id and len after the flags. Pairs with the device's
		 * release of a burst's first flags in push_burst.
		 */
		uint16_t flags = VQ_LOAD_ACQ(&d->flags);
		struct vio_virtq_drv_state *st;
		uint32_t next;
		uint16_t id;

		if ((flags & FLAGS_AU_PACKED) != want)
			break;
		id = VQ_LOAD(&d->id);
		if (id >= vq->size || !(st = &vq->drv[id])->cookie) {
			bad = true;
			break;
		}
		/* Spec: len is reserved unless WRITE is set. */
		*lens = flags & VIRTQ_DESC_F_WRITE ? VQ_LOAD(&d->len) : 0;
		*c = st->cookie;
		/* Give the buffer's slots (ndesc <= size: we set it in add) and its id back. */
		num_free += st->ndesc;
		next = (uint32_t)slot + st->ndesc;
		st->cookie = NULL;
		st->next = free_id;
		free_id = id;
		if (next >= vq->size) {
			next -= vq->size;
			want ^= FLAGS_AU_PACKED;
		}
		slot = (uint16_t)next;
	}
	p->last_used = slot;
	p->used_wrap_drv = want != 0;
	p->free_id = free_id;
	vq->num_free = num_free;
	if (__builtin_expect(bad, 0))
		return vio_virtq_bad_used_packed(vq, (unsigned)(c - cookies));
	return (int)(c - cookies);
}

#endif
