/* SPDX-License-Identifier: MIT */
/* The backing-store checks of blk_check.h. Reads only: stat and /proc/meminfo. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "blk_check.h"
#include "util/parse_num.h"

/* MemAvailable from /proc/meminfo, in bytes; 0 when unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

static const char *kind(mode_t m)
{
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a pipe";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

int blk_spec_check(const struct blk_spec *sp, char *err, size_t errlen)
{
	char have[32], want[32];
	struct stat st;

	if (sp->file[0]) {
		if (stat(sp->file, &st) < 0) {
			snprintf(err, errlen, "file=%s: %s", sp->file, strerror(errno));
			return -errno;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			snprintf(err, errlen, "file=%s is %s: give a raw image file or a block device",
				 sp->file, kind(st.st_mode));
			return -EINVAL;
		}
		if (S_ISREG(st.st_mode) && st.st_size < 512) {
			snprintf(err, errlen, "file=%s is %lld bytes: a disk needs at least one "
				 "512-byte sector", sp->file, (long long)st.st_size);
			return -EINVAL;
		}
	}
	if (sp->ram_size) {
		uint64_t avail = mem_available();

		if (avail && sp->ram_size > avail) {
			format_size(sp->ram_size, want, sizeof(want));
			format_size(avail, have, sizeof(have));
			snprintf(err, errlen, "ram=%s is more than the %s of memory available", want,
				 have);
			return -ENOMEM;
		}
	}
	return 0;
}
