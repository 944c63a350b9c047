/* SPDX-License-Identifier: MIT */
/*
 * Where viod's management socket is when no --rpc path is given: one rule
 * for viod and vioctl. $XDG_RUNTIME_DIR/viod.sock when that is set; for root
 * /run/viod.sock; otherwise /tmp/viod-UID/viod.sock, inside a directory only
 * its user may enter (never a socket straight in world-writable /tmp).
 */
#ifndef VIO_UTIL_RPC_PATH_H
#define VIO_UTIL_RPC_PATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The default path into buf. With make_dir (viod), a missing private
 * directory is created mode 0700. One that exists must be a directory owned
 * by this user with mode 0700, or -EPERM with a message in err (vioctl too:
 * it must not talk to a socket someone else planted). 0, or a negative errno.
 */
int rpc_default_path(char *buf, size_t len, bool make_dir, char *err, size_t errlen);

/* The private directory of the default path when rpc_default_path made one, else "". */
const char *rpc_default_dir_made(void);

#endif
