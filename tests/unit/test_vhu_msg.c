/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user codec against hand-made byte streams on a socketpair: every
 * malformed message is refused with the right code, its fds are closed, and
 * well-formed ones (with fds) survive a send/receive round trip.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "vhost_user/backend_internal.h"
#include "vhost_user/msg.h"
#include "vhost_user/socket.h"

static int sp[2]; /* sp[0]: test writes raw bytes; sp[1]: codec reads */

static int setup(void **state)
{
	alarm(20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(vio_vhu_set_timeout(sp[1], 500), 0);
	return 0;
}

static int teardown(void **state)
{
	close(sp[0]);
	close(sp[1]);
	return 0;
}

/* Write a header claiming `size`, then `sent` payload bytes, with nfds fresh eventfds. */
static void send_raw(uint32_t req, uint32_t flags, uint32_t size, const void *payload, size_t sent,
		     unsigned nfds)
{
	uint8_t buf[12 + 4096];
	int fds[16];
	union {
		char b[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = 12 + sent };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(sent <= 4096 && nfds <= 16);
	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (sent)
		memcpy(buf + 12, payload, sent);
	if (nfds) {
		struct cmsghdr *c;

		for (unsigned i = 0; i < nfds; i++)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		memset(&ctrl, 0, sizeof(ctrl));
		mh.msg_control = ctrl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sp[0], &mh, 0), (ssize_t)(12 + sent));
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static int recv_one(struct vio_vhu_msg *m)
{
	memset(m, 0xa5, sizeof(*m));
	return vio_vhu_msg_recv(sp[1], m, "test");
}

static void test_valid(void **state)
{
	struct vio_vhu_msg m;
	uint64_t v = 0x1234;

	send_raw(VHOST_USER_GET_FEATURES, 1, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), 0);
	assert_int_equal(m.request, VHOST_USER_GET_FEATURES);
	assert_int_equal(m.size, 0);
	assert_int_equal(m.nfds, 0);

	send_raw(VHOST_USER_SET_FEATURES, 1 | VHOST_USER_NEED_REPLY_MASK, 8, &v, 8, 0);
	assert_int_equal(recv_one(&m), 0);
	assert_int_equal(m.p.u64, 0x1234);
	assert_true(m.flags & VHOST_USER_NEED_REPLY_MASK);

	send_raw(VHOST_USER_SET_VRING_KICK, 1, 8, &v, 8, 1);
	assert_int_equal(recv_one(&m), 0);
	assert_int_equal(m.nfds, 1);
	assert_true(m.fds[0] >= 0);
	vio_vhu_msg_close_fds(&m);
}

static void test_bad_version(void **state)
{
	struct vio_vhu_msg m;
	int before = count_fds();

	send_raw(VHOST_USER_GET_FEATURES, 0, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	send_raw(VHOST_USER_GET_FEATURES, 2, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	send_raw(VHOST_USER_SET_VRING_CALL, 3, 8, "\0\0\0\0\0\0\0\0", 8, 1);
	assert_int_equal(recv_one(&m), -EPROTO);
	assert_int_equal(count_fds(), before);
}

static void test_reply_flag_on_request(void **state)
{
	struct vio_vhu_msg m;

	send_raw(VHOST_USER_GET_FEATURES, 1 | VHOST_USER_REPLY_MASK, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
}

static void test_bad_sizes(void **state)
{
	struct vio_vhu_msg m;
	uint8_t zero[300] = { 0 };

	/* u64 requests: 4 and 16 bytes */
	send_raw(VHOST_USER_SET_FEATURES, 1, 4, zero, 4, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	send_raw(VHOST_USER_SET_FEATURES, 1, 16, zero, 16, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* no-payload request with a payload */
	send_raw(VHOST_USER_GET_FEATURES, 1, 8, zero, 8, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* vring address: one byte short */
	send_raw(VHOST_USER_SET_VRING_ADDR, 1, 39, zero, 39, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* memory table shorter than its header */
	send_raw(VHOST_USER_SET_MEM_TABLE, 1, 4, zero, 4, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* config header only partly there, and config beyond 256 bytes */
	send_raw(VHOST_USER_GET_CONFIG, 1, 8, zero, 8, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* a known request claiming more than any payload: refused before reading it */
	send_raw(VHOST_USER_SET_MEM_TABLE, 1, 100000, NULL, 0, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
}

static void test_config_too_large(void **state)
{
	struct vio_vhu_msg m;
	uint8_t zero[300] = { 0 };

	send_raw(VHOST_USER_SET_CONFIG, 1, 12 + 257, zero, 12 + 257, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
}

static void test_fd_counts(void **state)
{
	struct vio_vhu_msg m;
	uint64_t v = 0;
	int before = count_fds();

	/* fds on a request that takes none */
	send_raw(VHOST_USER_GET_FEATURES, 1, 0, NULL, 0, 1);
	assert_int_equal(recv_one(&m), -EPROTO);
	send_raw(VHOST_USER_SET_VRING_NUM, 1, 8, &v, 8, 3);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* too many for a request that takes one */
	send_raw(VHOST_USER_SET_VRING_KICK, 1, 8, &v, 8, 2);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* ADD_MEM_REG needs exactly one */
	send_raw(VHOST_USER_ADD_MEM_REG, 1, 40, (uint8_t[40]){ 0 }, 40, 0);
	assert_int_equal(recv_one(&m), -EPROTO);
	/* more than the protocol's 8 at all */
	send_raw(VHOST_USER_SET_MEM_TABLE, 1, 8, &v, 8, 12);
	assert_int_equal(recv_one(&m), -EPROTO);
	assert_int_equal(count_fds(), before);
}

static void test_unknown(void **state)
{
	struct vio_vhu_msg m;
	uint8_t big[3000] = { 0 };
	int before = count_fds();

	send_raw(99, 1, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), -ENOMSG);
	assert_int_equal(m.request, 99);
	assert_false(m.flags & VHOST_USER_NEED_REPLY_MASK);

	send_raw(1000000, 1 | VHOST_USER_NEED_REPLY_MASK, 16, big, 16, 2);
	assert_int_equal(recv_one(&m), -ENOMSG);
	assert_true(m.flags & VHOST_USER_NEED_REPLY_MASK);
	assert_int_equal(m.nfds, 0);

	/* known but unsupported: well-formed for the codec, its fd handed over to be closed */
	send_raw(VHOST_USER_SET_LOG_FD, 1, 0, NULL, 0, 1);
	assert_int_equal(recv_one(&m), 0);
	assert_int_equal(m.nfds, 1);
	vio_vhu_msg_close_fds(&m);

	/* larger than any payload we keep: read away, and the stream stays in step */
	send_raw(77, 1, sizeof(big), big, sizeof(big), 0);
	assert_int_equal(recv_one(&m), -ENOMSG);
	send_raw(VHOST_USER_GET_QUEUE_NUM, 1, 0, NULL, 0, 0);
	assert_int_equal(recv_one(&m), 0);
	assert_int_equal(m.request, VHOST_USER_GET_QUEUE_NUM);
	assert_int_equal(count_fds(), before);
}

static void test_truncated_payload(void **state)
{
	struct vio_vhu_msg m;
	int before = count_fds();

	send_raw(VHOST_USER_SET_VRING_CALL, 1, 8, "\0\0\0\0", 4, 1);
	shutdown(sp[0], SHUT_WR);
	assert_int_equal(recv_one(&m), -ECONNRESET);
	assert_int_equal(count_fds(), before);
}

static void test_close_mid_header(void **state)
{
	struct vio_vhu_msg m;
	uint8_t part[6] = { 1, 0, 0, 0, 1, 0 };

	assert_int_equal(write(sp[0], part, sizeof(part)), 6);
	shutdown(sp[0], SHUT_WR);
	assert_int_equal(recv_one(&m), -ECONNRESET);
}

static void test_close_before_header(void **state)
{
	struct vio_vhu_msg m;

	shutdown(sp[0], SHUT_WR);
	assert_int_equal(recv_one(&m), -ECONNRESET);
}

static void test_stall_mid_message(void **state)
{
	struct vio_vhu_msg m;
	uint8_t part[6] = { 1, 0, 0, 0, 1, 0 };

	assert_int_equal(write(sp[0], part, sizeof(part)), 6);
	assert_int_equal(recv_one(&m), -ETIMEDOUT);
}

static void test_roundtrip_fds(void **state)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_SET_MEM_TABLE }, r;
	int efd[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
	struct stat a, b;

	m.size = 8 + 2 * 32;
	m.p.memory.nregions = 2;
	m.p.memory.regions[1].memory_size = 4096;
	m.fds[0] = efd[0];
	m.fds[1] = efd[1];
	m.nfds = 2;
	assert_int_equal(vio_vhu_msg_send(sp[0], &m), 0);
	assert_int_equal(vio_vhu_msg_recv(sp[1], &r, "test"), 0);
	assert_int_equal(r.nfds, 2);
	assert_int_equal(r.p.memory.nregions, 2);
	assert_int_equal(r.p.memory.regions[1].memory_size, 4096);
	assert_int_equal(fstat(efd[1], &a), 0);
	assert_int_equal(fstat(r.fds[1], &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	vio_vhu_msg_close_fds(&r);
	close(efd[0]);
	close(efd[1]);
}

static void test_replies(void **state)
{
	struct vio_vhu_msg m;
	uint64_t v = 7;

	/* good u64 reply */
	assert_int_equal(vio_vhu_msg_reply_u64(sp[0], VHOST_USER_GET_FEATURES, 7), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_GET_FEATURES, false, &m, "test"), 0);
	assert_int_equal(m.p.u64, 7);
	/* reply to another request */
	assert_int_equal(vio_vhu_msg_reply_u64(sp[0], VHOST_USER_GET_QUEUE_NUM, 7), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_GET_FEATURES, false, &m, "test"),
			 -EPROTO);
	/* no REPLY flag */
	send_raw(VHOST_USER_GET_FEATURES, 1, 8, &v, 8, 0);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_GET_FEATURES, false, &m, "test"),
			 -EPROTO);
	/* wrong size, and fds on a reply */
	send_raw(VHOST_USER_GET_VRING_BASE, 1 | VHOST_USER_REPLY_MASK, 4, &v, 4, 0);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_GET_VRING_BASE, false, &m, "test"),
			 -EPROTO);
	send_raw(VHOST_USER_SET_VRING_NUM, 1 | VHOST_USER_REPLY_MASK, 8, &v, 8, 1);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_SET_VRING_NUM, true, &m, "test"),
			 -EPROTO);
	/* GET_CONFIG refused: size 0 is a valid reply */
	send_raw(VHOST_USER_GET_CONFIG, 1 | VHOST_USER_REPLY_MASK, 0, NULL, 0, 0);
	assert_int_equal(vio_vhu_msg_recv_reply(sp[1], VHOST_USER_GET_CONFIG, false, &m, "test"), 0);
	assert_int_equal(m.size, 0);
}

static void test_table(void **state)
{
	assert_null(vio_vhu_req_info(0));
	assert_null(vio_vhu_req_info(26));
	assert_null(vio_vhu_req_info(UINT32_MAX));
	assert_string_equal(vio_vhu_req_name(VHOST_USER_SET_MEM_TABLE), "SET_MEM_TABLE");
	assert_int_equal(vio_vhu_req_info(VHOST_USER_ADD_MEM_REG)->min_fds, 1);
	assert_int_equal(vio_vhu_req_info(VHOST_USER_GET_CONFIG)->max_size, 12 + 256);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Ring addresses are front-end virtual addresses: one region's, whole, or refused. */
static void test_uaddr_to_gpa(void **state)
{
	static struct vio_vhu_backend b;
	static uint8_t host[2][4096];
	const uint64_t ua = 0x7f0000000000ull, ga = 0x100000000ull;
	uint64_t gpa = 0;

	b.nregions = 2;
	b.regions[0] = (struct vhu_region){ .r = { ga, 4096, host[0] }, .uaddr = ua };
	b.regions[1] = (struct vhu_region){ .r = { ga + 4096, 4096, host[1] }, .uaddr = 0 };
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua, 1, &gpa), 0);
	assert_true(gpa == ga);
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua + 100, 50, &gpa), 0);
	assert_true(gpa == ga + 100);
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua + 4095, 1, &gpa), 0);
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua + 4095, 2, &gpa), -EFAULT); /* straddles */
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua - 1, 1, &gpa), -EFAULT);
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua, 0, &gpa), -EFAULT);
	assert_int_equal(vhu_uaddr_to_gpa(&b, ua + 8, UINT64_MAX, &gpa), -EFAULT);
	/* the second region's front-end address is 0: 0 maps into it, exactly */
	assert_int_equal(vhu_uaddr_to_gpa(&b, 16, 8, &gpa), 0);
	assert_true(gpa == ga + 4096 + 16);
	assert_int_equal(vhu_uaddr_to_gpa(&b, UINT64_MAX, 1, &gpa), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_valid),           T(test_bad_version),     T(test_reply_flag_on_request),
		T(test_bad_sizes),       T(test_config_too_large), T(test_fd_counts),
		T(test_unknown),         T(test_truncated_payload), T(test_close_mid_header),
		T(test_close_before_header), T(test_stall_mid_message), T(test_roundtrip_fds),
		T(test_replies),         T(test_table),            T(test_uaddr_to_gpa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
