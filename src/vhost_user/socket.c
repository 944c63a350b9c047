/* SPDX-License-Identifier: MIT */
/*
 * Unix domain sockets for vhost-user: listen (removing only a socket file
 * nobody listens on; owner-only permissions unless told otherwise), accept,
 * connect (blocking for the frontend, never waiting for the backend), and
 * the backend's timer. Never reads or writes a message; never removes a
 * path that is not a stale socket.
 */
#include <errno.h>
#include <stdio.h>
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

static int connect_flags(const char *path, int flags)
{
	struct sockaddr_un sa;
	int fd, r = fill_addr(&sa, path);

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
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

int vio_vhu_connect(const char *path)
{
	return connect_flags(path, 0);
}

int vio_vhu_connect_nonblock(const char *path)
{
	/* A unix stream connect never completes later: it succeeds or fails (-EAGAIN) now. */
	return connect_flags(path, SOCK_NONBLOCK);
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
	fd = vio_vhu_connect_nonblock(path);
	if (fd >= 0 || fd == -EAGAIN) {
		if (fd >= 0)
			close(fd);
		return -EADDRINUSE; /* somebody accepts there (or will: its backlog is full) */
	}
	if (fd != -ECONNREFUSED)
		return fd;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	vio_info(path, "removed a stale socket file");
	return 0;
}

int vio_vhu_listen(const char *path, unsigned mode)
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
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* Nobody can connect before listen(): the mode is right before anyone may. */
	if (chmod(path, mode) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		unlink(path);
		close(fd);
		return r;
	}
	return fd;
}

int vio_vhu_accept(int listen_fd)
{
	int fd;

	do {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return (errno == EWOULDBLOCK) ? -EAGAIN : -errno;
	return fd;
}

int vio_vhu_take_eventfd(int fd)
{
	char link[64], target[32];
	struct stat st;
	ssize_t n;
	int fl;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n >= 0) {
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventfd]"))
			return -EINVAL;
	} else if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != 0) {
		/* No /proc: at least an anonymous inode (eventfd, timerfd, ...), not a file or socket. */
		return -EINVAL;
	}
	/* Shared with the front-end's copy of the fd, which only ever polls it too. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
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

int vio_vhu_timer_disarm(int tfd)
{
	struct itimerspec its = { 0 };

	return timerfd_settime(tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

void vio_vhu_timer_consume(int tfd)
{
	uint64_t n;

	if (read(tfd, &n, sizeof(n)) < 0)
		return; /* not expired yet: nothing to consume */
}
