/* SPDX-License-Identifier: MIT */
/*
 * viod's own log lines: the same sink, format and level as the library's
 * (vio_log_stderr, vio_log_set_level), with the owner (a device's socket
 * path, a queue, "poller") on every line. The daemon never includes the
 * library's internal logging.
 */
#ifndef VIOD_DLOG_H
#define VIOD_DLOG_H

#include "vio/log.h"

void dlog(enum vio_log_level level, const char *owner, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
