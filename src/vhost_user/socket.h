/* SPDX-License-Identifier: MIT */
/* Unix socket plumbing shared by the vhost-user backend and frontend. */
#ifndef VIO_VHU_SOCKET_H
#define VIO_VHU_SOCKET_H

/* Listen on path (non-blocking, close-on-exec); a stale socket file is removed first. */
int vio_vhu_listen(const char *path);

/* Accept one connection (close-on-exec, blocking): fd, or -EAGAIN when none waits. */
int vio_vhu_accept(int listen_fd);

/* Connect to path (close-on-exec, blocking): fd or negative errno. */
int vio_vhu_connect(const char *path);

/* Bound every blocking receive and send on fd (a stalled peer then reads as -ETIMEDOUT). */
int vio_vhu_set_timeout(int fd, unsigned ms);

/* Reconnect timer: a timerfd armed to fire after ms (0: at once). */
int vio_vhu_timer_new(void);
int vio_vhu_timer_arm(int tfd, unsigned ms);
void vio_vhu_timer_consume(int tfd);

#endif
