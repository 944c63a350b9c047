/* SPDX-License-Identifier: MIT */
/*
 * The log sink. Formats into a stack buffer and hands it, with its owner's
 * name, to the application's callback; never writes anywhere on its own
 * except through vio_log_stderr, which the application chooses.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

static vio_log_fn *sink;
static void *sink_opaque;
static _Atomic int sink_max = VIO_LOG_INFO;

void vio_log_set(vio_log_fn *fn, void *opaque, enum vio_log_level max_level)
{
	sink = fn;
	sink_opaque = opaque;
	atomic_store_explicit(&sink_max, (int)max_level, memory_order_relaxed);
}

void vio_log_set_level(enum vio_log_level max_level)
{
	atomic_store_explicit(&sink_max, (int)max_level, memory_order_relaxed);
}

enum vio_log_level vio_log_get_level(void)
{
	return (enum vio_log_level)atomic_load_explicit(&sink_max, memory_order_relaxed);
}

const char *vio_log_level_name(enum vio_log_level level)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	return (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "?";
}

void vio_log(enum vio_log_level level, const char *owner, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!sink || (int)level > atomic_load_explicit(&sink_max, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sink(sink_opaque, level, owner, buf);
}

void vio_log_stderr(void *opaque, enum vio_log_level level, const char *owner, const char *msg)
{
	/* One fprintf per line: stdio locks the stream, so threads' lines do not mix. */
	fprintf(stderr, "%s: %s: %s%s%s\n", opaque ? (const char *)opaque : "vio",
		vio_log_level_name(level), owner ? owner : "", owner ? ": " : "", msg);
}
