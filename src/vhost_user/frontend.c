/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend: owns a memfd of "guest" memory, lays driver-side
 * virtqueues out in it and sets a backend up to serve them, with no VM. It
 * checks every reply the backend sends (through the codec) and never lets a
 * backend's answer size or index a buffer unchecked. Like a VMM it keeps
 * the backend's inflight region (its fd) for the life of the rings and, on
 * vio_vhu_frontend_reconnect, hands it to a restarted backend with the
 * same memory and rings, so the backend resubmits what it had in flight.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <poll.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/mem_internal.h"
#include "core/virtq_internal.h"
#include "frontend_internal.h"
#include "socket.h"

void vhu_fe_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Send m; collect its reply into m when the request has one, or its ack when
 * REPLY_ACK is agreed. 0, -EIO for a refused request, other negative errno.
 */
int vhu_fe_request(struct vio_vhu_frontend *f, struct vio_vhu_msg *m)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(m->request);
	uint32_t req = m->request;
	bool ack;
	int r;

	if (f->sock < 0)
		return -ENOTCONN;
	ack = ri->reply == VIO_VHU_REPLY_ACK && vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	m->flags = ack ? VHOST_USER_NEED_REPLY_MASK : 0;
	r = vio_vhu_msg_send(f->sock, m);
	if (!r && (ri->reply != VIO_VHU_REPLY_ACK || ack))
		r = vio_vhu_msg_recv_reply(f->sock, req, ack, m, f->name);
	if (r) {
		/* Half a message sent or a reply missed: the stream is out of step for good. */
		vio_warn(f->name, "%s failed: %s; closing", ri->name, strerror(-r));
		vhu_fe_close_fd(&f->sock);
		return r;
	}
	if (ack && m->p.u64 != 0) {
		vio_warn(f->name, "backend refused %s", ri->name);
		return -EIO;
	}
	return 0;
}

int vhu_fe_request_u64(struct vio_vhu_frontend *f, uint32_t req, uint64_t v)
{
	struct vio_vhu_msg m = { .request = req, .size = 8 };

	m.p.u64 = v;
	return vhu_fe_request(f, &m);
}

static int request_none(struct vio_vhu_frontend *f, uint32_t req)
{
	struct vio_vhu_msg m = { .request = req };

	return vhu_fe_request(f, &m);
}

static int get_u64(struct vio_vhu_frontend *f, uint32_t req, uint64_t *v)
{
	struct vio_vhu_msg m = { .request = req };
	int r = vhu_fe_request(f, &m);

	if (!r)
		*v = m.p.u64;
	return r;
}

static int request_state(struct vio_vhu_frontend *f, uint32_t req, uint32_t index, uint32_t num)
{
	struct vio_vhu_msg m = { .request = req, .size = sizeof(struct vio_vhu_vring_state) };

	m.p.state.index = index;
	m.p.state.num = num;
	return vhu_fe_request(f, &m);
}

static int request_vring_fd(struct vio_vhu_frontend *f, uint32_t req, unsigned q, int fd)
{
	struct vio_vhu_msg m = { .request = req, .size = 8 };

	m.p.u64 = q;
	if (fd >= 0) {
		m.fds[0] = fd;
		m.nfds = 1;
	} else {
		m.p.u64 |= VHOST_USER_VRING_NOFD_MASK;
	}
	return vhu_fe_request(f, &m);
}

int vio_vhu_frontend_set_status(struct vio_vhu_frontend *f, uint8_t status)
{
	int r;

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS))
		return -ENOTSUP;
	r = vhu_fe_request_u64(f, VHOST_USER_SET_STATUS, status);
	if (!r)
		f->status = status;
	return r;
}

int vio_vhu_frontend_get_status(struct vio_vhu_frontend *f, uint8_t *status)
{
	uint64_t v;
	int r;

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS))
		return -ENOTSUP;
	r = get_u64(f, VHOST_USER_GET_STATUS, &v);
	if (r)
		return r;
	if (v > UINT8_MAX)
		return -EPROTO;
	*status = (uint8_t)v;
	return 0;
}

static int config_io(struct vio_vhu_frontend *f, uint32_t req, uint32_t off, void *buf,
		     uint32_t len)
{
	struct vio_vhu_msg m = { .request = req };
	int r;

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_CONFIG))
		return -ENOTSUP;
	if (len > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	m.size = VIO_VHU_CONFIG_HDR_SIZE + len;
	m.p.config.offset = off;
	m.p.config.size = len;
	if (req == VHOST_USER_SET_CONFIG)
		memcpy(m.p.config.region, buf, len);
	r = vhu_fe_request(f, &m);
	if (r || req == VHOST_USER_SET_CONFIG)
		return r;
	/* The reply must echo our request; size 0 means the backend refused. */
	if (m.size == 0)
		return -EIO;
	if (m.size != VIO_VHU_CONFIG_HDR_SIZE + len || m.p.config.size != len ||
	    m.p.config.offset != off)
		return -EPROTO;
	memcpy(buf, m.p.config.region, len);
	return 0;
}

int vio_vhu_frontend_get_config(struct vio_vhu_frontend *f, uint32_t off, void *buf, uint32_t len)
{
	return config_io(f, VHOST_USER_GET_CONFIG, off, buf, len);
}

int vio_vhu_frontend_set_config(struct vio_vhu_frontend *f, uint32_t off, const void *buf,
				uint32_t len)
{
	return config_io(f, VHOST_USER_SET_CONFIG, off, (void *)buf, len);
}

int vio_vhu_frontend_stop_queue(struct vio_vhu_frontend *f, unsigned q, uint32_t *base)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_GET_VRING_BASE, .size = 8 };
	int r;

	if (q >= f->nqueues)
		return -EINVAL;
	m.p.state.index = q;
	r = vhu_fe_request(f, &m);
	if (r)
		return r;
	if (m.p.state.index != q)
		return -EPROTO;
	f->q[q].running = false;
	if (base)
		*base = m.p.state.num;
	return 0;
}

int vhu_fe_send_vring_addr(struct vio_vhu_frontend *f, unsigned q, bool log)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_SET_VRING_ADDR, .size = 40 };
	const struct vhu_fe_queue *fq = &f->q[q];
	uintptr_t host = (uintptr_t)f->mem_host;

	/*
	 * Ring addresses go in our own virtual address space; the memory region
	 * is at gpa 0. Behind an IOMMU they are IOVAs: here the same as gpas.
	 */
	if (f->features & VIO_BIT(VIRTIO_F_ACCESS_PLATFORM))
		host = 0;
	m.p.addr.index = q;
	m.p.addr.desc_user_addr = host + fq->addrs.desc;
	m.p.addr.avail_user_addr = host + fq->addrs.driver;
	m.p.addr.used_user_addr = host + fq->addrs.device;
	if (log) {
		m.p.addr.flags = 1u << VHOST_VRING_F_LOG;
		m.p.addr.log_guest_addr = fq->addrs.device;
	}
	return vhu_fe_request(f, &m);
}

int vio_vhu_frontend_start_queue(struct vio_vhu_frontend *f, unsigned q, uint32_t base)
{
	struct vhu_fe_queue *fq;
	int r;

	if (q >= f->nqueues)
		return -EINVAL;
	fq = &f->q[q];
	r = request_state(f, VHOST_USER_SET_VRING_NUM, q, f->queue_size);
	if (!r)
		r = request_state(f, VHOST_USER_SET_VRING_BASE, q, base);
	if (!r)
		r = vhu_fe_send_vring_addr(f, q, f->logging);
	if (!r)
		r = request_vring_fd(f, VHOST_USER_SET_VRING_KICK, q, fq->kick_fd);
	if (!r)
		r = request_vring_fd(f, VHOST_USER_SET_VRING_CALL, q, fq->call_fd);
	if (!r && (f->backend_features & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
		r = request_state(f, VHOST_USER_SET_VRING_ENABLE, q, 1);
	if (!r)
		fq->running = true;
	return r;
}

void *vio_vhu_frontend_alloc(struct vio_vhu_frontend *f, size_t size, size_t align)
{
	size_t off;

	if (align == 0 || (align & (align - 1)) || size == 0)
		return NULL;
	off = (f->alloc_off + align - 1) & ~(align - 1);
	if (off < f->alloc_off || off > f->mem_size || size > f->mem_size - off)
		return NULL;
	f->alloc_off = off + size;
	return (char *)f->mem_host + off;
}

static void kick_eventfd(void *opaque)
{
	struct vhu_fe_queue *fq = opaque;
	uint64_t one = 1;

	if (write(fq->kick_fd, &one, sizeof(one)) < 0)
		return; /* counter saturated: the backend has a kick pending anyway */
}

/*
 * With VIRTIO_F_ACCESS_PLATFORM agreed, the backend translates every address
 * through an IOTLB we fill: one identity entry (IOVA = guest address) for all
 * of the memory, read and write, so it never has to ask. The backend empties
 * its IOTLB with each memory table: this follows every one.
 */
static int map_iotlb(struct vio_vhu_frontend *f)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_IOTLB_MSG,
				 .size = sizeof(struct vio_vhu_iotlb_msg) };
	struct vio_vhu_iotlb_msg im = { .iova = 0, .size = f->mem_size,
					.uaddr = (uintptr_t)f->mem_host, .perm = 3,
					.type = VHOST_IOTLB_UPDATE };
	int r;

	if (!(f->features & VIO_BIT(VIRTIO_F_ACCESS_PLATFORM)))
		return 0;
	memcpy(m.p.raw, &im, sizeof(im));
	r = vhu_fe_request(f, &m);
	if (!r && m.p.u64 != 0) {
		vio_warn(f->name, "backend refused the IOTLB update");
		r = -EIO;
	}
	return r;
}

static int send_mem_table(struct vio_vhu_frontend *f)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_SET_MEM_TABLE };
	int r;

	m.size = VIO_VHU_MEM_HDR_SIZE + sizeof(struct vio_vhu_mem_region);
	m.p.memory.nregions = 1;
	m.p.memory.regions[0] = (struct vio_vhu_mem_region){
		.guest_phys_addr = 0,
		.memory_size = f->mem_size,
		.userspace_addr = (uintptr_t)f->mem_host,
		.mmap_offset = 0,
	};
	m.fds[0] = f->mem_fd;
	m.nfds = 1;
	r = vhu_fe_request(f, &m);
	return r ? r : map_iotlb(f);
}

static int share_memory(struct vio_vhu_frontend *f)
{
	struct vio_mem_region reg;
	int r;

	f->mem_fd = memfd_create("vio-guest", MFD_CLOEXEC);
	if (f->mem_fd < 0)
		return -errno;
	if (ftruncate(f->mem_fd, (off_t)f->mem_size) < 0)
		return -errno;
	f->mem_host = mmap(NULL, f->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem_fd, 0);
	if (f->mem_host == MAP_FAILED) {
		f->mem_host = NULL;
		return -errno;
	}
	reg = (struct vio_mem_region){
		.gpa = 0, .size = f->mem_size, .host = f->mem_host,
	};
	vio_mem_init(&f->mem);
	r = vio_mem_add(&f->mem, &reg);
	if (r)
		return r;
	return send_mem_table(f);
}

/*
 * Inflight region: ask for it once (the rings' life), hand it over on
 * every connection. A backend that answers with size 0 tracks nothing.
 */
static int get_inflight(struct vio_vhu_frontend *f)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_GET_INFLIGHT_FD, .size = 24 };
	int r;

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) || f->inflight_fd >= 0)
		return 0;
	m.p.inflight = (struct vio_vhu_inflight){
		.num_queues = (uint16_t)f->nqueues, .queue_size = f->queue_size,
	};
	r = vhu_fe_request(f, &m);
	if (r)
		return r;
	if (m.p.inflight.mmap_size == 0) {
		vio_vhu_msg_close_fds(&m);
		return 0;
	}
	if (m.nfds != 1 || m.p.inflight.num_queues != f->nqueues ||
	    m.p.inflight.queue_size != f->queue_size) {
		vio_warn(f->name, "GET_INFLIGHT_FD reply for %u queues of %u with %u fds",
			 m.p.inflight.num_queues, m.p.inflight.queue_size, m.nfds);
		vio_vhu_msg_close_fds(&m);
		return -EPROTO;
	}
	f->inflight = m.p.inflight;
	f->inflight_fd = m.fds[0];
	return 0;
}

static int set_inflight(struct vio_vhu_frontend *f)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_SET_INFLIGHT_FD, .size = 24 };

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) || f->inflight_fd < 0)
		return 0;
	m.p.inflight = f->inflight;
	m.fds[0] = f->inflight_fd;
	m.nfds = 1;
	return vhu_fe_request(f, &m);
}

static int negotiate(struct vio_vhu_frontend *f, uint64_t wanted)
{
	const uint8_t drv = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint64_t pf, nq, bf;
	uint8_t st;
	int r;

	r = request_none(f, VHOST_USER_SET_OWNER);
	if (!r)
		r = get_u64(f, VHOST_USER_GET_FEATURES, &bf);
	if (r)
		return r;
	f->backend_features = bf;
	if (!(bf & VIO_BIT(VIRTIO_F_VERSION_1)))
		return -ENOTSUP;
	if (bf & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		r = get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES, &pf);
		if (r)
			return r;
		r = vhu_fe_request_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES, pf & VHU_PROTOCOL_FEATURES);
		if (r)
			return r;
		f->protocol = pf & VHU_PROTOCOL_FEATURES; /* replies gated on it start after the send */
	}
	if (vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_MQ)) {
		r = get_u64(f, VHOST_USER_GET_QUEUE_NUM, &nq);
		if (r)
			return r;
		if (nq < f->nqueues)
			return -ENOTSUP;
	}
	wanted &= ~VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	f->features = (wanted | VIO_BIT(VIRTIO_F_VERSION_1)) & bf;
	if (vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS)) {
		r = vio_vhu_frontend_set_status(f, VIRTIO_CONFIG_S_ACKNOWLEDGE);
		if (!r)
			r = vio_vhu_frontend_set_status(f, drv);
		if (r)
			return r;
	}
	r = vhu_fe_request_u64(f, VHOST_USER_SET_FEATURES,
			f->features | (bf & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)));
	if (r || !vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS))
		return r;
	r = vio_vhu_frontend_set_status(f, drv | VIRTIO_CONFIG_S_FEATURES_OK);
	if (!r)
		r = vio_vhu_frontend_get_status(f, &st);
	if (r)
		return r;
	return (st & VIRTIO_CONFIG_S_FEATURES_OK) ? 0 : -ENOTSUP;
}

static int setup_queues(struct vio_vhu_frontend *f)
{
	size_t len = vio_virtq_driver_area_size(f->features, f->queue_size, f->indirect_max);
	bool packed = f->features & VIO_BIT(VIRTIO_F_RING_PACKED);

	for (unsigned i = 0; i < f->nqueues; i++) {
		struct vhu_fe_queue *fq = &f->q[i];
		void *area = vio_vhu_frontend_alloc(f, len, VHU_RING_ALIGN);
		char qname[160];
		int r;

		if (!area)
			return -ENOMEM;
		r = vio_virtq_driver_new(f->features, f->queue_size, f->indirect_max, area,
					 (uintptr_t)area - (uintptr_t)f->mem_host, len, &fq->addrs,
					 &fq->vq);
		if (r)
			return r;
		snprintf(qname, sizeof(qname), "%s q%u", f->name, i);
		vio_virtq_set_owner(fq->vq, qname, i, NULL, NULL);
		fq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fq->kick_fd < 0 || fq->call_fd < 0)
			return -errno;
		fq->ctx = (struct vio_drv_ctx){
			.vq = fq->vq, .mem = &f->mem, .kick = kick_eventfd, .kick_opaque = fq,
			.call_fd = fq->call_fd,
		};
		/* A fresh packed ring's wrap counters start at 1 (bit 15), as QEMU sends it. */
		r = vio_vhu_frontend_start_queue(f, i, packed ? 0x8000u : 0);
		if (r)
			return r;
	}
	return 0;
}

int vio_vhu_frontend_connect(const struct vio_vhu_frontend_opts *o, struct vio_vhu_frontend **out)
{
	struct vio_vhu_frontend *f;
	int r;

	*out = NULL;
	if (!o->socket_path || o->nqueues == 0 || o->nqueues > VIO_VHU_MAX_QUEUES ||
	    o->mem_size == 0 || o->mem_size > SIZE_MAX / 2)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->sock = f->mem_fd = f->inflight_fd = f->log_fd = f->dst_sock = f->dst_mem_fd = -1;
	f->wanted = o->features;
	f->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	f->path = strdup(o->socket_path);
	snprintf(f->name, sizeof(f->name), "%s", o->name && *o->name ? o->name : o->socket_path);
	f->mem_size = o->mem_size;
	f->nqueues = o->nqueues;
	f->queue_size = o->queue_size ? o->queue_size : 256;
	f->indirect_max = o->indirect_max;
	f->q = calloc(o->nqueues, sizeof(*f->q));
	if (!f->q || !f->path) {
		free(f->q);
		free(f->path);
		free(f);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < f->nqueues; i++)
		f->q[i].kick_fd = f->q[i].call_fd = -1;
	r = vio_vhu_connect(o->socket_path);
	if (r < 0)
		goto fail;
	f->sock = r;
	r = vio_vhu_set_timeout(f->sock, (unsigned)f->timeout_ms);
	if (!r)
		r = negotiate(f, o->features);
	if (!r)
		r = share_memory(f);
	if (!r)
		r = get_inflight(f);
	if (!r)
		r = set_inflight(f);
	if (!r)
		r = setup_queues(f);
	if (!r && vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS))
		r = vio_vhu_frontend_set_status(f, f->status | VIRTIO_CONFIG_S_DRIVER_OK);
	if (r)
		goto fail;
	*out = f;
	return 0;
fail:
	vio_vhu_frontend_close(f);
	return r;
}

int vio_vhu_frontend_disconnect(struct vio_vhu_frontend *f)
{
	int err = 0;

	if (f->sock < 0)
		return 0;
	/*
	 * A backend that is stuck must not hold us for the full reply timeout:
	 * stopping the rings is a courtesy (it completes in-flight I/O first),
	 * and the first unanswered request closes the socket for the rest.
	 */
	vio_vhu_set_timeout(f->sock, VHU_DISCONNECT_TIMEOUT_MS);
	for (unsigned i = 0; i < f->nqueues; i++) {
		if (f->q[i].running) {
			int r = vio_vhu_frontend_stop_queue(f, i, NULL);

			if (r && !err)
				err = r;
		}
	}
	vhu_fe_close_fd(&f->sock);
	return err;
}

void vio_vhu_frontend_close(struct vio_vhu_frontend *f)
{
	if (!f)
		return;
	vhu_fe_close_fd(&f->sock);
	for (unsigned i = 0; i < f->nqueues; i++) {
		vio_virtq_free(f->q[i].vq);
		vhu_fe_close_fd(&f->q[i].kick_fd);
		vhu_fe_close_fd(&f->q[i].call_fd);
	}
	if (f->mem_host)
		munmap(f->mem_host, f->mem_size);
	vhu_fe_close_fd(&f->mem_fd);
	vhu_fe_close_fd(&f->inflight_fd);
	vhu_fe_migrate_close(f);
	free(f->q);
	free(f->path);
	free(f);
}

int vio_vhu_frontend_check(struct vio_vhu_frontend *f)
{
	struct pollfd p = { .fd = f->sock, .events = POLLIN };
	char c;

	if (f->sock < 0)
		return -ENOTCONN;
	/* The backend sends nothing unasked: anything readable is its end of the stream. */
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (recv(f->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
		return 0;
	vio_info(f->name, "backend went away");
	vhu_fe_close_fd(&f->sock);
	return -ENOTCONN;
}

int vhu_fe_resume(struct vio_vhu_frontend *f, const uint32_t *bases)
{
	uint64_t had = f->features;
	bool packed = had & VIO_BIT(VIRTIO_F_RING_PACKED);
	int r;

	r = vio_vhu_set_timeout(f->sock, (unsigned)f->timeout_ms);
	if (!r)
		r = negotiate(f, f->wanted);
	if (!r && f->features != had) {
		vio_warn(f->name, "backend agrees on features 0x%llx, not 0x%llx",
			 (unsigned long long)f->features, (unsigned long long)had);
		r = -EPROTO;
	}
	if (!r)
		r = send_mem_table(f);
	if (!r)
		r = get_inflight(f);
	if (!r)
		r = set_inflight(f);
	for (unsigned i = 0; !r && i < f->nqueues; i++) {
		struct vio_virtq_pos pos;
		uint32_t base;

		/* The rings stay as they are; the backend resumes them (its region says more). */
		vio_virtq_driver_resume_pos(f->q[i].vq, &pos);
		base = pos.avail_idx;
		if (packed)
			base = (pos.avail_idx | (pos.avail_wrap ? 0x8000u : 0)) |
			       (uint32_t)(pos.used_idx | (pos.used_wrap ? 0x8000u : 0)) << 16;
		r = vio_vhu_frontend_start_queue(f, i, bases ? bases[i] : base);
	}
	if (!r && vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_STATUS))
		r = vio_vhu_frontend_set_status(f, f->status | VIRTIO_CONFIG_S_DRIVER_OK);
	if (r) {
		vhu_fe_close_fd(&f->sock);
		f->features = had;
	}
	return r;
}

int vio_vhu_frontend_reconnect(struct vio_vhu_frontend *f)
{
	int r;

	vhu_fe_close_fd(&f->sock);
	r = vio_vhu_connect(f->path);
	if (r < 0)
		return r;
	f->sock = r;
	r = vhu_fe_resume(f, NULL);
	if (!r)
		vio_info(f->name, "reconnected");
	return r;
}

uint64_t vio_vhu_frontend_features(const struct vio_vhu_frontend *f)
{
	return f->features;
}

uint64_t vio_vhu_frontend_protocol_features(const struct vio_vhu_frontend *f)
{
	return f->protocol;
}

unsigned vio_vhu_frontend_nqueues(const struct vio_vhu_frontend *f)
{
	return f->nqueues;
}

const struct vio_drv_ctx *vio_vhu_frontend_queue(struct vio_vhu_frontend *f, unsigned q)
{
	return q < f->nqueues ? &f->q[q].ctx : NULL;
}

const struct vio_mem *vio_vhu_frontend_mem(const struct vio_vhu_frontend *f)
{
	return &f->mem;
}
