/* SPDX-License-Identifier: MIT */
/*
 * The packed driver's per-buffer path, inline: a buffer of one descriptor
 * added, a burst published, one used buffer reaped. packed_driver.c builds
 * its layout functions on it (its burst reap loops over reap_step_packed),
 * and virtq.c runs it straight behind the open driver door, so a driver
 * moving one buffer at a time pays for no second call and no second check
 * (measured: vio-bench ring, packed, burst 1). Chains, indirect tables,
 * bursts of reaping, in-order batches and faults stay out of line in
 * packed_driver.c.
 */
#ifndef VIO_PACKED_DRIVER_FAST_H
#define VIO_PACKED_DRIVER_FAST_H

#include "mem_internal.h"
#include "packed_internal.h"

/* Out of line in packed_driver.c: IN_ORDER reaping, a used descriptor not in flight, bursts. */
int vio_virtq_get_used_in_order_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				       unsigned n);
int vio_virtq_bad_used_packed(struct vio_virtq *vq, unsigned got);
int vio_virtq_get_used_burst_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				    unsigned n);

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
	const bool in_order = vq->in_order;
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
	id = in_order ? head : p->free_id;
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
	if (!in_order)
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

/*
 * Take the used buffer at *slot if the device has marked it: its cookie and
 * length out, its slots and its id back. Returns 1, or 0 if the slot is not
 * used yet, or -1 if it names an id not in flight (nothing taken). *want
 * is the AVAIL/USED bits of a used slot there. The position, free list head
 * and free count are the queue's own fields when reaping one buffer, and
 * working copies (registers: stores through drv[] could alias the fields)
 * when reaping a burst.
 */
static inline int reap_step_packed(struct vio_virtq *vq, uint16_t *slot, uint16_t *want,
				   uint16_t *free_id, uint16_t *num_free, void **cookie,
				   uint32_t *len)
{
	const struct pvirtq_desc *d = &vq->l.packed.desc[*slot];
	/*
	 * Acquire: id and len after the flags. Pairs with the device's release
	 * of a burst's first flags in push_burst.
	 */
	const uint16_t flags = VQ_LOAD_ACQ(&d->flags);
	struct vio_virtq_drv_state *st;
	uint32_t next;
	uint16_t id;

	if ((flags & FLAGS_AU_PACKED) != *want)
		return 0;
	id = VQ_LOAD(&d->id);
	if (id >= vq->size || !(st = &vq->drv[id])->cookie)
		return -1;
	/* Spec: len is reserved unless WRITE is set. */
	*len = flags & VIRTQ_DESC_F_WRITE ? VQ_LOAD(&d->len) : 0;
	*cookie = st->cookie;
	/* Give the buffer's slots (ndesc <= size: we set it in add) and its id back. */
	*num_free += st->ndesc;
	next = (uint32_t)*slot + st->ndesc;
	st->cookie = NULL;
	st->next = *free_id;
	*free_id = id;
	if (next >= vq->size) {
		next -= vq->size;
		*want ^= FLAGS_AU_PACKED;
	}
	*slot = (uint16_t)next;
	return 1;
}

/*
 * The driver door's reap. One buffer, the call of a driver that reaps as it
 * adds, runs here straight through; bursts and in-order reaping run out of
 * line in packed_driver.c (measured: vio-bench ring, packed, burst 1, where
 * the driver's per-buffer path sets the pace).
 */
static inline int get_used_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens, unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	int r;

	if (n != 1 || vq->in_order)
		return vio_virtq_get_used_burst_packed(vq, cookies, lens, n);
	r = reap_step_packed(vq, &p->last_used, &p->used_bits_drv, &p->free_id, &vq->num_free,
			     cookies, lens);
	return __builtin_expect(r >= 0, 1) ? r : vio_virtq_bad_used_packed(vq, 0);
}

#endif
