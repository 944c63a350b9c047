/* SPDX-License-Identifier: MIT */
/*
 * The backend's queue lifecycle: a ring is set up from what the front-end
 * sent (size, addresses, base, kick), started when it has all of it, handed
 * to the application, taken back (paused) before anything it depends on
 * changes, and reset with the connection. Never touches a queue the
 * application is polling: every change goes through vhu_queue_pause first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_internal.h"

#define WRAP_BIT (1u << 15)

uint32_t vhu_base_encode(bool packed, struct vio_virtq_pos pos)
{
	uint32_t avail, used;

	if (!packed)
		return pos.avail_idx;
	/* Packed: bits 0-14 next slot to read, 15 its wrap; 16-30 next used slot, 31 its wrap. */
	avail = pos.avail_idx | (pos.avail_wrap ? WRAP_BIT : 0);
	used = pos.used_idx | (pos.used_wrap ? WRAP_BIT : 0);
	return avail | used << 16;
}

int vhu_base_decode(bool packed, uint32_t base, uint16_t size, struct vio_virtq_pos *pos)
{
	memset(pos, 0, sizeof(*pos));
	if (!packed) {
		if (base > UINT16_MAX)
			return -EINVAL;
		pos->avail_idx = (uint16_t)base;
		return 0;
	}
	pos->avail_idx = base & (WRAP_BIT - 1);
	pos->avail_wrap = base & WRAP_BIT;
	if (base >> 16) {
		pos->used_idx = (base >> 16) & (WRAP_BIT - 1);
		pos->used_wrap = (base >> 16) & WRAP_BIT;
	} else {
		/* Only the low 16 bits (older QEMU): nothing in flight, used == avail. */
		pos->used_idx = pos->avail_idx;
		pos->used_wrap = pos->avail_wrap;
	}
	return pos->avail_idx < size && pos->used_idx < size ? 0 : -EINVAL;
}

static void notify_call(void *opaque)
{
	struct vhu_queue *q = opaque;
	uint64_t one = 1;

	/* call_fd changes only while the queue is paused, so this read is stable. */
	if (q->call_fd >= 0 && write(q->call_fd, &one, sizeof(one)) < 0)
		return; /* a full eventfd counter already means "interrupt pending" */
}

/* Data-path thread: the driver broke queue rules. The control thread raises NEEDS_RESET. */
static void on_queue_fault(void *opaque, unsigned index, enum vio_virtq_fault why)
{
	struct vhu_queue *q = opaque;
	struct vio_vhu_backend *b = q->b;
	uint64_t one = 1;

	atomic_store(&q->faulted, true);
	if (q->err_fd >= 0 && write(q->err_fd, &one, sizeof(one)) < 0)
		vio_dbg(q->name, "err eventfd write failed");
	if (b->o.hooks.queue_fault)
		b->o.hooks.queue_fault(b->o.hooks_opaque, index, why);
}

void vhu_sync_faults(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++) {
		if (!atomic_load(&b->q[i].faulted))
			continue;
		if (!(vio_device_get_status(&b->dev) & VIRTIO_CONFIG_S_NEEDS_RESET))
			vio_info(b->name, "device reports NEEDS_RESET (queue %u broke)", i);
		vio_device_set_needs_reset(&b->dev);
	}
}

struct vhu_queue *vhu_queue_at(struct vio_vhu_backend *b, uint32_t index)
{
	if (index >= b->max_queues) {
		vio_warn(b->name, "queue index %u beyond %u queues", index, b->max_queues);
		return NULL;
	}
	return &b->q[index];
}

void vhu_queue_pause(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	if (!q->running)
		return;
	if (b->o.hooks.stop_queue)
		b->o.hooks.stop_queue(b->o.hooks_opaque, q->index);
	b->o.vdev.ops->queue_stop(b->o.vdev.dev, q->index);
	q->running = false;
}

/* Forget the initialised ring, keeping its position for the next start. */
void vhu_queue_invalidate(struct vhu_queue *q)
{
	struct vio_virtq_pos pos = { 0 };

	if (!q->vq)
		return;
	if (vio_virtq_get_pos(q->vq, &pos) == 0) {
		q->base = vhu_base_encode(vio_virtq_is_packed(q->vq), pos);
		q->base_set = true;
	}
	vio_virtq_free(q->vq);
	q->vq = NULL;
}

static bool queue_can_run(const struct vio_vhu_backend *b, const struct vhu_queue *q)
{
	return b->conn_fd >= 0 && q->num && q->has_addr && q->kick_set && q->enabled &&
	       b->nregions > 0 && !atomic_load(&b->mem_lost) && vhu_log_ready(b);
}

static int queue_init_ring(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	uint64_t f = vhu_virtio_features(b);
	bool packed = (f >> VIRTIO_F_RING_PACKED) & 1;
	uint64_t desc_len = 16ull * q->num;
	uint64_t drv_len = packed ? 4 : virtq_avail_bytes(q->num);
	uint64_t dev_len = packed ? 4 : virtq_used_bytes(q->num);
	struct vio_virtq_addrs a;
	struct vio_virtq_pos pos = { 0 };
	int r;

	if (vhu_iotlb_on(b)) {
		/* With ACCESS_PLATFORM ring addresses are IOVAs, translated like descriptors. */
		a = (struct vio_virtq_addrs){ q->addr.desc_user_addr, q->addr.avail_user_addr,
					      q->addr.used_user_addr };
	} else if (vhu_uaddr_to_gpa(b, q->addr.desc_user_addr, desc_len, &a.desc) ||
		   vhu_uaddr_to_gpa(b, q->addr.avail_user_addr, drv_len, &a.driver) ||
		   vhu_uaddr_to_gpa(b, q->addr.used_user_addr, dev_len, &a.device)) {
		/* Front-end virtual addresses; descriptors carry guest addresses. */
		vio_warn(q->name, "ring addresses outside the memory table");
		return -EFAULT;
	}
	r = vio_virtq_device_new(f, q->num, &a, &b->mem, &q->vq);
	if (r == -EFAULT && vhu_iotlb_on(b)) {
		/* Not in the IOTLB yet: asked for; the update that maps them starts the queue. */
		vhu_iotlb_ring_missing(b, &a, desc_len, drv_len, dev_len, packed);
		return r;
	}
	/* Without a base the ring starts fresh (packed: wrap counters at 1, not base 0's 0). */
	if (r == 0 && q->base_set) {
		r = vhu_base_decode(packed, q->base, q->num, &pos);
		if (r == 0)
			r = vio_virtq_set_pos(q->vq, &pos);
		if (r) {
			vio_virtq_free(q->vq);
			q->vq = NULL;
		}
	}
	if (r) {
		vio_warn(q->name, "cannot set up ring (size %u, base 0x%x): %s", q->num, q->base,
			 strerror(-r));
		return r;
	}
	vio_virtq_set_owner(q->vq, q->name, q->index, on_queue_fault, q);
	atomic_store(&q->faulted, false);
	r = vhu_inflight_queue_start(b, q);
	if (r) {
		/* A region that does not add up: the device needs a reset, never a guess. */
		vio_virtq_free(q->vq);
		q->vq = NULL;
		atomic_store(&q->faulted, true);
		return r;
	}
	return 0;
}

void vhu_queue_try_start(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	const struct vio_vdev_ops *ops = b->o.vdev.ops;
	int r;

	if (q->running || !queue_can_run(b, q))
		return;
	if (!q->vq && queue_init_ring(b, q))
		return;
	vhu_log_queue_apply(b, q);
	q->ctx = (struct vio_vq_ctx){
		.vq = q->vq, .mem = &b->mem, .notify = notify_call, .notify_opaque = q,
	};
	r = ops->queue_start(b->o.vdev.dev, q->index, &q->ctx, vhu_virtio_features(b));
	if (r) {
		vio_warn(q->name, "device refused to start the queue: %s", strerror(-r));
		return;
	}
	if (b->o.hooks.start_queue) {
		r = b->o.hooks.start_queue(b->o.hooks_opaque, q->index, q->vq, q->kick_fd);
		if (r) {
			vio_warn(q->name, "application refused to start the queue: %s",
				 strerror(r < 0 ? -r : r));
			ops->queue_stop(b->o.vdev.dev, q->index);
			return;
		}
	}
	q->running = true;
}

void vhu_pause_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		vhu_queue_pause(b, &b->q[i]);
}

void vhu_start_all(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		vhu_queue_try_start(b, &b->q[i]);
}

void vhu_queues_remap(struct vio_vhu_backend *b)
{
	/*
	 * Rings are set up again from their addresses and saved positions
	 * (nothing is in flight: every queue is paused), so a ring the new map
	 * no longer holds simply stays stopped until the front-end moves it.
	 */
	for (unsigned i = 0; i < b->max_queues; i++)
		vhu_queue_invalidate(&b->q[i]);
	vhu_start_all(b);
}

/* Back to the state of a fresh connection: ring stopped, fds closed. */
void vhu_queue_reset(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	vhu_queue_pause(b, q);
	vio_virtq_free(q->vq);
	q->vq = NULL;
	vhu_close_fd(&q->kick_fd);
	vhu_close_fd(&q->call_fd);
	vhu_close_fd(&q->err_fd);
	q->num = 0;
	q->has_addr = false;
	q->base = 0;
	q->base_set = false;
	q->kick_set = false;
	q->enabled = false;
	atomic_store(&q->faulted, false);
}

void vhu_reset_device_state(struct vio_vhu_backend *b)
{
	for (unsigned i = 0; i < b->max_queues; i++)
		vhu_queue_reset(b, &b->q[i]);
	b->features = 0;
	vhu_iotlb_attach(b);
	vio_device_init(&b->dev, b->dev.offered);
}
