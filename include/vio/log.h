/* SPDX-License-Identifier: MIT */
/*
 * Logging: the library never prints; it hands messages to a callback the
 * application sets (default: none, messages are dropped).
 */
#ifndef VIO_LOG_H
#define VIO_LOG_H

enum vio_log_level { VIO_LOG_ERR, VIO_LOG_WARN, VIO_LOG_INFO, VIO_LOG_DEBUG };

typedef void vio_log_fn(void *opaque, enum vio_log_level level, const char *msg);

/* Set the process-wide log sink; call before starting threads. fn NULL drops messages. */
void vio_log_set(vio_log_fn *fn, void *opaque, enum vio_log_level max_level);

/* A ready sink that writes "vio: level: msg" lines to stderr. */
void vio_log_stderr(void *opaque, enum vio_log_level level, const char *msg);

#endif
