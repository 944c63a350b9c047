/* SPDX-License-Identifier: MIT */
/*
 * vio-bench net: the command line. Owns --help and every option's parsing
 * and range check into struct net_opts; it never connects anywhere.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_bench.h"
#include "util/parse_num.h"
#include "vio/net.h"

#define PROG "vio-bench net"

const char *const net_mode_names[NET_REFLECT + 1] = {
	"tx", "rx", "txrx", "pingpong", "reflect"
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vio-bench net --socket PATH [--rx-socket PATH] [options]\n"
		"Drive any vhost-user-net backend (viod's switch, DPDK's vhost PMD) with vio's\n"
		"frontend, no VM: generate, sink, or bounce Ethernet frames (ethertype 0x88B5)\n"
		"and report Mpps, Gbit/s (frame bytes, no preamble), drops, and for ping-pong\n"
		"the round-trip latency p50/p99.\n"
		"  --socket PATH      the port frames are sent on (required)\n"
		"  --rx-socket PATH   a second port the frames are received on (txrx mode)\n"
		"  --mode MODE        tx: send only; rx: receive only, count sequence gaps as\n"
		"                     drops; txrx: send on --socket, receive on --rx-socket in one\n"
		"                     thread; pingpong: send one frame, wait for it to come back\n"
		"                     (a reflector on the other side); reflect: send back what\n"
		"                     arrives, addresses swapped. Default: txrx with --rx-socket,\n"
		"                     else tx\n"
		"  --size N           frame bytes, %u..%u (64)\n"
		"  --seconds N        length of the run (5)\n"
		"  --warmup-ms N      txrx: traffic for N ms before the rate is counted (0)\n"
		"  --ready-ms N       txrx: before counting, send a probe frame every 10 ms until\n"
		"                     one comes back, for at most N ms (0: no probes); probes are\n"
		"                     reported apart (probes_sent=, probes_back=)\n"
		"  --count N          stop after sending N frames (0: no limit)\n"
		"  --burst N          frames per send call, 1..256 (32)\n"
		"  --queues N         queue pairs to set up (1); traffic uses the first\n"
		"  --qsize N          ring size (256)\n"
		"  --src MAC, --dst MAC  addresses of the frames sent\n"
		"                     (02:00:00:00:00:01, 02:00:00:00:00:02)\n"
		"  --packed           ask for packed rings (fail if not offered)\n"
		"  --iommu            ask for VIRTIO_F_ACCESS_PLATFORM (fail if not offered): the\n"
		"                     backend translates through an IOTLB, filled with one\n"
		"                     identity entry\n"
		"  --no-mrg           do not ask for mergeable receive buffers\n"
		"  --no-event-idx     do not ask for VIRTIO_F_EVENT_IDX\n"
		"  --in-order         ask for VIRTIO_F_IN_ORDER\n"
		"  --machine          stdout ends with one line: mode= size= seconds= sent= received=\n"
		"                     drops= mpps= gbps= p50_us= p99_us= probes_sent= probes_back=\n"
		"  -h, --help         this text\n"
		"Exit status: 0 ok; 1 the backend could not be reached or failed (or, with\n"
		"--count, frames did not all come back); 2 bad usage.\n",
		NET_BENCH_MIN, NET_BENCH_MAX);
}

static int parse_mac_arg(const char *what, const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6) {
		fprintf(stderr, PROG ": %s '%s': expected six hex bytes like 02:00:00:00:00:01\n",
			what, s);
		return -1;
	}
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int net_parse_args(int argc, char **argv, struct net_opts *o)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'}, {"rx-socket", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},   {"size", required_argument, NULL, 'z'},
		{"seconds", required_argument, NULL, 't'}, {"count", required_argument, NULL, 'c'},
		{"burst", required_argument, NULL, 'b'},  {"queues", required_argument, NULL, 'q'},
		{"qsize", required_argument, NULL, 'Q'},  {"src", required_argument, NULL, 'S'},
		{"dst", required_argument, NULL, 'D'},    {"packed", no_argument, NULL, 'P'},
		{"no-mrg", no_argument, NULL, 'M'},       {"no-event-idx", no_argument, NULL, 'E'},
		{"in-order", no_argument, NULL, 'I'},     {"machine", no_argument, NULL, 'x'},
		{"warmup-ms", required_argument, NULL, 'W'},
		{"iommu", no_argument, NULL, 'A'},
		{"ready-ms", required_argument, NULL, 'Y'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	bool mode_set = false;
	unsigned u;
	int c;

	*o = (struct net_opts){ .size = 64, .seconds = 5, .burst = 32, .pairs = 1, .qsize = 256,
				.src = { 2, 0, 0, 0, 0, 1 }, .dst = { 2, 0, 0, 0, 0, 2 } };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'r': o->rx_socket = optarg; break;
		case 'm':
			mode_set = false;
			for (unsigned i = 0; i <= NET_REFLECT; i++)
				if (!strcmp(optarg, net_mode_names[i])) {
					o->mode = (enum net_mode)i;
					mode_set = true;
				}
			if (!mode_set) {
				fprintf(stderr, PROG ": --mode '%s': expected tx, rx, txrx, pingpong "
						"or reflect\n", optarg);
				return 2;
			}
			break;
		case 'z':
			if (parse_uint_arg(PROG, "--size", optarg, NET_BENCH_MIN, NET_BENCH_MAX,
					   &o->size))
				return 2;
			break;
		case 't':
			if (parse_uint_arg(PROG, "--seconds", optarg, 1, 86400, &o->seconds))
				return 2;
			break;
		case 'c':
			if (parse_count_arg(PROG, "--count", optarg, 0, UINT64_MAX / 2, &o->count))
				return 2;
			break;
		case 'b':
			if (parse_uint_arg(PROG, "--burst", optarg, 1, 256, &o->burst))
				return 2;
			break;
		case 'q':
			if (parse_uint_arg(PROG, "--queues", optarg, 1, VIO_NET_MAX_PAIRS, &o->pairs))
				return 2;
			break;
		case 'Q':
			if (parse_uint_arg(PROG, "--qsize", optarg, 8, 4096, &u))
				return 2;
			o->qsize = (uint16_t)u;
			break;
		case 'S':
			if (parse_mac_arg("--src", optarg, o->src))
				return 2;
			break;
		case 'D':
			if (parse_mac_arg("--dst", optarg, o->dst))
				return 2;
			break;
		case 'W':
			if (parse_uint_arg(PROG, "--warmup-ms", optarg, 0, 600000, &o->warmup_ms))
				return 2;
			break;
		case 'Y':
			if (parse_uint_arg(PROG, "--ready-ms", optarg, 0, 600000, &o->ready_ms))
				return 2;
			break;
		case 'P': o->packed = true; break;
		case 'A': o->iommu = true; break;
		case 'M': o->no_mrg = true; break;
		case 'E': o->no_event_idx = true; break;
		case 'I': o->in_order = true; break;
		case 'x': o->machine = true; break;
		case 'h': usage(stdout); return 1;
		default: fprintf(stderr, "Try '" PROG " --help'.\n"); return 2;
		}
		if (c == 'm')
			mode_set = true;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o->socket) {
		fprintf(stderr, PROG ": --socket PATH is required\nTry '" PROG " --help'.\n");
		return 2;
	}
	if (!mode_set)
		o->mode = o->rx_socket ? NET_TXRX : NET_TX;
	if ((o->mode == NET_TXRX) != (o->rx_socket != NULL)) {
		fprintf(stderr, PROG ": --rx-socket goes with --mode txrx, and only with it\n");
		return 2;
	}
	return 0;
}
