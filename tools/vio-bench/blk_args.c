/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: the command line. Owns --help and every option's parsing
 * and range check into struct blk_opts; it knows nothing of the device, so
 * checks against the disk are blk_setup.c's.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_bench.h"
#include "util/parse_num.h"

#define PROG "vio-bench blk"
#include "vio/vhost_user.h"
#include "vio/virtio_spec.h"

#define BLK_MAX_DEPTH 1024
#define BLK_MAX_BS (4u << 20)

const char *const blk_rw_names[RW_RANDRW + 1] = {
	"read", "write", "randread", "randwrite", "randrw"
};

#define NRW (sizeof(blk_rw_names) / sizeof(blk_rw_names[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vio-bench blk --socket PATH [options]\n"
		"Drive any vhost-user-blk backend (viod, qemu-storage-daemon, SPDK) with vio's\n"
		"frontend, no VM, and report IOPS, MB/s (10^6 bytes) and completion latency.\n"
		"  --socket PATH      the backend's vhost-user socket (required)\n"
		"  --rw MODE          read | write | randread | randwrite | randrw (randread)\n"
		"  --bs SIZE          bytes per request, a multiple of 512, at most 4M (4k)\n"
		"  --iodepth N        requests in flight per queue, 1..%u (32)\n"
		"  --queues N         queues, one thread each; each owns 1/N of the region (1)\n"
		"  --seconds N        length of the load (10); Ctrl-C ends it early\n"
		"  --size SIZE        use only the first SIZE bytes of the disk (whole disk)\n"
		"  --rwmixread PCT    percentage of reads for randrw (50)\n"
		"  --verify           writes carry a pattern made from (sector, generation, run);\n"
		"                     every read of a block written in this run is checked, and\n"
		"                     after the load every block written is read back and checked.\n"
		"                     Blocks not written in this run are never checked. Exit 1 on\n"
		"                     any mismatch, naming the first bad sector\n"
		"  --reconnect        when the backend goes away during the load, connect again\n"
		"                     (for up to 30 s) and resume: its inflight region lets a\n"
		"                     restarted backend finish what it had taken\n"
		"  --log              dirty logging on for the whole load (VHOST_F_LOG_ALL with a\n"
		"                     bitmap, collected once a second): what logging costs\n"
		"  --migrate-to PATH  live-migrate the device during the load to the backend on\n"
		"                     PATH (the same disk): memory copied while the load runs,\n"
		"                     then the jobs park, the source's queues stop, the last\n"
		"                     pages are copied and PATH takes the rings over; prints\n"
		"                     total_ms and downtime_ms on stderr\n"
		"  --migrate-at N     seconds into the load to migrate (half the load)\n"
		"  --spin-us N        busy-poll this long without a completion before sleeping on\n"
		"                     the queue's call eventfd (50; 0: sleep at once)\n"
		"  --packed           ask for VIRTIO_F_RING_PACKED (fail if not offered)\n"
		"  --iommu            ask for VIRTIO_F_ACCESS_PLATFORM (fail if not offered): the\n"
		"                     backend translates every address through an IOTLB, which\n"
		"                     vio-bench fills with one identity entry\n"
		"  --no-event-idx     do not ask for VIRTIO_F_EVENT_IDX\n"
		"  --no-indirect      do not ask for VIRTIO_F_INDIRECT_DESC\n"
		"  --machine          stdout ends with one line: iops= mbps= p50_us= p99_us=\n"
		"                     p999_us= errors= verify_errors= verified= capacity=\n"
		"                     (capacity in bytes, verified: reads checked)\n"
		"  --info             connect, print the device's features and config, exit\n"
		"  -h, --help         this text\n"
		"SIZE takes a K, M, G or T suffix (powers of 1024; KiB and KB alike).\n"
		"Exit status: 0 ok; 1 I/O errors, verify mismatches, a backend that cannot be\n"
		"reached, fails or stalls, or options that do not fit its disk; 2 bad usage.\n",
		BLK_MAX_DEPTH);
}

static int parse_rw(const char *s, enum rw_mode *out)
{
	for (unsigned i = 0; i < NRW; i++)
		if (!strcmp(s, blk_rw_names[i])) {
			*out = (enum rw_mode)i;
			return 0;
		}
	fprintf(stderr, "vio-bench blk: --rw '%s': expected read, write, randread, randwrite "
			"or randrw\n", s);
	return -EINVAL;
}

static int parse_bs(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_size_arg(PROG, "--bs", s, 1, BLK_MAX_BS, &v))
		return -EINVAL;
	if (v % SECTOR) {
		fprintf(stderr, "vio-bench blk: --bs '%s': must be a multiple of 512, at most 4M\n",
			s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

enum { OPT_SOCKET = 256, OPT_RW, OPT_BS, OPT_DEPTH, OPT_QUEUES, OPT_SECS, OPT_SIZE, OPT_MIX,
       OPT_VERIFY, OPT_SPIN, OPT_PACKED, OPT_IOMMU, OPT_NO_EIDX, OPT_NO_INDIRECT, OPT_MACHINE, OPT_INFO,
       OPT_RECONNECT, OPT_LOG, OPT_MIGRATE_TO, OPT_MIGRATE_AT, OPT_HELP };

static const struct option longopts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "rw", required_argument, NULL, OPT_RW },
	{ "bs", required_argument, NULL, OPT_BS },
	{ "iodepth", required_argument, NULL, OPT_DEPTH },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "seconds", required_argument, NULL, OPT_SECS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "rwmixread", required_argument, NULL, OPT_MIX },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "reconnect", no_argument, NULL, OPT_RECONNECT },
	{ "log", no_argument, NULL, OPT_LOG },
	{ "migrate-to", required_argument, NULL, OPT_MIGRATE_TO },
	{ "migrate-at", required_argument, NULL, OPT_MIGRATE_AT },
	{ "spin-us", required_argument, NULL, OPT_SPIN },
	{ "packed", no_argument, NULL, OPT_PACKED },
	{ "iommu", no_argument, NULL, OPT_IOMMU },
	{ "no-event-idx", no_argument, NULL, OPT_NO_EIDX },
	{ "no-indirect", no_argument, NULL, OPT_NO_INDIRECT },
	{ "machine", no_argument, NULL, OPT_MACHINE },
	{ "info", no_argument, NULL, OPT_INFO },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_one(struct blk_opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_SOCKET: o->socket = arg; return 0;
	case OPT_RW: return parse_rw(arg, &o->rw);
	case OPT_BS: return parse_bs(arg, &o->bs);
	case OPT_DEPTH: return parse_uint_arg(PROG, "--iodepth", arg, 1, BLK_MAX_DEPTH, &o->iodepth);
	case OPT_QUEUES: return parse_uint_arg(PROG, "--queues", arg, 1, VIO_VHU_MAX_QUEUES, &o->queues);
	case OPT_SECS: return parse_uint_arg(PROG, "--seconds", arg, 1, 86400, &o->seconds);
	case OPT_SIZE: return parse_size_arg(PROG, "--size", arg, 1, UINT64_MAX, &o->size);
	case OPT_MIX: return parse_uint_arg(PROG, "--rwmixread", arg, 0, 100, &o->rwmixread);
	case OPT_SPIN: return parse_uint_arg(PROG, "--spin-us", arg, 0, 1000000, &o->spin_us);
	case OPT_VERIFY: o->verify = true; return 0;
	case OPT_RECONNECT: o->reconnect = true; return 0;
	case OPT_LOG: o->log = true; return 0;
	case OPT_MIGRATE_TO: o->migrate_to = arg; return 0;
	case OPT_MIGRATE_AT: return parse_uint_arg(PROG, "--migrate-at", arg, 1, 86400, &o->migrate_at);
	case OPT_PACKED: o->packed = true; return 0;
	case OPT_IOMMU: o->iommu = true; return 0;
	case OPT_NO_EIDX: o->no_event_idx = true; return 0;
	case OPT_NO_INDIRECT: o->no_indirect = true; return 0;
	case OPT_MACHINE: o->machine = true; return 0;
	case OPT_INFO: o->info = true; return 0;
	default: return -EINVAL;
	}
}

/* 0 run, 1 exit 0 (help), -EINVAL usage error (reported). */
int blk_parse_args(int argc, char **argv, struct blk_opts *o)
{
	int c;

	*o = (struct blk_opts){ .rw = RW_RANDREAD, .bs = 4096, .iodepth = 32, .queues = 1,
				.seconds = 10, .rwmixread = 50, .spin_us = 50 };
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *name = argv[optind - 1];

		if (c == 'h' || c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (c == ':') {
			fprintf(stderr, "vio-bench blk: option '%s' needs a value (try --help)\n", name);
			return -EINVAL;
		}
		if (c == '?') {
			fprintf(stderr, "vio-bench blk: unknown option '%s' (try --help)\n", name);
			return -EINVAL;
		}
		if (parse_one(o, c, optarg))
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "vio-bench blk: unexpected argument '%s' (try --help)\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!o->socket) {
		fprintf(stderr, "vio-bench blk: --socket PATH is required (try --help)\n");
		return -EINVAL;
	}
	if (o->migrate_to && (o->log || o->reconnect)) {
		fprintf(stderr, "vio-bench blk: --migrate-to goes with neither --log nor --reconnect\n");
		return -EINVAL;
	}
	if (o->size && o->size < o->bs) {
		fprintf(stderr, "vio-bench blk: --size %llu is smaller than --bs %u\n",
			(unsigned long long)o->size, o->bs);
		return -EINVAL;
	}
	return 0;
}
