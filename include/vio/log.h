/* SPDX-License-Identifier: MIT */
/**
 * @file log.h
 * Logging: the library never prints; it hands each message to a callback
 * the application sets (default: none, messages are dropped). Every message
 * names its owner, the instance it is about: a device's name (by default
 * its socket path), a queue ("<device> q<N>"), so that with a hundred
 * devices in one process each line can be traced to one of them.
 *
 * The sink may be called from any thread (control and data-plane threads
 * alike): it must be thread-safe. vio_log_set must be called before any
 * other thread uses the library; the level may change at any time.
 */
#ifndef VIO_LOG_H
#define VIO_LOG_H

#include "vio/export.h"

enum vio_log_level { VIO_LOG_ERR, VIO_LOG_WARN, VIO_LOG_INFO, VIO_LOG_DEBUG };

/** owner: the instance the line is about, or NULL for the library as a whole. */
typedef void vio_log_fn(void *opaque, enum vio_log_level level, const char *owner,
			const char *msg);

/** Set the process-wide sink and level. fn NULL drops every message. */
VIO_API void vio_log_set(vio_log_fn *fn, void *opaque, enum vio_log_level max_level);

/** Change the level (any thread, any time). */
VIO_API void vio_log_set_level(enum vio_log_level max_level);
VIO_API enum vio_log_level vio_log_get_level(void);

/** "error", "warning", "info", "debug". */
VIO_API const char *vio_log_level_name(enum vio_log_level level);

/**
 * A ready sink: one line "PREFIX: LEVEL: OWNER: MSG" on stderr, where
 * PREFIX is opaque as a string ("vio" when NULL). Thread-safe.
 */
VIO_API void vio_log_stderr(void *opaque, enum vio_log_level level, const char *owner,
			    const char *msg);

#endif
