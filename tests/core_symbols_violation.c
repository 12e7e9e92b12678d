/* SPDX-License-Identifier: MIT */
/*
 * Deliberately breaks every rule of the protocol core, to prove that check_core_symbols.sh
 * catches allocation, sockets, files and OpenSSL. Never linked into anything.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

struct ssl_st;
struct ssl_ctx_st;
struct ssl_st *SSL_new(struct ssl_ctx_st *context);
void *core_symbols_violation(void);

void *core_symbols_violation(void) {
    void *memory = malloc(16);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FILE *file = fopen("/dev/null", "r");
    struct ssl_st *ssl = SSL_new(NULL);
    return (void *)((char *)memory + fd + (file != NULL) + (ssl != NULL));
}
