/* SPDX-License-Identifier: MIT */
/* viod's log lines, through the library's public sink (see dlog.h). */
#include <stdarg.h>
#include <stdio.h>

#include "dlog.h"

void dlog(enum vio_log_level level, const char *owner, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	/* Errors always print: an operator must see why viod stops. */
	if (level != VIO_LOG_ERR && level > vio_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vio_log_stderr("viod", level, owner, buf);
}
