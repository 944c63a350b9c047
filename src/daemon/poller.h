/* SPDX-License-Identifier: MIT */
/*
 * Data-plane threads for viod. Each queue is owned by exactly one thread,
 * which polls it through the device's vdev ops and, after a quiet spell,
 * re-enables notifications and sleeps on the queue's kick and completion fds.
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

/* nthreads data-plane threads; spin_us: how long a thread polls an idle queue set before sleeping. */
int vio_poller_new(unsigned nthreads, unsigned spin_us, struct vio_poller **out);

/*
 * Start polling a queue (control thread): the chosen thread calls the
 * vdev's queue_attach, if any, before its first poll. 0 or negative errno.
 */
int vio_poller_add(struct vio_poller *p, const struct vio_poll_queue *pq);

/*
 * Stop polling (vdev.dev, q), calling the vdev's queue_detach, if any, on
 * the owning thread; when it returns no poller thread touches the queue any
 * more. -ENOENT if it was not being polled. Control thread only.
 */
int vio_poller_remove(struct vio_poller *p, void *dev, unsigned q);

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
