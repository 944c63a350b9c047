/* SPDX-License-Identifier: MIT */
/*
 * viod's data-plane threads. Queues move between threads only through the
 * command slot below, and the control thread waits for the owner's ack, so
 * a queue is never touched by two threads. Never blocks while work is
 * pending; never sleeps without first re-arming every queue's notifications;
 * never spins on a queue that can only wait (slots full, rate limited).
 * An idle thread spins --poll-us before it sleeps; when a disk's
 * completion wakes it soon after (under SPIN_MAX_NS), the window doubles,
 * up to SPIN_MAX_NS, and it halves back after any other wake-up: a thread
 * with requests on a disk that answers within a millisecond stays awake
 * for the answer (a halted CPU's wake-up costs tens of microseconds in a
 * VM), and a quiet one spins as little as it did. A completion for a queue
 * whose slots were all taken when the thread went to sleep does not count:
 * that queue could only wait, and must not keep the thread spinning.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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

/* One polled queue. Heap-allocated so that epoll can point at it while the thread's array moves. */
struct pq_slot {
	struct vio_poll_queue pq;
	int wait_fd;
	bool broken;
	bool full; /* could only wait when the thread last went to sleep (arm_all) */
	_Atomic uint64_t kicks, polls; /* written by the owner thread, read by the control thread */
};

/* Which thread a group's queues live on (control thread's bookkeeping). */
struct poller_group {
	const void *group;
	unsigned thread;
	unsigned count;
};

/* epoll data: a slot pointer; this bit says the event came from its wait fd, not its kick fd. */
#define EV_WAIT 1u
/* epoll data of the thread's own command eventfd. */
#define EV_CMD ((uint64_t)0)
/* The most an idle thread's spin window grows to (see the top of the file). */
#define SPIN_MAX_NS 1000000u

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
	/* owned by the thread (read by the control thread only between its own commands) */
	struct pq_slot **queues;
	unsigned nqueues, cap;
	unsigned nkickless; /* queues without a kick fd: the front-end never kicks them */
	unsigned load; /* queues assigned: the control thread's own count, no lock needed */
	_Atomic uint64_t busy_ns; /* time in polls that found work (when recording); thread writes */
	uint64_t spin_ns; /* this thread's spin window now: p->spin_ns .. SPIN_MAX_NS */
};

struct vio_poller {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned spin_ns;
	bool record_busy;
	unsigned nthreads;
	struct poller_thread *threads;
	struct poller_group *groups; /* control thread only */
	unsigned ngroups, groups_cap;
};

#define STAT_ADD(field, n)                                                                      \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* One read resets an eventfd (every fd the poller reads is a non-blocking eventfd). */
static void drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		dlog(VIO_LOG_DEBUG, "poller", "eventfd read: %s", strerror(errno));
}

static int watch(struct poller_thread *t, int fd, int op, uint64_t data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

	if (fd < 0)
		return 0;
	return epoll_ctl(t->epfd, op, fd, &ev) ? -errno : 0;
}

static int thread_add(struct poller_thread *t, const struct vio_poll_queue *pq)
{
	struct pq_slot *s;
	int ret;

	if (t->nqueues == t->cap) {
		unsigned cap = t->cap ? 2 * t->cap : 16;
		struct pq_slot **q = realloc(t->queues, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		t->queues = q;
		t->cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pq = *pq;
	s->wait_fd = pq->vdev.ops->queue_wait_fd ? pq->vdev.ops->queue_wait_fd(pq->vdev.dev, pq->q) : -1;
	ret = watch(t, pq->kick_fd, EPOLL_CTL_ADD, (uintptr_t)s);
	if (ret == 0 && (ret = watch(t, s->wait_fd, EPOLL_CTL_ADD, (uintptr_t)s | EV_WAIT)) != 0)
		watch(t, pq->kick_fd, EPOLL_CTL_DEL, 0);
	if (ret) {
		free(s);
		return ret;
	}
	if (pq->vq)
		vio_virtq_device_disable_notify(pq->vq);
	if (pq->vdev.ops->queue_attach)
		pq->vdev.ops->queue_attach(pq->vdev.dev, pq->q);
	t->queues[t->nqueues++] = s;
	t->nkickless += pq->vq && pq->kick_fd < 0;
	return 0;
}

static int thread_remove(struct poller_thread *t, void *dev, unsigned q)
{
	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = t->queues[i];

		if (s->pq.vdev.dev != dev || s->pq.q != q)
			continue;
		if (s->pq.vdev.ops->queue_detach)
			s->pq.vdev.ops->queue_detach(s->pq.vdev.dev, s->pq.q);
		watch(t, s->pq.kick_fd, EPOLL_CTL_DEL, 0);
		watch(t, s->wait_fd, EPOLL_CTL_DEL, 0);
		t->nkickless -= s->pq.vq && s->pq.kick_fd < 0;
		t->cmd_pq = s->pq; /* tells the control thread the queue (its group, to move it) */
		t->queues[i] = t->queues[--t->nqueues];
		free(s);
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

static int poll_one(struct poller_thread *t, struct pq_slot *s)
{
	uint64_t t0;
	int r;

	if (__builtin_expect(!t->p->record_busy, 1))
		return s->pq.vdev.ops->queue_poll(s->pq.vdev.dev, s->pq.q);
	t0 = now_ns();
	r = s->pq.vdev.ops->queue_poll(s->pq.vdev.dev, s->pq.q);
	if (r > 0)
		STAT_ADD(t->busy_ns, now_ns() - t0);
	return r;
}

static unsigned poll_all(struct poller_thread *t)
{
	unsigned work = 0;

	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = t->queues[i];
		int r;

		if (s->broken)
			continue;
		r = poll_one(t, s);
		if (r > 0) {
			work += r;
			STAT_ADD(s->polls, 1);
		} else if (r < 0) {
			/* The queue logged its fault once, by name; the transport flags the device. */
			dlog(VIO_LOG_DEBUG, s->pq.name ? s->pq.name : "device",
			     "no longer polled: %s", strerror(-r));
			s->broken = true;
		}
	}
	return work;
}

/* A queue that can only wait (slots full, rate limited, filled by others) is never armed. */
static bool queue_full(const struct pq_slot *s)
{
	const struct vio_vdev_ops *ops = s->pq.vdev.ops;

	return ops->queue_full && ops->queue_full(s->pq.vdev.dev, s->pq.q);
}

/*
 * Arm notifications on every queue a kick can move; true if work slipped in
 * meanwhile (enable, then look again: a request published before the driver
 * saw the enable would otherwise wait unkicked while we sleep). A queue that
 * can only wait (slots full, rate limited, a receive queue that other
 * queues' polls fill) stays unarmed: what it waits for wakes the thread
 * another way, and its waiting buffers must not keep the thread spinning.
 */
static bool arm_all(struct poller_thread *t)
{
	bool pending = false;

	for (unsigned i = 0; i < t->nqueues; i++) {
		struct pq_slot *s = t->queues[i];

		s->full = false;
		if (s->broken || !s->pq.vq)
			continue;
		if (queue_full(s)) {
			s->full = true;
			continue;
		}
		if (vio_virtq_device_enable_notify(s->pq.vq))
			pending = true;
	}
	return pending;
}

static void disarm_all(struct poller_thread *t)
{
	for (unsigned i = 0; i < t->nqueues; i++)
		if (!t->queues[i]->broken && t->queues[i]->pq.vq)
			vio_virtq_device_disable_notify(t->queues[i]->pq.vq);
}

/*
 * How long the thread may sleep: forever, but 1 ms while a ring nobody
 * kicks must still be looked at, and no longer than the soonest time a
 * rate-limited queue can go on.
 */
static int sleep_ms(const struct poller_thread *t)
{
	uint64_t ns = t->nkickless ? 1000000u : UINT64_MAX;

	for (unsigned i = 0; i < t->nqueues; i++) {
		const struct pq_slot *s = t->queues[i];
		uint64_t w;

		if (s->broken || !s->pq.vdev.ops->queue_wait_ns)
			continue;
		w = s->pq.vdev.ops->queue_wait_ns(s->pq.vdev.dev, s->pq.q);
		if (w && w < ns)
			ns = w;
	}
	if (ns == UINT64_MAX)
		return -1;
	return (int)((ns + 999999) / 1000000);
}

/* After a sleep: grow the spin window if a completion came soon, else shrink it back. */
static void adapt_spin(struct poller_thread *t, bool completion, uint64_t slept_ns)
{
	uint64_t base = t->p->spin_ns, max = base > SPIN_MAX_NS ? base : SPIN_MAX_NS;

	if (!base)
		return; /* --poll-us 0: sleep at once, always */
	if (completion && slept_ns < max)
		t->spin_ns = t->spin_ns * 2 < max ? t->spin_ns * 2 : max;
	else
		t->spin_ns = t->spin_ns / 2 > base ? t->spin_ns / 2 : base;
}

static void *thread_main(void *arg)
{
	struct poller_thread *t = arg;
	uint64_t idle_since = 0, slept_from;
	unsigned idle_loops = 0;
	bool completion;

	t->spin_ns = t->p->spin_ns;

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
		if (now_ns() - idle_since < t->spin_ns) {
			/*
			 * Spinning is worth it only while the front-end runs on
			 * another CPU. Where it waits for this one (more runnable
			 * threads than CPUs), give it the CPU now rather than at
			 * the end of our time slice: a syscall on a quiet machine.
			 */
			sched_yield();
			continue;
		}
		if (arm_all(t)) {
			disarm_all(t);
			continue;
		}
		slept_from = now_ns();
		n = epoll_wait(t->epfd, evs, 64, sleep_ms(t));
		completion = false;
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			struct pq_slot *s = (struct pq_slot *)(uintptr_t)(d & ~(uint64_t)EV_WAIT);

			if (d == EV_CMD) {
				drain_fd(t->cmd_fd);
			} else if (!(d & EV_WAIT)) {
				drain_fd(s->pq.kick_fd);
				STAT_ADD(s->kicks, 1);
			} else if (s->pq.vq) {
				/* A tap's wait fd carries frames: never read it here. */
				drain_fd(s->wait_fd);
				/* A queue that could only wait is not worth staying awake for. */
				if (!s->full)
					completion = true;
			}
		}
		adapt_spin(t, completion, now_ns() - slept_from);
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

static void pin(struct poller_thread *t, int cpu)
{
	cpu_set_t set;
	int r;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	r = pthread_setaffinity_np(t->tid, sizeof(set), &set);
	if (r)
		dlog(VIO_LOG_WARN, "poller", "cannot pin thread %u to CPU %d: %s",
		     (unsigned)(t - t->p->threads), cpu, strerror(r));
}

int vio_poller_new(unsigned nthreads, unsigned spin_us, const int *cpus, unsigned ncpus,
		   struct vio_poller **out)
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
		if (t->epfd < 0 || t->cmd_fd < 0 || watch(t, t->cmd_fd, EPOLL_CTL_ADD, EV_CMD) ||
		    pthread_create(&t->tid, NULL, thread_main, t)) {
			if (t->epfd >= 0)
				close(t->epfd);
			if (t->cmd_fd >= 0)
				close(t->cmd_fd);
			break;
		}
		p->nthreads++;
		if (ncpus)
			pin(t, cpus[i % ncpus]);
	}
	if (p->nthreads != nthreads) {
		vio_poller_free(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

static struct poller_group *find_group(struct vio_poller *p, const void *group)
{
	for (unsigned i = 0; group && i < p->ngroups; i++)
		if (p->groups[i].group == group)
			return &p->groups[i];
	return NULL;
}

void vio_poller_record_busy(struct vio_poller *p, bool on)
{
	p->record_busy = on;
}

uint64_t vio_poller_busy_ns(const struct vio_poller *p)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < p->nthreads; i++)
		sum += atomic_load_explicit(&p->threads[i].busy_ns, memory_order_relaxed);
	return sum;
}

static unsigned least_loaded(const struct vio_poller *p)
{
	unsigned best = 0;

	for (unsigned i = 1; i < p->nthreads; i++)
		if (p->threads[i].load < p->threads[best].load)
			best = i;
	return best;
}

/* Add pq to thread i, keeping the group and load books. */
static int add_to(struct vio_poller *p, unsigned i, const struct vio_poll_queue *pq)
{
	struct poller_group *g = find_group(p, pq->group);
	int ret;

	if (pq->group && !g && p->ngroups == p->groups_cap) {
		unsigned cap = p->groups_cap ? 2 * p->groups_cap : 16;
		struct poller_group *n = realloc(p->groups, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->groups = n;
		p->groups_cap = cap;
	}
	ret = thread_command(p, &p->threads[i], CMD_ADD, pq);
	if (ret)
		return ret;
	p->threads[i].load++;
	if (pq->group && !g) {
		g = &p->groups[p->ngroups++];
		*g = (struct poller_group){ .group = pq->group, .thread = i };
	}
	if (g)
		g->count++;
	return 0;
}

int vio_poller_add(struct vio_poller *p, const struct vio_poll_queue *pq)
{
	struct poller_group *g = find_group(p, pq->group);

	/* A group already lives on a thread: its queues reach each other there. */
	return add_to(p, g ? g->thread : least_loaded(p), pq);
}

/* Remove (dev, q) from thread i; its description in *out. 0 or -ENOENT. */
static int remove_from(struct vio_poller *p, unsigned i, const void *dev, unsigned q,
		       struct vio_poll_queue *out)
{
	struct vio_poll_queue key = { .vdev.dev = (void *)dev, .q = q };
	struct poller_thread *t = &p->threads[i];
	struct poller_group *g;

	if (thread_command(p, t, CMD_REMOVE, &key) != 0)
		return -ENOENT;
	t->load--;
	/* The thread copied the removed queue into cmd_pq before it acked under the lock. */
	*out = t->cmd_pq;
	g = find_group(p, out->group);
	if (g && --g->count == 0)
		*g = p->groups[--p->ngroups];
	return 0;
}

/* The thread polling (dev, q), or -1. Control thread, no command in flight. */
static int owner_of(const struct vio_poller *p, const void *dev, unsigned q,
		    const struct pq_slot **slot)
{
	for (unsigned i = 0; i < p->nthreads; i++) {
		const struct poller_thread *t = &p->threads[i];

		for (unsigned k = 0; k < t->nqueues; k++) {
			if (t->queues[k]->pq.vdev.dev == dev && t->queues[k]->pq.q == q) {
				if (slot)
					*slot = t->queues[k];
				return (int)i;
			}
		}
	}
	return -1;
}

int vio_poller_remove(struct vio_poller *p, void *dev, unsigned q)
{
	struct vio_poll_queue pq;
	int i = owner_of(p, dev, q, NULL);

	return i < 0 ? -ENOENT : remove_from(p, (unsigned)i, dev, q, &pq);
}

int vio_poller_queue_stats(const struct vio_poller *p, const void *dev, unsigned q,
			   struct vio_poll_queue_stats *st)
{
	const struct pq_slot *s = NULL;
	int i = owner_of(p, dev, q, &s);

	if (i < 0)
		return -ENOENT;
	st->thread = (unsigned)i;
	st->kicks = atomic_load_explicit(&s->kicks, memory_order_relaxed);
	st->polls = atomic_load_explicit(&s->polls, memory_order_relaxed);
	return 0;
}

unsigned vio_poller_nthreads(const struct vio_poller *p)
{
	return p->nthreads;
}

unsigned vio_poller_thread_load(const struct vio_poller *p, unsigned thread)
{
	return thread < p->nthreads ? p->threads[thread].load : 0;
}

/* Move one ungrouped queue from thread `from` to thread `to`: true if one moved. */
static bool move_one(struct vio_poller *p, unsigned from, unsigned to)
{
	struct poller_thread *t = &p->threads[from];
	struct vio_poll_queue pq;
	const void *dev = NULL;
	unsigned q = 0;

	for (unsigned k = 0; k < t->nqueues; k++) {
		if (!t->queues[k]->pq.group) {
			dev = t->queues[k]->pq.vdev.dev;
			q = t->queues[k]->pq.q;
			break;
		}
	}
	if (!dev || remove_from(p, from, dev, q, &pq))
		return false;
	if (add_to(p, to, &pq) == 0)
		return true;
	/* Put it back where it was; if even that fails, say so: the queue is no longer polled. */
	if (add_to(p, from, &pq))
		dlog(VIO_LOG_ERR, pq.name ? pq.name : "poller", "lost while moving between threads");
	return false;
}

void vio_poller_rebalance(struct vio_poller *p)
{
	for (unsigned guard = 0; guard < 4096; guard++) {
		unsigned lo = least_loaded(p), hi = 0;

		for (unsigned i = 1; i < p->nthreads; i++)
			if (p->threads[i].load > p->threads[hi].load)
				hi = i;
		if (p->threads[hi].load <= p->threads[lo].load + 1 || !move_one(p, hi, lo))
			return;
	}
}

void vio_poller_free(struct vio_poller *p)
{
	for (unsigned i = 0; i < p->nthreads; i++) {
		struct poller_thread *t = &p->threads[i];
		thread_command(p, t, CMD_EXIT, NULL);
		pthread_join(t->tid, NULL);
		close(t->epfd);
		close(t->cmd_fd);
		for (unsigned k = 0; k < t->nqueues; k++)
			free(t->queues[k]);
		free(t->queues);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->done);
	free(p->groups);
	free(p->threads);
	free(p);
}
