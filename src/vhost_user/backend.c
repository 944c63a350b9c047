/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's connection: listening or connecting (with
 * back-off), assembling requests from a non-blocking socket, handing each
 * to its handler and sending what the handler's result says the front-end
 * is owed, and dropping a front-end so that no fd, mapping or running queue
 * is left behind. Never waits on anything the front-end controls: a
 * message has a deadline, a reply that cannot be sent at once drops the
 * front-end, a connect that cannot complete at once is retried later.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backend_internal.h"
#include "socket.h"

#define VHU_RECONNECT_MIN_MS 50u
/* Requests handled per dispatch call, so one busy front-end cannot hold the loop. */
#define VHU_DISPATCH_BUDGET 32

uint64_t vhu_virtio_features(const struct vio_vhu_backend *b)
{
	return b->features & ~(VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES) | VIO_BIT(VHOST_F_LOG_ALL));
}

void vhu_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ----------------------------------------------------- the fd to wait on */

/* Watch fd (readable) in the backend's epoll set, or stop watching it. */
static int watch(struct vio_vhu_backend *b, int fd, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (fd < 0)
		return 0;
	if (epoll_ctl(b->ep_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0)
		return 0;
	return -errno;
}

/* ------------------------------------------------------------- connection */

static void drop_connection(struct vio_vhu_backend *b)
{
	if (b->conn_fd < 0)
		return;
	vhu_reset_device_state(b);
	vhu_inflight_drop(b);
	vhu_log_drop(b);
	vhu_channel_close(b);
	vhu_mem_unmap_all(b);
	b->protocol = 0;
	vio_vhu_rx_reset(&b->rx);
	b->msg_deadline_ms = 0;
	if (b->o.client)
		vio_vhu_timer_arm(b->timer_fd, VHU_RECONNECT_MIN_MS);
	else
		vio_vhu_timer_disarm(b->timer_fd);
	watch(b, b->conn_fd, false);
	vhu_close_fd(&b->conn_fd);
	watch(b, b->listen_fd, true);
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, false);
	b->backoff_ms = VHU_RECONNECT_MIN_MS;
}

static int connected(struct vio_vhu_backend *b, int fd)
{
	int r = watch(b, fd, true);

	if (r) {
		close(fd);
		return r;
	}
	watch(b, b->listen_fd, false);
	b->conn_fd = fd;
	b->unknown_logged = 0;
	vio_vhu_rx_init(&b->rx);
	vio_vhu_timer_disarm(b->timer_fd);
	if (b->o.hooks.connection)
		b->o.hooks.connection(b->o.hooks_opaque, true);
	return 0;
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

/* One whole request: handle and answer it. */
static int handle(struct vio_vhu_backend *b, struct vio_vhu_msg *m, int r)
{
	enum vhu_result res;

	if (r == -ENOMSG) {
		log_unknown_once(b, m->request);
		return (m->flags & VHOST_USER_NEED_REPLY_MASK) ?
			       vio_vhu_msg_reply_u64(b->conn_fd, m->request, 1) : 0;
	}
	if (r)
		return r;
	vhu_sync_faults(b);
	vio_dbg(b->name, "%s", vio_vhu_req_name(m->request));
	res = vhu_handlers[m->request](b, m);
	vio_vhu_msg_close_fds(m);
	r = answer(b, m, res);
	vhu_close_fd(&b->reply_fd); /* the peer has its own copy now */
	return r;
}

/*
 * Handle what the socket holds, up to a budget of whole requests. A message
 * left incomplete must complete before its deadline: the timer wakes the
 * application's loop for it even if no byte ever comes again.
 */
static int serve_connection(struct vio_vhu_backend *b)
{
	unsigned ms = b->o.msg_timeout_ms ? b->o.msg_timeout_ms : 2000;

	for (unsigned i = 0; i < VHU_DISPATCH_BUDGET && b->conn_fd >= 0; i++) {
		struct vio_vhu_msg m;
		int r = vio_vhu_rx_step(b->conn_fd, &b->rx, &m, b->name);

		if (r == -EAGAIN)
			break;
		b->msg_deadline_ms = 0;
		r = handle(b, &m, r);
		if (r)
			return r;
	}
	if (!vio_vhu_rx_partial(&b->rx)) {
		if (b->msg_deadline_ms)
			vio_vhu_timer_disarm(b->timer_fd);
		b->msg_deadline_ms = 0;
		return 0;
	}
	if (!b->msg_deadline_ms) {
		b->msg_deadline_ms = now_ms() + ms;
		vio_vhu_timer_arm(b->timer_fd, ms);
	} else if (now_ms() >= b->msg_deadline_ms) {
		vio_warn(b->name, "a message stayed incomplete for %u ms", ms);
		return -ETIMEDOUT;
	}
	return 0;
}

static int try_connect(struct vio_vhu_backend *b)
{
	unsigned max = b->o.reconnect_max_ms ? b->o.reconnect_max_ms : 2000;
	int fd = vio_vhu_connect_nonblock(b->path);

	if (fd >= 0) {
		b->backoff_ms = VHU_RECONNECT_MIN_MS;
		return connected(b, fd);
	}
	/* Nobody listening, or a backlog that is full (-EAGAIN): try again later. */
	b->backoff_ms = b->backoff_ms * 2 > max ? max : b->backoff_ms * 2;
	return vio_vhu_timer_arm(b->timer_fd, b->backoff_ms);
}

int vio_vhu_backend_dispatch(struct vio_vhu_backend *b)
{
	int fd, r;

	vio_vhu_timer_consume(b->timer_fd);
	vhu_mem_check_lost(b);
	if (b->conn_fd >= 0) {
		r = serve_connection(b);
		if (r) {
			if (r == -ECONNRESET)
				vio_dbg(b->name, "front-end closed the connection");
			else
				vio_warn(b->name, "dropping front-end: %s", strerror(-r));
			drop_connection(b);
		}
		return 0;
	}
	if (b->o.client)
		return try_connect(b);
	fd = vio_vhu_accept(b->listen_fd);
	if (fd == -EAGAIN || fd == -ECONNABORTED)
		return 0;
	if (fd < 0)
		return fd;
	return connected(b, fd);
}

int vio_vhu_backend_fd(const struct vio_vhu_backend *b)
{
	return b->ep_fd;
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

/* Limits the options leave at 0 take their defaults here. */
static void apply_defaults(struct vio_vhu_backend_opts *o)
{
	if (!o->max_mem_bytes)
		o->max_mem_bytes = VIO_VHU_DEFAULT_MAX_MEM;
	if (!o->max_regions || o->max_regions > VIO_VHU_MAX_MEM_SLOTS)
		o->max_regions = VIO_VHU_MAX_MEM_SLOTS;
	if (!o->max_queue_size || o->max_queue_size > VIO_VIRTQ_MAX_SIZE)
		o->max_queue_size = VIO_VIRTQ_MAX_SIZE;
	if (!o->socket_mode)
		o->socket_mode = 0600;
}

int vio_vhu_backend_new(const struct vio_vhu_backend_opts *o, struct vio_vhu_backend **out)
{
	const struct vio_vdev_ops *vo = o->vdev.ops;
	struct vio_vhu_backend *b;
	int r;

	*out = NULL;
	if (!o->socket_path || !vo || !vo->get_features || !vo->max_queues || !vo->queue_start ||
	    !vo->queue_stop || (o->socket_mode & ~0777u))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *o;
	apply_defaults(&b->o);
	b->listen_fd = b->conn_fd = b->timer_fd = b->ep_fd = b->lost_fd = b->reply_fd = -1;
	b->chan_fd = b->log.fd = -1;
	pthread_mutex_init(&b->chan_lock, NULL);
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
	if (o->access_platform)
		b->offered |= VIO_BIT(VIRTIO_F_ACCESS_PLATFORM); /* not the device's: ours to honour */
	vio_device_init(&b->dev, b->offered);
	b->offered |= VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES) | VIO_BIT(VHOST_F_LOG_ALL);
	vio_mem_init(&b->mem);
	vhu_iotlb_init(b);
	vio_vhu_rx_init(&b->rx);
	b->backoff_ms = VHU_RECONNECT_MIN_MS;
	b->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	b->lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = vio_vhu_timer_new();
	if (b->ep_fd < 0 || b->lost_fd < 0 || r < 0) {
		r = r < 0 ? r : -errno;
		goto fail;
	}
	b->timer_fd = r;
	/* The timer fires for reconnects (client) and for message deadlines (both modes). */
	r = watch(b, b->timer_fd, true);
	if (!r)
		r = watch(b, b->lost_fd, true);
	if (!r && o->client)
		r = vio_vhu_timer_arm(b->timer_fd, 0);
	if (!r && !o->client) {
		r = vio_vhu_listen(b->path, b->o.socket_mode);
		if (r >= 0) {
			b->listen_fd = r;
			r = watch(b, b->listen_fd, true);
		}
	}
	if (r < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	if (b->listen_fd >= 0)
		unlink(b->path);
	vhu_close_fd(&b->listen_fd);
	vhu_close_fd(&b->timer_fd);
	vhu_close_fd(&b->lost_fd);
	vhu_close_fd(&b->ep_fd);
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
	vhu_close_fd(&b->lost_fd);
	vhu_close_fd(&b->ep_fd);
	pthread_mutex_destroy(&b->chan_lock);
	vhu_iotlb_fini(b);
	free(b->path);
	free(b);
}
