/* SPDX-License-Identifier: MIT */
/* Unix socket plumbing shared by the vhost-user backend and frontend. */
#ifndef VIO_VHU_SOCKET_H
#define VIO_VHU_SOCKET_H

/*
 * Listen on path (non-blocking, close-on-exec) with the socket file's
 * permissions set to mode before anyone can connect; a stale socket file is
 * removed first.
 */
int vio_vhu_listen(const char *path, unsigned mode);

/* Accept one connection (close-on-exec, non-blocking): fd, or -EAGAIN when none waits. */
int vio_vhu_accept(int listen_fd);

/*
 * Connect to path without ever waiting (close-on-exec, non-blocking socket):
 * fd, or negative errno; -EAGAIN when the listener's backlog is full.
 */
int vio_vhu_connect_nonblock(const char *path);

/* Connect to path (close-on-exec, blocking): fd or negative errno. */
int vio_vhu_connect(const char *path);

/*
 * A kick, call or err fd from the front-end: it must be an eventfd, and is
 * made non-blocking so that neither a data-plane nor the control thread can
 * ever wait on it. 0, or -EINVAL for any other kind of fd.
 */
int vio_vhu_take_eventfd(int fd);

/* Bound every blocking receive and send on fd (a stalled peer then reads as -ETIMEDOUT). */
int vio_vhu_set_timeout(int fd, unsigned ms);

/* The backend's timer: a timerfd armed to fire after ms (0: at once), or disarmed. */
int vio_vhu_timer_new(void);
int vio_vhu_timer_arm(int tfd, unsigned ms);
int vio_vhu_timer_disarm(int tfd);
void vio_vhu_timer_consume(int tfd);

#endif
