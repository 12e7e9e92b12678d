/* SPDX-License-Identifier: MIT */
/* Socket addresses as text: "host:port", "[v6]:port". */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsec/error.h"
#include "mbsec/transport.h"

int mb_address_format(const struct sockaddr *address, socklen_t length, char *text,
                      size_t capacity) {
    char host[INET6_ADDRSTRLEN];
    int written;
    if (address == NULL || text == NULL || capacity == 0)
        return MB_EINVAL;
    if (address->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)address;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        written = snprintf(text, capacity, "%s:%u", host, ntohs(v4->sin_port));
    } else if (address->sa_family == AF_INET6 && length >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)address;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        written = snprintf(text, capacity, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        return MB_EINVAL;
    }
    if (written < 0 || (size_t)written >= capacity)
        return MB_ENOSPC;
    return written;
}

static int parse_port(const char *text, uint16_t *port) {
    char *end;
    if (*text == '\0')
        return MB_EADDRESS;
    unsigned long value = strtoul(text, &end, 10);
    if (*end != '\0' || value > 65535 || text[0] == '-' || text[0] == '+')
        return MB_EADDRESS;
    *port = (uint16_t)value;
    return 0;
}

int mb_address_parse(const char *text, uint16_t default_port, struct sockaddr_storage *address,
                     socklen_t *length, const char **error) {
    const char *reason = NULL;
    char host[256];
    uint16_t port = default_port;
    int rc = MB_EADDRESS;
    if (error != NULL)
        *error = NULL;
    if (text == NULL || address == NULL || length == NULL)
        return MB_EINVAL;
    memset(address, 0, sizeof *address);

    size_t size = strlen(text);
    if (size == 0 || size >= sizeof host) {
        reason = "empty or too long";
        goto fail;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL) {
            reason = "'[' without ']'";
            goto fail;
        }
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        if (close[1] == ':') {
            if (parse_port(close + 2, &port) != 0) {
                reason = "port is not a number 0..65535";
                goto fail;
            }
        } else if (close[1] != '\0') {
            reason = "expected ':' after ']'";
            goto fail;
        }
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
        if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) {
            reason = "not an IPv6 address";
            goto fail;
        }
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *length = sizeof *v6;
        return 0;
    }

    const char *colon = strrchr(text, ':');
    if (colon != NULL && strchr(text, ':') != colon) {
        reason = "IPv6 addresses go in brackets: [::1]:502";
        goto fail;
    }
    if (colon == NULL && strspn(text, "0123456789") == size) {
        /* A bare port: every IPv4 address. */
        strcpy(host, "0.0.0.0");
        if (parse_port(text, &port) != 0) {
            reason = "port is not a number 0..65535";
            goto fail;
        }
    } else if (colon != NULL) {
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        if (host[0] == '\0')
            strcpy(host, "0.0.0.0");
        if (parse_port(colon + 1, &port) != 0) {
            reason = "port is not a number 0..65535";
            goto fail;
        }
    } else {
        strcpy(host, text);
    }

    struct sockaddr_in *v4 = (struct sockaddr_in *)address;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *length = sizeof *v4;
        return 0;
    }
    /* A name: the first address the resolver gives. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    if (getaddrinfo(host, NULL, &hints, &found) != 0 || found == NULL) {
        reason = "host name does not resolve";
        goto fail;
    }
    memcpy(address, found->ai_addr, found->ai_addrlen);
    *length = found->ai_addrlen;
    freeaddrinfo(found);
    if (address->ss_family == AF_INET)
        ((struct sockaddr_in *)address)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)address)->sin6_port = htons(port);
    return 0;

fail:
    if (error != NULL)
        *error = reason;
    return rc;
}
