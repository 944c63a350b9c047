/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC 2.0 server of rpc.h: a listener and up to RPC_MAX_CLIENTS
 * non-blocking clients in one epoll set, newline-delimited requests parsed
 * with json-c, answers queued and written as the client reads them. Every
 * malformed or hostile input gets an error object or a closed connection;
 * nothing here waits, allocates without a bound, or trusts a length.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc.h"

#define RPC_MAX_CLIENTS 64
#define RPC_MAX_LINE (1u << 20)  /* a request longer than this closes the client */
#define RPC_MAX_OUT (16u << 20)  /* answers a client has not read: past this it is dropped */

struct rpc_client {
	int fd;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	bool want_out; /* EPOLLOUT registered */
	bool skipping; /* a line past RPC_MAX_LINE was answered: drop input up to its newline */
};

struct rpc_server {
	char *path;
	int listen_fd, ep_fd;
	const struct rpc_method *methods;
	unsigned nmethods;
	void *ctx;
	struct rpc_client *clients[RPC_MAX_CLIENTS];
};

/* ------------------------------------------------------------ requests */

static struct json_object *error_object(int code, const char *msg)
{
	struct json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	return e;
}

/* One response object for one request object (NULL for a notification). */
static struct json_object *handle_one(const struct rpc_method *methods, unsigned n, void *ctx,
				      struct json_object *req)
{
	struct json_object *id = NULL, *v, *params = NULL, *result = NULL, *resp, *err_obj = NULL;
	const char *name = NULL;
	char err[512] = "";
	bool notification;
	int code = RPC_INVALID_REQUEST;

	if (!json_object_is_type(req, json_type_object)) {
		err_obj = error_object(RPC_INVALID_REQUEST, "a request is a JSON object");
		notification = false;
		goto answer;
	}
	notification = !json_object_object_get_ex(req, "id", &id);
	if (id && !json_object_is_type(id, json_type_int) &&
	    !json_object_is_type(id, json_type_string) && !json_object_is_type(id, json_type_null)) {
		err_obj = error_object(RPC_INVALID_REQUEST, "id must be a number, a string or null");
		id = NULL;
		notification = false;
		goto answer;
	}
	if (!json_object_object_get_ex(req, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "2.0")) {
		err_obj = error_object(RPC_INVALID_REQUEST, "\"jsonrpc\": \"2.0\" is required");
		goto answer;
	}
	if (!json_object_object_get_ex(req, "method", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		err_obj = error_object(RPC_INVALID_REQUEST, "\"method\" must be a string");
		goto answer;
	}
	name = json_object_get_string(v);
	if (json_object_object_get_ex(req, "params", &params) && params &&
	    !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_array)) {
		err_obj = error_object(RPC_INVALID_PARAMS, "params must be an object");
		goto answer;
	}
	code = RPC_METHOD_NOT_FOUND;
	snprintf(err, sizeof(err), "no method '%.100s' (try 'help')", name);
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(methods[i].name, name))
			continue;
		err[0] = '\0';
		code = methods[i].fn(ctx, params, &result, err, sizeof(err));
		break;
	}
	if (code)
		err_obj = error_object(code, err[0] ? err : "failed");
answer:
	if (notification)
		goto done;
	resp = json_object_new_object();
	json_object_object_add(resp, "jsonrpc", json_object_new_string("2.0"));
	if (err_obj) {
		json_object_object_add(resp, "error", err_obj);
		err_obj = NULL;
	} else {
		json_object_object_add(resp, "result", result);
		result = NULL;
	}
	json_object_object_add(resp, "id", id ? json_object_get(id) : NULL);
	json_object_put(result);
	return resp;
done:
	json_object_put(err_obj);
	json_object_put(result);
	return NULL;
}

char *rpc_handle_line(const struct rpc_method *methods, unsigned nmethods, void *ctx,
		      const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req, *resp = NULL;
	char *out = NULL;
	size_t used;

	if (!tok)
		return NULL;
	/* CRLF line ends and trailing blanks are not part of the request. */
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	req = json_tokener_parse_ex(tok, line, (int)len);
	/* The line is all there is: a value that could go on (a number) ends here. */
	used = req ? (size_t)json_tokener_get_parse_end(tok) : len;
	if (!req && json_tokener_get_error(tok) == json_tokener_continue)
		req = json_tokener_parse_ex(tok, "", 1);
	if (!req || json_tokener_get_error(tok) != json_tokener_success || used < len) {
		resp = json_object_new_object();
		json_object_object_add(resp, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(resp, "error", error_object(RPC_PARSE_ERROR,
			req ? "one JSON value per line" :
			      json_tokener_error_desc(json_tokener_get_error(tok))));
		json_object_object_add(resp, "id", NULL);
	} else if (json_object_is_type(req, json_type_array) && json_object_array_length(req)) {
		/* A batch: an array of answers, none for notifications. */
		size_t n = json_object_array_length(req);

		resp = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *r = handle_one(methods, nmethods, ctx,
							   json_object_array_get_idx(req, i));

			if (r)
				json_object_array_add(resp, r);
		}
		if (json_object_array_length(resp) == 0) {
			json_object_put(resp);
			resp = NULL;
		}
	} else {
		resp = handle_one(methods, nmethods, ctx, req);
	}
	json_object_put(req);
	json_tokener_free(tok);
	if (resp) {
		const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);

		out = strdup(s);
		json_object_put(resp);
	}
	return out;
}

/* ------------------------------------------------------------- clients */

static void client_close(struct rpc_server *s, unsigned i)
{
	struct rpc_client *c = s->clients[i];

	epoll_ctl(s->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	s->clients[i] = NULL;
}

static void client_watch(struct rpc_server *s, unsigned i)
{
	struct rpc_client *c = s->clients[i];
	bool want = c->out_len > c->out_off;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = i + 1 };

	if (want != c->want_out && epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = want;
}

/* Queue text and a newline; false if the client has too much unread already. */
static bool client_queue(struct rpc_client *c, const char *text)
{
	size_t len = strlen(text) + 1, need;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	need = c->out_len + len;
	if (need - c->out_off > RPC_MAX_OUT)
		return false;
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return false;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len - 1);
	c->out[c->out_len + len - 1] = '\n';
	c->out_len = need;
	return true;
}

/* Write what the socket takes now; false when the client is gone. */
static bool client_flush(struct rpc_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->out_off += (size_t)r;
	}
	return true;
}

/* Handle every whole line in the input buffer; false to drop the client. */
static bool client_lines(struct rpc_server *s, struct rpc_client *c)
{
	size_t start = 0;

	for (size_t i = 0; i < c->in_len; i++) {
		char *resp;

		if (c->in[i] != '\n')
			continue;
		if (c->skipping) {
			c->skipping = false; /* the end of the oversized line: the next one counts */
		} else if (i > start) {
			resp = rpc_handle_line(s->methods, s->nmethods, s->ctx, c->in + start, i - start);
			if (resp && !client_queue(c, resp)) {
				free(resp);
				return false;
			}
			free(resp);
		}
		start = i + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	return true;
}

static bool client_read(struct rpc_server *s, struct rpc_client *c)
{
	/* A fair share per wake-up: one flooding client cannot keep the loop from the others. */
	for (size_t taken = 0; taken < RPC_MAX_LINE / 4;) {
		ssize_t r;

		if (c->in_cap - c->in_len < 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
			char *p;

			if (c->in_len >= RPC_MAX_LINE) {
				/* Longer than any request: answer once, then drop it up to its end. */
				if (!c->skipping && !client_queue(c, "{\"jsonrpc\":\"2.0\",\"error\":{"
						  "\"code\":-32600,\"message\":\"request line longer "
						  "than 1 MiB: ignored up to its newline\"},\"id\":null}"))
					return false;
				c->skipping = true;
				c->in_len = 0;
				continue;
			}
			p = realloc(c->in, cap);
			if (!p)
				return false;
			c->in = p;
			c->in_cap = cap;
		}
		r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (r == 0)
			return false;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->in_len += (size_t)r;
		taken += (size_t)r;
		if (!client_lines(s, c))
			return false;
	}
	return true; /* more is waiting: epoll reports the client again */
}

static void accept_clients(struct rpc_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < RPC_MAX_CLIENTS && s->clients[i]; i++)
			;
		if (i == RPC_MAX_CLIENTS) {
			/* Full: the newest is told why (best effort, never waiting) and closed. */
			static const char busy[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,"
				"\"message\":\"too many management clients (64): try again later\"},"
				"\"id\":null}\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				(void)0; /* it will see the connection close */
			close(fd);
			continue;
		}
		s->clients[i] = calloc(1, sizeof(*s->clients[i]));
		if (!s->clients[i]) {
			close(fd);
			continue;
		}
		s->clients[i]->fd = fd;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i + 1 };

		if (epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(s->clients[i]);
			s->clients[i] = NULL;
		}
	}
}

void rpc_server_dispatch(struct rpc_server *s)
{
	struct epoll_event evs[16];
	int n = epoll_wait(s->ep_fd, evs, 16, 0);

	for (int k = 0; k < n; k++) {
		unsigned i;
		struct rpc_client *c;

		if (evs[k].data.u32 == 0) {
			accept_clients(s);
			continue;
		}
		i = evs[k].data.u32 - 1;
		c = s->clients[i];
		if (!c)
			continue;
		if (((evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !client_read(s, c)) ||
		    !client_flush(c)) {
			client_close(s, i);
			continue;
		}
		client_watch(s, i);
	}
}

/* ------------------------------------------------------------ listener */

static int listen_unix(const char *path, unsigned mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	/* A socket file nobody accepts on is stale; anything else is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0 || errno == EAGAIN)
			return -EADDRINUSE;
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
	    listen(fd, RPC_MAX_CLIENTS) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

int rpc_server_new(const char *path, unsigned mode, const struct rpc_method *methods,
		   unsigned nmethods, void *ctx, struct rpc_server **out)
{
	struct rpc_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	int r;

	if (!s)
		return -ENOMEM;
	s->methods = methods;
	s->nmethods = nmethods;
	s->ctx = ctx;
	s->listen_fd = s->ep_fd = -1;
	s->path = strdup(path);
	r = s->path ? listen_unix(path, mode) : -ENOMEM;
	if (r < 0)
		goto fail;
	s->listen_fd = r;
	s->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep_fd < 0 || epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(path);
	}
	if (s->ep_fd >= 0)
		close(s->ep_fd);
	free(s->path);
	free(s);
	return r;
}

int rpc_server_fd(const struct rpc_server *s)
{
	return s->ep_fd;
}

void rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < RPC_MAX_CLIENTS; i++)
		if (s->clients[i])
			client_close(s, i);
	close(s->listen_fd);
	close(s->ep_fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
