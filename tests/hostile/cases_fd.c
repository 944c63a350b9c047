/* SPDX-License-Identifier: MIT */
/*
 * Bogus and unexpected fds: fds on requests that take none, more fds than a
 * message may carry (in one piece and spread over the header's pieces),
 * kick/call/err fds that are not eventfds, and memory fds that are not a
 * memory file (a pipe, an eventfd, /dev/zero, a socket, a directory, a
 * read-only or write-sealed memfd). Each must be refused or make the
 * backend hang up, and every fd it received must be closed (the runner
 * counts viod's fds after each case).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* An fd on GET_FEATURES, and on SET_VRING_NUM: neither takes one (it must not be kept). */
static int c_unexpected_fds(struct hctx *c)
{
	struct vio_vhu_vring_state num = { 0, 16 };
	int efd = hfe_eventfd();
	struct hfe h;

	if (!negotiated(c, &h)) {
		hfe_send(&h, VHOST_USER_GET_FEATURES, 0, NULL, 0, &efd, 1);
		expect_answer_or_hangup(c, &h, VHOST_USER_GET_FEATURES, false,
					"GET_FEATURES with an fd");
	}
	hfe_close(&h);
	if (!negotiated(c, &h)) {
		hfe_send(&h, VHOST_USER_SET_VRING_NUM, VHOST_USER_NEED_REPLY_MASK, &num, sizeof(num),
			 &efd, 1);
		expect_answer_or_hangup(c, &h, VHOST_USER_SET_VRING_NUM, true,
					"SET_VRING_NUM with an fd");
	}
	hfe_close(&h);
	close(efd);
	return c->why[0] ? -1 : 0;
}

/* 16 fds in one message (the protocol allows 8): the backend must not keep any. */
static int c_fds_beyond_max(struct hctx *c)
{
	int fds[16], r;
	struct hfe h;

	for (unsigned i = 0; i < 16; i++)
		fds[i] = hfe_eventfd();
	if (!negotiated(c, &h)) {
		r = hfe_send(&h, VHOST_USER_SET_OWNER, 0, NULL, 0, fds, 16);
		if (r)
			fail(c, "send: %s", strerror(-r));
		else
			expect_survives(c, &h, "SET_OWNER with 16 fds");
	}
	hfe_close(&h);
	close_all(fds, 16);
	return c->why[0] ? -1 : 0;
}

/* The header sent in three pieces, 4 fds on each: 12 in all for one message. */
static int c_fds_over_header_pieces(struct hctx *c)
{
	uint32_t hdr[3] = { VHOST_USER_SET_OWNER, VHOST_USER_VERSION, 0 };
	int fds[12];
	struct hfe h;

	for (unsigned i = 0; i < 12; i++)
		fds[i] = hfe_eventfd();
	if (!negotiated(c, &h)) {
		for (unsigned p = 0; p < 3 && h.sock >= 0; p++) {
			if (hfe_send_raw(h.sock, (uint8_t *)hdr + 4 * p, 4, fds + 4 * p, 4))
				break;
			usleep(20000);
		}
		expect_survives(c, &h, "a header in pieces carrying 12 fds");
	}
	hfe_close(&h);
	close_all(fds, 12);
	return c->why[0] ? -1 : 0;
}

/* SET_VRING_KICK/CALL/ERR with an fd that is not an eventfd: refused. */
static int vring_fd(struct hctx *c, uint32_t req, int fd, const char *what)
{
	uint64_t qidx = 0;
	struct hfe h;
	int r;

	if (fd < 0)
		return fail(c, "%s: could not make the fd: %s", what, strerror(errno));
	if (!negotiated(c, &h)) {
		r = hfe_call(&h, req, &qidx, 8, &fd, 1, NULL);
		expect_refused(c, &h, r, what);
	}
	hfe_close(&h);
	close(fd);
	return c->why[0] ? -1 : 0;
}

static int c_vring_fds_not_eventfds(struct hctx *c)
{
	int sv[2], pv[2];

	vring_fd(c, VHOST_USER_SET_VRING_KICK, open("/dev/null", O_RDONLY | O_CLOEXEC),
		 "/dev/null as the kick fd");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		vring_fd(c, VHOST_USER_SET_VRING_KICK, sv[0], "a socket as the kick fd");
		close(sv[1]);
	}
	if (pipe2(pv, O_CLOEXEC) == 0) {
		vring_fd(c, VHOST_USER_SET_VRING_CALL, pv[1], "a pipe as the call fd");
		close(pv[0]);
	}
	vring_fd(c, VHOST_USER_SET_VRING_ERR, memfd_create("err", MFD_CLOEXEC),
		 "a memfd as the err fd");
	return c->why[0] ? -1 : 0;
}

/* SET_BACKEND_REQ_FD: the backend's own requests go out on it, so it must be a socket. */
static int c_backend_req_not_socket(struct hctx *c)
{
	static const char *const what[] = { "a pipe as the backend request channel",
					    "/dev/null as the backend request channel" };
	int pv[2] = { -1, -1 }, fds[2];

	if (pipe2(pv, O_CLOEXEC))
		return fail(c, "pipe: %s", strerror(errno));
	fds[0] = pv[1];
	fds[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	for (unsigned i = 0; i < 2 && !c->why[0]; i++) {
		struct hfe h;
		int r = hfe_connect(&h, c->sock);

		h.extra_protocol = VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ);
		if (!r)
			r = hfe_negotiate(&h, 0);
		if (r)
			fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
		else if (!(h.protocol & VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ)))
			note(c, "BACKEND_REQ not offered; sent anyway");
		if (!r)
			expect_refused(c, &h, hfe_call(&h, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0,
						      &fds[i], 1, NULL), what[i]);
		hfe_close(&h);
	}
	close(pv[0]);
	close_all(fds, 2);
	return c->why[0] ? -1 : 0;
}

/* SET_MEM_TABLE whose one region's fd is not a file to map: refused. */
static int mem_fd(struct hctx *c, int fd, const char *what)
{
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r;
	} t = { .nregions = 1, .r = { 0, 1u << 20, 0x7f0000000000ull, 0 } };
	struct hfe h;
	int r;

	if (fd < 0)
		return fail(c, "%s: could not make the fd: %s", what, strerror(errno));
	if (!negotiated(c, &h)) {
		r = hfe_call(&h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &fd, 1, NULL);
		expect_refused(c, &h, r, what);
	}
	hfe_close(&h);
	close(fd);
	return c->why[0] ? -1 : 0;
}

static int c_mem_fds_not_memory(struct hctx *c)
{
	char path[64];
	int pv[2], sv[2], m;

	if (pipe2(pv, O_CLOEXEC) == 0) {
		mem_fd(c, pv[0], "a pipe as guest memory");
		close(pv[1]);
	}
	mem_fd(c, hfe_eventfd(), "an eventfd as guest memory");
	mem_fd(c, open("/dev/zero", O_RDWR | O_CLOEXEC), "/dev/zero as guest memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		mem_fd(c, sv[0], "a socket as guest memory");
		close(sv[1]);
	}
	mem_fd(c, open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "a directory as guest memory");
	/* A memfd the backend may only read, and one sealed against writes. */
	m = memfd_create("ro", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m >= 0 && ftruncate(m, 1 << 20) == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", m);
		mem_fd(c, open(path, O_RDONLY | O_CLOEXEC), "a read-only memfd as guest memory");
		if (fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) == 0)
			mem_fd(c, dup(m), "a write-sealed memfd as guest memory");
	}
	if (m >= 0)
		close(m);
	return c->why[0] ? -1 : 0;
}

const struct hcase fd_cases[] = {
	{ "fd-unexpected", c_unexpected_fds },
	{ "fd-beyond-max", c_fds_beyond_max },
	{ "fd-over-header-pieces", c_fds_over_header_pieces },
	{ "fd-vring-not-eventfd", c_vring_fds_not_eventfds },
	{ "fd-backend-req-not-socket", c_backend_req_not_socket },
	{ "fd-memory-not-a-memory-file", c_mem_fds_not_memory },
	{ NULL, NULL },
};
