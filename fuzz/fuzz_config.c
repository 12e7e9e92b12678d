/* SPDX-License-Identifier: MIT */
/*
 * The YAML configuration loader (src/app/config/) against any file: the input is written to a
 * memory file and loaded through /proc/self/fd/N, over the defaults of mbsec serve or of mbsec
 * gateway (the parity of the input's bits chooses).
 *
 * Properties:
 *   - a load returns 0 or MB_ECONFIG (MB_ENOMEM only if memory runs out), and a refusal comes
 *     with one line (no control characters) that starts with the file's path, and leaves the
 * configuration byte for byte as it was;
 *   - a configuration that loads is one the programs can run, as far as the loader's promises
 *     go: listen and TLS addresses are host:port, at most 16 of each, TLS listeners come with a
 *     certificate, key and CA; workers, limits and backend limits are in their ranges; units
 *     are distinct and their FIFOs inside their holding registers, so mb_model_create()
 *     accepts the data model; backends have distinct names, an address with a port other than
 *     0, and the routes name existing backends once per front unit, so mb_gateway_create()
 *     accepts them (both are built when their size is modest); the policy text has one line per
 *     compiled rule, and the policy decides;
 *   - loading the same file again over the result (a reload of an unchanged file) succeeds and
 *     changes nothing, and the program's copy gives an equal configuration.
 * Nothing leaks: every configuration is freed, and the run ends with no descriptor more.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "app/config/config.h"
#include "app/config/node.h"
#include "fuzz.h"
#include "mbsec/error.h"
#include "mbsec/gateway.h"
#include "mbsec/loop.h"
#include "mbsec/model.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"

#define MODEL_BYTES_BUILT (16u << 20) /* data models up to this size are built */
#define GATEWAY_SLOTS_BUILT 20000     /* gateways up to this many request slots are built */

struct setting {
    int fd;
    char path[64];
    struct mb_loop *loop;
    struct mb_server *server;
};

static int no_handler(void *data, const struct mb_server_request *request, uint8_t *response) {
    (void)data;
    (void)request;
    (void)response;
    return 0;
}

/* What every run shares: the memory file, a loop and a server for gateways to attach to. */
static struct setting *setting(void) {
    static struct setting shared;
    if (shared.loop != NULL)
        return &shared;
    shared.fd = memfd_create("fuzz-config.yaml", MFD_CLOEXEC);
    FUZZ_CHECK(shared.fd >= 0);
    snprintf(shared.path, sizeof shared.path, "/proc/self/fd/%d", shared.fd);
    FUZZ_CHECK(mb_loop_create(&shared.loop) == 0);
    struct mb_server_config config = {.handler = no_handler};
    FUZZ_CHECK(mb_server_create(shared.loop, &config, &shared.server) == 0);
    return &shared;
}

static void write_file(const struct setting *at, const uint8_t *data, size_t size) {
    FUZZ_CHECK(ftruncate(at->fd, 0) == 0);
    size_t written = 0;
    while (written < size) {
        ssize_t count = pwrite(at->fd, data + written, size - written, (off_t)written);
        FUZZ_CHECK(count > 0);
        written += (size_t)count;
    }
}

/* ---- equality of two configurations, field by field ---- */

static int same_text(const char *a, const char *b) {
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_texts(char *const *a, size_t a_count, char *const *b, size_t b_count) {
    if (a_count != b_count)
        return 0;
    for (size_t i = 0; i < a_count; i++)
        if (!same_text(a[i], b[i]))
            return 0;
    return 1;
}

static int same_unit(const struct mb_unit_config *a, const struct mb_unit_config *b) {
    if (a->unit_id != b->unit_id || a->files != b->files ||
        a->records_per_file != b->records_per_file || a->fifo_count != b->fifo_count ||
        memcmp(&a->coils, &b->coils, sizeof a->coils) != 0 ||
        memcmp(&a->discrete_inputs, &b->discrete_inputs, sizeof a->discrete_inputs) != 0 ||
        memcmp(&a->holding_registers, &b->holding_registers, sizeof a->holding_registers) != 0 ||
        memcmp(&a->input_registers, &b->input_registers, sizeof a->input_registers) != 0)
        return 0;
    for (size_t i = 0; i < a->fifo_count; i++)
        if (a->fifos[i].address != b->fifos[i].address ||
            a->fifos[i].capacity != b->fifos[i].capacity)
            return 0;
    return 1;
}

static int same_model(const struct mb_model_config *a, const struct mb_model_config *b) {
    const struct mb_identity_config *x = &a->identity, *y = &b->identity;
    if (a->any_unit != b->any_unit || a->unit_count != b->unit_count ||
        a->sync_interval_ms != b->sync_interval_ms || !same_text(a->persist_path, b->persist_path))
        return 0;
    for (size_t i = 0; i < a->unit_count; i++)
        if (!same_unit(&a->units[i], &b->units[i]))
            return 0;
    return same_text(x->vendor_name, y->vendor_name) &&
           same_text(x->product_code, y->product_code) && same_text(x->revision, y->revision) &&
           same_text(x->vendor_url, y->vendor_url) && same_text(x->product_name, y->product_name) &&
           same_text(x->model_name, y->model_name) &&
           same_text(x->application_name, y->application_name) &&
           x->conformity_level == y->conformity_level && x->running == y->running &&
           x->server_id_length == y->server_id_length &&
           (x->server_id_length == 0 ||
            memcmp(x->server_id, y->server_id, x->server_id_length) == 0);
}

static int same_policy(const struct mb_policy *a, const struct mb_policy *b) {
    if (a == NULL || b == NULL)
        return a == b;
    if (mb_policy_rule_count(a) != mb_policy_rule_count(b))
        return 0;
    for (size_t i = 0; i < mb_policy_rule_count(a); i++)
        if (strcmp(mb_policy_rule_name(a, i), mb_policy_rule_name(b, i)) != 0)
            return 0;
    return 1;
}

static int same_backend(const struct config_backend *a, const struct config_backend *b) {
    return same_text(a->name, b->name) && same_text(a->address, b->address) &&
           a->connections == b->connections && a->timeout_ms == b->timeout_ms &&
           a->in_flight == b->in_flight && a->queue == b->queue &&
           same_text(a->tls_certificate, b->tls_certificate) && same_text(a->tls_key, b->tls_key) &&
           same_text(a->tls_ca, b->tls_ca) && same_text(a->tls_pin, b->tls_pin) &&
           same_text(a->tls_server_name, b->tls_server_name);
}

static int same_guard(const struct config_guard *a, const struct config_guard *b) {
    return same_text(a->audit_file, b->audit_file) && same_text(a->audit_syslog, b->audit_syslog) &&
           a->audit_reads == b->audit_reads && same_text(a->metrics_listen, b->metrics_listen) &&
           a->rate == b->rate && a->burst == b->burst && a->over_rate == b->over_rate &&
           a->alert_window_ms == b->alert_window_ms && a->alert_scan_units == b->alert_scan_units &&
           a->alert_denials == b->alert_denials && a->alert_malformed == b->alert_malformed &&
           a->alert_rate_limited == b->alert_rate_limited;
}

static int same_front(const struct front_config *a, const struct front_config *b) {
    if (a->workers != b->workers || !same_text(a->user, b->user) ||
        a->log_format != b->log_format || a->log_level != b->log_level ||
        memcmp(&a->limits, &b->limits, sizeof a->limits) != 0 ||
        a->shutdown_grace_ms != b->shutdown_grace_ms || a->authorize_plain != b->authorize_plain ||
        a->tls_session_tickets != b->tls_session_tickets ||
        a->tls_handshake_timeout_ms != b->tls_handshake_timeout_ms)
        return 0;
    if (!same_texts(a->listen, a->listen_count, b->listen, b->listen_count) ||
        !same_texts(a->tls_listen, a->tls_listen_count, b->tls_listen, b->tls_listen_count) ||
        !same_text(a->tls_certificate, b->tls_certificate) || !same_text(a->tls_key, b->tls_key) ||
        !same_text(a->tls_ca, b->tls_ca) || !same_text(a->tls_crl, b->tls_crl))
        return 0;
    return same_policy(a->policy, b->policy) && same_text(a->policy_text, b->policy_text);
}

static int same_serve(const struct serve_config *a, const struct serve_config *b) {
    return same_front(&a->front, &b->front) && same_model(&a->model, &b->model);
}

static int same_gateway(const struct gateway_config *a, const struct gateway_config *b) {
    if (!same_front(&a->front, &b->front) || !same_guard(&a->guard, &b->guard))
        return 0;
    if (a->backend_count != b->backend_count || a->route_count != b->route_count)
        return 0;
    for (size_t i = 0; i < a->backend_count; i++)
        if (!same_backend(&a->backends[i], &b->backends[i]))
            return 0;
    return a->route_count == 0 ||
           memcmp(a->routes, b->routes, a->route_count * sizeof a->routes[0]) == 0;
}

/* ---- what a configuration that loaded must be ---- */

static void check_addresses(char *const *addresses, size_t count) {
    FUZZ_CHECK(count <= CONFIG_MAX_LISTEN);
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(addresses[i] != NULL);
        FUZZ_CHECK(address_problem(addresses[i]) == NULL);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(addresses[i], addresses[j]) != 0);
    }
}

static uint64_t model_bytes(const struct mb_model_config *model) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < model->unit_count; i++) {
        const struct mb_unit_config *unit = &model->units[i];
        bytes += (unit->coils.size + 7) / 8 + (unit->discrete_inputs.size + 7) / 8;
        bytes += 2 * ((uint64_t)unit->holding_registers.size + unit->input_registers.size);
        bytes += 2 * (uint64_t)unit->files * unit->records_per_file;
    }
    return bytes;
}

static void check_model(const struct serve_config *config) {
    const struct mb_model_config *model = &config->model;
    FUZZ_CHECK(model->units == config->units);
    FUZZ_CHECK(model->unit_count >= 1 && model->unit_count <= CONFIG_MAX_UNITS);
    FUZZ_CHECK(!model->any_unit || model->unit_count == 1);
    size_t fifos = 0;
    for (size_t i = 0; i < model->unit_count; i++) {
        const struct mb_unit_config *unit = &model->units[i];
        for (size_t j = 0; j < i && !model->any_unit; j++)
            FUZZ_CHECK(model->units[j].unit_id != unit->unit_id);
        const struct mb_table_extent *tables[] = {&unit->coils, &unit->discrete_inputs,
                                                  &unit->holding_registers, &unit->input_registers};
        for (size_t t = 0; t < 4; t++)
            FUZZ_CHECK((uint32_t)tables[t]->start + tables[t]->size <= 65536);
        FUZZ_CHECK(unit->records_per_file >= 1 && unit->records_per_file <= 10000);
        for (size_t f = 0; f < unit->fifo_count; f++) {
            const struct mb_fifo_config *fifo = &unit->fifos[f];
            FUZZ_CHECK(fifo >= config->fifos && fifo < config->fifos + CONFIG_MAX_FIFOS);
            FUZZ_CHECK(fifo->capacity >= 1 && fifo->capacity <= MB_MAX_FIFO_COUNT);
            FUZZ_CHECK(fifo->address >= unit->holding_registers.start &&
                       (uint32_t)fifo->address + fifo->capacity <
                           (uint32_t)unit->holding_registers.start + unit->holding_registers.size);
        }
        fifos += unit->fifo_count;
    }
    FUZZ_CHECK(fifos == config->fifo_count && fifos <= CONFIG_MAX_FIFOS);
    if (model_bytes(model) > MODEL_BYTES_BUILT)
        return;
    /* In memory: the persistence file is the program's business, not the loader's. */
    struct mb_model_config in_memory = *model;
    in_memory.persist_path = NULL;
    struct mb_model *built = NULL;
    char error[256] = "";
    int rc = mb_model_create(&in_memory, &built, error, sizeof error);
    if (rc != 0)
        fprintf(stderr, "fuzz_config: the data model of a loaded file is refused: %s\n", error);
    FUZZ_CHECK(rc == 0);
    mb_model_destroy(built);
}

static void check_backends(const struct setting *at, const struct gateway_config *config) {
    struct mb_gateway_backend backends[CONFIG_MAX_BACKENDS];
    uint64_t slots = 0;
    FUZZ_CHECK(config->backend_count <= CONFIG_MAX_BACKENDS);
    FUZZ_CHECK(config->route_count <= 256);
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct config_backend *given = &config->backends[i];
        FUZZ_CHECK(given->name != NULL && given->name[0] != '\0' && given->address != NULL);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(config->backends[j].name, given->name) != 0);
        FUZZ_CHECK(address_problem(given->address) == NULL);
        FUZZ_CHECK(strcmp(strrchr(given->address, ':'), ":0") != 0);
        FUZZ_CHECK(given->connections >= 1 && given->connections <= MB_GATEWAY_MAX_CONNECTIONS);
        FUZZ_CHECK(given->in_flight >= 1 && given->in_flight <= MB_ASYNC_MAX_IN_FLIGHT);
        FUZZ_CHECK(given->queue >= 1 && given->queue <= MB_ASYNC_MAX_QUEUED);
        FUZZ_CHECK(given->timeout_ms >= 1);
        FUZZ_CHECK((given->tls_certificate == NULL) == (given->tls_key == NULL));
        FUZZ_CHECK(given->tls_certificate == NULL || given->tls_ca != NULL ||
                   given->tls_pin != NULL);
        slots += (uint64_t)given->connections * (given->in_flight + given->queue);

        /* A numeric host must parse as the program will parse it; names are not resolved
         * here (no DNS from a fuzzer). */
        char host[300];
        size_t host_length = (size_t)(strrchr(given->address, ':') - given->address);
        if (host_length < sizeof host) {
            memcpy(host, given->address, host_length);
            host[host_length] = '\0';
            uint8_t scratch[16];
            int numeric = inet_pton(AF_INET, host, scratch) == 1;
            if (host_length > 2 && host[0] == '[') {
                host[host_length - 1] = '\0';
                numeric |= inet_pton(AF_INET6, host + 1, scratch) == 1;
            }
            struct sockaddr_storage address;
            socklen_t length;
            if (numeric)
                FUZZ_CHECK(mb_address_parse(given->address, 502, &address, &length, NULL) == 0);
        }
        /* The gateway is built with a stand-in address: it never connects here. */
        memset(&backends[i], 0, sizeof backends[i]);
        struct sockaddr_in *stand_in = (struct sockaddr_in *)&backends[i].address;
        stand_in->sin_family = AF_INET;
        stand_in->sin_port = htons(9);
        stand_in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        backends[i].address_length = sizeof *stand_in;
        backends[i].name = given->name;
        backends[i].connections = given->connections;
        backends[i].timeout_ms = given->timeout_ms;
        backends[i].max_in_flight = given->in_flight;
        backends[i].max_queued = given->queue;
    }
    FUZZ_CHECK(slots <= MB_GATEWAY_MAX_SLOTS);
    int routed[256] = {0};
    for (size_t i = 0; i < config->route_count; i++) {
        FUZZ_CHECK(config->routes[i].backend < config->backend_count);
        FUZZ_CHECK(routed[config->routes[i].front_unit]++ == 0);
    }
    if (config->backend_count == 0 || slots > GATEWAY_SLOTS_BUILT)
        return;
    struct mb_gateway_config gateway_config = {
        .backends = backends,
        .backend_count = config->backend_count,
        .routes = config->routes,
        .route_count = config->route_count,
    };
    struct mb_gateway *gateway = NULL;
    FUZZ_CHECK(mb_gateway_create(at->loop, at->server, &gateway_config, &gateway) == 0);
    FUZZ_CHECK(mb_gateway_backend_count(gateway) == config->backend_count);
    mb_gateway_destroy(gateway);
}

static void check_policy(const struct front_config *config) {
    FUZZ_CHECK((config->policy == NULL) == (config->policy_text == NULL));
    if (config->policy == NULL)
        return;
    size_t lines = 0;
    for (const char *at = config->policy_text; *at != '\0'; at++)
        lines += *at == '\n';
    FUZZ_CHECK(lines == mb_policy_rule_count(config->policy));
    static const uint8_t write[] = {0x10, 0x00, 0x64, 0x00, 0x01, 0x02, 0x01, 0xF4};
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = {htonl(0x0A140105)}};
    struct mb_policy_identity who = {
        .role = "engineer",
        .tls = 1,
        .address = (const struct sockaddr *)&from,
        .address_length = sizeof from,
        .explain = 1,
    };
    struct mb_policy_decision decision;
    FUZZ_CHECK(mb_policy_decide(config->policy, &who, 1, write, sizeof write, &decision) == 0);
    FUZZ_CHECK(fuzz_printable(decision.reason, sizeof decision.reason));
}

/* What both programs promise of the front; the gateway runs one event loop. */
static void check_front(const struct front_config *config, int max_workers) {
    check_addresses(config->listen, config->listen_count);
    check_addresses(config->tls_listen, config->tls_listen_count);
    if (config->tls_listen_count > 0)
        FUZZ_CHECK(config->tls_certificate != NULL && config->tls_key != NULL &&
                   config->tls_ca != NULL);
    FUZZ_CHECK(config->workers >= 1 && config->workers <= max_workers);
    FUZZ_CHECK(config->log_level >= MB_LOG_ERROR && config->log_level <= MB_LOG_DEBUG);
    FUZZ_CHECK(config->limits.max_connections >= 1 && config->limits.max_per_source >= 1);
    FUZZ_CHECK(config->limits.max_in_flight >= 1 && config->limits.max_in_flight <= 1024);
    FUZZ_CHECK(config->user == NULL || config->user[0] != '\0');
    check_policy(config);
}

/* ---- the target ---- */

/* A refused load: MB_ECONFIG (or MB_ENOMEM) with one line that starts with the file's path, and
 * the `size` bytes of the configuration as they were. */
static void check_refused(const struct setting *at, int rc, const char *error, size_t capacity,
                          const void *config, const void *before, size_t size) {
    FUZZ_CHECK(rc == MB_ECONFIG || rc == MB_ENOMEM);
    FUZZ_CHECK(fuzz_one_line(error, capacity));
    FUZZ_CHECK(strncmp(error, at->path, strlen(at->path)) == 0);
    FUZZ_CHECK(memcmp(config, before, size) == 0);
}

static void load_serve(const struct setting *at) {
    struct serve_config *config = malloc(sizeof *config);
    struct serve_config *before = malloc(sizeof *before);
    FUZZ_CHECK(config != NULL && before != NULL);
    config_serve_defaults(config);
    memcpy(before, config, sizeof *config);
    char error[512];
    memset(error, 'x', sizeof error);
    int rc = config_serve_load(at->path, config, error, sizeof error);
    if (rc != 0) {
        check_refused(at, rc, error, sizeof error, config, before, sizeof *config);
    } else {
        check_front(&config->front, 64);
        check_model(config);
        /* A reload of the same file over what it gave changes nothing. */
        FUZZ_CHECK(config_serve_copy(before, config) == 0);
        FUZZ_CHECK(same_serve(before, config));
        rc = config_serve_load(at->path, before, error, sizeof error);
        if (rc != 0)
            fprintf(stderr, "fuzz_config: a reload of the same file fails: %s\n", error);
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(same_serve(before, config));
        config_serve_free(before);
    }
    config_serve_free(config);
    free(config);
    free(before);
}

static void load_gateway(const struct setting *at) {
    struct gateway_config *config = malloc(sizeof *config);
    struct gateway_config *before = malloc(sizeof *before);
    FUZZ_CHECK(config != NULL && before != NULL);
    config_gateway_defaults(config);
    memcpy(before, config, sizeof *config);
    char error[512];
    memset(error, 'x', sizeof error);
    int rc = config_gateway_load(at->path, config, error, sizeof error);
    if (rc != 0) {
        check_refused(at, rc, error, sizeof error, config, before, sizeof *config);
    } else {
        check_front(&config->front, 1);
        check_backends(at, config);
        /* A reload of the same file over what it gave changes nothing. */
        FUZZ_CHECK(config_gateway_copy(before, config) == 0);
        FUZZ_CHECK(same_gateway(before, config));
        rc = config_gateway_load(at->path, before, error, sizeof error);
        if (rc != 0)
            fprintf(stderr, "fuzz_config: a reload of the same file fails: %s\n", error);
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(same_gateway(before, config));
        config_gateway_free(before);
    }
    config_gateway_free(config);
    free(config);
    free(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct setting *at = setting();
    write_file(at, data, size);
    /* Each load costs a 4 MiB read buffer (the loader reads into one whatever the file's
     * size), which AddressSanitizer makes slow: an input is loaded for one program, chosen by
     * the parity of its bytes, so that changing any byte can switch it. */
    unsigned parity = 0;
    for (size_t i = 0; i < size; i++)
        parity ^= data[i];
    parity ^= parity >> 4;
    parity ^= parity >> 2;
    parity ^= parity >> 1;
    if (parity & 1)
        load_gateway(at);
    else
        load_serve(at);
    return 0;
}
