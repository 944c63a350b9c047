/* SPDX-License-Identifier: MIT */
/*
 * viod's state as the control thread holds it: the options it runs with,
 * the data-plane poller, the switch, the devices it serves (created and
 * deleted at run time) and the event loop's fds. Everything here belongs to
 * the one control thread; data-plane threads see only the queues the poller
 * hands them.
 */
#ifndef VIOD_VIOD_H
#define VIOD_VIOD_H

#include <stdbool.h>
#include <stdint.h>

#include "blk_spec.h"
#include "net_spec.h"
#include "poller.h"
#include "vio/blk.h"
#include "vio/log.h"
#include "vio/net.h"
#include "vio/vhost_user.h"

/* What viod runs with: defaults, then the configuration file, then the command line. */
struct viod_opts {
	unsigned threads;
	unsigned poll_us;
	int cpus[64];           /* data-plane thread i runs on cpus[i % ncpus]; ncpus 0: anywhere */
	unsigned ncpus;
	bool record_busy;
	uint64_t max_guest_mem;
	unsigned socket_mode;   /* vhost-user sockets viod listens on */
	unsigned rpc_mode;      /* the management socket */
	enum vio_log_level log_level;
	char rpc_path[108];     /* "" : the default; "none": no management socket */
	bool rpc_given;         /* an explicit --rpc / "rpc": failing to listen is fatal */
	char prom_file[4096];   /* Prometheus textfile-collector file, "" for none */
	unsigned prom_interval_s;
	/* Devices to create at start (command line and configuration file). */
	struct blk_spec *blks;
	unsigned nblks;
	struct net_spec *nets;
	unsigned nnets;
	struct tap_spec *taps;
	unsigned ntaps;
};

enum viod_dev_type { VIOD_BLK, VIOD_NET, VIOD_TAP };

/* One served device: a blk disk, a net port (both behind a vhost-user socket) or a tap. */
struct viod_dev {
	struct viod_dev *next;
	struct viod *d;
	enum viod_dev_type type;
	char name[128];         /* what the operator calls it: name=, else the socket path / ifname */
	union {
		struct blk_spec blk;
		struct net_spec net;
		struct tap_spec tap;
	} spec;
	struct vio_blk *blk;
	struct vio_net *net;
	struct vio_tap *tap;
	struct vio_vhu_backend *backend;
	unsigned nqueues;          /* queues the device may run */
	char (*qnames)[160];       /* "<name> q<N>", one per queue (the poller keeps the pointer) */
	bool connected;
	struct vio_virtq *vqs[VIO_VHU_MAX_QUEUES]; /* running queues, for their counters */
};

struct viod {
	struct viod_opts o;
	struct vio_poller *poller;
	struct vio_switch *sw;     /* made with the first net port or tap */
	struct viod_dev *devs;
	unsigned ndevs;
	int ep_fd;                 /* the control loop's epoll set */
	int sig_fd;
	struct rpc_server *rpc;
	int prom_timer_fd;
	uint64_t started_ns;
};

/* dev.c: creating and deleting devices at run time (control thread). */
int viod_add_blk(struct viod *d, const struct blk_spec *sp, char *err, size_t errlen);
int viod_add_net(struct viod *d, const struct net_spec *sp, char *err, size_t errlen);
int viod_add_tap(struct viod *d, const struct tap_spec *sp, char *err, size_t errlen);
struct viod_dev *viod_find(struct viod *d, const char *name);
/* Stop its queues (completing what is in flight), close its socket, free it. */
void viod_delete(struct viod *d, struct viod_dev *dev);
void viod_delete_all(struct viod *d);
const char *viod_dev_type_str(enum viod_dev_type t);

/* control.c: the event loop; returns when a signal asks viod to stop. */
int viod_run(struct viod *d);
/* Watch (or stop watching) a backend's fd in the loop. */
int viod_watch_backend(struct viod *d, struct viod_dev *dev, bool on);

#endif
