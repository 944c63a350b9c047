/* SPDX-License-Identifier: MIT */
/*
 * Library-internal logging entry point (see include/vio/log.h). Every call
 * names its owner: the device or queue name the line is about.
 */
#ifndef VIO_CORE_LOG_H
#define VIO_CORE_LOG_H

#include "vio/log.h"

void vio_log(enum vio_log_level level, const char *owner, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define vio_err(owner, ...) vio_log(VIO_LOG_ERR, owner, __VA_ARGS__)
#define vio_warn(owner, ...) vio_log(VIO_LOG_WARN, owner, __VA_ARGS__)
#define vio_info(owner, ...) vio_log(VIO_LOG_INFO, owner, __VA_ARGS__)
#define vio_dbg(owner, ...) vio_log(VIO_LOG_DEBUG, owner, __VA_ARGS__)

#endif
