/* SPDX-License-Identifier: MIT */
/*
 * viod's management socket: JSON-RPC 2.0, one request per line, over a
 * Unix stream socket (mode 0600 unless configured). The server owns the
 * listener and its clients; methods are a table the daemon passes in. It
 * never blocks: a client that sends more than a line's limit, or does not
 * read its answers, is dropped, and the data path never waits on it.
 */
#ifndef VIOD_RPC_H
#define VIOD_RPC_H

#include <json-c/json.h>
#include <stddef.h>

/* JSON-RPC 2.0 error codes (the spec's), and viod's own. */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603
#define RPC_BUSY -32000          /* too many clients: the connection is closed */
#define RPC_NOT_FOUND -32001     /* no such device */
#define RPC_EXISTS -32002        /* a device of that name or socket exists */
#define RPC_FAILED -32003        /* the operation was tried and failed (message says why) */

/*
 * A method: reads params (may be NULL), on success sets *result (a new
 * reference, NULL for JSON null) and returns 0; on failure returns one of
 * the codes above with a message for the user in err.
 */
typedef int rpc_method_fn(void *ctx, struct json_object *params, struct json_object **result,
			  char *err, size_t errlen);

struct rpc_method {
	const char *name;
	rpc_method_fn *fn;
};

struct rpc_server;

/* Listen on path (a stale socket removed first). 0 or negative errno. */
int rpc_server_new(const char *path, unsigned mode, const struct rpc_method *methods,
		   unsigned nmethods, void *ctx, struct rpc_server **out);

/* The one fd to wait on (readable: call rpc_server_dispatch). */
int rpc_server_fd(const struct rpc_server *s);

/* Accept, read, answer and write what can be done now, never waiting. */
void rpc_server_dispatch(struct rpc_server *s);

/* Close every client and the listener, remove the socket file. NULL is fine. */
void rpc_server_free(struct rpc_server *s);

/* Run one request text (a line) through the method table: the response text (free it). */
char *rpc_handle_line(const struct rpc_method *methods, unsigned nmethods, void *ctx,
		      const char *line, size_t len);

#endif
