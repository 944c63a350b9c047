/* SPDX-License-Identifier: MIT */
/* viod's management methods (rpc_methods.c), for the RPC server's table. */
#ifndef VIOD_RPC_METHODS_H
#define VIOD_RPC_METHODS_H

#include "rpc.h"
#include "viod.h"

extern const struct rpc_method viod_methods[];
extern const unsigned viod_nmethods;

#endif
