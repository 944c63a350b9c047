/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's connection: listening or connecting (with
 * back-off), reading one request at a time through the codec, handing it
 * to its handler and sending what the handler's result says the front-end
 * is owed, and dropping a front-end so that no fd, mapping or running queue
 * is left behind. Never trusts a field the front-end sent (the codec and
 * the handlers check them), never touches a queue the application polls.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_internal.h"
#include "socket.h"

#define VHU_RECONNECT_MIN_MS 50u

uint64_t vhu_virtio_features(const struct vio_vhu_backend *b)
{
	return b->features & ~VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

void vhu_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ------------------------------------------------------------- connection */

static void drop_connection(struct vio_vhu_backend *b)
{
	if (b->conn_fd < 0)
		return;
	vhu_reset_device_state(b);
	vhu_inflight_drop(b);
	vhu_mem_unmap_all(b);
	b->protocol = 0;
	vhu_close_fd(&b->conn_fd);
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, false);
	if (b->o.client) {
		b->backoff_ms = VHU_RECONNECT_MIN_MS;
		vio_vhu_timer_arm(b->timer_fd, b->backoff_ms);
	}
}

static void connected(struct vio_vhu_backend *b, int fd)
{
	unsigned ms = b->o.msg_timeout_ms ? b->o.msg_timeout_ms : 2000;

	if (vio_vhu_set_timeout(fd, ms))
		vio_warn(b->name, "cannot bound socket waits");
	b->conn_fd = fd;
	b->unknown_logged = 0;
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, true);
}

static void log_unknown_once(struct vio_vhu_backend *b, uint32_t request)
{
	unsigned bit = request < 63 ? request : 63;

	if (b->unknown_logged & VIO_BIT(bit))
		return;
	b->unknown_logged |= VIO_BIT(bit);
	vio_warn(b->name, "unknown request %u ignored", request);
}

/* Send what the handler's result says the front-end is owed. */
static int answer(struct vio_vhu_backend *b, struct vio_vhu_msg *m, enum vhu_result res)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(m->request);
	bool need_ack = (m->flags & VHOST_USER_NEED_REPLY_MASK) && ri->reply == VIO_VHU_REPLY_ACK;

	switch (res) {
	case VHU_REPLY:
		m->flags = VHOST_USER_REPLY_MASK;
		m->nfds = 0;
		if (b->reply_fd >= 0) {
			m->fds[0] = b->reply_fd;
			m->nfds = 1;
		}
		return vio_vhu_msg_send(b->conn_fd, m);
	case VHU_OK:
		return need_ack ? vio_vhu_msg_reply_u64(b->conn_fd, m->request, 0) : 0;
	case VHU_ERROR:
		if (need_ack)
			return vio_vhu_msg_reply_u64(b->conn_fd, m->request, 1);
		/* A front-end waiting for a reply we cannot form would hang: let it see EOF. */
		return ri->reply == VIO_VHU_REPLY_ACK ? 0 : -EPROTO;
	case VHU_DISCONNECT:
		break;
	}
	return -EPROTO;
}

static int handle_message(struct vio_vhu_backend *b)
{
	struct vio_vhu_msg m;
	enum vhu_result res;
	int r = vio_vhu_msg_recv(b->conn_fd, &m, b->name);

	if (r == -ENOMSG) {
		log_unknown_once(b, m.request);
		if (m.flags & VHOST_USER_NEED_REPLY_MASK)
			r = vio_vhu_msg_reply_u64(b->conn_fd, m.request, 1);
		else
			r = 0;
		return r;
	}
	if (r)
		return r;
	vhu_sync_faults(b);
	vio_dbg(b->name, "%s", vio_vhu_req_name(m.request));
	res = vhu_handlers[m.request](b, &m);
	vio_vhu_msg_close_fds(&m);
	r = answer(b, &m, res);
	vhu_close_fd(&b->reply_fd); /* the peer has its own copy now */
	return r;
}

int vio_vhu_backend_dispatch(struct vio_vhu_backend *b)
{
	int fd, r;

	if (b->conn_fd >= 0) {
		r = handle_message(b);
		if (r) {
			if (r == -ECONNRESET)
				vio_info(b->name, "front-end disconnected");
			else
				vio_warn(b->name, "dropping front-end: %s", strerror(-r));
			drop_connection(b);
		}
		return 0;
	}
	if (!b->o.client) {
		fd = vio_vhu_accept(b->listen_fd);
		if (fd == -EAGAIN || fd == -ECONNABORTED)
			return 0;
		if (fd < 0)
			return fd;
		connected(b, fd);
		return 0;
	}
	vio_vhu_timer_consume(b->timer_fd);
	fd = vio_vhu_connect(b->path);
	if (fd < 0) {
		unsigned max = b->o.reconnect_max_ms ? b->o.reconnect_max_ms : 2000;

		b->backoff_ms = b->backoff_ms * 2 > max ? max : b->backoff_ms * 2;
		return vio_vhu_timer_arm(b->timer_fd, b->backoff_ms);
	}
	b->backoff_ms = VHU_RECONNECT_MIN_MS;
	connected(b, fd);
	return 0;
}

int vio_vhu_backend_fd(const struct vio_vhu_backend *b)
{
	if (b->conn_fd >= 0)
		return b->conn_fd;
	return b->o.client ? b->timer_fd : b->listen_fd;
}

int vio_vhu_backend_run_once(struct vio_vhu_backend *b, int timeout_ms)
{
	struct pollfd pfd = { .fd = vio_vhu_backend_fd(b), .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);

	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	return vio_vhu_backend_dispatch(b);
}

bool vio_vhu_backend_connected(const struct vio_vhu_backend *b)
{
	return b->conn_fd >= 0;
}

void vio_vhu_backend_disconnect(struct vio_vhu_backend *b)
{
	drop_connection(b);
}

uint8_t vio_vhu_backend_status(struct vio_vhu_backend *b)
{
	vhu_sync_faults(b);
	return vio_device_get_status(&b->dev);
}

unsigned vio_vhu_backend_running_queues(const struct vio_vhu_backend *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->max_queues; i++)
		n += b->q[i].running;
	return n;
}

int vio_vhu_backend_new(const struct vio_vhu_backend_opts *o, struct vio_vhu_backend **out)
{
	const struct vio_vdev_ops *vo = o->vdev.ops;
	struct vio_vhu_backend *b;
	int r;

	*out = NULL;
	if (!o->socket_path || !vo || !vo->get_features || !vo->max_queues || !vo->queue_start ||
	    !vo->queue_stop)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *o;
	b->listen_fd = b->conn_fd = b->timer_fd = b->reply_fd = -1;
	b->path = strdup(o->socket_path);
	if (!b->path) {
		r = -ENOMEM;
		goto fail;
	}
	b->o.socket_path = b->path;
	snprintf(b->name, sizeof(b->name), "%s", o->name && *o->name ? o->name : o->socket_path);
	b->max_queues = vo->max_queues(o->vdev.dev);
	if (b->max_queues == 0) {
		r = -EINVAL;
		goto fail;
	}
	if (b->max_queues > VIO_VHU_MAX_QUEUES)
		b->max_queues = VIO_VHU_MAX_QUEUES;
	for (unsigned i = 0; i < VIO_VHU_MAX_QUEUES; i++) {
		b->q[i].b = b;
		b->q[i].index = i;
		b->q[i].kick_fd = b->q[i].call_fd = b->q[i].err_fd = -1;
		snprintf(b->q[i].name, sizeof(b->q[i].name), "%s q%u", b->name, i);
		atomic_init(&b->q[i].faulted, false);
	}
	b->offered = vo->get_features(o->vdev.dev) | VIO_BIT(VIRTIO_F_VERSION_1);
	vio_device_init(&b->dev, b->offered);
	b->offered |= VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	vio_mem_init(&b->mem);
	if (o->client) {
		r = vio_vhu_timer_new();
		if (r < 0)
			goto fail;
		b->timer_fd = r;
		b->backoff_ms = VHU_RECONNECT_MIN_MS;
		r = vio_vhu_timer_arm(b->timer_fd, 0);
		if (r)
			goto fail;
	} else {
		r = vio_vhu_listen(b->path);
		if (r < 0)
			goto fail;
		b->listen_fd = r;
	}
	*out = b;
	return 0;
fail:
	vhu_close_fd(&b->timer_fd);
	free(b->path);
	free(b);
	return r;
}

void vio_vhu_backend_free(struct vio_vhu_backend *b)
{
	if (!b)
		return;
	drop_connection(b);
	if (b->listen_fd >= 0) {
		vhu_close_fd(&b->listen_fd);
		unlink(b->path);
	}
	vhu_close_fd(&b->timer_fd);
	free(b->path);
	free(b);
}
