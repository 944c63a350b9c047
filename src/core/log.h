/* SPDX-License-Identifier: MIT */
/* Library-internal logging entry point (see include/vio/log.h). */
#ifndef VIO_CORE_LOG_H
#define VIO_CORE_LOG_H

#include "vio/log.h"

void vio_log(enum vio_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vio_err(...) vio_log(VIO_LOG_ERR, __VA_ARGS__)
#define vio_warn(...) vio_log(VIO_LOG_WARN, __VA_ARGS__)
#define vio_info(...) vio_log(VIO_LOG_INFO, __VA_ARGS__)
#define vio_dbg(...) vio_log(VIO_LOG_DEBUG, __VA_ARGS__)

#endif
