/* SPDX-License-Identifier: MIT */
/*
 * The `--blk` device description viod takes on its command line:
 *   sock=PATH,file=PATH[,queues=N][,readonly][,direct][,serial=S]
 *   sock=PATH,ram=SIZE[,queues=N][,readonly][,serial=S]
 *   sock=PATH,null=SIZE[,queues=N]   (stores nothing: for benchmarks)
 * and with any of them: name=NAME (how the operator and the logs call it;
 * default: the socket path), and for file=: offset=SIZE,length=SIZE (the
 * device is that window of the file, like a virtual function's slice).
 */
#ifndef VIO_BLK_SPEC_H
#define VIO_BLK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLK_SPEC_MAX_QUEUES 64

struct blk_spec {
	char name[128];
	char sock[108];
	char file[4096];
	char serial[21];
	uint64_t ram_size, null_size;
	uint64_t offset, length; /* window of the file; length 0: to its end */
	bool has_offset, has_length;
	unsigned queues;
	bool readonly, direct, client;
	/* Rate limits at creation (0: none): iops=, iops_burst=, bps= (bytes/s), bps_burst=. */
	uint64_t iops, iops_burst, bps, bps_burst;
};

/*
 * Parse one description. On error returns -EINVAL and writes a message
 * naming the bad part into err.
 */
int blk_spec_parse(const char *text, struct blk_spec *spec, char *err, size_t errlen);

#endif
