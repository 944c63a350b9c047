/* SPDX-License-Identifier: MIT */
/*
 * viod's data-plane threads. Queues move between threads only through the
 * command slot below, and the control thread waits for the owner's ack, so
 * a queue is never touched by two threads. Never blocks while work is
 * pending; never sleeps without first re-arming every queue's notifications.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dlog.h"
#include "poller.h"

#define POLLER_MAX_QUEUES 256

struct pq_slot {
	struct vio_poll_queue pq;
	int wait_fd;
	bool broken;
};

struct poller_thread {
	struct vio_poller *p;
	pthread_t tid;
	int epfd;
	int cmd_fd; /* eventfd: a command is waiting */
	/* command slot, guarded by p->lock */
	enum { CMD_NONE, CMD_ADD, CMD_REMOVE, CMD_EXIT } cmd;
	atomic_bool cmd_pending; /* lets the thread skip the lock on every loop */
	struct vio_poll_queue cmd_pq;
	int cmd_result;
	/* owned by the thread */
	struct pq_slot queues[POLLER_MAX_QUEUES];
	unsigned nqueues;
	unsigned nkickless; /* queues without a kick fd: the front-end never kicks them */
	unsigned load; /* queues assigned: the control thread's own count, no lock needed */
};

struct vio_poller {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned spin_ns;
	unsigned nthreads;
	struct poller_thread *threads;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* One read resets an eventfd; a second could block on a blocking fd the peer gave us. */
static void drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		dlog(VIO_LOG_DEBUG, "poller", "eventfd read: %s", strerror(errno));
}

static int watch(struct poller_thread *t, int fd, int op)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (fd < 0)
		return 0;
	return epoll_ctl(t->epfd, op, fd, &ev) ? -errno : 0;
}

static int thread_add(struct poller_thread *t, const struct vio_poll_queue *pq)
{
	struct pq_slot *s;
	int ret;

	if (t->nqueues == POLLER_MAX_QUEUES)
		return -ENOSPC;
	s = &t->queues[t->nqueues];
	memset(s, 0, sizeof(*s));
	s->pq = *pq;
	s->wait_fd = pq->vdev.ops->queue_wait_fd ? pq->vdev.ops->queue_wait_fd(pq->vdev.dev, pq->q) : -1;
	ret = watch(t, pq->kick_fd, EPOLL_CTL_ADD);
	if (ret == 0 && (ret = watch(t, s->wait_fd, EPOLL_CTL_ADD)) != 0)
		watch(t, pq->kick_fd, EPOLL_CTL_DEL);
	if (ret)
		return ret;
	vio_virtq_device_disable_notify(pq->vq);
	t->nqueues++;
	t->nkickless += pq->kick_fd < 0;
	return 0;
}

static int thread_remove(struct poller_thread *t, void *dev, unsigned q)
{
	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = &t->queues[i];
		if (s->pq.vdev.dev != dev || s->pq.q != q)
			continue;
		watch(t, s->pq.kick_fd, EPOLL_CTL_DEL);
		watch(t, s->wait_fd, EPOLL_CTL_DEL);
		t->nkickless -= s->pq.kick_fd < 0;
		t->queues[i] = t->queues[--t->nqueues];
		return 0;
	}
	return -ENOENT;
}

/* Run a pending command; returns false when the thread must exit. */
static bool thread_commands(struct poller_thread *t)
{
	bool keep = true;

	if (!atomic_load_explicit(&t->cmd_pending, memory_order_acquire))
		return true;
	pthread_mutex_lock(&t->p->lock);
	atomic_store_explicit(&t->cmd_pending, false, memory_order_relaxed);
	switch (t->cmd) {
	case CMD_ADD: t->cmd_result = thread_add(t, &t->cmd_pq); break;
	case CMD_REMOVE: t->cmd_result = thread_remove(t, t->cmd_pq.vdev.dev, t->cmd_pq.q); break;
	case CMD_EXIT: keep = false; t->cmd_result = 0; break;
	case CMD_NONE: pthread_mutex_unlock(&t->p->lock); return true;
	}
	t->cmd = CMD_NONE;
	pthread_cond_broadcast(&t->p->done);
	pthread_mutex_unlock(&t->p->lock);
	return keep;
}

static unsigned poll_all(struct poller_thread *t)
{
	unsigned work = 0;

	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = &t->queues[i];
		int r;

		if (s->broken)
			continue;
		r = s->pq.vdev.ops->queue_poll(s->pq.vdev.dev, s->pq.q);
		if (r > 0) {
			work += r;
		} else if (r < 0) {
			/* The queue logged its fault once, by name; the transport flags the device. */
			dlog(VIO_LOG_DEBUG, s->pq.name ? s->pq.name : "device",
			     "no longer polled: %s", strerror(-r));
			s->broken = true;
		}
	}
	return work;
}

/* A queue with every in-flight slot taken waits for its completion fd, not for its ring. */
static bool queue_full(const struct pq_slot *s)
{
	const struct vio_vdev_ops *ops = s->pq.vdev.ops;

	return ops->queue_full && ops->queue_full(s->pq.vdev.dev, s->pq.q);
}

/* Arm notifications on every queue; true if work it can take slipped in meanwhile. */
static bool arm_all(struct poller_thread *t)
{
	bool pending = false;

	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = &t->queues[i];

		if (!s->broken && vio_virtq_device_enable_notify(s->pq.vq) && !queue_full(s))
			pending = true;
	}
	return pending;
}

static void disarm_all(struct poller_thread *t)
{
	for (unsigned i = 0; i < t->nqueues; i++)
		if (!t->queues[i].broken)
			vio_virtq_device_disable_notify(t->queues[i].pq.vq);
}

static void *thread_main(void *arg)
{
	struct poller_thread *t = arg;
	uint64_t idle_since = 0;
	unsigned idle_loops = 0;

	for (;;) {
		struct epoll_event evs[64];
		int n;

		if (!thread_commands(t))
			break;
		if (poll_all(t)) {
			idle_since = 0;
			idle_loops = 0;
			continue;
		}
		/* Reading the clock costs as much as an empty poll: look every 32 loops. */
		if (++idle_loops % 32 && t->p->spin_ns)
			continue;
		if (!idle_since)
			idle_since = now_ns();
		if (now_ns() - idle_since < t->p->spin_ns)
			continue;
		if (arm_all(t)) {
			disarm_all(t);
			continue;
		}
		/* A ring nobody kicks is still polled while idle, each millisecond. */
		n = epoll_wait(t->epfd, evs, 64, t->nkickless ? 1 : -1);
		for (int i = 0; i < n; i++)
			drain_fd(evs[i].data.fd);
		disarm_all(t);
		idle_since = 0;
		idle_loops = 0;
	}
	return NULL;
}

static int thread_command(struct vio_poller *p, struct poller_thread *t, int cmd,
			  const struct vio_poll_queue *pq)
{
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&p->lock);
	while (t->cmd != CMD_NONE)
		pthread_cond_wait(&p->done, &p->lock);
	t->cmd = cmd;
	if (pq)
		t->cmd_pq = *pq;
	atomic_store_explicit(&t->cmd_pending, true, memory_order_release);
	if (write(t->cmd_fd, &one, sizeof(one)) != sizeof(one))
		dlog(VIO_LOG_WARN, "poller", "wake-up write failed: %s", strerror(errno));
	while (t->cmd != CMD_NONE)
		pthread_cond_wait(&p->done, &p->lock);
	ret = t->cmd_result;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int vio_poller_new(unsigned nthreads, unsigned spin_us, struct vio_poller **out)
{
	struct vio_poller *p;
	unsigned i;

	if (nthreads == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	p->spin_ns = spin_us * 1000u;
	for (i = 0; i < nthreads; i++) {
		struct poller_thread *t = &p->threads[i];
		t->p = p;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		t->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (t->epfd < 0 || t->cmd_fd < 0 || watch(t, t->cmd_fd, EPOLL_CTL_ADD) ||
		    pthread_create(&t->tid, NULL, thread_main, t)) {
			if (t->epfd >= 0)
				close(t->epfd);
			if (t->cmd_fd >= 0)
				close(t->cmd_fd);
			break;
		}
		p->nthreads++;
	}
	if (p->nthreads != nthreads) {
		vio_poller_free(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

int vio_poller_add(struct vio_poller *p, const struct vio_poll_queue *pq)
{
	struct poller_thread *best = &p->threads[0];
	int ret;

	for (unsigned i = 1; i < p->nthreads; i++)
		if (p->threads[i].load < best->load)
			best = &p->threads[i];
	ret = thread_command(p, best, CMD_ADD, pq);
	if (ret == 0)
		best->load++;
	return ret;
}

int vio_poller_remove(struct vio_poller *p, void *dev, unsigned q)
{
	struct vio_poll_queue key = {.vdev.dev = dev, .q = q};

	for (unsigned i = 0; i < p->nthreads; i++) {
		if (thread_command(p, &p->threads[i], CMD_REMOVE, &key) == 0) {
			p->threads[i].load--;
			return 0;
		}
	}
	return -ENOENT;
}

void vio_poller_free(struct vio_poller *p)
{
	for (unsigned i = 0; i < p->nthreads; i++) {
		struct poller_thread *t = &p->threads[i];
		thread_command(p, t, CMD_EXIT, NULL);
		pthread_join(t->tid, NULL);
		close(t->epfd);
		close(t->cmd_fd);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}
