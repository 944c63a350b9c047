/* SPDX-License-Identifier: MIT */
/*
 * vio-bench: dispatch to one benchmark per subcommand. Owns only the table of
 * subcommands and the top-level usage; each benchmark parses its own options.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

struct vio_bench_cmd {
	const char *name;
	vio_bench_cmd_fn *fn;
	const char *help;
};

static const struct vio_bench_cmd cmds[] = {
	{ "ring", vio_bench_ring, "one virtqueue, driver and device threads (split, packed)" },
	{ "blk", vio_bench_blk, "virtio-blk over vhost-user: IOPS and latency" },
	{ "net", vio_bench_net, "virtio-net over vhost-user: Mpps, Gbit/s, drops, ping-pong latency" },
	{ "copy", vio_bench_copy, "random block copies in memory: a RAM disk's own limit" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: vio-bench COMMAND [OPTIONS]   (vio-bench COMMAND --help for its options)\n"
		   "commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vio-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
