/* SPDX-License-Identifier: MIT */
/*
 * viod's configuration file (JSON, json-c): settings and devices to serve at
 * start, read before the command line, which overrides it (docs/viod.md).
 */
#ifndef VIOD_CONFIG_H
#define VIOD_CONFIG_H

#include <json-c/json.h>
#include <stddef.h>

#include "viod.h"

/* Apply the file at path to o. 0, or -EINVAL / -ENOMEM with a message naming the bad key. */
int viod_config_load(const char *path, struct viod_opts *o, char *err, size_t errlen);

/* "0,2,3" -> o->cpus. 0 or -EINVAL with a message. */
int viod_config_cpus(const char *text, struct viod_opts *o, char *err, size_t errlen);

#endif
