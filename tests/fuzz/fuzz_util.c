/* SPDX-License-Identifier: MIT */
/* Helpers every fuzz target links: the log sink and fd counting. Nothing target-specific. */
#include <dirent.h>
#include <stdlib.h>

#include "fuzz.h"
#include "vio/log.h"

static void drop(void *opaque, enum vio_log_level level, const char *owner, const char *msg)
{
	/* The line was formatted (vsnprintf) before it got here; read it so nothing is elided. */
	volatile size_t n = strlen(msg) + (owner ? strlen(owner) : 0);

	(void)n;
}

void fz_log_init(void)
{
	const char *e = getenv("VIO_FUZZ_LOG");

	if (e && *e == '1')
		vio_log_set(vio_log_stderr, "fuzz", VIO_LOG_DEBUG);
	else
		vio_log_set(drop, NULL, VIO_LOG_DEBUG);
}

int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}
