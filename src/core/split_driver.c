/* SPDX-License-Identifier: MIT */
/*
 * The driver side of the split virtqueue (virtio 1.2, 2.7): laying the
 * rings out, descriptor allocation, the available ring, kick decisions and
 * reaping used buffers. Never trusts an id or length the device wrote, never
 * allocates or blocks on the data path.
 */
#include "mem_internal.h"
#include "split_internal.h"

void vio_virtq_driver_layout_split(struct vio_virtq *vq, void *area, uint64_t gpa)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t size = vq->size;

	s->desc = area;
	s->avail = (struct virtq_avail *)((char *)area + avail_off_split(size));
	s->used = (struct virtq_used *)((char *)area + used_off_split(size));
	vq->addrs.desc = gpa;
	vq->addrs.driver = gpa + avail_off_split(size);
	vq->addrs.device = gpa + used_off_split(size);
	s->free_head = 0;
	s->avail_idx_shadow = 0;
	s->kicked_avail = 0;
	s->last_used_idx = 0;
	s->used_idx_seen = 0;
	s->avail_flags_shadow = 0;
	s->batch_left = 0;
	/* Free list through drv[].next; IN_ORDER ignores it and walks the table in order. */
	for (uint32_t i = 0; i < size; i++)
		vq->drv[i].next = (uint16_t)((i + 1) & (size - 1u));
}

static inline void desc_store_split(struct virtq_desc *p, uint64_t addr, uint32_t len,
				    uint16_t flags, uint16_t next)
{
	VQ_STORE(&p->addr, addr);
	VQ_STORE(&p->len, len);
	VQ_STORE(&p->flags, flags);
	VQ_STORE(&p->next, next);
}

/* A buffer of two or more iovecs: a chain of descriptors, or one indirect table. */
static __attribute__((noinline)) int add_chain_split(struct vio_virtq *vq,
						     const struct vio_mem *mem,
						     const struct iovec *iov, unsigned nout,
						     unsigned nin, void *cookie)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;
	unsigned total = nout + nin;
	bool indirect = vq->indirect_max && total <= vq->indirect_max;
	unsigned needed = indirect ? 1 : total;
	uint16_t head = s->free_head, i = head, last = head;
	uint64_t gpa;

	if (needed > vq->num_free)
		return -ENOSPC;

	/*
	 * Descriptors are written before any state changes: on -EFAULT the
	 * ones touched are still free and the device cannot see them yet.
	 */
	if (indirect) {
		size_t off = (size_t)head * vq->indirect_max;
		struct virtq_desc *tbl = (struct virtq_desc *)vq->indirect_host + off;
		uint64_t tbl_gpa = vq->indirect_gpa + off * sizeof(struct virtq_desc);

		for (unsigned j = 0; j < total; j++) {
			uint16_t flags = (j >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (j + 1 < total ? VIRTQ_DESC_F_NEXT : 0);

			if (vio_mem_host_to_gpa_inl(mem, iov[j].iov_base, iov[j].iov_len, &gpa))
				return -EFAULT;
			desc_store_split(&tbl[j], gpa, (uint32_t)iov[j].iov_len, flags,
					 j + 1 < total ? (uint16_t)(j + 1) : 0);
		}
		desc_store_split(&s->desc[head], tbl_gpa, total * (uint32_t)sizeof(*tbl),
				 VIRTQ_DESC_F_INDIRECT, 0);
	} else {
		for (unsigned j = 0; j < total; j++) {
			/* IN_ORDER: ring order, next = x + 1 wrapping to 0 (2.7.5). */
			uint16_t nx = vq->in_order ? (uint16_t)((i + 1) & mask) : vq->drv[i].next;
			uint16_t flags = (j >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (j + 1 < total ? VIRTQ_DESC_F_NEXT : 0);

			if (vio_mem_host_to_gpa_inl(mem, iov[j].iov_base, iov[j].iov_len, &gpa))
				return -EFAULT;
			desc_store_split(&s->desc[i], gpa, (uint32_t)iov[j].iov_len, flags,
					 j + 1 < total ? nx : 0);
			last = i;
			i = nx;
		}
	}

	/* Commit. The chain's links stay in drv[].next for freeing it later. */
	s->free_head = vq->in_order ? (uint16_t)((head + needed) & mask) : vq->drv[last].next;
	vq->num_free -= needed;
	vq->drv[head].cookie = cookie;
	vq->drv[head].ndesc = (uint16_t)needed;
	VQ_STORE(&s->avail->ring[s->avail_idx_shadow & mask], head);
	s->avail_idx_shadow++;
	return 0;
}

int vio_virtq_add_split(struct vio_virtq *vq, const struct vio_mem *mem,
			const struct iovec *iov, unsigned nout, unsigned nin, void *cookie)
{
	struct vio_virtq_split *s = &vq->l.split;
	struct vio_virtq_drv_state *st;
	uint16_t head;
	uint64_t gpa;

	/* Chains out of line, so the one-descriptor path, the common case, stays short. */
	if (__builtin_expect(nout + nin != 1, 0))
		return add_chain_split(vq, mem, iov, nout, nin, cookie);
	if (!vq->num_free)
		return -ENOSPC;
	if (vio_mem_host_to_gpa_inl(mem, iov->iov_base, iov->iov_len, &gpa))
		return -EFAULT;
	head = s->free_head;
	st = &vq->drv[head];
	desc_store_split(&s->desc[head], gpa, (uint32_t)iov->iov_len,
			 nout ? 0 : VIRTQ_DESC_F_WRITE, 0);
	/* IN_ORDER: free descriptors are the ring-order run after the in-flight ones. */
	s->free_head = vq->in_order ? (uint16_t)((head + 1) & (vq->size - 1)) : st->next;
	vq->num_free--;
	st->cookie = cookie;
	st->ndesc = 1;
	VQ_STORE(&s->avail->ring[s->avail_idx_shadow & (vq->size - 1)], head);
	s->avail_idx_shadow++;
	return 0;
}

void vio_virtq_publish_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	/*
	 * Barrier A (release): descriptors and ring entries are visible before
	 * the new available index. Pairs with the acquire load of avail->idx in
	 * vio_virtq_pop_burst_split / has_avail.
	 */
	VQ_STORE_REL(&s->avail->idx, s->avail_idx_shadow);
}

bool vio_virtq_kick_prepare_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t old = s->kicked_avail, new = s->avail_idx_shadow;

	/* Nothing added since the last decision (publish alone does not count as one). */
	if (old == new)
		return false;
	s->kicked_avail = new;
	vio_virtq_publish_split(vq);
	/*
	 * Barrier C (full): the new index is visible before we read avail_event
	 * / flags. Pairs with the fence in vio_virtq_device_enable_notify_split.
	 */
	VQ_FULL_FENCE();
	if (vq->event_idx)
		return vio_virtq_decided(vq, vring_need_event(VQ_LOAD(avail_event_split(vq)), new, old));
	return vio_virtq_decided(vq, !(VQ_LOAD(&s->used->flags) & VIRTQ_USED_F_NO_NOTIFY));
}

/* Give the descriptors of the buffer at head back. */
static inline void free_chain_split(struct vio_virtq *vq, uint16_t head)
{
	struct vio_virtq_drv_state *st = &vq->drv[head];
	uint16_t last = head;

	vq->num_free += st->ndesc;
	st->cookie = NULL;
	/* IN_ORDER: free descriptors are the ring-order run after the in-flight ones. */
	if (vq->in_order)
		return;
	for (uint16_t k = 1; k < st->ndesc; k++)
		last = vq->drv[last].next;
	vq->drv[last].next = vq->l.split.free_head;
	vq->l.split.free_head = head;
}

/*
 * IN_ORDER: the used entry at last_used_idx names the last buffer of a batch
 * that starts at the oldest buffer in flight. Count the batch, checking it
 * fits in what the device published. 0 if the entry is bogus.
 */
static uint16_t in_order_batch_len_split(const struct vio_virtq *vq, uint16_t oldest, uint16_t id,
					 uint16_t pending)
{
	uint16_t mask = vq->size - 1, h = oldest;

	for (uint16_t b = 1; b <= pending; b++) {
		if (!vq->drv[h].cookie || vq->drv[h].ndesc == 0)
			return 0;
		if (h == id)
			return b;
		h = (h + vq->drv[h].ndesc) & mask;
	}
	return 0;
}

/* The device returned something not in flight: fault the queue (a call kept off the fast path). */
static __attribute__((noinline)) int bad_used_split(struct vio_virtq *vq, unsigned got)
{
	vio_virtq_set_fault(vq, VIO_VQ_BAD_USED);
	return got ? (int)got : -EIO;
}

/* IN_ORDER reaping: one used entry may stand for a batch of buffers (2.7.9). */
static __attribute__((noinline)) int get_used_in_order_split(struct vio_virtq *vq, void **cookies,
							     uint32_t *lens, unsigned n,
							     uint16_t used_idx)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;
	unsigned got = 0;

	while (got < n && s->last_used_idx != used_idx) {
		const struct virtq_used_elem *e = &s->used->ring[s->last_used_idx & mask];
		/* In flight descriptors are the run that ends just before free_head. */
		uint16_t head = (uint16_t)(s->free_head - (vq->size - vq->num_free)) & mask;
		uint32_t len;

		if (s->batch_left == 0) {
			uint32_t id = VQ_LOAD(&e->id);

			if (id >= vq->size)
				return bad_used_split(vq, got);
			s->batch_left = in_order_batch_len_split(vq, head, (uint16_t)id,
								 used_idx - s->last_used_idx);
			if (s->batch_left == 0)
				return bad_used_split(vq, got);
			s->batch_len = VQ_LOAD(&e->len);
		}
		len = --s->batch_left ? 0 : s->batch_len;
		cookies[got] = vq->drv[head].cookie;
		lens[got] = len;
		free_chain_split(vq, head);
		s->last_used_idx++;
		got++;
	}
	return (int)got;
}

int vio_virtq_get_used_burst_split(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				   unsigned n)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t used_idx = s->used_idx_seen, last = s->last_used_idx;
	unsigned got;

	/* As in pop: read used->idx, the device's hot line, only when what we saw is not enough. */
	if ((uint16_t)(used_idx - last) < n) {
		/*
		 * Barrier B (acquire): the used entries written before this
		 * index are visible to the loads below (and to those of later
		 * calls up to it). Pairs with the release store of used->idx in
		 * vio_virtq_push_burst_split.
		 */
		used_idx = VQ_LOAD_ACQ(&s->used->idx);
		if ((uint16_t)(used_idx - last) > vq->size)
			return bad_used_split(vq, 0);
		s->used_idx_seen = used_idx;
	}
	if (vq->in_order)
		return get_used_in_order_split(vq, cookies, lens, n, used_idx);
	for (got = 0; got < n && last != used_idx; got++, last++) {
		const struct virtq_used_elem *e = &s->used->ring[last & (vq->size - 1)];
		uint32_t id = VQ_LOAD(&e->id);
		struct vio_virtq_drv_state *st;

		if (id >= vq->size || !(st = &vq->drv[id])->cookie) {
			s->last_used_idx = last;
			return bad_used_split(vq, got);
		}
		lens[got] = VQ_LOAD(&e->len);
		cookies[got] = st->cookie;
		if (st->ndesc == 1) {
			/* One descriptor back on the free list. */
			vq->num_free++;
			st->cookie = NULL;
			st->next = s->free_head;
			s->free_head = (uint16_t)id;
		} else {
			free_chain_split(vq, (uint16_t)id);
		}
	}
	s->last_used_idx = last;
	return (int)got;
}

void vio_virtq_driver_disable_cb_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (vq->event_idx) {
		/* An index the device has already passed: no interrupt for 65535 buffers. */
		VQ_STORE(used_event_split(vq), (uint16_t)(s->last_used_idx - 1));
		return;
	}
	if (!(s->avail_flags_shadow & VIRTQ_AVAIL_F_NO_INTERRUPT)) {
		s->avail_flags_shadow |= VIRTQ_AVAIL_F_NO_INTERRUPT;
		VQ_STORE(&s->avail->flags, s->avail_flags_shadow);
	}
}

/* Arm an interrupt for when the used index passes event; false if buffers are pending. */
static bool arm_cb_split(struct vio_virtq *vq, uint16_t event, uint16_t want)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (vq->event_idx) {
		VQ_STORE(used_event_split(vq), event);
	} else if (s->avail_flags_shadow & VIRTQ_AVAIL_F_NO_INTERRUPT) {
		s->avail_flags_shadow &= (uint16_t)~VIRTQ_AVAIL_F_NO_INTERRUPT;
		VQ_STORE(&s->avail->flags, s->avail_flags_shadow);
	}
	/*
	 * Barrier D (full): used_event / flags are visible before we read
	 * used->idx. Pairs with the fence in vio_virtq_device_should_notify_split.
	 */
	VQ_FULL_FENCE();
	/* Safe to sleep only if the device has not already passed the index we armed. */
	return (uint16_t)(VQ_LOAD(&s->used->idx) - s->last_used_idx) < want;
}

bool vio_virtq_driver_enable_cb_split(struct vio_virtq *vq)
{
	return arm_cb_split(vq, vq->l.split.last_used_idx, 1);
}

bool vio_virtq_driver_enable_cb_after_split(struct vio_virtq *vq, uint16_t after)
{
	if (!vq->event_idx || after <= 1)
		return vio_virtq_driver_enable_cb_split(vq);
	return arm_cb_split(vq, (uint16_t)(vq->l.split.last_used_idx + after - 1), after);
}

void vio_virtq_driver_resume_pos_split(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	uint16_t used = VQ_LOAD(&vq->l.split.used->idx);

	*pos = (struct vio_virtq_pos){ .avail_idx = used, .used_idx = used };
}
