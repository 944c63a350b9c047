/* SPDX-License-Identifier: MIT */
/*
 * The backend's incremental receiver: assembles one front-end request at a
 * time from a non-blocking socket, with the fds that arrive with its bytes,
 * and validates it exactly as the blocking receiver does. Never blocks,
 * never reads past the end of the current message (the next message's fds
 * belong to the next message), never leaks a received fd.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/log.h"
#include "msg.h"

void vio_vhu_rx_init(struct vio_vhu_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

void vio_vhu_rx_reset(struct vio_vhu_rx *rx)
{
	vio_vhu_msg_close_fds(&rx->m);
	vio_vhu_rx_init(rx);
}

bool vio_vhu_rx_partial(const struct vio_vhu_rx *rx)
{
	return rx->got > 0;
}

/* Read up to len bytes into buf without blocking: bytes read, 0 (EOF) or -errno. */
static ssize_t rx_read(int fd, struct vio_vhu_rx *rx, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf),
	};
	ssize_t r;

	do {
		r = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (vio_vhu_collect_fds(&mh, &rx->m))
		rx->bad_fds = true;
	return r;
}

int vio_vhu_rx_step(int fd, struct vio_vhu_rx *rx, struct vio_vhu_msg *m, const char *owner)
{
	char sink[4096];
	ssize_t n;
	int r;

	/* Header. */
	while (rx->got < VHOST_USER_HDR_SIZE) {
		n = rx_read(fd, rx, rx->hdr + rx->got, VHOST_USER_HDR_SIZE - rx->got);
		if (n <= 0)
			goto io;
		rx->got += (uint32_t)n;
		if (rx->got < VHOST_USER_HDR_SIZE)
			continue;
		memcpy(&rx->m.request, rx->hdr, 4);
		memcpy(&rx->m.flags, rx->hdr + 4, 4);
		memcpy(&rx->m.size, rx->hdr + 8, 4);
		if (rx->bad_fds)
			goto proto;
		r = vio_vhu_check_header(&rx->m, owner);
		if (r < 0)
			goto proto;
		if (r == 1)
			rx->discard_left = rx->m.size;
	}
	/* An unknown oversized request: read it away. */
	while (rx->discard_left) {
		n = rx_read(fd, rx, sink, rx->discard_left < sizeof(sink) ? rx->discard_left :
			    sizeof(sink));
		if (n <= 0)
			goto io;
		rx->discard_left -= (uint32_t)n;
		if (!rx->discard_left) {
			/* The caller answers from the header (NEED_REPLY); the fds are gone. */
			vio_vhu_msg_close_fds(&rx->m);
			*m = rx->m;
			m->size = 0;
			vio_vhu_rx_init(rx);
			return -ENOMSG;
		}
	}
	/* Payload. */
	while (rx->got < VHOST_USER_HDR_SIZE + rx->m.size) {
		uint32_t off = rx->got - VHOST_USER_HDR_SIZE;

		n = rx_read(fd, rx, rx->m.p.raw + off, rx->m.size - off);
		if (n <= 0)
			goto io;
		rx->got += (uint32_t)n;
	}
	if (rx->bad_fds)
		goto proto;
	*m = rx->m;
	/* The message and its fds are the caller's now. */
	rx->m.nfds = 0;
	vio_vhu_rx_init(rx);
	return vio_vhu_validate_request(m, owner);
io:
	if (n == -EAGAIN)
		return -EAGAIN;
	r = n == 0 ? -ECONNRESET : (int)n;
	vio_vhu_rx_reset(rx);
	return r;
proto:
	vio_vhu_rx_reset(rx);
	return -EPROTO;
}
