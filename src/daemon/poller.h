/* SPDX-License-Identifier: MIT */
/*
 * Data-plane threads for viod. Each queue is owned by exactly one thread,
 * which polls it through the device's vdev ops and, after a quiet spell,
 * re-enables notifications and sleeps on the queue's kick and completion fds
 * (so an idle viod, connected or not, uses no CPU). Queues are spread over
 * the threads by load and spread again when devices come and go; threads may
 * be pinned to CPUs.
 */
#ifndef VIO_POLLER_H
#define VIO_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "vio/vdev.h"

struct vio_poller;

/* One queue handed to the poller; copied by vio_poller_add. */
struct vio_poll_queue {
	struct vio_vdev vdev;
	unsigned q;
	struct vio_virtq *vq; /* device side, to re-enable notifications before sleeping;
				 NULL: no virtqueue (a tap), its wait fd alone wakes the thread */
	int kick_fd;          /* the driver's kick eventfd; -1: it never kicks, polled each ms */
	const char *name;     /* for the one log line if the queue breaks */
	const void *group;    /* non-NULL: all queues of this group go to one thread (a switch) */
};

/* What the poller counts per queue (read by the control thread). */
struct vio_poll_queue_stats {
	unsigned thread;   /* the thread that polls it */
	uint64_t kicks;    /* times its kick eventfd woke its thread */
	uint64_t polls;    /* polls that found work */
};

/*
 * nthreads data-plane threads; spin_us: how long a thread polls an idle
 * queue set before sleeping; cpus[0..ncpus): thread i runs on cpus[i %
 * ncpus] (ncpus 0: wherever the scheduler likes).
 */
int vio_poller_new(unsigned nthreads, unsigned spin_us, const int *cpus, unsigned ncpus,
		   struct vio_poller **out);

/*
 * Start polling a queue (control thread) on the least loaded thread (a
 * group's queues on its group's thread): the chosen thread calls the vdev's
 * queue_attach, if any, before its first poll. 0 or negative errno.
 */
int vio_poller_add(struct vio_poller *p, const struct vio_poll_queue *pq);

/*
 * Stop polling (vdev.dev, q), calling the vdev's queue_detach, if any, on
 * the owning thread; when it returns no poller thread touches the queue any
 * more. -ENOENT if it was not being polled. Control thread only.
 */
int vio_poller_remove(struct vio_poller *p, void *dev, unsigned q);

/*
 * Spread queues evenly again (after devices went away): queues move from
 * the busiest thread to the least busy until no two threads differ by more
 * than one. A group moves with all its queues or not at all. Control thread.
 */
void vio_poller_rebalance(struct vio_poller *p);

/* The counters of (dev, q): 0 or -ENOENT. Control thread. */
int vio_poller_queue_stats(const struct vio_poller *p, const void *dev, unsigned q,
			   struct vio_poll_queue_stats *st);

/* Threads, and the number of queues each polls. */
unsigned vio_poller_nthreads(const struct vio_poller *p);
unsigned vio_poller_thread_load(const struct vio_poller *p, unsigned thread);

/*
 * Account the time spent in polls that found work (a benchmark's "busy"
 * time; off by default: it costs two clock reads per poll). Call before
 * the first queue is added.
 */
void vio_poller_record_busy(struct vio_poller *p, bool on);

/* Nanoseconds all threads spent in polls that found work, since they started. */
uint64_t vio_poller_busy_ns(const struct vio_poller *p);

/* Stop every thread (queues still present are simply dropped) and free. */
void vio_poller_free(struct vio_poller *p);

#endif
