/* SPDX-License-Identifier: MIT */
/*
 * The packed virtqueue layout (virtio 1.2 section 2.8), both sides: the driver
 * posts chains and reaps used descriptors, the device walks chains into iovecs
 * and writes used descriptors back. Owns struct vio_virtq_packed. Never trusts
 * a value read from the ring, never allocates, never follows a chain outside
 * walk_chain_packed.
 */
#include <errno.h>
#include <string.h>

#include "mem_internal.h"
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
static bool event_hit_packed(uint16_t off_wrap, uint32_t old, uint32_t new, uint16_t size)
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
static bool need_notify_packed(const struct vio_virtq *vq, struct pvirtq_event_suppress *ev,
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
static void set_event_packed(struct pvirtq_event_suppress *ev, uint16_t *shadow, uint16_t flags,
			     uint16_t off_wrap)
{
	if (flags == RING_EVENT_FLAGS_DESC)
		VQ_STORE(&ev->desc, off_wrap);
	if (*shadow != flags) {
		VQ_STORE_REL(&ev->flags, flags);
		*shadow = flags;
	}
}

/* ======================================================================
 * Setup and hand-over
 * ====================================================================== */

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
	void *desc = vio_mem_translate(mem, vq->addrs.desc, (uint64_t)vq->size * 16u);
	void *drv = vio_mem_translate(mem, vq->addrs.driver, 4);
	void *dev = vio_mem_translate(mem, vq->addrs.device, 4);

	if (!desc || !drv || !dev)
		return -EFAULT;
	/* Atomic accesses need natural alignment in our address space too. */
	if ((uintptr_t)desc % 8 || (uintptr_t)drv % 4 || (uintptr_t)dev % 4)
		return -EINVAL;
	p->desc = desc;
	p->driver_event = drv;
	p->device_event = dev;
	if (!p->pos_valid)
		device_start_packed(p, 0, true, 0, true);
	return 0;
}

uint32_t vio_virtq_get_base_packed(const struct vio_virtq *vq)
{
	const struct vio_virtq_packed *p = &vq->l.packed;
	uint32_t avail = p->last_avail_idx | (p->avail_wrap ? WRAP_BIT_PACKED : 0);
	uint32_t used = p->used_idx | (p->used_wrap ? WRAP_BIT_PACKED : 0);

	return avail | used << 16;
}

int vio_virtq_set_base_packed(struct vio_virtq *vq, uint32_t base)
{
	uint16_t avail = base & (WRAP_BIT_PACKED - 1), used = (base >> 16) & (WRAP_BIT_PACKED - 1);
	bool avail_wrap = base & WRAP_BIT_PACKED, used_wrap = (base >> 16) & WRAP_BIT_PACKED;

	/* QEMU sends only the low 16 bits: then nothing is in flight, used == avail. */
	if (!(base >> 16)) {
		used = avail;
		used_wrap = avail_wrap;
	}
	if (avail >= vq->size || used >= vq->size)
		return -EINVAL;
	device_start_packed(&vq->l.packed, avail, avail_wrap, used, used_wrap);
	return 0;
}

void vio_virtq_driver_layout_packed(struct vio_virtq *vq, void *area, uint64_t gpa)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	size_t ring = (size_t)vq->size * sizeof(struct pvirtq_desc);

	p->desc = area;
	p->driver_event = (struct pvirtq_event_suppress *)((char *)area + ring);
	p->device_event = p->driver_event + 1;
	vq->addrs.desc = gpa;
	vq->addrs.driver = gpa + ring;
	vq->addrs.device = gpa + ring + sizeof(struct pvirtq_event_suppress);
	p->avail_wrap_drv = p->used_wrap_drv = p->kicked_wrap = true;
	for (uint16_t i = 0; i < vq->size; i++)
		vq->drv[i].next = i + 1;
	p->free_id = 0;
}

/* ======================================================================
 * Device side
 * ====================================================================== */

struct walk_packed {
	const struct vio_mem *mem;
	struct vio_chain *c;
	uint64_t total;
	bool writing;
};

/* One buffer element of a chain (ring or indirect table), already copied out of shared memory. */
static inline enum vio_virtq_fault elem_packed(struct walk_packed *w, uint64_t addr, uint32_t len,
					       uint16_t flags)
{
	struct vio_chain *c = w->c;
	void *host;

	if (flags & VIRTQ_DESC_F_WRITE)
		w->writing = true;
	else if (w->writing)
		return VIO_VQ_READ_AFTER_WRITE;
	w->total += len;
	if (w->total > UINT32_MAX)
		return VIO_VQ_LEN_OVERFLOW;
	if (w->writing)
		c->in_bytes += len;
	else
		c->out_bytes += len;
	if (!len)
		return VIO_VQ_OK;
	host = vio_mem_translate_inl(w->mem, addr, len);
	if (!host)
		return VIO_VQ_BAD_ADDR;
	if ((unsigned)c->nout + c->nin < c->iov_cap) {
		c->iov[c->nout + c->nin].iov_base = host;
		c->iov[c->nout + c->nin].iov_len = len;
		if (w->writing)
			c->nin++;
		else
			c->nout++;
	} else {
		c->status = -ENOBUFS;
	}
	return VIO_VQ_OK;
}

/* The descriptor an indirect ring entry points to: entries are sequential, NEXT is ignored. */
static enum vio_virtq_fault indirect_packed(struct walk_packed *w, uint64_t addr, uint32_t len)
{
	const struct pvirtq_desc *t;
	uint32_t n = len >> 4;
	enum vio_virtq_fault f;

	if (len == 0 || (len & 15))
		return VIO_VQ_BAD_INDIRECT;
	t = vio_mem_translate_inl(w->mem, addr, len);
	if (!t)
		return VIO_VQ_BAD_ADDR;
	for (uint32_t i = 0; i < n; i++) {
		struct pvirtq_desc d;

		/* One copy per entry: the driver may rewrite the table under us. */
		if (!((uintptr_t)t & 7)) {
			d.addr = VQ_LOAD(&t[i].addr);
			d.len = VQ_LOAD(&t[i].len);
			d.flags = VQ_LOAD(&t[i].flags);
		} else {
			memcpy(&d, &t[i], sizeof(d));
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
 * indirect table. Returns 1 and consumes the chain, 0 if the next slot holds
 * nothing available, or marks the queue broken and returns -1 (consuming
 * nothing).
 */
static __attribute__((noinline)) int walk_chain_packed(struct vio_virtq *vq,
							const struct vio_mem *mem,
							struct vio_chain *c)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct walk_packed w = { .mem = mem, .c = c };
	const uint16_t size = vq->size;
	uint16_t slot = p->last_avail_idx;
	bool wrap = p->avail_wrap;
	uint32_t ndesc = 0;
	enum vio_virtq_fault f;
	struct pvirtq_desc d;

	/*
	 * Acquire: the chain's other descriptors and the head's addr/len/id are
	 * read after its flags. Pairs with the driver's release store of the
	 * head flags (add, or publish for the first chain of a burst).
	 */
	d.flags = VQ_LOAD_ACQ(&p->desc[slot].flags);
	if (!is_avail_packed(d.flags, wrap))
		return 0;
	d.addr = VQ_LOAD(&p->desc[slot].addr);
	d.len = VQ_LOAD(&p->desc[slot].len);
	d.id = VQ_LOAD(&p->desc[slot].id);
	c->nout = c->nin = 0;
	c->out_bytes = c->in_bytes = 0;
	c->status = 0;
	for (;;) {
		ndesc++;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect) {
				f = VIO_VQ_BAD_INDIRECT;
				goto fault;
			}
			/* Spec: an indirect descriptor is never part of a NEXT-linked list. */
			if ((d.flags & VIRTQ_DESC_F_NEXT) || ndesc > 1) {
				f = VIO_VQ_INDIRECT_NEXT;
				goto fault;
			}
			f = indirect_packed(&w, d.addr, d.len);
		} else {
			f = elem_packed(&w, d.addr, d.len, d.flags);
		}
		if (f)
			goto fault;
		advance_packed(&slot, &wrap, 1, size);
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (ndesc >= size) {
			f = VIO_VQ_CHAIN_TOO_LONG;
			goto fault;
		}
		/* Ordered by the head's acquire above: written before the head was published. */
		d.flags = VQ_LOAD(&p->desc[slot].flags);
		d.addr = VQ_LOAD(&p->desc[slot].addr);
		d.len = VQ_LOAD(&p->desc[slot].len);
		d.id = VQ_LOAD(&p->desc[slot].id);
	}
	/* The buffer id travels in the chain's last descriptor. */
	if (d.id >= size) {
		f = VIO_VQ_BAD_HEAD;
		goto fault;
	}
	c->id = d.id;
	c->ndesc = (uint16_t)ndesc;
	p->last_avail_idx = slot;
	p->avail_wrap = wrap;
	return 1;
fault:
	vio_virtq_set_fault(vq, f);
	return -1;
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
	for (; i < n; i++) {
		int r = walk_chain_packed(vq, mem, &chains[i]);

		if (r == 0)
			break;
		if (r < 0)
			return i ? (int)i : -EIO;
	}
	if (i)
		pop_done_packed(&vq->l.packed);
	return (int)i;
}

/*
 * Chains of one plain descriptor (no NEXT, no INDIRECT) whose buffer
 * translates and whose id is in range are taken here, without calls: the
 * common case, and the walker would only repeat these checks. The first
 * chain that is anything else (longer, indirect, empty, bad, or with no
 * room in its iov) goes, with the rest of the burst, to the walker, which
 * checks it in full and faults the queue if it must.
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
		if (flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT) || !c->iov_cap)
			goto walk;
		addr = VQ_LOAD(&d->addr);
		len = VQ_LOAD(&d->len);
		id = VQ_LOAD(&d->id);
		if (id >= vq->size)
			goto walk;
		host = vio_mem_translate_inl(mem, addr, len);
		if (!host)
			goto walk;
		c->iov[0].iov_base = host;
		c->iov[0].iov_len = len;
		c->id = id;
		c->ndesc = 1;
		c->status = 0;
		if (flags & VIRTQ_DESC_F_WRITE) {
			c->nout = 0;
			c->nin = 1;
			c->out_bytes = 0;
			c->in_bytes = len;
		} else {
			c->nout = 1;
			c->nin = 0;
			c->out_bytes = len;
			c->in_bytes = 0;
		}
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

	p->signalled_used = p->used_idx;
	p->signalled_wrap = p->used_wrap;
	/*
	 * Full fence: our used descriptors before reading the driver's event
	 * suppression. Pairs with the fence in driver_enable_cb (its event
	 * write before its re-check of the ring).
	 */
	VQ_FULL_FENCE();
	return need_notify_packed(vq, p->driver_event, old, new);
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

/* ======================================================================
 * Driver side
 * ====================================================================== */

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

/* A buffer of two or more iovecs: a chain of descriptors, or one indirect table. */
static __attribute__((noinline)) int add_chain_packed(struct vio_virtq *vq,
						      const struct vio_mem *mem,
						      const struct iovec *iov, unsigned nout,
						      unsigned nin, void *cookie)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct pvirtq_desc *desc = p->desc;
	const uint16_t size = vq->size;
	const unsigned total = nout + nin;
	const bool indirect = vq->indirect_max && total <= vq->indirect_max;
	const unsigned need = indirect ? 1 : total;
	uint16_t head = p->next_avail, slot = head, id, head_flags;
	bool wrap = p->avail_wrap_drv;
	uint64_t gpa;

	if (need > vq->num_free)
		return -ENOSPC;
	/*
	 * In order, buffers come back in ring order: naming each by its head
	 * slot lets us walk a batch the device reported with one descriptor.
	 */
	id = vq->in_order ? head : p->free_id;
	if (id >= size)
		return -ENOSPC; /* cannot happen while num_free is right */

	if (indirect) {
		size_t first = (size_t)id * vq->indirect_max;
		struct pvirtq_desc *t = (struct pvirtq_desc *)vq->indirect_host + first;

		/* The table is ours until the device returns this id: plain stores. */
		for (unsigned i = 0; i < total; i++) {
			if (vio_mem_host_to_gpa_inl(mem, iov[i].iov_base, iov[i].iov_len, &gpa))
				return -EFAULT;
			t[i].addr = gpa;
			t[i].len = (uint32_t)iov[i].iov_len;
			t[i].id = 0;
			t[i].flags = i < nout ? 0 : VIRTQ_DESC_F_WRITE;
		}
		VQ_STORE(&desc[head].addr, vq->indirect_gpa + first * sizeof(struct pvirtq_desc));
		VQ_STORE(&desc[head].len, (uint32_t)(total * sizeof(struct pvirtq_desc)));
		VQ_STORE(&desc[head].id, id);
		head_flags = VIRTQ_DESC_F_INDIRECT | avail_bits_packed(wrap);
		advance_packed(&slot, &wrap, 1, size);
	} else {
		/* Pass 1, no flags: a -EFAULT leaves no slot looking available. */
		for (unsigned i = 0; i < total; i++) {
			if (vio_mem_host_to_gpa_inl(mem, iov[i].iov_base, iov[i].iov_len, &gpa))
				return -EFAULT;
			VQ_STORE(&desc[slot].addr, gpa);
			VQ_STORE(&desc[slot].len, (uint32_t)iov[i].iov_len);
			VQ_STORE(&desc[slot].id, id);
			if (++slot == size)
				slot = 0;
		}
		/* Pass 2: all flags but the head's, which comes last. */
		slot = head;
		head_flags = VIRTQ_DESC_F_NEXT | (nout ? 0 : VIRTQ_DESC_F_WRITE) |
			     avail_bits_packed(wrap);
		advance_packed(&slot, &wrap, 1, size);
		for (unsigned i = 1; i < total; i++) {
			uint16_t f = (i + 1 < total ? VIRTQ_DESC_F_NEXT : 0) |
				     (i < nout ? 0 : VIRTQ_DESC_F_WRITE) | avail_bits_packed(wrap);

			VQ_STORE(&desc[slot].flags, f);
			advance_packed(&slot, &wrap, 1, size);
		}
	}
	p->next_avail = slot;
	p->avail_wrap_drv = wrap;
	vq->drv[id].cookie = cookie;
	vq->drv[id].ndesc = (uint16_t)need;
	if (!vq->in_order)
		p->free_id = vq->drv[id].next;
	vq->num_free -= need;
	post_head_packed(p, head, head_flags);
	return 0;
}

int vio_virtq_add_packed(struct vio_virtq *vq, const struct vio_mem *mem,
			 const struct iovec *iov, unsigned nout, unsigned nin, void *cookie)
{
	/* The common case inline; chains out of line, so this path stays short. */
	if (__builtin_expect(nout + nin == 1, 1))
		return add_one_packed(vq, mem, iov, nout == 0, cookie);
	return add_chain_packed(vq, mem, iov, nout, nin, cookie);
}

void vio_virtq_publish_packed(struct vio_virtq *vq)
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

bool vio_virtq_kick_prepare_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	uint32_t old = lin_packed(p->kicked_avail, p->kicked_wrap, vq->size);
	uint32_t new = lin_packed(p->next_avail, p->avail_wrap_drv, vq->size);

	vio_virtq_publish_packed(vq);
	p->kicked_avail = p->next_avail;
	p->kicked_wrap = p->avail_wrap_drv;
	/*
	 * Full fence: the head flags before reading the device's event
	 * suppression. Pairs with the fence in device_enable_notify.
	 */
	VQ_FULL_FENCE();
	return need_notify_packed(vq, p->device_event, old, new);
}

/*
 * IN_ORDER reaping: a used descriptor may stand for every buffer up to the id
 * it carries (spec 2.8.16), which we walk one buffer at a time.
 */
static __attribute__((noinline)) int get_used_in_order_packed(struct vio_virtq *vq,
							      void **cookies, uint32_t *lens,
							      unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct vio_virtq_drv_state *drv = vq->drv;
	struct pvirtq_desc *desc = p->desc;
	const uint16_t size = vq->size;
	uint16_t slot = p->last_used, num_free = vq->num_free;
	bool wrap = p->used_wrap_drv;
	unsigned got = 0;
	int ret;

	while (got < n) {
		uint16_t id, flags, ndesc;
		uint32_t len;

		if (p->in_batch) {
			/* In order, the buffer at a ring position carries that position as id. */
			id = slot;
			if (!drv[id].cookie)
				goto fault;
			len = 0; /* skipped buffers: no length was reported for them */
			if (id == p->batch_id) {
				len = p->batch_len;
				p->in_batch = false;
			}
		} else {
			/*
			 * Acquire: id and len after the flags. Pairs with the
			 * device's release of a burst's first flags in push_burst.
			 */
			flags = VQ_LOAD_ACQ(&desc[slot].flags);
			if (!is_used_packed(flags, wrap))
				break;
			id = VQ_LOAD(&desc[slot].id);
			/* Spec: len is reserved unless WRITE is set. */
			len = flags & VIRTQ_DESC_F_WRITE ? VQ_LOAD(&desc[slot].len) : 0;
			if (id >= size || !drv[id].cookie)
				goto fault;
			if (id != slot) {
				/* One used descriptor for every buffer up to id (spec 2.8.16). */
				p->in_batch = true;
				p->batch_id = id;
				p->batch_len = len;
				continue;
			}
		}
		cookies[got] = drv[id].cookie;
		lens[got] = len;
		got++;
		/* Give the buffer's slots back; its id is its slot, nothing to free. */
		ndesc = drv[id].ndesc;
		drv[id].cookie = NULL;
		num_free += ndesc;
		advance_packed(&slot, &wrap, ndesc, size);
	}
	ret = (int)got;
	goto out;
fault:
	vio_virtq_set_fault(vq, VIO_VQ_BAD_USED);
	ret = got ? (int)got : -EIO;
out:
	p->last_used = slot;
	p->used_wrap_drv = wrap;
	vq->num_free = num_free;
	return ret;
}

/* The device returned something not in flight: fault the queue (a call kept off the fast path). */
static __attribute__((noinline)) int bad_used_packed(struct vio_virtq *vq, unsigned got)
{
	vio_virtq_set_fault(vq, VIO_VQ_BAD_USED);
	return got ? (int)got : -EIO;
}

int vio_virtq_get_used_burst_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				    unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	/* Working copies in registers: stores through drv[] and cookies[] could alias them. */
	uint16_t slot = p->last_used, free_id = p->free_id, num_free = vq->num_free;
	uint16_t want = used_bits_packed(p->used_wrap_drv); /* AVAIL/USED bits of a used slot */
	void **c = cookies, **end = cookies + n;
	bool bad = false;

	if (vq->in_order)
		return get_used_in_order_packed(vq, cookies, lens, n);
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
		return bad_used_packed(vq, (unsigned)(c - cookies));
	return (int)(c - cookies);
}

void vio_virtq_driver_disable_cb_packed(struct vio_virtq *vq)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	set_event_packed(p->driver_event, &p->driver_flags_shadow, RING_EVENT_FLAGS_DISABLE, 0);
}

/* Ask for an interrupt when the used descriptor `ahead` slots past last_used is written. */
static bool enable_cb_at_packed(struct vio_virtq *vq, uint16_t ahead)
{
	struct vio_virtq_packed *p = &vq->l.packed;

	if (vq->event_idx) {
		uint16_t slot = p->last_used;
		bool wrap = p->used_wrap_drv;

		advance_packed(&slot, &wrap, ahead, vq->size);
		set_event_packed(p->driver_event, &p->driver_flags_shadow, RING_EVENT_FLAGS_DESC,
				 slot | (wrap ? WRAP_BIT_PACKED : 0));
	} else {
		set_event_packed(p->driver_event, &p->driver_flags_shadow,
				 RING_EVENT_FLAGS_ENABLE, 0);
	}
	/*
	 * Full fence: our event write before re-reading the ring. Pairs with
	 * the fence in device_should_notify: either it sees us enabled, or we
	 * see its used descriptor.
	 */
	VQ_FULL_FENCE();
	if (p->in_batch)
		return false;
	return !is_used_packed(VQ_LOAD(&p->desc[p->last_used].flags), p->used_wrap_drv);
}

bool vio_virtq_driver_enable_cb_packed(struct vio_virtq *vq)
{
	return enable_cb_at_packed(vq, 0);
}

bool vio_virtq_driver_enable_cb_after_packed(struct vio_virtq *vq, uint16_t after)
{
	/* `after` more buffers: the event sits on the after-th slot from here (slot units). */
	if (after > vq->size)
		after = vq->size;
	return enable_cb_at_packed(vq, after ? after - 1 : 0);
}
