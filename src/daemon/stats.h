/* SPDX-License-Identifier: MIT */
/*
 * viod's statistics: every device's and queue's counters gathered from the
 * library (queue, blk, switch port) and the poller, as JSON for the
 * management API, as Prometheus text exposition, and as log lines on
 * SIGUSR1. Control thread; reads counters the data-plane threads write.
 */
#ifndef VIOD_STATS_H
#define VIOD_STATS_H

#include <json-c/json.h>

#include "viod.h"

/* One device as `list` shows it (configuration and state). */
struct json_object *viod_dev_info(struct viod_dev *dev);

/* One device's counters, per queue and in total. */
struct json_object *viod_dev_stats(struct viod_dev *dev);

/* Prometheus text exposition of every device's counters (malloc'd). */
char *viod_prometheus(struct viod *d);

/* Write the Prometheus text to the configured file (atomically: a temp file renamed). */
void viod_write_prom_file(struct viod *d);

/* Every device's counters on stderr (SIGUSR1, exit). */
void viod_print_counters(struct viod *d);

#endif
