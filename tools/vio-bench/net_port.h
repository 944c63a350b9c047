/* SPDX-License-Identifier: MIT */
/*
 * One vhost-user-net port driven by vio's frontend and net client: connect,
 * negotiate, lay the rings and buffers out in the frontend's memory, close.
 * Shared by vio-bench net and the interop tests' net_probe.
 */
#ifndef VIO_BENCH_NET_PORT_H
#define VIO_BENCH_NET_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vio/net_client.h"
#include "vio/vhost_user.h"

struct net_port_opts {
	const char *socket;
	unsigned pairs;      /* queue pairs (1..VIO_NET_MAX_PAIRS) */
	uint16_t qsize;      /* 0: 256 */
	bool packed;         /* ask for RING_PACKED (fail if not offered) */
	bool iommu;          /* ask for ACCESS_PLATFORM (fail if not offered) */
	bool no_mrg;         /* do not ask for MRG_RXBUF */
	bool no_event_idx;
	bool in_order;       /* ask for IN_ORDER */
	bool ctrl;           /* ask for CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR (and MQ with pairs > 1) */
	bool offloads;       /* ask for CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6 */
	uint32_t rx_buf_size, tx_buf_size; /* 0: the client's defaults */
};

struct net_port {
	struct vio_vhu_frontend *f;
	struct vio_net_client *cl;
	uint64_t features; /* negotiated */
	unsigned pairs;
	bool ctrl;
};

/* 0, or a negative errno with a message for the user in err. */
int net_port_open(const struct net_port_opts *o, struct net_port *p, char *err, size_t errlen);

/* Disconnect cleanly (queues stopped) and free. Safe on a zeroed port. */
void net_port_close(struct net_port *p);

#endif
