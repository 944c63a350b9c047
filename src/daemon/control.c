/* SPDX-License-Identifier: MIT */
/*
 * viod's control loop: one thread waits on every device's backend fd, the
 * management socket, the signals and the statistics timer in one epoll set,
 * and hands each event to its owner. Nothing it calls waits on a front-end
 * or a management client (the backend and the RPC server never block), so
 * one slow peer delays no other.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dlog.h"
#include "rpc.h"
#include "stats.h"
#include "viod.h"

/* epoll data for the fds that are not a device's. */
static char ev_signal, ev_rpc, ev_prom;

int viod_watch_backend(struct viod *d, struct viod_dev *dev, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = dev };
	int fd = vio_vhu_backend_fd(dev->backend);

	if (epoll_ctl(d->ep_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) < 0)
		return -errno;
	return 0;
}

static int watch(struct viod *d, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(d->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* SIGUSR1 prints the counters; any other signal we take asks viod to stop. */
static bool on_signal(struct viod *d)
{
	struct signalfd_siginfo si;

	if (read(d->sig_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGUSR1) {
		viod_print_counters(d);
		return false;
	}
	dlog(VIO_LOG_INFO, NULL, "%s: completing in-flight I/O and exiting",
	     strsignal((int)si.ssi_signo));
	return true;
}

static void on_prom_timer(struct viod *d)
{
	uint64_t n;

	if (read(d->prom_timer_fd, &n, sizeof(n)) == sizeof(n))
		viod_write_prom_file(d);
}

int viod_run(struct viod *d)
{
	int r = watch(d, d->sig_fd, &ev_signal);

	if (!r && d->rpc)
		r = watch(d, rpc_server_fd(d->rpc), &ev_rpc);
	if (!r && d->prom_timer_fd >= 0)
		r = watch(d, d->prom_timer_fd, &ev_prom);
	if (r)
		return r;
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(d->ep_fd, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			dlog(VIO_LOG_ERR, NULL, "epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == &ev_signal) {
				if (on_signal(d))
					return 0;
			} else if (tag == &ev_rpc) {
				/* A method may delete a device: its events below are then stale. */
				rpc_server_dispatch(d->rpc);
				break;
			} else if (tag == &ev_prom) {
				on_prom_timer(d);
			} else {
				struct viod_dev *dev = tag;

				r = vio_vhu_backend_dispatch(dev->backend);
				if (r) {
					/* This device only: the others keep being served. */
					dlog(VIO_LOG_ERR, dev->name, "backend cannot go on (%s): its "
					     "socket is no longer served; delete and create it again",
					     strerror(-r));
					viod_watch_backend(d, dev, false);
				}
			}
		}
	}
}
