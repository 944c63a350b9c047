/* SPDX-License-Identifier: MIT */
/*
 * The log sink. Formats into a stack buffer and hands it to the application's
 * callback; never writes anywhere on its own except through vio_log_stderr,
 * which the application chooses.
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static vio_log_fn *sink;
static void *sink_opaque;
static enum vio_log_level sink_max = VIO_LOG_INFO;

void vio_log_set(vio_log_fn *fn, void *opaque, enum vio_log_level max_level)
{
	sink = fn;
	sink_opaque = opaque;
	sink_max = max_level;
}

void vio_log(enum vio_log_level level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!sink || level > sink_max)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sink(sink_opaque, level, buf);
}

void vio_log_stderr(void *opaque, enum vio_log_level level, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	fprintf(stderr, "%s: %s: %s\n", opaque ? (const char *)opaque : "vio", names[level], msg);
}
