/* SPDX-License-Identifier: MIT */
/* vio-bench net: what its files share (options, the frame format). */
#ifndef VIO_BENCH_NET_H
#define VIO_BENCH_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "net_port.h"

enum net_mode { NET_TX, NET_RX, NET_TXRX, NET_PINGPONG, NET_REFLECT };

struct net_opts {
	const char *socket, *rx_socket;
	enum net_mode mode;
	uint32_t size;      /* frame bytes, Ethernet header included */
	unsigned seconds;
	unsigned warmup_ms; /* txrx: traffic before the rate is counted */
	unsigned ready_ms;  /* txrx: probe until the path carries frames, at most this long */
	uint64_t count;     /* frames to send (0: until seconds run out) */
	unsigned burst;
	unsigned pairs;
	uint16_t qsize;
	bool packed, iommu, no_mrg, no_event_idx, in_order, machine;
	uint8_t src[6], dst[6];
};

/* Test frames: ethertype 0x88B5, then a 64-bit sequence number and a 64-bit send time. */
#define NET_BENCH_ETHERTYPE 0x88b5
#define NET_BENCH_MIN 60u
#define NET_BENCH_MAX 9018u

extern const char *const net_mode_names[NET_REFLECT + 1];

/* 0: run; 1: exit 0 (help); 2: usage error (reported). */
int net_parse_args(int argc, char **argv, struct net_opts *o);

#endif
