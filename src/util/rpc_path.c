/* SPDX-License-Identifier: MIT */
/*
 * The default management socket path of rpc_path.h, and the checks on its
 * private directory. Touches nothing but that one directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc_path.h"

static char made[64]; /* the directory this process created, for its exit */

const char *rpc_default_dir_made(void)
{
	return made;
}

int rpc_default_path(char *buf, size_t len, bool make_dir, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[64];
	struct stat st;

	if (xdg && *xdg) {
		if ((size_t)snprintf(buf, len, "%s/viod.sock", xdg) < len)
			return 0;
		snprintf(err, errlen, "$XDG_RUNTIME_DIR is too long for a socket path");
		return -ENAMETOOLONG;
	}
	if (geteuid() == 0) {
		snprintf(buf, len, "/run/viod.sock");
		return 0;
	}
	snprintf(dir, sizeof(dir), "/tmp/viod-%u", (unsigned)geteuid());
	snprintf(buf, len, "%s/viod.sock", dir);
	if (make_dir) {
		if (mkdir(dir, 0700) == 0) {
			snprintf(made, sizeof(made), "%s", dir);
			chmod(dir, 0700); /* whatever the umask took away */
		} else if (errno != EEXIST) {
			int e = errno;

			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
			return -e;
		}
	}
	/* lstat: a symlink another user planted is not our directory. */
	if (lstat(dir, &st) < 0) {
		int e = errno;

		if (!make_dir && e == ENOENT)
			return 0; /* no viod made it: connecting will say so */
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
		snprintf(err, errlen, "%s is not a directory owned by uid %u with mode 0700 "
			 "(it is %s, uid %u, mode %04o): refusing to use it for the management socket; "
			 "remove it or give --rpc PATH", dir, (unsigned)geteuid(),
			 S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symlink" :
			 "not a directory", (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}
