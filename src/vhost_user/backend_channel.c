/* SPDX-License-Identifier: MIT */
/*
 * The backend request channel (VHOST_USER_PROTOCOL_F_BACKEND_REQ, called
 * SLAVE_REQ in older QEMU): a socket the front-end gives us with
 * SET_BACKEND_REQ_FD, on which the backend sends its own requests (config
 * changed, IOTLB miss). Never waits: a message is sent without blocking or
 * not at all, and no reply is ever asked for, so a front-end that does not
 * read the channel can only lose its own notifications.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"

enum vhu_result vhu_h_set_backend_req_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct stat st;
	int fd = m->fds[0], fl;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		vio_warn(b->name, "SET_BACKEND_REQ_FD: the fd is not a socket");
		return VHU_ERROR;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		vio_warn(b->name, "SET_BACKEND_REQ_FD: %s", strerror(errno));
		return VHU_ERROR;
	}
	m->fds[0] = -1; /* ours now */
	pthread_mutex_lock(&b->chan_lock);
	vhu_close_fd(&b->chan_fd);
	b->chan_fd = fd;
	pthread_mutex_unlock(&b->chan_lock);
	return VHU_OK;
}

void vhu_channel_close(struct vio_vhu_backend *b)
{
	pthread_mutex_lock(&b->chan_lock);
	vhu_close_fd(&b->chan_fd);
	pthread_mutex_unlock(&b->chan_lock);
}

int vhu_channel_send(struct vio_vhu_backend *b, uint32_t request, const void *payload,
		     uint32_t size)
{
	struct vio_vhu_msg m = { .request = request, .size = size };
	int r = -ENOTCONN;

	if (size > sizeof(m.p.raw))
		return -EINVAL;
	if (size)
		memcpy(m.p.raw, payload, size);
	/* Any thread may send (an IOTLB miss comes from the data path): one message at a time. */
	pthread_mutex_lock(&b->chan_lock);
	if (b->chan_fd >= 0)
		r = vio_vhu_msg_send(b->chan_fd, &m);
	pthread_mutex_unlock(&b->chan_lock);
	return r;
}

int vio_vhu_backend_config_changed(struct vio_vhu_backend *b)
{
	const uint64_t need = VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
			      VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	int r;

	if (b->conn_fd < 0)
		return -ENOTCONN;
	if ((b->protocol & need) != need)
		return -ENOTSUP;
	r = vhu_channel_send(b, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL, 0);
	if (r)
		vio_warn(b->name, "cannot tell the front-end its config changed: %s", strerror(-r));
	return r;
}
