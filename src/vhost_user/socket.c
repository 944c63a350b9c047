/* SPDX-License-Identifier: MIT */
/*
 * Unix domain sockets for vhost-user: listen (removing only a socket file
 * nobody listens on), accept, connect, and the reconnect timer. Never reads
 * or writes a message; never removes a path that is not a stale socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "socket.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

int vio_vhu_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, r = fill_addr(&sa, path);

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* A socket file is stale when nobody accepts on it any more. */
static int remove_stale(const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = vio_vhu_connect(path);
	if (fd >= 0) {
		close(fd);
		return -EADDRINUSE;
	}
	if (fd != -ECONNREFUSED)
		return fd;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	vio_info(path, "removed a stale socket file");
	return 0;
}

int vio_vhu_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, r = fill_addr(&sa, path);

	if (r)
		return r;
	r = remove_stale(path);
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int vio_vhu_accept(int listen_fd)
{
	int fd;

	do {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return (errno == EWOULDBLOCK) ? -EAGAIN : -errno;
	return fd;
}

int vio_vhu_set_timeout(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

int vio_vhu_timer_new(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

int vio_vhu_timer_arm(int tfd, unsigned ms)
{
	struct itimerspec its = { 0 };

	/* An all-zero it_value disarms: fire after 1 ns for "at once". */
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = ms ? (long)(ms % 1000) * 1000000 : 1;
	return timerfd_settime(tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

void vio_vhu_timer_consume(int tfd)
{
	uint64_t n;

	if (read(tfd, &n, sizeof(n)) < 0)
		return; /* not expired yet: nothing to consume */
}
