/* SPDX-License-Identifier: MIT */
/*
 * The device side of the packed virtqueue (virtio 1.2, 2.8): resolving the
 * ring, the chain walker, used descriptors and the notification decisions.
 * Owns the device fields of struct vio_virtq_packed. Never trusts a value
 * read from the ring, never allocates, never follows a chain outside
 * walk_packed.
 */
#include <string.h>

#include "mem_internal.h"
#include "packed_internal.h"


size_t vio_virtq_area_size_packed(uint16_t size)
{
	/* Descriptor ring (align 16), driver then device event suppression (4 bytes, align 4). */
	return (size_t)size * sizeof(struct pvirtq_desc) + 2 * sizeof(struct pvirtq_event_suppress);
}

static void device_start_packed(struct vio_virtq_packed *p, uint16_t avail, bool avail_wrap,
				uint16_t used, bool used_wrap)
{
	p->last_avail_idx = avail;
	p->avail_wrap = avail_wrap;
	p->used_idx = used;
	p->used_wrap = used_wrap;
	p->signalled_used = used;
	p->signalled_wrap = used_wrap;
	/* The structure may hold a previous backend's value: write it on first use. */
	p->device_flags_shadow = SHADOW_UNKNOWN_PACKED;
	p->pos_valid = true;
}

int vio_virtq_resolve_packed(struct vio_virtq *vq, const struct vio_mem *mem)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	/* The device writes used descriptors into the ring and its own event area; reads the driver's. */
	void *desc = vio_mem_translate_inl(mem, vq->addrs.desc, (uint64_t)vq->size * 16u, VIO_MEM_RW);
	void *drv = vio_mem_translate_inl(mem, vq->addrs.driver, 4, VIO_MEM_READ);
	void *dev = vio_mem_translate_inl(mem, vq->addrs.device, 4, VIO_MEM_RW);

	/* Atomic accesses need natural alignment in our address space too. */
	if (!desc || !drv || !dev || (uintptr_t)desc % 8 || (uintptr_t)drv % 4 ||
	    (uintptr_t)dev % 4) {
		/* Never keep pointers into a map that no longer holds the ring. */
		p->desc = NULL;
		p->driver_event = p->device_event = NULL;
		return desc && drv && dev ? -EINVAL : -EFAULT;
	}
	p->desc = desc;
	p->driver_event = drv;
	p->device_event = dev;
	if (!p->pos_valid)
		device_start_packed(p, 0, true, 0, true);
	return 0;
}

void vio_virtq_get_pos_packed(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	const struct vio_virtq_packed *p = &vq->l.packed;

	*pos = (struct vio_virtq_pos){
		.avail_idx = p->last_avail_idx, .avail_wrap = p->avail_wrap,
		.used_idx = p->used_idx, .used_wrap = p->used_wrap,
	};
}

int vio_virtq_set_pos_packed(struct vio_virtq *vq, const struct vio_virtq_pos *pos)
{
	if (pos->avail_idx >= vq->size || pos->used_idx >= vq->size)
		return -EINVAL;
	device_start_packed(&vq->l.packed, pos->avail_idx, pos->avail_wrap, pos->used_idx,
			    pos->used_wrap);
	return 0;
}

/*
 * Walking state: the chain being filled and whether its iovecs are full
 * (then nothing more is translated, but the ring's slots are still counted
 * so the chain is consumed whole).
 */
struct walk_packed {
	const struct vio_mem *mem;
	struct vio_chain *c;
	uint64_t total;
	bool writing, full;
};

/* One buffer element of a chain (ring or indirect table), already copied out of shared memory. */
static inline enum vio_virtq_fault elem_packed(struct walk_packed *w, uint64_t addr, uint32_t len,
					       uint16_t flags)
{
	if (flags & VIRTQ_DESC_F_WRITE)
		w->writing = true;
	else if (w->writing)
		return VIO_VQ_READ_AFTER_WRITE;
	w->total += len;
	if (w->total > UINT32_MAX)
		return VIO_VQ_LEN_OVERFLOW;
	if (!len || w->full)
		return VIO_VQ_OK;
	return vio_chain_add_buf(w->c, w->mem, addr, len, w->writing, &w->full);
}

/* The table an indirect ring entry points to: entries are sequential, NEXT is ignored. */
static enum vio_virtq_fault indirect_packed(const struct vio_virtq *vq, struct walk_packed *w,
					    uint64_t addr, uint32_t len)
{
	const struct pvirtq_desc *t;
	uint32_t n = len >> 4;
	enum vio_virtq_fault f;

	if (len == 0 || (len & 15) || n > vio_virtq_indirect_max(vq))
		return VIO_VQ_BAD_INDIRECT;
	if (w->full)
		return VIO_VQ_OK; /* one ring slot whatever it holds: nothing more to learn */
	t = vio_mem_translate_inl(w->mem, addr, len, VIO_MEM_READ);
	if (!t)
		return vio_mem_why(w->mem, addr, len, VIO_MEM_READ, true) == -EAGAIN ? VIO_VQ_IOTLB_WAIT
										: VIO_VQ_BAD_ADDR;
	for (uint32_t i = 0; i < n && !w->full; i++) {
		struct pvirtq_desc d;

		/* One copy per entry: the driver may rewrite the table under us. */
		if (!((uintptr_t)t & 7)) {
			d.addr = VQ_LOAD(&t[i].addr);
			d.len = VQ_LOAD(&t[i].len);
			d.flags = VQ_LOAD(&t[i].flags);
		} else {
			memcpy(&d, &t[i], sizeof(d));
			atomic_signal_fence(memory_order_seq_cst);
		}
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return VIO_VQ_NESTED_INDIRECT;
		f = elem_packed(w, d.addr, d.len, d.flags);
		if (f)
			return f;
	}
	return VIO_VQ_OK;
}

/*
 * THE chain walker: the only code that follows a packed chain or opens an
 * indirect table. It walks ring[] (the queue's descriptor ring, or a copy
 * of a chain's slots for a restarted queue: ring_size entries) from *slotp
 * (wrap counter *wrapp); the caller has seen the head available and read
 * its flags with acquire (head_flags). Returns VIO_VQ_OK with the chain
 * filled and *slotp / *wrapp past it, or why the chain is malformed: then
 * nothing was consumed and the caller raises the fault.
 */
static __attribute__((noinline)) enum vio_virtq_fault
walk_packed(const struct vio_virtq *vq, const struct vio_mem *mem, const struct pvirtq_desc *ring,
	    uint16_t ring_size, uint16_t *slotp, bool *wrapp, uint16_t head_flags,
	    struct vio_chain *c)
{
	struct walk_packed w = { .mem = mem, .c = c };
	uint16_t slot = *slotp;
	bool wrap = *wrapp;
	uint32_t ndesc = 0;
	enum vio_virtq_fault f;
	struct pvirtq_desc d;

	/* Ordered after the head flags by the caller's acquire load of them. */
	d.flags = head_flags;
	d.addr = VQ_LOAD(&ring[slot].addr);
	d.len = VQ_LOAD(&ring[slot].len);
	d.id = VQ_LOAD(&ring[slot].id);
	vio_chain_reset(c);
	for (;;) {
		ndesc++;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return VIO_VQ_BAD_INDIRECT;
			/* Spec: an indirect descriptor is never part of a NEXT-linked list. */
			if ((d.flags & VIRTQ_DESC_F_NEXT) || ndesc > 1)
				return VIO_VQ_INDIRECT_NEXT;
			f = indirect_packed(vq, &w, d.addr, d.len);
		} else {
			f = elem_packed(&w, d.addr, d.len, d.flags);
		}
		if (f)
			return f;
		advance_packed(&slot, &wrap, 1, ring_size);
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (ndesc >= ring_size)
			return VIO_VQ_CHAIN_TOO_LONG;
		/* Ordered by the head's acquire: written before the head was published. */
		d.flags = VQ_LOAD(&ring[slot].flags);
		d.addr = VQ_LOAD(&ring[slot].addr);
		d.len = VQ_LOAD(&ring[slot].len);
		d.id = VQ_LOAD(&ring[slot].id);
	}
	/* The buffer id travels in the chain's last descriptor. */
	if (d.id >= vq->size)
		return VIO_VQ_BAD_HEAD;
	c->id = d.id;
	c->ndesc = (uint16_t)ndesc;
	*slotp = slot;
	*wrapp = wrap;
	return VIO_VQ_OK;
}

static enum vio_virtq_fault walk_chain_packed(struct vio_virtq *vq, const struct vio_mem *mem,
					      uint16_t head_flags, struct vio_chain *c)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	return walk_packed(vq, mem, p->desc, vq->size, &p->last_avail_idx, &p->avail_wrap,
			   head_flags, c);
}

/*
 * A chain a previous device left in flight, from the copies of its slots,
 * through the same walker. It must take exactly the slots it had, or the
 * used descriptors pushed for it would not line up with the ring.
 */
enum vio_virtq_fault vio_virtq_repop_packed(struct vio_virtq *vq, const struct vio_mem *mem,
					    unsigned i, struct vio_chain *c)
{
	const struct pvirtq_desc *descs = vq->redo.descs + vq->redo.start[i];
	uint16_t n = vq->redo.ndesc[i], slot = 0;
	bool wrap = true;
	enum vio_virtq_fault f = walk_packed(vq, mem, descs, n, &slot, &wrap, descs[0].flags, c);

	if (f == VIO_VQ_OK && c->ndesc != n)
		return VIO_VQ_BAD_INFLIGHT;
	return f;
}

void vio_virtq_read_slots_packed(const struct vio_virtq *vq, uint16_t slot, uint16_t n,
				 struct pvirtq_desc *out)
{
	const struct pvirtq_desc *ring = vq->l.packed.desc;

	for (uint16_t i = 0; i < n; i++) {
		out[i].addr = VQ_LOAD(&ring[slot].addr);
		out[i].len = VQ_LOAD(&ring[slot].len);
		out[i].id = VQ_LOAD(&ring[slot].id);
		out[i].flags = VQ_LOAD(&ring[slot].flags);
		if (++slot == vq->size)
			slot = 0;
	}
}

bool vio_virtq_slot_avail_packed(const struct vio_virtq *vq, uint16_t slot, bool wrap)
{
	return slot < vq->size && is_avail_packed(VQ_LOAD_ACQ(&vq->l.packed.desc[slot].flags), wrap);
}

/* Slots a used element skips: what pop reported; a caller's 0 or oversize counts as 1. */
static inline uint32_t ndesc_packed(const struct vio_used_elem *e, uint16_t size)
{
	return e->ndesc && e->ndesc <= size ? e->ndesc : 1;
}

/*
 * Keep a descriptor-specific event at our read position so a driver kicking
 * while we pop with notifications on is not told "already past".
 */
static inline void pop_done_packed(struct vio_virtq_packed *p)
{
	if (p->device_flags_shadow == RING_EVENT_FLAGS_DESC)
		VQ_STORE(&p->device_event->desc,
			 p->last_avail_idx | (p->avail_wrap ? WRAP_BIT_PACKED : 0));
}

/* Pop chains[i, n) with the walker. */
static __attribute__((noinline)) int pop_walk_packed(struct vio_virtq *vq,
						     const struct vio_mem *mem,
						     struct vio_chain *chains, unsigned i,
						     unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	for (; i < n; i++) {
		/*
		 * Acquire: the chain's other descriptors and the head's
		 * addr/len/id are read after its flags. Pairs with the driver's
		 * release store of the head flags (add, or publish for the
		 * first chain of a burst).
		 */
		uint16_t flags = VQ_LOAD_ACQ(&p->desc[p->last_avail_idx].flags);
		enum vio_virtq_fault why;

		if (!is_avail_packed(flags, p->avail_wrap))
			break;
		why = walk_chain_packed(vq, mem, flags, &chains[i]);
		if (why == VIO_VQ_IOTLB_WAIT) {
			vq->iotlb_wait = true;
			break; /* nothing consumed: the chain is walked again later */
		}
		if (why != VIO_VQ_OK) {
			vio_virtq_set_fault(vq, why);
			return i ? (int)i : -EIO;
		}
	}
	if (i)
		pop_done_packed(p);
	return (int)i;
}

/*
 * Chains of one plain descriptor (no NEXT, no INDIRECT) whose buffer
 * translates and whose id is in range are taken here, without calls: the
 * common case, and the walker would only repeat these checks. The first
 * chain that is anything else (longer, indirect, empty, bad) goes, with the
 * rest of the burst, to the walker, which checks it in full and faults the
 * queue if it must.
 */
int vio_virtq_pop_burst_packed(struct vio_virtq *vq, const struct vio_mem *mem,
			       struct vio_chain *chains, unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	uint16_t slot = p->last_avail_idx;
	uint16_t want = avail_bits_packed(p->avail_wrap); /* AVAIL/USED bits of an available slot */
	unsigned i;

	for (i = 0; i < n; i++) {
		struct pvirtq_desc *d = &p->desc[slot];
		struct vio_chain *c = &chains[i];
		/*
		 * Acquire: addr, len and id after the flags. Pairs with the
		 * driver's release store of the head flags (add or publish).
		 */
		uint16_t flags = VQ_LOAD_ACQ(&d->flags);
		uint64_t addr;
		uint32_t len;
		uint16_t id;
		void *host;

		if ((flags & FLAGS_AU_PACKED) != want)
			break;
		if (flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT))
			goto walk;
		addr = VQ_LOAD(&d->addr);
		len = VQ_LOAD(&d->len);
		id = VQ_LOAD(&d->id);
		if (id >= vq->size)
			goto walk;
		host = vio_mem_translate_inl(mem, addr, len,
					     flags & VIRTQ_DESC_F_WRITE ? VIO_MEM_WRITE : VIO_MEM_READ);
		if (!host)
			goto walk;
		vio_chain_reset(c);
		if (vio_chain_room(c))
			vio_chain_append(c, host, len, flags & VIRTQ_DESC_F_WRITE);
		c->id = id;
		c->ndesc = 1;
		if (++slot == vq->size) {
			slot = 0;
			want ^= FLAGS_AU_PACKED;
			p->avail_wrap = !p->avail_wrap;
		}
		p->last_avail_idx = slot;
	}
	if (i)
		pop_done_packed(p);
	return (int)i;
walk:
	return pop_walk_packed(vq, mem, chains, i, n);
}

/* Each buffer its own used descriptor. */
static inline void push_each_packed(struct vio_virtq *vq, const struct vio_used_elem *elems,
				    unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct pvirtq_desc *desc = p->desc;
	const struct vio_used_elem *e = elems, *end = elems + n;
	const uint16_t first = p->used_idx;
	const uint16_t used0 = used_bits_packed(p->used_wrap); /* AVAIL/USED bits of a used slot */
	uint16_t slot = first, used = used0;

	for (; e < end; e++) {
		uint32_t next = (uint32_t)slot + ndesc_packed(e, vq->size);

		VQ_STORE(&desc[slot].id, e->id);
		VQ_STORE(&desc[slot].len, e->len);
		if (e != elems)
			/* Ordered by the first flags' release below. */
			VQ_STORE(&desc[slot].flags,
				 (uint16_t)(used | (e->len ? VIRTQ_DESC_F_WRITE : 0)));
		if (next >= vq->size) {
			next -= vq->size;
			used ^= FLAGS_AU_PACKED;
		}
		slot = (uint16_t)next;
	}
	p->used_idx = slot;
	p->used_wrap = used != 0;
	/*
	 * Release: every used descriptor of this burst is visible before the
	 * first one turns used. Pairs with the driver's acquire load of the
	 * flags in get_used_burst.
	 */
	VQ_STORE_REL(&desc[first].flags,
		     (uint16_t)(used0 | (elems[0].len ? VIRTQ_DESC_F_WRITE : 0)));
}

/*
 * IN_ORDER: when every buffer of the burst wrote 0 bytes, one used
 * descriptor, the last buffer's id, stands for the whole batch (spec 2.8.16).
 */
static __attribute__((noinline)) void push_in_order_packed(struct vio_virtq *vq,
							   const struct vio_used_elem *elems,
							   unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct pvirtq_desc *desc = p->desc;
	uint16_t slot = p->used_idx, first = slot;
	bool wrap = p->used_wrap;
	uint16_t first_flags = used_bits_packed(wrap);

	for (unsigned i = 0; i < n; i++) {
		if (elems[i].len) {
			push_each_packed(vq, elems, n);
			return;
		}
	}
	VQ_STORE(&desc[first].id, elems[n - 1].id);
	VQ_STORE(&desc[first].len, 0);
	for (unsigned i = 0; i < n; i++)
		advance_packed(&slot, &wrap, ndesc_packed(&elems[i], vq->size), vq->size);
	p->used_idx = slot;
	p->used_wrap = wrap;
	/* Release: as in push_each_packed. */
	VQ_STORE_REL(&desc[first].flags, first_flags);
}

void vio_virtq_push_burst_packed(struct vio_virtq *vq, const struct vio_used_elem *elems,
				 unsigned n)
{
	if (vq->in_order && n > 1)
		push_in_order_packed(vq, elems, n);
	else
		push_each_packed(vq, elems, n);
}

bool vio_virtq_device_should_notify_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	uint32_t old = lin_packed(p->signalled_used, p->signalled_wrap, vq->size);
	uint32_t new = lin_packed(p->used_idx, p->used_wrap, vq->size);

	if (old == new)
		return false;
	p->signalled_used = p->used_idx;
	p->signalled_wrap = p->used_wrap;
	/*
	 * Full fence: our used descriptors before reading the driver's event
	 * suppression. Pairs with the fence in driver_enable_cb (its event
	 * write before its re-check of the ring).
	 */
	VQ_FULL_FENCE();
	return vio_virtq_decided(vq, need_notify_packed(vq, p->driver_event, old, new));
}

void vio_virtq_device_disable_notify_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	set_event_packed(p->device_event, &p->device_flags_shadow, RING_EVENT_FLAGS_DISABLE, 0);
}

bool vio_virtq_device_has_avail_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	/* A hint only: pop reads the flags again with acquire before using anything. */
	return is_avail_packed(VQ_LOAD(&p->desc[p->last_avail_idx].flags), p->avail_wrap);
}

bool vio_virtq_device_enable_notify_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	if (vq->event_idx)
		set_event_packed(p->device_event, &p->device_flags_shadow, RING_EVENT_FLAGS_DESC,
				 p->last_avail_idx | (p->avail_wrap ? WRAP_BIT_PACKED : 0));
	else
		set_event_packed(p->device_event, &p->device_flags_shadow,
				 RING_EVENT_FLAGS_ENABLE, 0);
	/*
	 * Full fence: our event write before re-reading the next slot. Pairs
	 * with the fence in kick_prepare (its head flags before its read of
	 * our event): either it sees us enabled and kicks, or we see its chain.
	 */
	VQ_FULL_FENCE();
	return vio_virtq_device_has_avail_packed(vq);
}
