/* SPDX-License-Identifier: MIT */
/*
 * vioctl's pieces: the connection to viod (vioctl.c), the tables it prints
 * (vioctl_print.c) and the stats command with --watch and --prometheus
 * (vioctl_stats.c).
 */
#ifndef VIOCTL_H
#define VIOCTL_H

#include <stdbool.h>

#include <json-c/json.h>

struct ctl {
	const char *path;
	int fd;
	int timeout_ms;
	bool json;
	int id;
};

/*
 * One request: params is consumed (NULL for none); on success *result is a
 * new reference (NULL for JSON null). 0, 1 (viod refused: message printed)
 * or 3 (viod unreachable: message printed).
 */
int ctl_call(struct ctl *c, const char *method, struct json_object *params,
	     struct json_object **result);

/* A command's result as a human-readable table on stdout. */
void ctl_print(const char *cmd, struct json_object *res);

/* stats [NAME] [--watch [SECS]] [--prometheus]: exit status. */
int ctl_stats(struct ctl *c, int argc, char **argv);

/* "1.5 GiB", "512 B": sizes for tables. */
void ctl_size(unsigned long long bytes, char *buf, size_t len);

#endif
