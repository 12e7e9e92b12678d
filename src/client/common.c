/* SPDX-License-Identifier: MIT */
/* The part of the client that does not depend on how it waits: matching answers to requests,
 * opening sockets. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "mbsec/error.h"

int mb_function_is_idempotent(uint8_t function) {
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_READ_FIFO_QUEUE:
    case MB_FC_ENCAPSULATED_INTERFACE:
        return 1;
    default:
        return 0;
    }
}

/* The byte count a read request implies, or -1 for requests that imply none. */
static int expected_byte_count(const struct mb_request *request) {
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        return (request->read.quantity + 7) / 8;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return 2 * request->read.quantity;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return 2 * request->read_write.read_quantity;
    default:
        return -1;
    }
}

/* Says how a decoded response fails to answer its request, for mb_response_matches() failures. */
static void describe_mismatch(const struct mb_request *request, const struct mb_response *response,
                              char *detail, size_t detail_size) {
    int expected = expected_byte_count(request);
    if (expected >= 0) {
        snprintf(detail, detail_size, "%s response carries %u data bytes, the request asked for %d",
                 mb_function_name(request->function), response->read.byte_count, expected);
        return;
    }
    switch (request->function) {
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        snprintf(detail, detail_size,
                 "%s echo (address %u, value 0x%04X) differs from the request (address %u, value "
                 "0x%04X)",
                 mb_function_name(request->function), response->write_single.address,
                 response->write_single.value, request->write_single.address,
                 request->write_single.value);
        return;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        snprintf(detail, detail_size,
                 "%s response (address %u, quantity %u) differs from the request (address %u, "
                 "quantity %u)",
                 mb_function_name(request->function), response->write_multiple.address,
                 response->write_multiple.quantity, request->write_multiple.address,
                 request->write_multiple.quantity);
        return;
    default:
        snprintf(detail, detail_size,
                 "%s response does not answer the request it carries the "
                 "transaction id of",
                 mb_function_name(request->function));
        return;
    }
}

int mb__client_check(const uint8_t *request_pdu, size_t request_length, uint8_t request_unit,
                     const struct mb_adu *adu, struct mb_response *response, char *detail,
                     size_t detail_size) {
    detail[0] = '\0';
    if (adu->header.unit_id != request_unit) {
        snprintf(detail, detail_size, "response from unit %u to a request for unit %u",
                 adu->header.unit_id, request_unit);
        return MB_EMISMATCH;
    }
    uint8_t function = request_pdu[0];
    uint8_t answered = (uint8_t)(adu->pdu[0] & ~MB_EXCEPTION_BIT);
    if (answered != function) {
        snprintf(detail, detail_size, "function code %u (%s) answered a request with function %u",
                 adu->pdu[0], mb_function_name(answered), function);
        return MB_EMISMATCH;
    }
    int rc = mb_response_decode(adu->pdu, adu->pdu_length, response);
    if (rc != 0) {
        snprintf(detail, detail_size, "malformed %s response (%zu bytes): %s",
                 mb_function_name(function), adu->pdu_length, mb_strerror(rc));
        return rc;
    }
    if (response->exception != 0)
        return 0;
    struct mb_request request;
    if (mb_request_decode(request_pdu, request_length, &request) != 0)
        return 0; /* a request the core does not know: only its function code can be matched */
    if (mb_response_matches(&request, response) != 0) {
        describe_mismatch(&request, response, detail, detail_size);
        return MB_EMISMATCH;
    }
    return 0;
}

int mb__client_socket(const struct sockaddr *address, socklen_t length, int *fd_out,
                      int *system_errno) {
    *system_errno = 0;
    int fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *system_errno = errno;
        return MB_ESYSTEM;
    }
    int one = 1;
    /* Requests are small and answered one by one: waiting to coalesce them only adds latency. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    *fd_out = fd;
    if (connect(fd, address, length) == 0)
        return 0;
    if (errno == EINPROGRESS || errno == EINTR)
        return MB_EAGAIN;
    *system_errno = errno;
    close(fd);
    *fd_out = -1;
    return MB_ECONNECT;
}

uint64_t mb__client_now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

uint32_t mb__client_backoff(uint32_t min_ms, uint32_t max_ms, uint32_t failures, uint64_t *random) {
    uint64_t delay = min_ms;
    for (uint32_t i = 1; i < failures && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    *random ^= *random << 13;
    *random ^= *random >> 7;
    *random ^= *random << 17;
    delay += delay / 4 > 0 ? *random % (delay / 4 + 1) : 0;
    return delay > UINT32_MAX ? UINT32_MAX : (uint32_t)delay;
}

int mb__client_connect_result(int fd, int *system_errno) {
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
        error = errno;
    *system_errno = error;
    return error == 0 ? 0 : MB_ECONNECT;
}

int mb__client_wrap(mb_transport_wrap wrap, void *wrap_data, int fd,
                    struct mb_transport **transport) {
    int rc = wrap != NULL ? wrap(wrap_data, fd, transport) : mb_tcp_transport_create(fd, transport);
    if (rc != 0)
        close(fd);
    return rc;
}
