/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user codec: reads and writes messages with their fds and checks
 * every header field, payload size and fd count against the request table
 * before a caller sees the message. Never acts on a message, never trusts a
 * field it has not checked, never leaks a received fd.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "msg.h"


/* The size rule argument arrives already expanded into "min, max". */
#define VHU_SIZES(lo, hi) .min_size = (lo), .max_size = (hi)

static const struct vio_vhu_req_info req_table[VHOST_USER_MAX_REQUEST] = {
#define VHU_INFO(n, id, sz, fmin, fmax, rep, h)                                                  \
	[id] = { .name = #n, VHU_SIZES(sz), .min_fds = (fmin), .max_fds = (fmax), .reply = (rep), \
		 .known = true },
	VIO_VHU_REQUESTS(VHU_INFO)
#undef VHU_INFO
};

const struct vio_vhu_req_info *vio_vhu_req_info(uint32_t request)
{
	if (request >= VHOST_USER_MAX_REQUEST || !req_table[request].known)
		return NULL;
	return &req_table[request];
}

const char *vio_vhu_req_name(uint32_t request)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(request);

	return ri ? ri->name : "UNKNOWN";
}

void vio_vhu_msg_close_fds(struct vio_vhu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int vio_vhu_collect_fds(struct msghdr *mh, struct vio_vhu_msg *m)
{
	int excess = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VHOST_USER_MAX_FDS) {
				m->fds[m->nfds++] = fd;
			} else {
				close(fd);
				excess = 1;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		excess = 1; /* the kernel dropped fds that did not fit */
	return excess ? -EPROTO : 0;
}

/* Read the header, gathering fds from every piece it arrives in. */
static int recv_header(int fd, struct vio_vhu_msg *m)
{
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	size_t got = 0;
	int bad_fds = 0;

	m->nfds = 0;
	while (got < sizeof(hdr)) {
		union {
			char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} ctrl;
		struct iovec iov = { .iov_base = hdr + got, .iov_len = sizeof(hdr) - got };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctrl.buf,
			.msg_controllen = sizeof(ctrl.buf),
		};
		ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			vio_vhu_msg_close_fds(m);
			return (e == EAGAIN || e == EWOULDBLOCK) ? -ETIMEDOUT : -e;
		}
		if (vio_vhu_collect_fds(&mh, m))
			bad_fds = 1;
		if (r == 0) {
			vio_vhu_msg_close_fds(m);
			return -ECONNRESET;
		}
		got += (size_t)r;
	}
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	if (bad_fds) {
		vio_vhu_msg_close_fds(m);
		return -EPROTO;
	}
	return 0;
}

int vio_vhu_recv_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = recv(fd, (char *)buf + got, len - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
		if (r == 0)
			return -ECONNRESET;
		got += (size_t)r;
	}
	return 0;
}

static int discard(int fd, uint32_t len)
{
	char sink[4096];

	while (len) {
		uint32_t n = len < sizeof(sink) ? len : (uint32_t)sizeof(sink);
		int r = vio_vhu_recv_all(fd, sink, n);

		if (r)
			return r;
		len -= n;
	}
	return 0;
}

int vio_vhu_check_header(const struct vio_vhu_msg *m, const char *owner)
{
	if ((m->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		vio_warn(owner, "bad version in flags 0x%x", m->flags);
		return -EPROTO;
	}
	if (m->size <= VIO_VHU_MAX_PAYLOAD)
		return 0;
	/* Only a request we do not know may be big; it is read away to stay in step. */
	if (vio_vhu_req_info(m->request) || m->size > VHU_DISCARD_MAX) {
		vio_warn(owner, "%s payload of %u bytes", vio_vhu_req_name(m->request), m->size);
		return -EPROTO;
	}
	return 1;
}

/* Header and payload in; only framing is checked here. */
static int recv_frame(int fd, struct vio_vhu_msg *m, const char *owner)
{
	int r = recv_header(fd, m);

	if (r)
		return r;
	r = vio_vhu_check_header(m, owner);
	if (r < 0)
		goto fail;
	if (r == 1) {
		r = discard(fd, m->size);
		if (r)
			goto fail;
		m->size = 0;
		return 1; /* unknown, consumed */
	}
	r = vio_vhu_recv_all(fd, m->p.raw, m->size);
	if (r)
		goto fail;
	return 0;
fail:
	vio_vhu_msg_close_fds(m);
	return r;
}

static int check_size_fds(const char *owner, const struct vio_vhu_msg *m, const struct vio_vhu_req_info *ri,
			  uint32_t min_size, uint32_t max_size)
{
	if (m->size < min_size || m->size > max_size) {
		vio_warn(owner, "%s with %u payload bytes (expected %u..%u)", ri->name,
			 m->size, min_size, max_size);
		return -EPROTO;
	}
	if (m->nfds < ri->min_fds || m->nfds > ri->max_fds) {
		vio_warn(owner, "%s with %u fds (expected %u..%u)", ri->name, m->nfds,
			 ri->min_fds, ri->max_fds);
		return -EPROTO;
	}
	return 0;
}

int vio_vhu_validate_request(struct vio_vhu_msg *m, const char *owner)
{
	const struct vio_vhu_req_info *ri;

	if (m->flags & VHOST_USER_REPLY_MASK) {
		vio_warn(owner, "request %u carries the REPLY flag", m->request);
		goto proto;
	}
	ri = vio_vhu_req_info(m->request);
	if (!ri)
		goto unknown;
	if (check_size_fds(owner, m, ri, ri->min_size, ri->max_size))
		goto proto;
	/* Zero the rest so a handler reading a short (range-sized) payload sees no stale bytes. */
	memset(m->p.raw + m->size, 0, sizeof(m->p.raw) - m->size);
	return 0;
unknown:
	vio_vhu_msg_close_fds(m);
	return -ENOMSG;
proto:
	vio_vhu_msg_close_fds(m);
	return -EPROTO;
}

int vio_vhu_msg_recv(int fd, struct vio_vhu_msg *m, const char *owner)
{
	int r = recv_frame(fd, m, owner);

	if (r == 1) {
		vio_vhu_msg_close_fds(m);
		return -ENOMSG;
	}
	if (r)
		return r;
	return vio_vhu_validate_request(m, owner);
}

int vio_vhu_msg_recv_reply(int fd, uint32_t request, bool ack, struct vio_vhu_msg *m,
			   const char *owner)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(request);
	uint32_t lo = 8, hi = 8;
	int r;

	if (!ri)
		return -EINVAL;
	r = recv_frame(fd, m, owner);
	if (r == 1)
		goto proto;
	if (r)
		return r;
	if (!(m->flags & VHOST_USER_REPLY_MASK) || m->request != request) {
		vio_warn(owner, "expected a reply to %s, got request %u flags 0x%x", ri->name,
			 m->request, m->flags);
		goto proto;
	}
	if (m->nfds > (!ack && ri->reply == VIO_VHU_REPLY_INFLIGHT ? 1u : 0u)) {
		vio_warn(owner, "reply to %s carries %u fds", ri->name, m->nfds);
		goto proto;
	}
	if (!ack && ri->reply == VIO_VHU_REPLY_INFLIGHT)
		lo = hi = sizeof(struct vio_vhu_inflight);
	if (!ack && ri->reply == VIO_VHU_REPLY_LOG) {
		/* Nothing, or what some back-ends send (a u64, the request echoed): ignored. */
		lo = 0;
		hi = sizeof(struct vio_vhu_log);
	}
	if (!ack && ri->reply == VIO_VHU_REPLY_CONFIG) {
		/* Size 0 is the back-end's way to say GET_CONFIG failed. */
		lo = 0;
		hi = sizeof(struct vio_vhu_config);
	}
	if (m->size < lo || m->size > hi) {
		vio_warn(owner, "reply to %s with %u bytes", ri->name, m->size);
		goto proto;
	}
	memset(m->p.raw + m->size, 0, sizeof(m->p.raw) - m->size);
	return 0;
proto:
	vio_vhu_msg_close_fds(m);
	return -EPROTO;
}

int vio_vhu_msg_send(int fd, struct vio_vhu_msg *m)
{
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov[2];
	size_t total, sent = 0;
	bool fds_sent = false;

	if (m->size > VIO_VHU_MAX_PAYLOAD || m->nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	m->flags = (m->flags & ~VHOST_USER_VERSION_MASK) | VHOST_USER_VERSION;
	memcpy(hdr, &m->request, 4);
	memcpy(hdr + 4, &m->flags, 4);
	memcpy(hdr + 8, &m->size, 4);
	total = sizeof(hdr) + m->size;
	while (sent < total) {
		struct msghdr mh = { 0 };
		int niov = 0;
		ssize_t r;

		if (sent < sizeof(hdr)) {
			iov[niov].iov_base = hdr + sent;
			iov[niov++].iov_len = sizeof(hdr) - sent;
			iov[niov].iov_base = m->p.raw;
			iov[niov++].iov_len = m->size;
		} else {
			iov[niov].iov_base = m->p.raw + (sent - sizeof(hdr));
			iov[niov++].iov_len = total - sent;
		}
		mh.msg_iov = iov;
		mh.msg_iovlen = niov;
		if (m->nfds && !fds_sent) {
			struct cmsghdr *c;

			memset(&ctrl, 0, sizeof(ctrl));
			mh.msg_control = ctrl.buf;
			mh.msg_controllen = CMSG_SPACE(m->nfds * sizeof(int));
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(m->nfds * sizeof(int));
			memcpy(CMSG_DATA(c), m->fds, m->nfds * sizeof(int));
		}
		r = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return (errno == EPIPE) ? -ECONNRESET : -errno;
		fds_sent = true;
		sent += (size_t)r;
	}
	return 0;
}

int vio_vhu_msg_reply_u64(int fd, uint32_t request, uint64_t v)
{
	struct vio_vhu_msg m = {
		.request = request,
		.flags = VHOST_USER_REPLY_MASK,
		.size = sizeof(uint64_t),
	};

	m.p.u64 = v;
	return vio_vhu_msg_send(fd, &m);
}
