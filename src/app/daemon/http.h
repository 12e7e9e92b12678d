/* SPDX-License-Identifier: MIT */
/*
 * A small HTTP/1.x endpoint for Prometheus metrics (`mbsec gateway`): GET and HEAD only, one
 * request per connection, the response built by a caller's render function and sent with
 * `Connection: close`. Everything runs non-blocking on an mb_loop, in the loop's thread; the
 * module prints nothing (failures come back as one line in the caller's error buffer).
 *
 * Limits, by construction:
 *   - a request head (request line and headers) of at most HTTP_REQUEST_LIMIT bytes, else
 *     431; a request body, if any, is never read (up to 64 KiB of it are discarded while the
 *     connection closes, so that the client gets the response rather than a reset);
 *   - at most HTTP_MAX_CONNECTIONS connections at once. When they are all taken, the listener
 *     stops accepting: further clients wait in the kernel's listen queue (nobody is refused)
 *     and are accepted as soon as a connection ends;
 *   - a connection has the timeout (default HTTP_DEFAULT_TIMEOUT_MS) to deliver its whole
 *     request head, counted from accept and not extended by partial data (a client trickling
 *     bytes cannot hold a slot); while the response is written, the timeout counts from the
 *     last progress; after it, the client has the timeout, but at most 2 s, to close.
 *
 * Responses: 200 with the rendered body (Content-Type `text/plain; version=0.0.4;
 * charset=utf-8`), 404 when the render function does not serve the path, 400 for a malformed
 * request, 405 (with `Allow: GET, HEAD`) for another method, 431 for a head that is too long,
 * 505 for an HTTP version other than 1.x, 500 when rendering fails. Every response carries
 * Content-Length and `Connection: close`. A client that sends nothing, or only part of a head,
 * within the timeout is closed without a response.
 */
#ifndef MBSEC_TOOLS_HTTP_H
#define MBSEC_TOOLS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HTTP_MAX_CONNECTIONS 32
#define HTTP_REQUEST_LIMIT 8192 /* bytes of request line and headers */
#define HTTP_DEFAULT_TIMEOUT_MS 5000

struct mb_loop;
struct http_server;

/*
 * Writes the body for a GET or HEAD of `path` into `out`, a stream from open_memstream() that
 * the server owns (do not close it), and returns the status to send: 200, or 404 for a path it
 * does not serve. `path` is NUL-terminated and starts with '/'; the query string is removed and
 * nothing is percent-decoded ("/metrics" for "GET /metrics?x=1"). The body is sent only with
 * 200: a 404 gets a short fixed body, and any other status, or a write error on `out`, turns
 * into a 500. Called in the loop's thread; it must not call http_close().
 */
typedef int (*http_render_fn)(void *data, const char *path, FILE *out);

/*
 * Listens on `address` ("host:port", "[v6]:port", ":port" for every IPv4 address, or a bare
 * port; port 0 picks a free one, see http_address()) and serves clients on `loop` through
 * `render`, which gets `data` back. A port is required. On success, returns 0 and *server (owned
 * by the caller: free it with http_close() before destroying the loop). On failure, returns
 * -1, sets *server to NULL and writes one line (no newline) saying why into `error` (at most
 * `capacity` bytes, NUL-terminated).
 */
int http_listen(struct mb_loop *loop, const char *address, http_render_fn render, void *data,
                struct http_server **server, char *error, size_t capacity);

/* Writes the bound address, "127.0.0.1:9502" or "[::1]:9502", into `text` (at most `capacity`
 * bytes, NUL-terminated). Returns its length, MB_ENOSPC when it does not fit, or MB_EINVAL. */
int http_address(const struct http_server *server, char *text, size_t capacity);

/* Sets the timeout of every connection, in milliseconds (0 restores the default); it applies
 * from the next time a connection's timer is started. Mostly for tests. */
void http_set_timeout_ms(struct http_server *server, uint32_t timeout_ms);

/* Closes the listener and every connection (responses not fully written are cut off) and frees
 * the server. NULL is ignored. Not from inside the render function. */
void http_close(struct http_server *server);

/* A parsed request head: views into the buffer given to http_parse_request(). */
struct http_request {
    const char *method; /* "GET", not NUL-terminated */
    size_t method_length;
    const char *path; /* the target's path without query string, scheme or host; NULL for a
                         target of neither form ("*", "host:port") */
    size_t path_length;
    int minor_version; /* HTTP/1.<minor_version> */
};

/*
 * Parses a request head at the start of `buffer` (`length` bytes; nothing past them is read, no
 * NUL needed): the request line (origin-form "/path?query" or absolute-form "http://host/path"
 * target), then header lines up to the empty line. Lines end in CRLF or a bare LF; empty lines
 * before the request line are skipped. Headers are checked for syntax only. Returns the length
 * of the head (through the empty line) with *request filled; 0 when the head is not complete
 * yet; -400 when it is malformed; -505 when the version is not HTTP/1.x. Never allocates.
 */
int http_parse_request(const char *buffer, size_t length, struct http_request *request);

#endif
