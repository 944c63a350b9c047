/* SPDX-License-Identifier: MIT */
/*
 * One handler per front-end request, and the dispatch table generated from
 * the request list in msg.h. A handler sees a message the codec already
 * checked for size and fd count; it still checks every index, size, address
 * and flag before acting, changes a queue only through the lifecycle calls
 * of backend_queue.c, and answers with an explicit result.
 */
#include <errno.h>
#include <string.h>

#include "backend_internal.h"
#include "socket.h"

/* Take fd i out of the message so the dispatcher does not close it. */
static int take_fd(struct vio_vhu_msg *m, unsigned i)
{
	int fd = m->fds[i];

	m->fds[i] = -1;
	return fd;
}

static enum vhu_result h_unsupported(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	vio_warn(b->name, "%s is not supported", vio_vhu_req_name(m->request));
	return VHU_ERROR;
}

static enum vhu_result reply_u64(struct vio_vhu_msg *m, uint64_t v)
{
	m->p.u64 = v;
	m->size = sizeof(uint64_t);
	return VHU_REPLY;
}

static enum vhu_result h_get_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, b->offered);
}

static enum vhu_result h_set_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	uint64_t f = m->p.u64;
	uint8_t st = vio_device_get_status(&b->dev);

	if (f & ~b->offered) {
		vio_warn(b->name, "SET_FEATURES 0x%llx has bits never offered (0x%llx)",
			 (unsigned long long)f, (unsigned long long)(f & ~b->offered));
		return VHU_ERROR;
	}
	if (!(f & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES))) {
		/* Without protocol features rings have no enable message: they start enabled. */
		for (unsigned i = 0; i < b->max_queues; i++)
			b->q[i].enabled = true;
	}
	if (f != b->features) {
		/* Rings were laid out for the old features (split/packed, event index). */
		vhu_pause_all(b);
		for (unsigned i = 0; i < b->max_queues; i++)
			vhu_queue_invalidate(&b->q[i]);
		b->features = f;
		vhu_iotlb_attach(b);
	}
	if ((st & VIRTIO_CONFIG_S_DRIVER) && !(st & VIRTIO_CONFIG_S_FEATURES_OK))
		vio_device_set_features(&b->dev, vhu_virtio_features(b));
	vhu_start_all(b);
	return VHU_OK;
}

static enum vhu_result h_set_owner(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return VHU_OK;
}

static enum vhu_result h_reset_owner(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* Deprecated; the spec lets a backend ignore it, which keeps connection state sound. */
	vio_info(b->name, "RESET_OWNER ignored");
	return VHU_OK;
}

static enum vhu_result h_get_protocol_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	uint64_t p = VHU_BACKEND_PROTOCOL_FEATURES;

	if (!b->o.vdev.ops->get_config)
		p &= ~VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	return reply_u64(m, p);
}

static enum vhu_result h_set_protocol_features(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	if (m->p.u64 & ~VHU_BACKEND_PROTOCOL_FEATURES) {
		vio_warn(b->name, "protocol features 0x%llx not offered",
			 (unsigned long long)(m->p.u64 & ~VHU_BACKEND_PROTOCOL_FEATURES));
		return VHU_ERROR;
	}
	b->protocol = m->p.u64;
	return VHU_OK;
}

static enum vhu_result h_get_queue_num(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, b->max_queues);
}

static enum vhu_result h_get_max_mem_slots(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return reply_u64(m, b->o.max_regions);
}

static enum vhu_result h_set_mem_table(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	const struct vio_vhu_memory *mt = &m->p.memory;
	struct vhu_region regs[VHOST_MEMORY_BASELINE_NREGIONS] = { 0 };
	unsigned n = 0;
	int r = 0;

	if (mt->nregions > VHOST_MEMORY_BASELINE_NREGIONS ||
	    m->size != VIO_VHU_MEM_HDR_SIZE + mt->nregions * sizeof(struct vio_vhu_mem_region) ||
	    m->nfds != mt->nregions) {
		vio_warn(b->name, "SET_MEM_TABLE: %u regions, %u bytes, %u fds", mt->nregions,
			 m->size, m->nfds);
		return VHU_ERROR;
	}
	/* Map the whole new table before touching the old one, so a failure changes nothing. */
	for (uint64_t budget = b->o.max_mem_bytes; n < mt->nregions; n++) {
		r = vhu_region_map(b, &mt->regions[n], m->fds[n], budget, &regs[n]);
		if (r)
			break;
		budget -= regs[n].map_len;
	}
	if (!r)
		r = vhu_mem_check(regs, n);
	if (r) {
		vio_warn(b->name, "SET_MEM_TABLE: region %u refused: %s", n, strerror(-r));
		while (n)
			vhu_region_unmap(&regs[--n]);
		return VHU_ERROR;
	}
	vhu_pause_all(b);
	vhu_mem_replace(b, regs, n);
	return VHU_OK;
}

static enum vhu_result h_add_mem_reg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_region reg;
	int r;

	/* The same region again (another vhost device of QEMU's net MQ): the same memory. */
	if (vhu_mem_ref(b, &m->p.mem1.region))
		return VHU_OK;
	if (b->nregions >= b->o.max_regions) {
		vio_warn(b->name, "ADD_MEM_REG: all %u slots used", b->o.max_regions);
		return VHU_ERROR;
	}
	r = vhu_region_map(b, &m->p.mem1.region, m->fds[0], b->o.max_mem_bytes - b->mapped_bytes,
			   &reg);
	if (r) {
		vio_warn(b->name, "ADD_MEM_REG: cannot map: %s", strerror(-r));
		return VHU_ERROR;
	}
	r = vhu_mem_check(&reg, 1);
	if (!r) {
		vhu_pause_all(b);
		r = vhu_mem_add(b, &reg);
		if (r)
			vhu_start_all(b);
	}
	if (r) {
		vio_warn(b->name, "ADD_MEM_REG: region refused: %s", strerror(-r));
		vhu_region_unmap(&reg);
		return VHU_ERROR;
	}
	return VHU_OK;
}

static enum vhu_result h_rem_mem_reg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* A stray fd (allowed by the spec for old front-ends) is closed by the dispatcher. */
	if (vhu_mem_unref(b, &m->p.mem1.region))
		return VHU_OK; /* another vhost device still uses it */
	vhu_pause_all(b);
	if (vhu_mem_remove(b, &m->p.mem1.region)) {
		vhu_start_all(b);
		vio_warn(b->name, "REM_MEM_REG: no such region");
		return VHU_ERROR;
	}
	return VHU_OK;
}

static enum vhu_result h_set_vring_num(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = vhu_queue_at(b, m->p.state.index);

	if (!q)
		return VHU_ERROR;
	if (m->p.state.num == 0 || m->p.state.num > b->o.max_queue_size) {
		vio_warn(b->name, "queue %u: size %u", q->index, m->p.state.num);
		return VHU_ERROR;
	}
	vhu_queue_pause(b, q);
	vhu_queue_invalidate(q);
	q->num = (uint16_t)m->p.state.num; /* the ring code checks the power of two for split */
	vhu_queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_addr(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = vhu_queue_at(b, m->p.addr.index);

	if (!q)
		return VHU_ERROR;
	vhu_queue_pause(b, q);
	vhu_queue_invalidate(q);
	q->addr = m->p.addr;
	q->has_addr = true;
	vhu_queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_base(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = vhu_queue_at(b, m->p.state.index);

	if (!q)
		return VHU_ERROR;
	vhu_queue_pause(b, q);
	vhu_queue_invalidate(q);
	q->base = m->p.state.num; /* range checked by vhu_base_decode at start */
	q->base_set = true;
	vhu_queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_get_vring_base(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = vhu_queue_at(b, m->p.state.index);

	if (!q)
		return VHU_DISCONNECT; /* owed a reply we cannot give */
	/* GET_VRING_BASE stops the ring: it needs a new kick before it runs again. */
	vhu_queue_pause(b, q);
	vhu_queue_invalidate(q);
	vhu_close_fd(&q->kick_fd);
	q->kick_set = false;
	m->p.state.num = q->base;
	m->size = sizeof(m->p.state);
	return VHU_REPLY;
}

/* SET_VRING_KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8, nothing else. */
static struct vhu_queue *vring_fd_target(struct vio_vhu_backend *b, struct vio_vhu_msg *m,
					 int *fd)
{
	uint64_t v = m->p.u64;
	bool nofd = v & VHOST_USER_VRING_NOFD_MASK;
	struct vhu_queue *q;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
		vio_warn(b->name, "%s with reserved bits 0x%llx", vio_vhu_req_name(m->request),
			 (unsigned long long)v);
		return NULL;
	}
	if (nofd != (m->nfds == 0)) {
		vio_warn(b->name, "%s: NOFD flag %d with %u fds", vio_vhu_req_name(m->request),
			 nofd, m->nfds);
		return NULL;
	}
	q = vhu_queue_at(b, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
	if (!q)
		return NULL;
	if (!nofd && vio_vhu_take_eventfd(m->fds[0])) {
		vio_warn(b->name, "%s: queue %u: the fd is not an eventfd", vio_vhu_req_name(m->request),
			 q->index);
		return NULL;
	}
	*fd = nofd ? -1 : take_fd(m, 0);
	return q;
}

/* SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ERR: one fd slot of one queue each. */
static enum vhu_result h_set_vring_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int fd, *slot;
	struct vhu_queue *q = vring_fd_target(b, m, &fd);

	if (!q)
		return VHU_ERROR;
	switch (m->request) {
	case VHOST_USER_SET_VRING_KICK: slot = &q->kick_fd; break;
	case VHOST_USER_SET_VRING_CALL: slot = &q->call_fd; break;
	default: slot = &q->err_fd; break;
	}
	/* The data path reads these fds without a lock: swap one only while nobody polls. */
	vhu_queue_pause(b, q);
	vhu_close_fd(slot);
	*slot = fd;
	if (m->request == VHOST_USER_SET_VRING_KICK)
		q->kick_set = true;
	vhu_queue_try_start(b, q);
	return VHU_OK;
}

static enum vhu_result h_set_vring_enable(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_queue *q = vhu_queue_at(b, m->p.state.index);

	if (!q || m->p.state.num > 1)
		return VHU_ERROR;
	if (m->p.state.num) {
		q->enabled = true;
		vhu_queue_try_start(b, q);
	} else {
		vhu_queue_pause(b, q);
		q->enabled = false;
	}
	return VHU_OK;
}

static uint32_t config_len(const struct vio_vhu_backend *b)
{
	return b->o.vdev.ops->config_len ? b->o.vdev.ops->config_len(b->o.vdev.dev) : 0;
}

/* The config payload's own size must match the message and stay inside the config space. */
static bool config_msg_ok(const struct vio_vhu_backend *b, const struct vio_vhu_msg *m)
{
	const struct vio_vhu_config *c = &m->p.config;
	uint32_t len = config_len(b);

	return c->size <= VHOST_USER_MAX_CONFIG_SIZE &&
	       m->size == VIO_VHU_CONFIG_HDR_SIZE + c->size &&
	       c->offset <= len && c->size <= len - c->offset;
}

static enum vhu_result h_get_config(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_config *c = &m->p.config;

	if (!b->o.vdev.ops->get_config || !config_msg_ok(b, m) ||
	    b->o.vdev.ops->get_config(b->o.vdev.dev, c->offset, c->region, c->size)) {
		vio_warn(b->name, "GET_CONFIG refused (offset %u size %u)", c->offset, c->size);
		m->size = 0; /* the spec's way to say GET_CONFIG failed */
		return VHU_REPLY;
	}
	return VHU_REPLY;
}

static enum vhu_result h_set_config(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_config *c = &m->p.config;

	if (!b->o.vdev.ops->set_config || !config_msg_ok(b, m) || c->flags > 1 ||
	    b->o.vdev.ops->set_config(b->o.vdev.dev, c->offset, c->region, c->size)) {
		vio_warn(b->name, "SET_CONFIG refused (offset %u size %u)", c->offset, c->size);
		return VHU_ERROR;
	}
	return VHU_OK;
}

/*
 * Walk the status handshake in its order, so a front-end that sets several
 * bits at once (QEMU sets ACKNOWLEDGE|DRIVER|DRIVER_OK together) is judged
 * step by step against the features it gave in SET_FEATURES.
 */
static int apply_status(struct vio_vhu_backend *b, uint8_t want)
{
	static const uint8_t order[] = { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER,
					 VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER_OK };
	uint8_t st = vio_device_get_status(&b->dev) & ~VIRTIO_CONFIG_S_NEEDS_RESET;
	int r;

	if (want == 0) {
		/* A reset forgets the faults the driver caused: they are its to clear. */
		vio_device_reset(&b->dev);
		for (unsigned i = 0; i < b->max_queues; i++)
			atomic_store(&b->q[i].faulted, false);
		return 0;
	}
	if (want & VIRTIO_CONFIG_S_DRIVER_OK)
		want |= VIRTIO_CONFIG_S_FEATURES_OK; /* implied: agreed in SET_FEATURES */
	if (want & VIRTIO_CONFIG_S_FEATURES_OK)
		want |= VIRTIO_CONFIG_S_DRIVER;
	if (want & VIRTIO_CONFIG_S_DRIVER)
		want |= VIRTIO_CONFIG_S_ACKNOWLEDGE;
	for (size_t i = 0; i < sizeof(order); i++) {
		if (!(want & order[i]) || (st & order[i]))
			continue;
		if (order[i] == VIRTIO_CONFIG_S_FEATURES_OK) {
			r = vio_device_set_features(&b->dev, vhu_virtio_features(b));
			if (r)
				return r;
		}
		st |= order[i];
		r = vio_device_set_status(&b->dev, st);
		if (r)
			return r;
	}
	return vio_device_set_status(&b->dev, want & ~VIRTIO_CONFIG_S_NEEDS_RESET);
}

static enum vhu_result h_set_status(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	int r;

	if (m->p.u64 > UINT8_MAX) {
		vio_warn(b->name, "SET_STATUS 0x%llx", (unsigned long long)m->p.u64);
		return VHU_ERROR;
	}
	r = apply_status(b, (uint8_t)m->p.u64);
	if (r) {
		vio_warn(b->name, "status 0x%x refused: %s", (unsigned)m->p.u64, strerror(-r));
		return VHU_ERROR;
	}
	return VHU_OK;
}

static enum vhu_result h_get_status(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	vhu_sync_faults(b);
	return reply_u64(m, vio_device_get_status(&b->dev));
}

static enum vhu_result h_reset_device(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	/* Rings and device state go; the connection, its protocol features and memory stay. */
	vhu_reset_device_state(b);
	return VHU_OK;
}

static enum vhu_result h_set_backend_req_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return vhu_h_set_backend_req_fd(b, m);
}

static enum vhu_result h_iotlb_msg(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	return vhu_h_iotlb_msg(b, m);
}

/* The dispatch table, generated from the one request list in msg.h. */
vhu_handler *const vhu_handlers[VHOST_USER_MAX_REQUEST] = {
#define VHU_HANDLER(n, id, sz, fmin, fmax, rep, h) [id] = h_##h,
	VIO_VHU_REQUESTS(VHU_HANDLER)
#undef VHU_HANDLER
};
