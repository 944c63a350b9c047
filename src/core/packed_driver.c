/* SPDX-License-Identifier: MIT */
/*
 * The driver side of the packed virtqueue (virtio 1.2, 2.8): laying the
 * ring out, posting chains and indirect tables, kick decisions and reaping
 * used descriptors (in order or not). Owns the driver fields of struct
 * vio_virtq_packed. Never trusts an id or length the device wrote, never
 * allocates or blocks on the data path. The per-buffer path itself (one
 * descriptor added, publish, reaping) lives in packed_driver_fast.h.
 */
#include "packed_driver_fast.h"

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
	p->avail_wrap_drv = p->kicked_wrap = true;
	p->used_bits_drv = used_bits_packed(true);
	for (uint16_t i = 0; i < vq->size; i++)
		vq->drv[i].next = i + 1;
	p->free_id = 0;
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
	publish_packed(vq);
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
	return old != new && vio_virtq_decided(vq, need_notify_packed(vq, p->device_event, old, new));
}

/*
 * IN_ORDER reaping: a used descriptor may stand for every buffer up to the id
 * it carries (spec 2.8.16), which we walk one buffer at a time.
 */
__attribute__((noinline)) int vio_virtq_get_used_in_order_packed(struct vio_virtq *vq,
								  void **cookies, uint32_t *lens,
								  unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	struct vio_virtq_drv_state *drv = vq->drv;
	struct pvirtq_desc *desc = p->desc;
	const uint16_t size = vq->size;
	uint16_t slot = p->last_used, num_free = vq->num_free;
	bool wrap = p->used_bits_drv != 0;
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
	p->used_bits_drv = used_bits_packed(wrap);
	vq->num_free = num_free;
	return ret;
}

/* The device returned something not in flight: fault the queue (a call kept off the fast path). */
__attribute__((noinline)) int vio_virtq_bad_used_packed(struct vio_virtq *vq, unsigned got)
{
	vio_virtq_set_fault(vq, VIO_VQ_BAD_USED);
	return got ? (int)got : -EIO;
}

/* Reap up to n used buffers (in order or not); 0 if none, -EIO if the device lied at once. */
int vio_virtq_get_used_burst_packed(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				    unsigned n)
{
	struct vio_virtq_packed *p = &vq->l.packed;
	uint16_t slot, free_id, num_free, want;
	unsigned got = 0;
	int r = 0;

	if (vq->in_order)
		return vio_virtq_get_used_in_order_packed(vq, cookies, lens, n);
	/* Working copies in registers: stores through drv[] and cookies[] could alias the fields. */
	slot = p->last_used;
	free_id = p->free_id;
	num_free = vq->num_free;
	want = p->used_bits_drv;
	while (got < n && (r = reap_step_packed(vq, &slot, &want, &free_id, &num_free,
						 &cookies[got], &lens[got])) > 0)
		got++;
	p->last_used = slot;
	p->used_bits_drv = want;
	p->free_id = free_id;
	vq->num_free = num_free;
	if (__builtin_expect(r < 0, 0))
		return vio_virtq_bad_used_packed(vq, got);
	return (int)got;
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
		bool wrap = p->used_bits_drv != 0;

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
	return (VQ_LOAD(&p->desc[p->last_used].flags) & FLAGS_AU_PACKED) != p->used_bits_drv;
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

void vio_virtq_driver_resume_pos_packed(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	const struct vio_virtq_packed *p = &vq->l.packed;

	*pos = (struct vio_virtq_pos){
		.avail_idx = p->last_used, .avail_wrap = p->used_bits_drv != 0,
		.used_idx = p->last_used, .used_wrap = p->used_bits_drv != 0,
	};
}
