/* SPDX-License-Identifier: MIT */
/*
 * What virtq.c (the layout-independent face) needs from each layout.
 * Every function here has a _split twin in split.c and a _packed twin in
 * packed.c; virtq.c checks arguments and dispatches, the layouts do the work.
 */
#ifndef VIO_VIRTQ_INTERNAL_H
#define VIO_VIRTQ_INTERNAL_H

#include <stdatomic.h>

#include "vio/virtq.h"

/* Mark the queue broken (first reason sticks) and tell the owner once. */
void vio_virtq_set_fault(struct vio_virtq *vq, enum vio_virtq_fault why);

/*
 * Ring fields shared with the peer are read and written through these, so
 * that every access to memory the other side can change is a single atomic
 * load/store the compiler cannot tear, repeat or elide.
 */
#define VQ_LOAD_ACQ(p) atomic_load_explicit((_Atomic __typeof__(*(p)) *)(p), memory_order_acquire)
#define VQ_LOAD(p) atomic_load_explicit((_Atomic __typeof__(*(p)) *)(p), memory_order_relaxed)
#define VQ_STORE_REL(p, v) \
	atomic_store_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_release)
#define VQ_STORE(p, v) atomic_store_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_relaxed)
/* Orders our published index before reading the peer's event index (and the reverse). */
#define VQ_FULL_FENCE() atomic_thread_fence(memory_order_seq_cst)

#define VIO_LAYOUT_FNS(sfx)                                                                    \
	int vio_virtq_resolve_##sfx(struct vio_virtq *vq, const struct vio_mem *mem);          \
	uint32_t vio_virtq_get_base_##sfx(const struct vio_virtq *vq);                           \
	int vio_virtq_set_base_##sfx(struct vio_virtq *vq, uint32_t base);                       \
	size_t vio_virtq_area_size_##sfx(uint16_t size);                                         \
	void vio_virtq_driver_layout_##sfx(struct vio_virtq *vq, void *area, uint64_t gpa);      \
	int vio_virtq_pop_burst_##sfx(struct vio_virtq *vq, const struct vio_mem *mem,           \
				      struct vio_chain *chains, unsigned n);                    \
	void vio_virtq_push_burst_##sfx(struct vio_virtq *vq, const struct vio_used_elem *elems,  \
					unsigned n);                                              \
	bool vio_virtq_device_should_notify_##sfx(struct vio_virtq *vq);                         \
	void vio_virtq_device_disable_notify_##sfx(struct vio_virtq *vq);                        \
	bool vio_virtq_device_enable_notify_##sfx(struct vio_virtq *vq);                         \
	bool vio_virtq_device_has_avail_##sfx(struct vio_virtq *vq);                             \
	int vio_virtq_add_##sfx(struct vio_virtq *vq, const struct vio_mem *mem,                 \
				const struct iovec *iov, unsigned nout, unsigned nin, void *cookie); \
	bool vio_virtq_kick_prepare_##sfx(struct vio_virtq *vq);                                 \
	void vio_virtq_publish_##sfx(struct vio_virtq *vq);                                      \
	int vio_virtq_get_used_burst_##sfx(struct vio_virtq *vq, void **cookies, uint32_t *lens, \
					   unsigned n);                                           \
	void vio_virtq_driver_disable_cb_##sfx(struct vio_virtq *vq);                            \
	bool vio_virtq_driver_enable_cb_##sfx(struct vio_virtq *vq);                             \
	bool vio_virtq_driver_enable_cb_after_##sfx(struct vio_virtq *vq, uint16_t after);

VIO_LAYOUT_FNS(split)
VIO_LAYOUT_FNS(packed)

#endif
