/* SPDX-License-Identifier: MIT */
/* The subcommands of vio-bench: each parses its own arguments and returns the exit status. */
#ifndef VIO_BENCH_H
#define VIO_BENCH_H

/* argv[0] is the subcommand's name. Exit status: 0 ok, 1 the run failed, 2 bad arguments. */
typedef int vio_bench_cmd_fn(int argc, char **argv);

vio_bench_cmd_fn vio_bench_ring;
vio_bench_cmd_fn vio_bench_blk;
vio_bench_cmd_fn vio_bench_net;
vio_bench_cmd_fn vio_bench_copy;

#endif
