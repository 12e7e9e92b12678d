/* SPDX-License-Identifier: MIT */
/*
 * The configuration file of `mbsec serve` (src/app/config): every key's effect, every kind of error
 * with its exact "FILE:LINE:COLUMN:" message, a failed load leaving the configuration exactly as
 * it was, copy and free (run under ASan/LSan to show nothing leaks), and every file in examples/
 * and every yaml block of docs/configuration.md loading as written.
 *
 * Linking: this test needs the config parser and libyaml, which live in the mbsec_tool library,
 * so tests/CMakeLists.txt must add `target_link_libraries(test_config PRIVATE mbsec_tool)`.
 * By hand, from the repository root, with libmbsec.a built in build/:
 *   gcc -std=c11 -D_GNU_SOURCE -Iinclude -Ibuild/include -Isrc -Itests tests/test_config.c
 *       tests/harness.c, the .c files of src/app/config, build/libmbsec.a -lyaml -lpthread
 *
 * The examples and docs are found from this file's path (__FILE__), or from $MBSEC_SOURCE_DIR.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config/config.h"
#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/policy.h"

static char directory[256];
static char config_path[300];

static void write_text(const char *path, const char *text, size_t length) {
    FILE *file = fopen(path, "wb");
    if (file == NULL || fwrite(text, 1, length, file) != length || fclose(file) != 0) {
        perror(path);
        exit(2);
    }
}

/* Each writes `text` to the test's config file and loads it over `config`. */
static int load_text(const char *text, struct serve_config *config, char *error, size_t capacity) {
    write_text(config_path, text, strlen(text));
    return config_serve_load(config_path, config, error, capacity);
}

static int load_gateway_text(const char *text, struct gateway_config *config, char *error,
                             size_t capacity) {
    write_text(config_path, text, strlen(text));
    return config_gateway_load(config_path, config, error, capacity);
}

/* Loads `text` over the defaults, reporting any error at the caller's line. */
static int load_ok(int line, const char *text, struct serve_config *config) {
    char error[512];
    config_serve_defaults(config);
    int status = load_text(text, config, error, sizeof error);
    harness_checks++;
    if (status != 0)
        harness_fail(__FILE__, line, "load failed with %d: %s", status, error);
    return status;
}

#define LOAD_OK(text, config) load_ok(__LINE__, text, config)

/* A configuration with something in every owned field, to load errors over. */
static const char base_text[] = "listen: [127.0.0.1:5020, \"[::1]:5020\"]\n"
                                "workers: 2\n"
                                "user: nobody\n"
                                "log: { format: json, level: debug }\n"
                                "persist: { path: /var/lib/mbsec/base.state }\n"
                                "identity:\n"
                                "  vendor_name: Base Vendor\n"
                                "  product_code: BASE-1\n"
                                "  server_id: BASE\n"
                                "units:\n"
                                "  - id: 7\n"
                                "    holding_registers: 0-99\n"
                                "    fifos: [ { address: 10, capacity: 5 } ]\n"
                                "tls:\n"
                                "  listen: 127.0.0.1:8802\n"
                                "  certificate: /etc/mbsec/base.crt\n"
                                "  key: /etc/mbsec/base.key\n"
                                "  ca: /etc/mbsec/ca.crt\n"
                                "  crl: /etc/mbsec/ca.crl\n"
                                "  session_tickets: true\n"
                                "  handshake_timeout: 3s\n"
                                "authorize_plain: true\n"
                                "policy:\n"
                                "  - { name: base-readers, roles: [any], preset: read-only, "
                                "action: allow }\n";

/*
 * Loads `text` over the base configuration (or over the defaults, with `over_defaults`) and
 * checks it fails with MB_ECONFIG and exactly the message "CONFIG_PATH:" + want, leaving every
 * byte of the configuration as it was.
 */
static void check_error_over(int line, int over_defaults, const char *text, const char *want) {
    struct serve_config config, before;
    char error[512], expected[1024];
    config_serve_defaults(&config);
    if (!over_defaults && load_text(base_text, &config, error, sizeof error) != 0) {
        harness_fail(__FILE__, line, "the base configuration does not load: %s", error);
        return;
    }
    memcpy(&before, &config, sizeof config);
    int status = load_text(text, &config, error, sizeof error);
    snprintf(expected, sizeof expected, "%s:%s", config_path, want);
    harness_checks += 3;
    if (status != MB_ECONFIG)
        harness_fail(__FILE__, line, "status %d, want MB_ECONFIG (%d)", status, MB_ECONFIG);
    if (strcmp(error, expected) != 0)
        harness_fail(__FILE__, line, "error\n    \"%s\"\n  want\n    \"%s\"", error, expected);
    if (memcmp(&before, &config, sizeof config) != 0)
        harness_fail(__FILE__, line, "a failed load changed the configuration");
    /* Reading the strings proves they were not freed (ASan would stop here). */
    if (!over_defaults) {
        CHECK_STR(config.model.identity.vendor_name, "Base Vendor");
        CHECK_STR(config.front.listen[1], "[::1]:5020");
        CHECK_STR(config.front.user, "nobody");
        CHECK_STR(config.front.tls_ca, "/etc/mbsec/ca.crt");
        CHECK_STR(mb_policy_rule_name(config.front.policy, 0), "base-readers");
    }
    config_serve_free(&config);
}

#define CHECK_ERROR(text, want) check_error_over(__LINE__, 0, text, want)
#define CHECK_ERROR_OVER_DEFAULTS(text, want) check_error_over(__LINE__, 1, text, want)

/* The repository's root, for examples/ and docs/, with a trailing slash (or ""). */
static void source_path(char *path, size_t capacity, const char *relative) {
    const char *root = getenv("MBSEC_SOURCE_DIR");
    if (root != NULL) {
        snprintf(path, capacity, "%s/%s", root, relative);
        return;
    }
    const char *file = __FILE__;
    const char *tests = strstr(file, "tests/test_config.c");
    int prefix = tests != NULL ? (int)(tests - file) : 0;
    snprintf(path, capacity, "%.*s%s", prefix, file, relative);
}

/* What the configuration accepts, the data model must accept too (in memory: persistence is
 * the model's own test). */
static void check_model_accepts(const char *name, struct serve_config *config) {
    struct mb_model *model = NULL;
    char error[512];
    config->model.persist_path = NULL;
    int status = mb_model_create(&config->model, &model, error, sizeof error);
    CHECK_EQ(status, 0);
    if (status != 0)
        fprintf(stderr, "  %s: the model refuses it: %s\n", name, error);
    else
        mb_model_destroy(model);
}

/* ---- defaults ---- */

TEST(defaults_are_the_built_in_simulator) {
    struct serve_config config;
    config_serve_defaults(&config);
    CHECK_EQ(config.front.listen_count, 0);
    CHECK_EQ(config.front.workers, 1);
    CHECK(config.front.user == NULL);
    CHECK_EQ(config.front.log_format, LOG_PLAIN);
    CHECK_EQ(config.front.log_level, MB_LOG_INFO);
    CHECK_EQ(config.front.limits.max_connections, 1024);
    CHECK_EQ(config.front.limits.max_per_source, 64);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 60000);
    CHECK_EQ(config.front.limits.max_in_flight, 16);
    CHECK_EQ(config.front.shutdown_grace_ms, 5000);
    CHECK_EQ(config.model.any_unit, 1);
    CHECK(config.model.units == config.units);
    CHECK_EQ(config.model.unit_count, 1);
    CHECK_EQ(config.units[0].coils.start, 0);
    CHECK_EQ(config.units[0].coils.size, 65536);
    CHECK_EQ(config.units[0].discrete_inputs.size, 65536);
    CHECK_EQ(config.units[0].holding_registers.size, 65536);
    CHECK_EQ(config.units[0].input_registers.size, 65536);
    CHECK_EQ(config.units[0].files, 2);
    CHECK_EQ(config.units[0].records_per_file, 10000);
    CHECK_EQ(config.units[0].fifo_count, 0);
    CHECK_EQ(config.fifo_count, 0);
    CHECK(config.model.identity.vendor_name == NULL);
    CHECK(config.model.identity.server_id == NULL);
    CHECK_EQ(config.model.identity.conformity_level, 0x83);
    CHECK_EQ(config.model.identity.running, 1);
    CHECK(config.model.persist_path == NULL);
    CHECK_EQ(config.model.sync_interval_ms, 1000);
    CHECK_EQ(config.string_count, 0);
    CHECK(config.front.policy == NULL);
    CHECK_EQ(config.front.authorize_plain, 0);
    CHECK_EQ(config.front.tls_listen_count, 0);
    CHECK(config.front.tls_certificate == NULL);
    CHECK(config.front.tls_key == NULL);
    CHECK(config.front.tls_ca == NULL);
    CHECK(config.front.tls_crl == NULL);
    CHECK_EQ(config.front.tls_session_tickets, 0);
    CHECK_EQ(config.front.tls_handshake_timeout_ms, 10000);
    config_serve_free(&config);
}

TEST(an_empty_file_a_comment_or_an_empty_document_change_nothing) {
    static const char *const texts[] = {
        "", "# nothing but a comment\n", "---\n", "--- ~\n", "\n\n   \n", "---\n...\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct serve_config config, before;
        char error[256];
        config_serve_defaults(&config);
        memcpy(&before, &config, sizeof config);
        CHECK_EQ(load_text(texts[i], &config, error, sizeof error), 0);
        CHECK(memcmp(&before, &config, sizeof config) == 0);
        config_serve_free(&config);
    }
}

TEST(empty_sections_are_the_same_as_sections_left_out) {
    struct serve_config config;
    LOAD_OK("log:\nlimits: ~\npersist: null\nidentity:\n  # all commented out\ntls:\npolicy:\n",
            &config);
    CHECK_EQ(config.front.log_level, MB_LOG_INFO);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 60000);
    CHECK(config.model.persist_path == NULL);
    CHECK_EQ(config.front.tls_listen_count, 0);
    CHECK(config.front.policy == NULL);
    config_serve_free(&config);
}

/* ---- every key ---- */

TEST(every_key_takes_effect) {
    struct serve_config config;
    LOAD_OK("listen: [0.0.0.0:5020, \"[::]:5021\"]\n"
            "workers: 8\n"
            "user: mbsec\n"
            "log: { format: json, level: debug }\n"
            "limits:\n"
            "  max_connections: 100\n"
            "  max_per_source: 3\n"
            "  idle_timeout: 30s\n"
            "  in_flight: 4\n"
            "  shutdown_grace: 250ms\n"
            "persist: { path: /tmp/state.bin, sync_interval: 2m }\n"
            "identity:\n"
            "  vendor_name: Vendor\n"
            "  product_code: Code\n"
            "  revision: 1.0\n"
            "  vendor_url: https://example.com\n"
            "  product_name: Product\n"
            "  model_name: Model\n"
            "  application_name: App\n"
            "  conformity: 0x82\n"
            "  server_id: SERVER\n"
            "  running: false\n"
            "units:\n"
            "  - id: 1\n"
            "    coils: { start: 0, size: 16 }\n"
            "    discrete_inputs: 100-199\n"
            "    holding_registers: { start: 1000, size: 500 }\n"
            "    input_registers: { size: 10 }\n"
            "    files: { count: 3, records: 20 }\n"
            "    fifos:\n"
            "      - { address: 1100, capacity: 31 }\n"
            "      - { address: 1200, capacity: 1 }\n"
            "  - id: 2\n"
            "    holding_registers: 0-99\n"
            "    fifos: [ { address: 9 } ]\n",
            &config);
    CHECK_EQ(config.front.listen_count, 2);
    CHECK_STR(config.front.listen[0], "0.0.0.0:5020");
    CHECK_STR(config.front.listen[1], "[::]:5021");
    CHECK_EQ(config.front.workers, 8);
    CHECK_STR(config.front.user, "mbsec");
    CHECK_EQ(config.front.log_format, LOG_JSON);
    CHECK_EQ(config.front.log_level, MB_LOG_DEBUG);
    CHECK_EQ(config.front.limits.max_connections, 100);
    CHECK_EQ(config.front.limits.max_per_source, 3);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 30000);
    CHECK_EQ(config.front.limits.max_in_flight, 4);
    CHECK_EQ(config.front.shutdown_grace_ms, 250);
    CHECK_STR(config.model.persist_path, "/tmp/state.bin");
    CHECK_EQ(config.model.sync_interval_ms, 120000);

    const struct mb_identity_config *identity = &config.model.identity;
    CHECK_STR(identity->vendor_name, "Vendor");
    CHECK_STR(identity->product_code, "Code");
    CHECK_STR(identity->revision, "1.0");
    CHECK_STR(identity->vendor_url, "https://example.com");
    CHECK_STR(identity->product_name, "Product");
    CHECK_STR(identity->model_name, "Model");
    CHECK_STR(identity->application_name, "App");
    CHECK_EQ(identity->conformity_level, 0x82);
    CHECK(identity->server_id == config.server_id);
    CHECK_BYTES(identity->server_id, identity->server_id_length, 'S', 'E', 'R', 'V', 'E', 'R');
    CHECK_EQ(identity->running, 0);

    CHECK_EQ(config.model.any_unit, 0);
    CHECK(config.model.units == config.units);
    CHECK_EQ(config.model.unit_count, 2);
    const struct mb_unit_config *unit = &config.units[0];
    CHECK_EQ(unit->unit_id, 1);
    CHECK_EQ(unit->coils.start, 0);
    CHECK_EQ(unit->coils.size, 16);
    CHECK_EQ(unit->discrete_inputs.start, 100);
    CHECK_EQ(unit->discrete_inputs.size, 100);
    CHECK_EQ(unit->holding_registers.start, 1000);
    CHECK_EQ(unit->holding_registers.size, 500);
    CHECK_EQ(unit->input_registers.start, 0);
    CHECK_EQ(unit->input_registers.size, 10);
    CHECK_EQ(unit->files, 3);
    CHECK_EQ(unit->records_per_file, 20);
    CHECK_EQ(unit->fifo_count, 2);
    CHECK(unit->fifos == &config.fifos[0]);
    CHECK_EQ(unit->fifos[0].address, 1100);
    CHECK_EQ(unit->fifos[0].capacity, 31);
    CHECK_EQ(unit->fifos[1].address, 1200);
    CHECK_EQ(unit->fifos[1].capacity, 1);
    unit = &config.units[1];
    CHECK_EQ(unit->unit_id, 2);
    CHECK_EQ(unit->coils.size, 0);
    CHECK_EQ(unit->discrete_inputs.size, 0);
    CHECK_EQ(unit->input_registers.size, 0);
    CHECK_EQ(unit->holding_registers.start, 0);
    CHECK_EQ(unit->holding_registers.size, 100);
    CHECK_EQ(unit->files, 0);
    CHECK_EQ(unit->fifo_count, 1);
    CHECK(unit->fifos == &config.fifos[2]);
    CHECK_EQ(unit->fifos[0].address, 9);
    CHECK_EQ(unit->fifos[0].capacity, 31);
    CHECK_EQ(config.fifo_count, 3);
    check_model_accepts("every key", &config);
    config_serve_free(&config);
}

TEST(listen_takes_one_address_or_a_list) {
    struct serve_config config;
    LOAD_OK("listen: 127.0.0.1:0\n", &config);
    CHECK_EQ(config.front.listen_count, 1);
    CHECK_STR(config.front.listen[0], "127.0.0.1:0");
    config_serve_free(&config);
    LOAD_OK("listen: [\"[::]:502\", localhost:65535, \"[fe80::1%eth0]:502\"]\n", &config);
    CHECK_EQ(config.front.listen_count, 3);
    CHECK_STR(config.front.listen[0], "[::]:502");
    CHECK_STR(config.front.listen[1], "localhost:65535");
    CHECK_STR(config.front.listen[2], "[fe80::1%eth0]:502");
    config_serve_free(&config);
}

TEST(listen_errors) {
    CHECK_ERROR("listen: 0.0.0.0\n", "1:9: listen: 0.0.0.0 is not an address to listen on: "
                                     "expected host:port, such as 0.0.0.0:502 or [::]:502");
    CHECK_ERROR("listen: 502\n", "1:9: listen: 502 is not an address to listen on: expected "
                                 "host:port, such as 0.0.0.0:502 or [::]:502");
    CHECK_ERROR("listen: \":502\"\n",
                "1:9: listen: :502 is not an address to listen on: the host is missing: "
                "0.0.0.0:502 listens on every IPv4 address, [::]:502 on every IPv6 one");
    CHECK_ERROR("listen: \"::1:502\"\n", "1:9: listen: ::1:502 is not an address to listen on: "
                                         "an IPv6 host goes in brackets: [::1]:502");
    CHECK_ERROR("listen: \"[::1:502\"\n", "1:9: listen: [::1:502 is not an address to listen "
                                          "on: an IPv6 host goes in brackets: [::1]:502");
    CHECK_ERROR("listen: \"[]:502\"\n", "1:9: listen: []:502 is not an address to listen on: "
                                        "an IPv6 host goes in brackets: [::1]:502");
    CHECK_ERROR("listen: 0.0.0.0:65536\n", "1:9: listen: 0.0.0.0:65536 is not an address to "
                                           "listen on: the port must be a number 0..65535");
    CHECK_ERROR("listen: 0.0.0.0:http\n", "1:9: listen: 0.0.0.0:http is not an address to "
                                          "listen on: the port must be a number 0..65535");
    CHECK_ERROR("listen: \"0.0.0.0:\"\n", "1:9: listen: 0.0.0.0: is not an address to listen on: "
                                          "the port must be a number 0..65535");
    CHECK_ERROR("listen: \"0.0.0.0 :502\"\n", "1:9: listen: 0.0.0.0 :502 is not an address to "
                                              "listen on: it holds a space");
    CHECK_ERROR("listen:\n  - 0.0.0.0:502\n  - 0.0.0.0:502\n",
                "3:5: listen[1]: 0.0.0.0:502 is already listed on line 2");
    CHECK_ERROR("listen: []\n", "1:9: listen: the list needs at least 1 item");
    CHECK_ERROR("listen: [a:1, a:2, a:3, a:4, a:5, a:6, a:7, a:8, a:9, a:10, a:11, a:12, a:13, "
                "a:14, a:15, a:16, a:17]\n",
                "1:9: listen: 17 items is more than the 16 allowed");
    CHECK_ERROR("listen: { address: 0.0.0.0:502 }\n",
                "1:9: listen: expected a string, got a mapping");
    CHECK_ERROR("listen: [[0.0.0.0:502]]\n", "1:10: listen[0]: expected a string, got a list");
    CHECK_ERROR("listen:\n", "1:8: listen: expected a string, got no value");
}

TEST(integers_are_decimal_or_hex_and_nothing_else) {
    struct serve_config config;
    LOAD_OK("workers: 0x10\n", &config);
    CHECK_EQ(config.front.workers, 16);
    config_serve_free(&config);
    LOAD_OK("workers: 64\nlimits: { max_connections: 1000000, in_flight: 0X400 }\n", &config);
    CHECK_EQ(config.front.workers, 64);
    CHECK_EQ(config.front.limits.max_connections, 1000000);
    CHECK_EQ(config.front.limits.max_in_flight, 1024);
    config_serve_free(&config);

    CHECK_ERROR("workers: 0\n", "1:10: workers: 0 is out of range; expected an integer in 1..64");
    CHECK_ERROR("workers: 65\n", "1:10: workers: 65 is out of range; expected an integer in 1..64");
    CHECK_ERROR("workers: 0x41\n",
                "1:10: workers: 0x41 is out of range; expected an integer in 1..64");
    CHECK_ERROR("workers: 99999999999999999999999\n",
                "1:10: workers: 99999999999999999999999 is out of range; expected an integer in "
                "1..64");
    CHECK_ERROR("workers: 0xFFFFFFFFFFFFFFFFFF\n", "1:10: workers: 0xFFFFFFFFFFFFFFFFFF is out of "
                                                   "range; expected an integer in 1..64");
    CHECK_ERROR("workers: -1\n", "1:10: workers: -1 is negative; expected an integer in 1..64");
    CHECK_ERROR("workers: 1.5\n",
                "1:10: workers: 1.5 is not a whole number; expected an integer in 1..64");
    CHECK_ERROR("workers: 1e3\n",
                "1:10: workers: 1e3 is not a whole number; expected an integer in 1..64");
    CHECK_ERROR("workers: 010\n", "1:10: workers: 010 has a leading zero (octal in YAML 1.1); "
                                  "write it in decimal without the zero, or in hex as 0x...");
    CHECK_ERROR("workers: \"4\"\n",
                "1:10: workers: expected an integer in 1..64, got the quoted string \"4\"");
    CHECK_ERROR("workers: '4'\n",
                "1:10: workers: expected an integer in 1..64, got the quoted string \"4\"");
    CHECK_ERROR("workers: true\n",
                "1:10: workers: expected an integer in 1..64, got the boolean true");
    CHECK_ERROR("workers: four\n", "1:10: workers: expected an integer in 1..64, got \"four\"");
    CHECK_ERROR("workers: +4\n", "1:10: workers: expected an integer in 1..64, got \"+4\"");
    CHECK_ERROR("workers: 0x\n", "1:10: workers: expected an integer in 1..64, got \"0x\"");
    CHECK_ERROR("workers: -1x\n", "1:10: workers: expected an integer in 1..64, got \"-1x\"");
    CHECK_ERROR("workers: -0.5\n", "1:10: workers: -0.5 is negative; expected an integer in 1..64");
    CHECK_ERROR("workers: .5\n",
                "1:10: workers: .5 is not a whole number; expected an integer in 1..64");
    CHECK_ERROR("workers: .inf\n", "1:10: workers: expected an integer in 1..64, got \".inf\"");
    CHECK_ERROR("workers: 4x\n", "1:10: workers: expected an integer in 1..64, got \"4x\"");
    CHECK_ERROR("workers: 1_000\n", "1:10: workers: expected an integer in 1..64, got \"1_000\"");
    CHECK_ERROR("workers: [4]\n", "1:10: workers: expected an integer in 1..64, got a list");
    CHECK_ERROR("workers: {n: 4}\n", "1:10: workers: expected an integer in 1..64, got a mapping");
    CHECK_ERROR("workers:\n", "1:9: workers: expected an integer in 1..64, got no value");
    CHECK_ERROR("workers: ~\n", "1:10: workers: expected an integer in 1..64, got no value");
}

TEST(user_and_log) {
    struct serve_config config;
    LOAD_OK("user: daemon\nlog: { level: error }\n", &config);
    CHECK_STR(config.front.user, "daemon");
    CHECK_EQ(config.front.log_level, MB_LOG_ERROR);
    CHECK_EQ(config.front.log_format, LOG_PLAIN);
    config_serve_free(&config);
    LOAD_OK("log:\n  level: warning\n  format: plain\n", &config);
    CHECK_EQ(config.front.log_level, MB_LOG_WARNING);
    config_serve_free(&config);
    LOAD_OK("log: { level: info, format: \"json\" }\n", &config);
    CHECK_EQ(config.front.log_level, MB_LOG_INFO);
    CHECK_EQ(config.front.log_format, LOG_JSON);
    config_serve_free(&config);

    CHECK_ERROR("user: \"\"\n", "1:7: user: the user name is empty");
    CHECK_ERROR("user: [root]\n", "1:7: user: expected a string, got a list");
    CHECK_ERROR("user: \"ro\\0ot\"\n", "1:7: user: the string holds a NUL character");
    CHECK_ERROR("log: { format: xml }\n",
                "1:16: log.format: expected one of plain, json, got \"xml\"");
    CHECK_ERROR("log: { level: warn }\n",
                "1:15: log.level: expected one of error, warning, info, debug, got \"warn\"");
    CHECK_ERROR("log: { level: 3 }\n",
                "1:15: log.level: expected one of error, warning, info, debug, got \"3\"");
    CHECK_ERROR("log: json\n", "1:6: log: expected a mapping of keys, got \"json\"");
    CHECK_ERROR("log: { colour: true }\n",
                "1:8: unknown key \"colour\" in log; valid keys: format, level");
}

TEST(limits_take_integers_and_durations) {
    struct serve_config config;
    LOAD_OK("limits: { idle_timeout: 90, shutdown_grace: \"1h\" }\n", &config);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 90000);
    CHECK_EQ(config.front.shutdown_grace_ms, 3600000);
    CHECK_EQ(config.front.limits.max_connections, 1024);
    config_serve_free(&config);
    LOAD_OK("limits: { idle_timeout: &t 24h, shutdown_grace: *t }\n", &config);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 86400000);
    CHECK_EQ(config.front.shutdown_grace_ms, 86400000);
    config_serve_free(&config);
    LOAD_OK("limits: { idle_timeout: 1.5m, shutdown_grace: 0.25 }\n", &config);
    CHECK_EQ(config.front.limits.idle_timeout_ms, 90000);
    CHECK_EQ(config.front.shutdown_grace_ms, 250);
    config_serve_free(&config);

    CHECK_ERROR("limits: { max_connections: 1000001 }\n",
                "1:28: limits.max_connections: 1000001 is out of range; expected an integer in "
                "1..1000000");
    CHECK_ERROR("limits: { max_per_source: 0 }\n",
                "1:27: limits.max_per_source: 0 is out of range; expected an integer in "
                "1..1000000");
    CHECK_ERROR("limits: { in_flight: 1025 }\n",
                "1:22: limits.in_flight: 1025 is out of range; expected an integer in 1..1024");
    CHECK_ERROR("limits:\n  idle_timeout: 5x\n",
                "2:17: limits.idle_timeout: expected a duration such as 250ms, 1.5s, 2m or 1h (a "
                "bare number is seconds), got \"5x\"");
    CHECK_ERROR("limits:\n  idle_timeout: -1.5s\n",
                "2:17: limits.idle_timeout: expected a duration such as 250ms, 1.5s, 2m or 1h (a "
                "bare number is seconds), got \"-1.5s\"");
    CHECK_ERROR("limits:\n  idle_timeout: 0s\n",
                "2:17: limits.idle_timeout: the duration must be at least 1ms, got \"0s\"");
    CHECK_ERROR("limits:\n  shutdown_grace: 25h\n",
                "2:19: limits.shutdown_grace: the duration must be at most 24h, got \"25h\"");
    CHECK_ERROR("limits:\n  shutdown_grace: 86401\n",
                "2:19: limits.shutdown_grace: the duration must be at most 24h, got \"86401\"");
    CHECK_ERROR("limits:\n  idle_timeout: true\n",
                "2:17: limits.idle_timeout: expected a duration such as 250ms, 1.5s, 2m or 1h (a "
                "bare number is seconds), got the boolean true");
    CHECK_ERROR("limits:\n  idle_timeout: [5s]\n",
                "2:17: limits.idle_timeout: expected a duration such as 250ms, 1.5s, 2m or 1h (a "
                "bare number is seconds), got a list");
    CHECK_ERROR("limits: { rate: 200/s }\n",
                "1:11: unknown key \"rate\" in limits; valid keys: max_connections, "
                "max_per_source, idle_timeout, in_flight, shutdown_grace, source_prefix_ipv4, "
                "source_prefix_ipv6");
    CHECK_ERROR("limits: { idle_timout: 5s }\n",
                "1:11: unknown key \"idle_timout\" in limits (did you mean idle_timeout?); valid "
                "keys: max_connections, max_per_source, idle_timeout, in_flight, shutdown_grace, "
                "source_prefix_ipv4, source_prefix_ipv6");
    CHECK_ERROR(
        "limits: { source_prefix_ipv4: 33 }\n",
        "1:31: limits.source_prefix_ipv4: 33 is out of range; expected an integer in 1..32");
    CHECK_ERROR(
        "limits: { source_prefix_ipv6: 0 }\n",
        "1:31: limits.source_prefix_ipv6: 0 is out of range; expected an integer in 1..128");
}

TEST(persist_path_is_relative_to_the_configuration_file) {
    struct serve_config config;
    char want[400];
    LOAD_OK("persist: { path: state.bin, sync_interval: 100ms }\n", &config);
    snprintf(want, sizeof want, "%s/state.bin", directory);
    CHECK_STR(config.model.persist_path, want);
    CHECK_EQ(config.model.sync_interval_ms, 100);
    config_serve_free(&config);
    LOAD_OK("persist: { path: sub/state.bin }\n", &config);
    snprintf(want, sizeof want, "%s/sub/state.bin", directory);
    CHECK_STR(config.model.persist_path, want);
    config_serve_free(&config);
    LOAD_OK("persist:\n  path: /var/lib/mbsec/state.bin\n", &config);
    CHECK_STR(config.model.persist_path, "/var/lib/mbsec/state.bin");
    CHECK_EQ(config.model.sync_interval_ms, 1000);
    config_serve_free(&config);

    /* A file named without a directory: the path stays as written. */
    char cwd[512], error[256];
    if (getcwd(cwd, sizeof cwd) != NULL && chdir(directory) == 0) {
        write_text("relative.yaml", "persist: { path: state.bin }\n", 29);
        config_serve_defaults(&config);
        CHECK_EQ(config_serve_load("relative.yaml", &config, error, sizeof error), 0);
        CHECK_STR(config.model.persist_path, "state.bin");
        config_serve_free(&config);
        CHECK_EQ(chdir(cwd), 0);
    }

    CHECK_ERROR("persist: { path: \"\" }\n", "1:18: persist.path: the path is empty");
    CHECK_ERROR("persist: { path: }\n", "1:18: persist.path: expected a string, got no value");
    CHECK_ERROR("persist: { sync_interval: 0 }\n",
                "1:27: persist.sync_interval: the duration must be at least 1ms, got \"0\"");
    CHECK_ERROR("persist: { file: x }\n",
                "1:12: unknown key \"file\" in persist; valid keys: path, sync_interval");
    CHECK_ERROR("persist: state.bin\n",
                "1:10: persist: expected a mapping of keys, got \"state.bin\"");
}

TEST(identity_strings_conformity_server_id_and_running) {
    struct serve_config config;
    char text[1024];
    LOAD_OK("identity: { conformity: 1 }\n", &config);
    CHECK_EQ(config.model.identity.conformity_level, 0x01);
    config_serve_free(&config);
    LOAD_OK("identity: { conformity: 0x03, running: TRUE }\n", &config);
    CHECK_EQ(config.model.identity.conformity_level, 0x03);
    CHECK_EQ(config.model.identity.running, 1);
    config_serve_free(&config);
    LOAD_OK("identity: { conformity: 129 }\n", &config);
    CHECK_EQ(config.model.identity.conformity_level, 0x81);
    config_serve_free(&config);
    LOAD_OK("identity: { server_id: [0x00, 0xFF, 18] }\n", &config);
    CHECK_BYTES(config.model.identity.server_id, config.model.identity.server_id_length, 0x00, 0xFF,
                0x12);
    config_serve_free(&config);

    /* The longest object (244 bytes) and server id (250 bytes) fit; one byte more does not. */
    snprintf(text, sizeof text, "identity:\n  vendor_name: %0244d\n  server_id: \"%0250d\"\n", 0,
             0);
    LOAD_OK(text, &config);
    CHECK_EQ(strlen(config.model.identity.vendor_name), 244);
    CHECK_EQ(config.model.identity.server_id_length, 250);
    config_serve_free(&config);
    snprintf(text, sizeof text, "identity:\n  model_name: %0245d\n", 0);
    CHECK_ERROR(text, "2:15: identity.model_name: 245 bytes is longer than the 244 allowed");
    snprintf(text, sizeof text, "identity:\n  server_id: %0251d\n", 0);
    CHECK_ERROR(text, "2:14: identity.server_id: 251 bytes is longer than the 250 allowed");
    strcpy(text, "identity:\n  server_id: [");
    for (int i = 0; i < 251; i++)
        strcat(text, i ? ",0" : "0");
    strcat(text, "]\n");
    CHECK_ERROR(text, "2:14: identity.server_id: 251 items is more than the 250 allowed");

    CHECK_ERROR("identity: { conformity: 0x84 }\n",
                "1:25: identity.conformity: 0x84 is out of range; expected a conformity level "
                "0x01..0x03 or 0x81..0x83");
    CHECK_ERROR("identity: { conformity: 4 }\n",
                "1:25: identity.conformity: 4 is out of range; expected a conformity level "
                "0x01..0x03 or 0x81..0x83");
    CHECK_ERROR("identity: { conformity: 0x80 }\n",
                "1:25: identity.conformity: 0x80 is out of range; expected a conformity level "
                "0x01..0x03 or 0x81..0x83");
    CHECK_ERROR("identity: { conformity: 0 }\n",
                "1:25: identity.conformity: 0 is out of range; expected a conformity level "
                "0x01..0x03 or 0x81..0x83");
    CHECK_ERROR("identity: { conformity: extended }\n",
                "1:25: identity.conformity: expected a conformity level 0x01..0x03 or "
                "0x81..0x83, got \"extended\"");
    CHECK_ERROR("identity: { server_id: \"\" }\n",
                "1:24: identity.server_id: the server id is empty");
    CHECK_ERROR("identity: { server_id: [] }\n",
                "1:24: identity.server_id: the list needs at least 1 item");
    CHECK_ERROR("identity: { server_id: [1, 256] }\n",
                "1:28: identity.server_id[1]: 256 is out of range; expected a byte 0..255 (or "
                "0x00..0xFF)");
    CHECK_ERROR("identity: { running: yes }\n",
                "1:22: identity.running: expected true or false, got \"yes\"");
    CHECK_ERROR("identity: { running: \"true\" }\n",
                "1:22: identity.running: expected true or false, got the quoted string \"true\"");
    CHECK_ERROR("identity: { running: 1 }\n",
                "1:22: identity.running: expected true or false, got \"1\"");
    CHECK_ERROR("identity: { vendor_name: [a, b] }\n",
                "1:26: identity.vendor_name: expected a string, got a list");
    CHECK_ERROR("identity: { vendor: x }\n",
                "1:13: unknown key \"vendor\" in identity; valid keys: vendor_name, product_code, "
                "revision, vendor_url, product_name, model_name, application_name, conformity, "
                "server_id, running");
}

/* ---- units ---- */

TEST(units_any_answers_every_unit_id_with_one_set_of_tables) {
    struct serve_config config;
    LOAD_OK("units:\n  - id: any\n    coils: 0-9\n    holding_registers: { start: 5, size: 5 }\n",
            &config);
    CHECK_EQ(config.model.any_unit, 1);
    CHECK_EQ(config.model.unit_count, 1);
    CHECK(config.model.units == config.units);
    CHECK_EQ(config.units[0].coils.start, 0);
    CHECK_EQ(config.units[0].coils.size, 10);
    CHECK_EQ(config.units[0].discrete_inputs.size, 0);
    CHECK_EQ(config.units[0].holding_registers.start, 5);
    CHECK_EQ(config.units[0].holding_registers.size, 5);
    CHECK_EQ(config.units[0].input_registers.size, 0);
    config_serve_free(&config);
    LOAD_OK("units: [ { id: \"any\" } ]\n", &config);
    CHECK_EQ(config.model.any_unit, 1);
    config_serve_free(&config);
}

TEST(units_take_ids_0_to_255_and_tables_as_ranges_or_start_and_size) {
    struct serve_config config;
    LOAD_OK("units:\n"
            "  - { id: 0, coils: 0-65535, discrete_inputs: { start: 65535, size: 1 } }\n"
            "  - { id: 255, holding_registers: 0x10-0x1F, input_registers: { size: 65536 } }\n"
            "  - { id: 0x7F, coils: { start: 0, size: 0 }, input_registers: 7-7 }\n",
            &config);
    CHECK_EQ(config.model.any_unit, 0);
    CHECK_EQ(config.model.unit_count, 3);
    CHECK_EQ(config.units[0].unit_id, 0);
    CHECK_EQ(config.units[0].coils.start, 0);
    CHECK_EQ(config.units[0].coils.size, 65536);
    CHECK_EQ(config.units[0].discrete_inputs.start, 65535);
    CHECK_EQ(config.units[0].discrete_inputs.size, 1);
    CHECK_EQ(config.units[1].unit_id, 255);
    CHECK_EQ(config.units[1].holding_registers.start, 16);
    CHECK_EQ(config.units[1].holding_registers.size, 16);
    CHECK_EQ(config.units[1].input_registers.start, 0);
    CHECK_EQ(config.units[1].input_registers.size, 65536);
    CHECK_EQ(config.units[2].unit_id, 127);
    CHECK_EQ(config.units[2].coils.size, 0);
    CHECK_EQ(config.units[2].input_registers.start, 7);
    CHECK_EQ(config.units[2].input_registers.size, 1);
    config_serve_free(&config);

    /* All 256 unit ids, each listed once. */
    char *text = malloc(256 * 32 + 16);
    if (text == NULL)
        return;
    strcpy(text, "units:\n");
    for (int id = 0; id < 256; id++)
        sprintf(text + strlen(text), "  - { id: %d, coils: 0-%d }\n", id, id);
    LOAD_OK(text, &config);
    CHECK_EQ(config.model.unit_count, 256);
    CHECK_EQ(config.units[255].unit_id, 255);
    CHECK_EQ(config.units[255].coils.size, 256);
    config_serve_free(&config);
    free(text);

    /* Anchors and aliases share a table between units. */
    LOAD_OK("units:\n  - id: 1\n    input_registers: &t { start: 10, size: 20 }\n"
            "  - id: 2\n    input_registers: *t\n",
            &config);
    CHECK_EQ(config.units[1].input_registers.start, 10);
    CHECK_EQ(config.units[1].input_registers.size, 20);
    config_serve_free(&config);
}

TEST(units_errors) {
    CHECK_ERROR("units:\n  - id: 1\n  - id: 2\n  - id: 1\n",
                "4:9: units[2].id: unit 1 is already defined on line 2");
    CHECK_ERROR("units:\n  - id: 1\n  - id: 0x01\n",
                "3:9: units[1].id: unit 1 is already defined on line 2");
    CHECK_ERROR("units:\n  - id: any\n  - id: 2\n",
                "2:9: units[0].id: any answers every unit id, so it must be the only unit");
    CHECK_ERROR("units:\n  - id: 2\n  - id: any\n",
                "3:9: units[1].id: any answers every unit id, so it must be the only unit");
    CHECK_ERROR("units:\n  - id: 256\n",
                "2:9: units[0].id: 256 is out of range; expected a unit id 0..255 or any");
    CHECK_ERROR("units:\n  - id: all\n",
                "2:9: units[0].id: expected a unit id 0..255 or any, got \"all\"");
    CHECK_ERROR("units:\n  - id: -1\n",
                "2:9: units[0].id: -1 is negative; expected a unit id 0..255 or any");
    CHECK_ERROR("units:\n  - coils: 0-9\n", "2:5: units[0]: id is missing (a unit id 0..255, "
                                            "or any)");
    CHECK_ERROR("units:\n  - 5\n",
                "2:5: units[0]: expected a mapping with an id and the unit's tables");
    CHECK_ERROR("units: []\n", "1:8: units: the list needs at least 1 item");
    CHECK_ERROR("units:\n", "1:7: units: expected a list, got no value");
    CHECK_ERROR("units: any\n", "1:8: units: expected a list, got \"any\"");
    CHECK_ERROR("units:\n  any: { coils: 0-9 }\n", "2:3: units: expected a list, got a mapping");
    CHECK_ERROR("units:\n  - id: 1\n    colis: 0-9\n",
                "3:5: unknown key \"colis\" in units[0] (did you mean coils?); valid keys: id, "
                "coils, discrete_inputs, holding_registers, input_registers, files, fifos");
    CHECK_ERROR("units:\n  - id: 1\n    coils: 0-9\n    coils: 0-9\n",
                "4:5: units[0]: key \"coils\" given twice (first on line 3)");

    /* Tables. */
    CHECK_ERROR("units:\n  - id: 1\n    coils: { start: 65000, size: 1000 }\n",
                "3:34: units[0].coils: start 65000 + size 1000 goes past address 65535");
    CHECK_ERROR("units:\n  - id: 1\n    coils: { start: 1, size: 65536 }\n",
                "3:30: units[0].coils: start 1 + size 65536 goes past address 65535");
    CHECK_ERROR("units:\n  - id: 1\n    coils: { start: 65536, size: 0 }\n",
                "3:21: units[0].coils.start: 65536 is out of range; expected an integer in "
                "0..65535");
    CHECK_ERROR("units:\n  - id: 1\n    coils: { size: 65537 }\n",
                "3:20: units[0].coils.size: 65537 is out of range; expected an integer in "
                "0..65536");
    CHECK_ERROR("units:\n  - id: 1\n    coils: { start: 10 }\n",
                "3:12: units[0].coils: size is missing (0 for no such table)");
    CHECK_ERROR("units:\n  - id: 1\n    coils: { start: 0, end: 9, size: 10 }\n",
                "3:24: unknown key \"end\" in units[0].coils; valid keys: start, size");
    CHECK_ERROR("units:\n  - id: 1\n    input_registers: 0-65536\n",
                "3:22: units[0].input_registers: 0-65536 goes past address 65535");
    CHECK_ERROR("units:\n  - id: 1\n    input_registers: 20-10\n",
                "3:22: units[0].input_registers: 20-10 ends before it starts");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 100\n",
                "3:24: units[0].holding_registers: expected { start: S, size: N } or a range of "
                "addresses such as \"0-99\"");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: -5-10\n",
                "3:24: units[0].holding_registers: expected { start: S, size: N } or a range of "
                "addresses such as \"0-99\"");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: [0, 10]\n",
                "3:24: units[0].holding_registers: expected { start: S, size: N } or a range of "
                "addresses such as \"0-99\"");
    CHECK_ERROR("units:\n  - id: 1\n    discrete_inputs: { start: \"0\", size: 1 }\n",
                "3:31: units[0].discrete_inputs.start: expected an integer in 0..65535, got the "
                "quoted string \"0\"");
}

TEST(units_files) {
    struct serve_config config;
    LOAD_OK("units: [ { id: 1, files: { count: 4 } } ]\n", &config);
    CHECK_EQ(config.units[0].files, 4);
    CHECK_EQ(config.units[0].records_per_file, 10000);
    config_serve_free(&config);
    LOAD_OK("units: [ { id: 1, files: { count: 65535, records: 1 } } ]\n", &config);
    CHECK_EQ(config.units[0].files, 65535);
    CHECK_EQ(config.units[0].records_per_file, 1);
    config_serve_free(&config);
    LOAD_OK("units: [ { id: 1, files: { count: 0 } } ]\n", &config);
    CHECK_EQ(config.units[0].files, 0);
    config_serve_free(&config);

    CHECK_ERROR("units: [ { id: 1, files: { count: 2, records: 10001 } } ]\n",
                "1:47: units[0].files.records: 10001 is out of range; expected an integer in "
                "1..10000");
    CHECK_ERROR("units: [ { id: 1, files: { count: 2, records: 0 } } ]\n",
                "1:47: units[0].files.records: 0 is out of range; expected an integer in "
                "1..10000");
    CHECK_ERROR("units: [ { id: 1, files: { count: 65536 } } ]\n",
                "1:35: units[0].files.count: 65536 is out of range; expected an integer in "
                "0..65535");
    CHECK_ERROR("units: [ { id: 1, files: { records: 5 } } ]\n",
                "1:26: units[0].files: count is missing (0 for no files)");
    CHECK_ERROR("units: [ { id: 1, files: 4 } ]\n",
                "1:26: units[0].files: expected { count: N, records: R }");
}

TEST(units_fifos) {
    struct serve_config config;
    LOAD_OK("units:\n  - id: 1\n    fifos: [ { address: 68 }, { address: 0, capacity: 1 } ]\n"
            "    holding_registers: 0-99\n"
            "  - id: 2\n    fifos: []\n",
            &config);
    CHECK_EQ(config.units[0].fifo_count, 2);
    CHECK_EQ(config.units[0].fifos[0].address, 68);
    CHECK_EQ(config.units[0].fifos[0].capacity, 31);
    CHECK_EQ(config.units[0].fifos[1].address, 0);
    CHECK_EQ(config.units[0].fifos[1].capacity, 1);
    CHECK_EQ(config.units[1].fifo_count, 0);
    CHECK(config.units[1].fifos == NULL);
    CHECK_EQ(config.fifo_count, 2);
    config_serve_free(&config);

    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n"
                "    fifos: [ { address: 1, capacity: 32 } ]\n",
                "4:38: units[0].fifos[0].capacity: 32 is out of range; expected an integer in "
                "1..31");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n"
                "    fifos: [ { address: 1, capacity: 0 } ]\n",
                "4:38: units[0].fifos[0].capacity: 0 is out of range; expected an integer in "
                "1..31");
    /* A FIFO is its count register at `address` and `capacity` registers after it. */
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n"
                "    fifos: [ { address: 100 } ]\n",
                "4:14: units[0].fifos[0]: the FIFO at 100 (its count register and 31 values, "
                "registers 100-131) does not fit in the holding registers (0-99)");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n"
                "    fifos: [ { address: 90, capacity: 10 } ]\n",
                "4:14: units[0].fifos[0]: the FIFO at 90 (its count register and 10 values, "
                "registers 90-100) does not fit in the holding registers (0-99)");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 10-99\n"
                "    fifos: [ { address: 9, capacity: 1 } ]\n",
                "4:14: units[0].fifos[0]: the FIFO at 9 (its count register and 1 values, "
                "registers 9-10) does not fit in the holding registers (10-99)");
    CHECK_ERROR("units:\n  - id: 1\n    fifos: [ { address: 5 } ]\n",
                "3:14: units[0].fifos[0]: the unit has no holding registers to hold the FIFO");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n    fifos:\n"
                "      - { address: 0, capacity: 4 }\n"
                "      - { address: 5, capacity: 4 }\n"
                "      - { address: 9, capacity: 1 }\n",
                "7:9: units[0].fifos[2]: the FIFO at 9 (registers 9-10) overlaps the one at 5 "
                "(registers 5-9) on line 6");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n    fifos:\n"
                "      - { address: 5, capacity: 4 }\n"
                "      - { address: 5, capacity: 4 }\n",
                "6:9: units[0].fifos[1]: the FIFO at 5 (registers 5-9) overlaps the one at 5 "
                "(registers 5-9) on line 5");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n    fifos: [ { capacity: 3 } ]\n",
                "4:14: units[0].fifos[0]: address is missing (where its count register is, a "
                "holding register)");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n    fifos: [ 5 ]\n",
                "4:14: units[0].fifos[0]: expected { address: A, capacity: N }");
    CHECK_ERROR("units:\n  - id: 1\n    holding_registers: 0-99\n    fifos: { address: 5 }\n",
                "4:12: units[0].fifos: expected a list, got a mapping");

    /* 64 FIFOs in all are allowed, 65 are not. */
    char *text = malloc(40 * 64 + 256);
    if (text == NULL)
        return;
    strcpy(text, "units:\n  - id: 1\n    holding_registers: 0-199\n    fifos:\n");
    for (int i = 0; i < 40; i++)
        sprintf(text + strlen(text), "      - { address: %d, capacity: 1 }\n", 2 * i);
    strcat(text, "  - id: 2\n    holding_registers: 0-199\n    fifos:\n");
    for (int i = 0; i < 24; i++)
        sprintf(text + strlen(text), "      - { address: %d, capacity: 1 }\n", 2 * i);
    LOAD_OK(text, &config);
    CHECK_EQ(config.fifo_count, 64);
    check_model_accepts("64 FIFOs", &config);
    CHECK(config.units[1].fifos == &config.fifos[40]);
    CHECK_EQ(config.units[1].fifos[23].address, 46);
    config_serve_free(&config);
    strcat(text, "  - id: 3\n    holding_registers: 0-99\n    fifos: [ { address: 0 } ]\n");
    CHECK_ERROR(text, "74:12: units[2].fifos: more than 64 FIFOs in all units together");
    free(text);
}

/* ---- the file as a whole ---- */

TEST(yaml_syntax_errors_carry_libyamls_message_and_position) {
    CHECK_ERROR("workers: [1\n",
                "2:1: did not find expected ',' or ']' (while parsing a flow sequence at line 1, "
                "column 10)");
    CHECK_ERROR("workers: 4\n  log: x\n", "2:6: mapping values are not allowed in this context");
    CHECK_ERROR("\tworkers: 4\n", "1:1: found character that cannot start any token (while "
                                  "scanning for the next token at line 1, column 1)");
    CHECK_ERROR("user: \"nobody\n",
                "2:1: found unexpected end of stream (while scanning a quoted scalar at line 1, "
                "column 7)");
    CHECK_ERROR("workers: 4\nuser: \xff\n", "2:7: invalid leading UTF-8 octet (byte 0xFF)");
    CHECK_ERROR("workers: *w\n", "1:10: found undefined alias");
}

TEST(the_file_is_one_mapping_of_known_keys_in_one_document) {
    CHECK_ERROR("- workers: 4\n", "1:1: expected a mapping of keys, got a list");
    CHECK_ERROR("workers\n", "1:1: expected a mapping of keys, got \"workers\"");
    CHECK_ERROR("workers: 1\n---\nworkers: 2\n",
                "3:1: a second YAML document; the configuration is one document");
    CHECK_ERROR("workers: 1\n--- ~\n",
                "2:5: a second YAML document; the configuration is one document");
    CHECK_ERROR("wrokers: 4\n",
                "1:1: unknown key \"wrokers\" (did you mean workers?); valid keys: listen, "
                "workers, user, log, limits, persist, identity, units, tls, authorize_plain, "
                "policy, policy_mode");
    CHECK_ERROR("foo: 1\n",
                "1:1: unknown key \"foo\"; valid keys: listen, workers, user, log, "
                "limits, persist, identity, units, tls, authorize_plain, policy, policy_mode");
    CHECK_ERROR("policy: { default: deny }\n", "1:9: policy: expected a list, got a mapping");
    CHECK_ERROR("workers: 4\nworkers: 5\n", "2:1: key \"workers\" given twice (first on line 1)");
    CHECK_ERROR("? [workers]\n: 4\n", "1:3: keys must be words, got a list");
    CHECK_ERROR("~: 4\n", "1:1: keys must be words, got no value");
    CHECK_ERROR("\"workers\\0\": 4\n", "1:1: keys must be words, got the quoted string "
                                       "\"workers?\"");
    CHECK_ERROR("workers: !!int 4\n", "1:10: the tag !!int is not supported: the configuration "
                                      "gives every value its type");
    CHECK_ERROR("log: !level { level: info }\n",
                "1:6: the tag !level is not supported: the configuration gives every value its "
                "type");
}

TEST(windows_line_endings_and_a_byte_order_mark_are_read) {
    struct serve_config config;
    LOAD_OK("\xEF\xBB\xBFworkers: 5\r\nlog:\r\n  level: debug\r\n", &config);
    CHECK_EQ(config.front.workers, 5);
    CHECK_EQ(config.front.log_level, MB_LOG_DEBUG);
    config_serve_free(&config);
    CHECK_ERROR("workers: 5\r\nlog:\r\n  level: loud\r\n",
                "3:10: log.level: expected one of error, warning, info, debug, got \"loud\"");
}

TEST(a_file_that_cannot_be_read_is_a_system_error_and_changes_nothing) {
    struct serve_config config, before;
    char error[512], path[400], want[600];
    config_serve_defaults(&config);
    CHECK_EQ(load_text(base_text, &config, error, sizeof error), 0);
    memcpy(&before, &config, sizeof config);

    snprintf(path, sizeof path, "%s/missing.yaml", directory);
    CHECK_EQ(config_serve_load(path, &config, error, sizeof error), MB_ESYSTEM);
    snprintf(want, sizeof want, "%s: cannot read: %s", path, strerror(ENOENT));
    CHECK_STR(error, want);
    CHECK(memcmp(&before, &config, sizeof config) == 0);

    CHECK_EQ(config_serve_load(directory, &config, error, sizeof error), MB_ESYSTEM);
    snprintf(want, sizeof want, "%s: cannot read: %s", directory, strerror(EISDIR));
    CHECK_STR(error, want);
    CHECK(memcmp(&before, &config, sizeof config) == 0);

    /* Over 4 MiB is not a configuration file (a log passed by accident, say). */
    size_t size = (4u << 20) + 1;
    char *big = malloc(size);
    if (big != NULL) {
        memset(big, '#', size);
        snprintf(path, sizeof path, "%s/big.yaml", directory);
        write_text(path, big, size);
        free(big);
        CHECK_EQ(config_serve_load(path, &config, error, sizeof error), MB_ECONFIG);
        snprintf(want, sizeof want, "%s: larger than 4194304 bytes; not a configuration file",
                 path);
        CHECK_STR(error, want);
        CHECK(memcmp(&before, &config, sizeof config) == 0);
        unlink(path);
    }
    CHECK_EQ(config_serve_load(NULL, &config, error, sizeof error), MB_EINVAL);
    config_serve_free(&config);
}

TEST(the_error_buffer_may_be_small_or_absent) {
    struct serve_config config;
    char error[12];
    config_serve_defaults(&config);
    CHECK_EQ(load_text("workers: 0\n", &config, NULL, 0), MB_ECONFIG);
    CHECK_EQ(load_text("workers: [\n", &config, NULL, 0), MB_ECONFIG);
    memset(error, 'x', sizeof error);
    CHECK_EQ(load_text("workers: 0\n", &config, error, sizeof error), MB_ECONFIG);
    CHECK_EQ(strlen(error), sizeof error - 1);
    CHECK(strncmp(error, config_path, sizeof error - 1) == 0);
    memset(error, 'x', sizeof error);
    CHECK_EQ(load_text("workers: [\n", &config, error, 1), MB_ECONFIG);
    CHECK_EQ(error[0], '\0');
    CHECK_EQ(config.front.workers, 1);
    config_serve_free(&config);
}

/* ---- tls, authorize_plain, policy ---- */

/* The files the tls examples name need not exist: the configuration only says where they are. */
static const char tls_text[] = "tls:\n"
                               "  certificate: server.crt\n"
                               "  key: server.key\n"
                               "  ca: ca.crt\n";

TEST(tls_takes_addresses_files_tickets_and_a_handshake_timeout) {
    struct serve_config config;
    char want[400];
    LOAD_OK("tls:\n"
            "  listen: [0.0.0.0, \"[::]\", 127.0.0.1:8802, \"[::1]:8803\", plc.example:802]\n"
            "  certificate: certs/server.crt\n"
            "  key: /etc/mbsec/server.key\n"
            "  ca: ca/\n"
            "  crl: ca.crl\n"
            "  session_tickets: true\n"
            "  handshake_timeout: 2500ms\n",
            &config);
    CHECK_EQ(config.front.tls_listen_count, 5);
    CHECK_STR(config.front.tls_listen[0], "0.0.0.0:802");
    CHECK_STR(config.front.tls_listen[1], "[::]:802");
    CHECK_STR(config.front.tls_listen[2], "127.0.0.1:8802");
    CHECK_STR(config.front.tls_listen[3], "[::1]:8803");
    CHECK_STR(config.front.tls_listen[4], "plc.example:802");
    snprintf(want, sizeof want, "%s/certs/server.crt", directory);
    CHECK_STR(config.front.tls_certificate, want);
    CHECK_STR(config.front.tls_key, "/etc/mbsec/server.key");
    snprintf(want, sizeof want, "%s/ca/", directory);
    CHECK_STR(config.front.tls_ca, want);
    snprintf(want, sizeof want, "%s/ca.crl", directory);
    CHECK_STR(config.front.tls_crl, want);
    CHECK_EQ(config.front.tls_session_tickets, 1);
    CHECK_EQ(config.front.tls_handshake_timeout_ms, 2500);
    /* The plain listeners are another key. */
    CHECK_EQ(config.front.listen_count, 0);
    config_serve_free(&config);

    /* Without listen: both wildcard addresses on 802; one address without a list. */
    LOAD_OK(tls_text, &config);
    CHECK_EQ(config.front.tls_listen_count, 2);
    CHECK_STR(config.front.tls_listen[0], "0.0.0.0:802");
    CHECK_STR(config.front.tls_listen[1], "[::]:802");
    CHECK(config.front.tls_crl == NULL);
    CHECK_EQ(config.front.tls_session_tickets, 0);
    CHECK_EQ(config.front.tls_handshake_timeout_ms, 10000);
    config_serve_free(&config);
    LOAD_OK("tls: { listen: 10.0.0.1, certificate: a, key: b, ca: c }\n", &config);
    CHECK_EQ(config.front.tls_listen_count, 1);
    CHECK_STR(config.front.tls_listen[0], "10.0.0.1:802");
    config_serve_free(&config);
}

TEST(tls_errors) {
    CHECK_ERROR_OVER_DEFAULTS(
        "tls:\n  listen: 0.0.0.0:802\n",
        "2:3: tls: certificate, key and ca are all needed to serve Modbus/TCP Security; "
        "missing: certificate, key, ca");
    CHECK_ERROR_OVER_DEFAULTS(
        "tls:\n  listen: 0.0.0.0:802\n  certificate: a.crt\n  ca: ca.crt\n",
        "2:3: tls: certificate, key and ca are all needed to serve Modbus/TCP Security; "
        "missing: key");
    CHECK_ERROR_OVER_DEFAULTS(
        "tls: { session_tickets: true }\n",
        "1:6: tls: certificate, key and ca are all needed to serve Modbus/TCP Security; "
        "missing: certificate, key, ca");
    CHECK_ERROR("tls:\n  certificate: a\n  key: b\n  ca: c\n  cert: d\n",
                "5:3: unknown key \"cert\" in tls; valid keys: listen, certificate, key, ca, crl, "
                "session_tickets, handshake_timeout");
    CHECK_ERROR("tls:\n  listen: \"::\"\n  certificate: a\n  key: b\n  ca: c\n",
                "2:11: tls.listen: :: is not an address to listen on: an IPv6 host goes in "
                "brackets: [::1]:502");
    CHECK_ERROR("tls:\n  listen: [0.0.0.0:802, 0.0.0.0]\n  certificate: a\n  key: b\n  ca: c\n",
                "2:25: tls.listen[1]: 0.0.0.0 is already listed on line 2");
    CHECK_ERROR("tls:\n  listen: 0.0.0.0:99999\n",
                "2:11: tls.listen: 0.0.0.0:99999 is not an address to listen on: the port must be "
                "a number 0..65535");
    CHECK_ERROR("tls:\n  certificate: \"\"\n", "2:16: tls.certificate: the path is empty");
    CHECK_ERROR("tls:\n  key: [a, b]\n", "2:8: tls.key: expected a string, got a list");
    CHECK_ERROR("tls:\n  session_tickets: yes\n",
                "2:20: tls.session_tickets: expected true or false, got \"yes\"");
    CHECK_ERROR("tls:\n  handshake_timeout: 0\n",
                "2:22: tls.handshake_timeout: the duration must be at least 1ms, got \"0\"");
    CHECK_ERROR("tls: [a]\n", "1:6: tls: expected a mapping of keys, got a list");
}

/* A client for deciding with a loaded policy. */
static struct mb_policy_identity client(const char *role, int tls, const char *address,
                                        struct sockaddr_in6 *storage) {
    struct mb_policy_identity who = {.role = role, .tls = tls};
    memset(storage, 0, sizeof *storage);
    storage->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, address, &storage->sin6_addr) != 1) {
        fprintf(stderr, "bad test address %s\n", address);
        exit(2);
    }
    who.address = (const struct sockaddr *)storage;
    who.address_length = sizeof *storage;
    return who;
}

static enum mb_policy_action decide_action(const struct mb_policy *policy, const char *role,
                                           int tls, const char *address, const uint8_t *pdu,
                                           size_t length, const char **rule) {
    struct sockaddr_in6 storage;
    struct mb_policy_identity who = client(role, tls, address, &storage);
    struct mb_policy_decision decision;
    if (mb_policy_decide(policy, &who, 1, pdu, length, &decision) != 0)
        return 0;
    *rule = decision.rule_name;
    return decision.action;
}

#define ACTION(policy, role, tls, address, rule, ...) \
    decide_action(policy, role, tls, address, BYTES(__VA_ARGS__), &rule)

static const char every_policy_key[] =
    "authorize_plain: true\n"
    "policy:\n"
    "  - name: operators-read\n"
    "    roles: [operator, \"any\"]\n"
    "    sources: [\"::ffff:192.0.2.0/120\", \"2001:db8::/32\"]\n"
    "    tls: true\n"
    "    units: [1, 10-19]\n"
    "    preset: read-only\n"
    "    tables:\n"
    "      holding_registers: [0-99, 200]\n"
    "      coils: any\n"
    "      files: { numbers: 1-2, records: 0-999 }\n"
    "      device: any\n"
    "    action: allow\n"
    "  - name: engineer-setpoints\n"
    "    roles: engineer\n"
    "    functions: [write_single_register, 16]\n"
    "    tables: { holding_registers: 100-110 }\n"
    "    values: 0-500\n"
    "    action: allow\n"
    "  - name: setpoint-guard\n"
    "    roles: [engineer]\n"
    "    access: write\n"
    "    tables: { holding_registers: 0x64-0x6E }\n"
    "    action: deny\n"
    "    exception: 0x02\n"
    "  - name: engineer\n"
    "    roles: [engineer]\n"
    "    preset: read-write\n"
    "    tables: [coils, holding_registers, device]\n"
    "    action: allow\n"
    "  - name: echo-for-everyone\n"
    "    roles: [any, none]\n"
    "    functions: [return_query_data, read_device_identification, 17]\n"
    "    access: [read, write]\n"
    "    action: allow\n"
    "  - name: plain-scanners\n"
    "    sources: [0.0.0.0/0, \"::/0\"]\n"
    "    tls: false\n"
    "    action: close\n"
    "  - name: the-rest\n"
    "    roles: [any]\n"
    "    action: drop\n";

TEST(policy_rules_take_every_key) {
    struct serve_config config;
    const char *rule = NULL;
    LOAD_OK(every_policy_key, &config);
    CHECK_EQ(config.front.authorize_plain, 1);
    struct mb_policy *policy = config.front.policy;
    CHECK(policy != NULL);
    if (policy == NULL)
        return;
    CHECK_EQ(mb_policy_rule_count(policy), 7);
    CHECK_STR(mb_policy_rule_name(policy, 0), "operators-read");
    CHECK_STR(mb_policy_rule_name(policy, 6), "the-rest");
    const char *site = "::ffff:192.0.2.7";
    /* operators-read: who, units, preset, tables */
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x64),
             MB_POLICY_ALLOW);
    CHECK_STR(rule, "operators-read");
    CHECK_EQ(ACTION(policy, "operator", 1, "2001:db8::1", rule, 0x03, 0x00, 0xC8, 0x00, 0x01),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, "2001:db9::1", rule, 0x03, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_DROP);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x03, 0x00, 0x64, 0x00, 0x01),
             MB_POLICY_DROP);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x01, 0xFF, 0x00, 0x00, 0x10),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x14, 0x07, 0x06, 0x00, 0x02, 0x03, 0xE7,
                    0x00, 0x01),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x14, 0x07, 0x06, 0x00, 0x03, 0x00, 0x00,
                    0x00, 0x01),
             MB_POLICY_DROP);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x07), MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x06, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_DROP);
    /* A quoted "any" is a role of that name. */
    CHECK_EQ(ACTION(policy, "any", 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_ALLOW);
    CHECK_STR(rule, "operators-read");
    CHECK_EQ(ACTION(policy, "operator", 0, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_CLOSE);
    /* engineer-setpoints, setpoint-guard, engineer */
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x64, 0x01, 0xF4),
             MB_POLICY_ALLOW);
    CHECK_STR(rule, "engineer-setpoints");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x64, 0x01, 0xF5),
             MB_POLICY_DENY);
    CHECK_STR(rule, "setpoint-guard");
    struct mb_policy_decision decision;
    struct sockaddr_in6 storage;
    struct mb_policy_identity who = client("engineer", 1, site, &storage);
    CHECK_EQ(mb_policy_decide(policy, &who, 1,
                              BYTES(0x10, 0x00, 0x63, 0x00, 0x02, 0x04, 0x00, 0x01, 0x03, 0xE8),
                              &decision),
             0);
    CHECK_EQ(decision.exception, 2);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x0A, 0xFF, 0xFF),
             MB_POLICY_ALLOW);
    CHECK_STR(rule, "engineer");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x08, 0x00, 0x01, 0x00, 0x00),
             MB_POLICY_DROP);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x04, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_DROP);
    /* echo-for-everyone: FC 8/00, 43/14 and 17, with or without a role */
    CHECK_EQ(ACTION(policy, NULL, 1, site, rule, 0x08, 0x00, 0x00, 0x12, 0x34), MB_POLICY_ALLOW);
    CHECK_STR(rule, "echo-for-everyone");
    CHECK_EQ(ACTION(policy, NULL, 0, site, rule, 0x2B, 0x0E, 0x01, 0x00), MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "guest", 1, site, rule, 0x11), MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, NULL, 1, site, rule, 0x08, 0x00, 0x0B, 0x00, 0x00), MB_POLICY_DENY);
    CHECK_STR(rule, "default");
    CHECK_EQ(ACTION(policy, NULL, 0, site, rule, 0x08, 0x00, 0x0B, 0x00, 0x00), MB_POLICY_CLOSE);
    CHECK_EQ(ACTION(policy, "guest", 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_DROP);
    config_serve_free(&config);
    CHECK(config.front.policy == NULL);

    /* One rule more or less: a new policy replaces the old one whole. */
    LOAD_OK(every_policy_key, &config);
    struct mb_policy *first = config.front.policy;
    char error[256];
    CHECK_EQ(load_text("policy:\n  - { name: only, roles: [none], action: allow }\n", &config,
                       error, sizeof error),
             0);
    CHECK(config.front.policy != first);
    CHECK_EQ(mb_policy_rule_count(config.front.policy), 1);
    CHECK_EQ(config.front.authorize_plain, 1);
    /* An empty list is a policy that denies everything. */
    CHECK_EQ(load_text("policy: []\n", &config, error, sizeof error), 0);
    CHECK(config.front.policy != NULL);
    CHECK_EQ(mb_policy_rule_count(config.front.policy), 0);
    config_serve_free(&config);
}

/* Loads `rules` as the policy section over the base configuration and checks the error. */
#define POLICY_ERROR(rules, want) CHECK_ERROR("policy:\n" rules, want)

TEST(policy_errors) {
    POLICY_ERROR(
        "  - name: a\n    role: [x]\n    action: allow\n",
        "3:5: unknown key \"role\" in policy[0] (did you mean roles?); valid keys: name, "
        "action, exception, roles, sources, tls, units, devices, preset, functions, access, "
        "tables, values, mode");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    sources: [192.0.2.0/24, 10.0.0.1/8]\n"
                 "    action: allow\n",
                 "4:29: policy[0].sources[1]: \"10.0.0.1/8\" has bits set past the /8 prefix; did "
                 "you mean 10.0.0.0/8?");
    POLICY_ERROR("  - name: a\n    sources: \"::1/200\"\n    action: allow\n",
                 "3:14: policy[0].sources: \"::1/200\": the prefix after / must be a number "
                 "0..128");
    POLICY_ERROR("  - name: a\n    sources: [plc.example]\n    action: allow\n",
                 "3:15: policy[0].sources[0]: \"plc.example\" is not an IP address or network "
                 "such as 192.0.2.0/24, 2001:db8::/32 or ::1");
    POLICY_ERROR("  - name: a\n    roles: any\n    functions: [read_holding_register]\n"
                 "    action: allow\n",
                 "4:17: policy[0].functions[0]: unknown function \"read_holding_register\"; "
                 "expected a function code 1..127 or a function name such as "
                 "read_holding_registers (docs/configuration.md lists them)");
    POLICY_ERROR("  - name: a\n    roles: any\n    functions: [3, 128]\n    action: allow\n",
                 "4:20: policy[0].functions[1]: 128 is out of range; expected a function code "
                 "1..127 or a function name such as read_holding_registers "
                 "(docs/configuration.md lists them)");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables: { holding_registers: 110-100 }\n"
                 "    action: allow\n",
                 "4:34: policy[0].tables.holding_registers: 110-100 ends before it starts");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables:\n      coils: [0-9, 20-70000]\n"
                 "    action: allow\n",
                 "5:20: policy[0].tables.coils[1]: 20-70000 is out of range; expected an address "
                 "0..65535, a range such as 100-199, or any");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables: { holding: 0-9 }\n    action: allow\n",
                 "4:15: unknown key \"holding\" in policy[0].tables; valid keys: coils, "
                 "discrete_inputs, holding_registers, input_registers, files, fifos, device");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables: { device: 0-9 }\n    action: allow\n",
                 "4:23: policy[0].tables.device: the device has no addresses; write device: any, "
                 "or list it in tables: [..., device]");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables: { files: { records: 0-10000 } }\n"
                 "    action: allow\n",
                 "4:33: policy[0].tables.files.records: 0-10000 is out of range; expected a "
                 "record number 0..9999, a range such as 0-999, or any");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables:\n    action: allow\n",
                 "4:12: policy[0].tables: no value; give one or leave the key out");
    POLICY_ERROR("  - name: a\n    roles: any\n    tables: [coils, holdings]\n    action: allow\n",
                 "4:21: policy[0].tables[1]: expected one of coils, discrete_inputs, "
                 "holding_registers, input_registers, files, fifos, device, got \"holdings\"");
    POLICY_ERROR("  - name: a\n    roles: any\n    units: [1, 256]\n    action: allow\n",
                 "4:16: policy[0].units[1]: 256 is out of range; expected a unit id 0..255, a "
                 "range such as 1-10, or any");
    POLICY_ERROR("  - name: a\n    roles: any\n    units: one\n    action: allow\n",
                 "4:12: policy[0].units: expected a unit id 0..255, a range such as 1-10, or any, "
                 "got \"one\"");
    POLICY_ERROR("  - name: a\n    roles:\n    action: allow\n",
                 "3:11: policy[0].roles: no value; give one or leave the key out");
    POLICY_ERROR("  - name: a\n    roles: [\"\"]\n    action: allow\n",
                 "3:13: policy[0].roles[0]: the role is empty");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: permit\n",
                 "4:13: policy[0].action: expected one of allow, deny, drop, close, got "
                 "\"permit\"");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n    access: readwrite\n",
                 "5:13: policy[0].access: expected one of read, write, got \"readwrite\"");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n    preset: read_only\n",
                 "5:13: policy[0].preset: expected one of read-only, read-write, got "
                 "\"read_only\"");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n    tls: yes\n",
                 "5:10: policy[0].tls: expected true or false, got \"yes\"");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: deny\n    exception: 0\n",
                 "5:16: policy[0].exception: 0 is out of range; expected an exception code "
                 "1..255 (0x01..0xFF)");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n    values: 500-0\n",
                 "5:13: policy[0].values: 500-0 ends before it starts");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n    values: [0-5]\n",
                 "5:13: policy[0].values: expected a value 0..65535 or a range such as 0-500 "
                 "(coils: 0 off, 1 on)");
    /* How the keys of a rule fit together. */
    POLICY_ERROR("  - roles: [x]\n    action: allow\n",
                 "2:5: policy[0]: name is missing (every rule has one, for the audit trail)");
    POLICY_ERROR("  - name: a\n    roles: [x]\n",
                 "2:5: policy[0]: action is missing (allow, deny, drop or close)");
    POLICY_ERROR("  - name: a\n    preset: read-only\n    action: allow\n",
                 "2:5: policy[0]: the rule names no one: give roles (role names, any, none) or "
                 "sources (addresses or networks)");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    preset: read-only\n    access: read\n"
                 "    action: allow\n",
                 "4:13: policy[0].preset: a preset sets functions and access itself; give either "
                 "the preset or functions and access");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    exception: 2\n    action: allow\n",
                 "4:16: policy[0].exception: an exception code goes only with action: deny");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    values: 0-5\n    action: deny\n",
                 "4:13: policy[0].values: values limit what a rule allows; they go only with "
                 "action: allow");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    values: 0-5\n    preset: read-only\n"
                 "    action: allow\n",
                 "4:13: policy[0].values: values limit writes, but the rule grants only reads");
    POLICY_ERROR("  - name: a\n    roles: [x]\n    action: allow\n"
                 "  - name: a\n    roles: [y]\n    action: allow\n",
                 "5:11: policy[1].name: a is already the name of policy[0] on line 2");
    POLICY_ERROR("  - name: operators read\n    roles: [x]\n    action: allow\n",
                 "2:11: policy[0].name: \"operators read\" is not a rule name: use letters, "
                 "digits, '-', '_' and '.'");
    POLICY_ERROR("  - name: default\n    roles: [x]\n    action: allow\n",
                 "2:11: policy[0].name: the name default is reserved for requests no rule "
                 "matches");
    POLICY_ERROR("  - allow operators\n",
                 "2:5: policy[0]: expected a rule: a mapping with name, action, who (roles, "
                 "sources) and what (preset, functions, tables...)");
    CHECK_ERROR("policy: allow\n", "1:9: policy: expected a list, got \"allow\"");
    CHECK_ERROR_OVER_DEFAULTS(
        "authorize_plain: true\n",
        "1:18: authorize_plain: true needs a policy section; without one every plain-TCP "
        "request would be denied");
    CHECK_ERROR("authorize_plain: 1\n", "1:18: authorize_plain: expected true or false, got \"1\"");
}

/* One policy with three refusing rules, `mode` given on some, under `policy_mode` (or not). */
static void check_modes(int line, const char *policy_mode, int want_guard, int want_closer,
                        int want_default) {
    char text[1024];
    snprintf(text, sizeof text,
             "policy:\n"
             "  - name: readers\n    roles: any\n    preset: read-only\n    action: allow\n"
             "  - name: guard\n    roles: any\n    tables: { holding_registers: 100 }\n"
             "    action: deny\n"
             "  - name: closer\n    roles: any\n    functions: [8]\n    action: close\n"
             "    mode: enforce\n"
             "  - name: watcher\n    roles: any\n    functions: [43]\n    action: drop\n"
             "    mode: monitor\n"
             "%s",
             policy_mode);
    struct serve_config config;
    char error[512];
    config_serve_defaults(&config);
    int status = load_text(text, &config, error, sizeof error);
    harness_checks++;
    if (status != 0) {
        harness_fail(__FILE__, line, "load failed: %s", error);
        return;
    }
    harness_checks += 5;
    if (mb_policy_rule_monitor(config.front.policy, 0) != 0 ||
        mb_policy_rule_monitor(config.front.policy, 1) != want_guard ||
        mb_policy_rule_monitor(config.front.policy, 2) != want_closer ||
        mb_policy_rule_monitor(config.front.policy, 3) != 1 ||
        mb_policy_rule_monitor(config.front.policy, 4) != want_default)
        harness_fail(__FILE__, line, "modes %d %d %d %d %d",
                     mb_policy_rule_monitor(config.front.policy, 0),
                     mb_policy_rule_monitor(config.front.policy, 1),
                     mb_policy_rule_monitor(config.front.policy, 2),
                     mb_policy_rule_monitor(config.front.policy, 3),
                     mb_policy_rule_monitor(config.front.policy, 4));
    config_serve_free(&config);
}

TEST(policy_mode_monitor_covers_refusing_rules_without_a_mode_and_the_default) {
    /* Enforced unless said otherwise: only the rule with mode: monitor is monitored. */
    check_modes(__LINE__, "", 0, 0, 0);
    check_modes(__LINE__, "policy_mode: enforce\n", 0, 0, 0);
    /* Everything that refuses is monitored but the rule that says enforce; the key may come
     * after the rules. */
    check_modes(__LINE__, "policy_mode: monitor\n", 1, 0, 1);
    POLICY_ERROR("  - name: a\n    roles: any\n    preset: read-only\n    action: allow\n"
                 "    mode: monitor\n",
                 "6:11: policy[0].mode: monitor and enforce are for rules that refuse (deny, "
                 "drop, close); a rule that allows allows in both");
    POLICY_ERROR("  - name: a\n    roles: any\n    action: deny\n    mode: learn\n",
                 "5:11: policy[0].mode: expected one of enforce, monitor, got \"learn\"");
    CHECK_ERROR_OVER_DEFAULTS("policy_mode: monitor\n",
                              "1:14: policy_mode: monitor needs a policy section: without one "
                              "there are no rules to watch, and every request checked is denied");
    CHECK_ERROR("policy_mode: learning\n",
                "1:14: policy_mode: expected one of enforce, monitor, got \"learning\"");
}

TEST(a_failed_load_keeps_the_policy_it_had) {
    struct serve_config config;
    char error[256];
    LOAD_OK(every_policy_key, &config);
    struct mb_policy *policy = config.front.policy;
    CHECK_EQ(load_text("policy:\n  - { name: only, roles: [none], action: allow }\nworkers: 0\n",
                       &config, error, sizeof error),
             MB_ECONFIG);
    CHECK(config.front.policy == policy);
    CHECK_EQ(mb_policy_rule_count(config.front.policy), 7);
    CHECK_STR(mb_policy_rule_name(config.front.policy, 3), "engineer");
    config_serve_free(&config);
}

/* ---- the gateway: backends, routes, and what each program refuses ---- */

static const char pin_text[] =
    "SHA256:00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

/* A gateway configuration with something in every owned field, to load errors over. */
static const char gateway_base_text[] =
    "listen: 127.0.0.1:5020\n"
    "tls: { listen: 127.0.0.1:8802, certificate: gw.crt, key: gw.key, ca: clients.crt }\n"
    "policy:\n"
    "  - { name: base-readers, roles: [any], preset: read-only, action: allow }\n"
    "backends:\n"
    "  - name: base-plc\n"
    "    address: 192.0.2.1\n"
    "    units: { 1: 1, 2: 5 }\n"
    "    tls:\n"
    "      certificate: gateway.crt\n"
    "      key: gateway.key\n"
    "      pin: SHA256:00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n"
    "audit: { file: audit.jsonl, syslog: unix }\n"
    "metrics: { listen: 127.0.0.1:9502 }\n";

/* Loads `text` as a gateway configuration over the defaults. */
static int load_gateway_ok(int line, const char *text, struct gateway_config *config) {
    char error[512];
    config_gateway_defaults(config);
    int status = load_gateway_text(text, config, error, sizeof error);
    harness_checks++;
    if (status != 0)
        harness_fail(__FILE__, line, "load failed with %d: %s", status, error);
    return status;
}

#define LOAD_GATEWAY_OK(text, config) load_gateway_ok(__LINE__, text, config)

/* As check_error_over(), for a gateway configuration loaded over gateway_base_text. */
static void check_gateway_error(int line, const char *text, const char *want) {
    struct gateway_config config, before;
    char error[512], expected[1024];
    config_gateway_defaults(&config);
    if (load_gateway_text(gateway_base_text, &config, error, sizeof error) != 0) {
        harness_fail(__FILE__, line, "the gateway base configuration does not load: %s", error);
        return;
    }
    memcpy(&before, &config, sizeof config);
    int status = load_gateway_text(text, &config, error, sizeof error);
    snprintf(expected, sizeof expected, "%s:%s", config_path, want);
    harness_checks += 3;
    if (status != MB_ECONFIG)
        harness_fail(__FILE__, line, "status %d, want MB_ECONFIG (%d)", status, MB_ECONFIG);
    if (strcmp(error, expected) != 0)
        harness_fail(__FILE__, line, "error\n    \"%s\"\n  want\n    \"%s\"", error, expected);
    if (memcmp(&before, &config, sizeof config) != 0)
        harness_fail(__FILE__, line, "a failed load changed the configuration");
    CHECK_EQ(config.backend_count, 1);
    CHECK_STR(config.backends[0].name, "base-plc");
    CHECK_STR(config.backends[0].tls_pin, pin_text);
    CHECK_EQ(config.route_count, 2);
    config_gateway_free(&config);
}

#define CHECK_GATEWAY_ERROR(text, want) check_gateway_error(__LINE__, text, want)

TEST(gateway_defaults_check_plain_requests_too) {
    struct gateway_config config;
    config_gateway_defaults(&config);
    CHECK_EQ(config.front.authorize_plain, 1);
    CHECK_EQ(config.backend_count, 0);
    CHECK_EQ(config.route_count, 0);
    /* Freeing resets to the defaults of the gateway. */
    config_gateway_free(&config);
    CHECK_EQ(config.front.authorize_plain, 1);
    /* authorize_plain: false is the gateway's to choose. */
    LOAD_GATEWAY_OK("authorize_plain: false\n", &config);
    CHECK_EQ(config.front.authorize_plain, 0);
    config_gateway_free(&config);
    struct serve_config serve;
    config_serve_defaults(&serve);
    CHECK_EQ(serve.front.authorize_plain, 0);
}

TEST(backends_take_every_key) {
    struct gateway_config config;
    char want[400];
    LOAD_GATEWAY_OK(
        "backends:\n"
        "  - name: plc1\n"
        "    address: 10.20.5.10:5020\n"
        "    connections: 2\n"
        "    timeout: 250ms\n"
        "    in_flight: 1\n"
        "    queue: 32\n"
        "    units: { 1: 1, 2: 1, 0x10: 255, 0: 0 }\n"
        "  - name: meter.north_2\n"
        "    address: meter.example\n"
        "    units: [10-12, 20, 0xFF]\n"
        "    tls:\n"
        "      certificate: pki/gateway.crt\n"
        "      key: /etc/mbsec/gateway.key\n"
        "      ca: pki/devices-ca.crt\n"
        "      server_name: meter.example\n"
        "  - name: v6\n"
        "    address: \"[2001:db8::7]\"\n"
        "    units: 30\n"
        "    tls: { certificate: a.crt, key: a.key, pin: "
        "\"SHA256:00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\" }\n",
        &config);
    CHECK_EQ(config.backend_count, 3);
    const struct config_backend *plc = &config.backends[0];
    CHECK_STR(plc->name, "plc1");
    CHECK_STR(plc->address, "10.20.5.10:5020");
    CHECK_EQ(plc->connections, 2);
    CHECK_EQ(plc->timeout_ms, 250);
    CHECK_EQ(plc->in_flight, 1);
    CHECK_EQ(plc->queue, 32);
    CHECK(plc->tls_certificate == NULL);
    CHECK_EQ(plc->line, 2);
    CHECK_EQ(plc->column, 5);
    /* Left out: the defaults. A host alone gets port 502; relative paths are the file's. */
    const struct config_backend *meter = &config.backends[1];
    CHECK_STR(meter->name, "meter.north_2");
    CHECK_STR(meter->address, "meter.example:502");
    CHECK_EQ(meter->connections, 1);
    CHECK_EQ(meter->timeout_ms, 1000);
    CHECK_EQ(meter->in_flight, 16);
    CHECK_EQ(meter->queue, 256);
    snprintf(want, sizeof want, "%s/pki/gateway.crt", directory);
    CHECK_STR(meter->tls_certificate, want);
    CHECK_STR(meter->tls_key, "/etc/mbsec/gateway.key");
    snprintf(want, sizeof want, "%s/pki/devices-ca.crt", directory);
    CHECK_STR(meter->tls_ca, want);
    CHECK(meter->tls_pin == NULL);
    CHECK_STR(meter->tls_server_name, "meter.example");
    CHECK_EQ(meter->line, 9);
    const struct config_backend *v6 = &config.backends[2];
    CHECK_STR(v6->address, "[2001:db8::7]:502");
    CHECK_STR(v6->tls_pin, pin_text);
    CHECK(v6->tls_ca == NULL);
    CHECK(v6->tls_server_name == NULL);

    /* Routes in the order given: front unit, device unit, backend. */
    CHECK_EQ(config.route_count, 10);
    static const uint8_t routes[][3] = {{1, 1, 0},     {2, 1, 0},   {16, 255, 0}, {0, 0, 0},
                                        {10, 10, 1},   {11, 11, 1}, {12, 12, 1},  {20, 20, 1},
                                        {255, 255, 1}, {30, 30, 2}};
    for (size_t i = 0; i < 10 && i < config.route_count; i++) {
        CHECK_EQ(config.routes[i].front_unit, routes[i][0]);
        CHECK_EQ(config.routes[i].device_unit, routes[i][1]);
        CHECK_EQ(config.routes[i].backend, routes[i][2]);
    }
    config_gateway_free(&config);

    /* RTU buses: a serial line with every key, and RTU over TCP with the defaults. */
    LOAD_GATEWAY_OK("backends:\n"
                    "  - name: line1\n"
                    "    serial: /dev/serial/by-id/usb-FTDI-if00-port0\n"
                    "    baud: 9600\n"
                    "    parity: odd\n"
                    "    data_bits: 7\n"
                    "    stop_bits: 2\n"
                    "    rs485: kernel\n"
                    "    echo: true\n"
                    "    timeout: 2s\n"
                    "    answer_timeout: 300ms\n"
                    "    pause: 5ms\n"
                    "    open_pause: 1s\n"
                    "    retries: 2\n"
                    "    unit_failures: 4\n"
                    "    unit_backoff: 1m\n"
                    "    queue: 8\n"
                    "    units: { 0: 0, 1: 1, 5: 247 }\n"
                    "  - name: rts-line\n"
                    "    serial: /dev/ttyS3\n"
                    "    rs485: rts\n"
                    "    units: [40]\n"
                    "  - name: converter\n"
                    "    address: 192.0.2.9:4001\n"
                    "    framing: rtu\n"
                    "    timeout: 200ms\n"
                    "    units: [9]\n",
                    &config);
    CHECK_EQ(config.backend_count, 3);
    const struct config_backend *line1 = &config.backends[0];
    CHECK_EQ(line1->link, MB_GATEWAY_LINK_SERIAL);
    CHECK_STR(line1->serial, "/dev/serial/by-id/usb-FTDI-if00-port0");
    CHECK(line1->address == NULL);
    CHECK_EQ(line1->serial_line.baud, 9600);
    CHECK_EQ(line1->serial_line.parity, 'O');
    CHECK_EQ(line1->serial_line.data_bits, 7);
    CHECK_EQ(line1->serial_line.stop_bits, 2);
    CHECK_EQ(line1->serial_line.rs485, MB_RS485_KERNEL);
    CHECK_EQ(line1->echo, 1);
    CHECK_EQ(line1->timeout_ms, 2000);
    CHECK_EQ(line1->answer_timeout_ms, 300);
    CHECK_EQ(line1->pause_ms, 5);
    CHECK_EQ(line1->open_pause_ms, 1000);
    CHECK_EQ(line1->retries, 2);
    CHECK_EQ(line1->unit_failures, 4);
    CHECK_EQ(line1->unit_backoff_ms, 60000);
    CHECK_EQ(line1->connections, 1);
    CHECK_EQ(line1->in_flight, 1);
    CHECK_EQ(line1->queue, 8);
    CHECK_EQ(config.backends[1].serial_line.rs485, MB_RS485_RTS);
    const struct config_backend *converter = &config.backends[2];
    CHECK_EQ(converter->link, MB_GATEWAY_LINK_RTU_OVER_TCP);
    CHECK_STR(converter->address, "192.0.2.9:4001");
    CHECK_EQ(converter->answer_timeout_ms, 200); /* the timeout, shorter than 500 ms */
    CHECK_EQ(converter->in_flight, 1);
    config_gateway_free(&config);

    /* "backends:" with nothing after it is the section left out. */
    LOAD_GATEWAY_OK("backends:\n", &config);
    CHECK_EQ(config.backend_count, 0);
    config_gateway_free(&config);
}

TEST(a_backends_list_replaces_the_one_loaded_before) {
    struct gateway_config config;
    char error[512];
    LOAD_GATEWAY_OK(gateway_base_text, &config);
    CHECK_EQ(load_gateway_text("backends:\n  - { name: other, address: 192.0.2.9, units: [7] }\n",
                               &config, error, sizeof error),
             0);
    CHECK_EQ(config.backend_count, 1);
    CHECK_STR(config.backends[0].name, "other");
    CHECK(config.backends[0].tls_pin == NULL);
    CHECK_EQ(config.route_count, 1);
    CHECK_EQ(config.routes[0].front_unit, 7);
    /* Keys left out of the second file keep what the first gave; so does an empty section. */
    CHECK_STR(config.front.listen[0], "127.0.0.1:5020");
    CHECK_STR(mb_policy_rule_name(config.front.policy, 0), "base-readers");
    CHECK_EQ(load_gateway_text("backends:\n", &config, error, sizeof error), 0);
    CHECK_EQ(config.backend_count, 1);
    CHECK_STR(config.backends[0].name, "other");
    config_gateway_free(&config);
}

/* What a policy of `config` decides for an FC 6 write of register 10 on `unit` from plain TCP. */
static enum mb_policy_action plain_write_on(const struct front_config *config, uint8_t unit) {
    static const uint8_t write[] = {0x06, 0x00, 0x0A, 0x00, 0x01};
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(0xC0000207); /* 192.0.2.7 */
    struct mb_policy_identity who = {.address = (const struct sockaddr *)&address,
                                     .address_length = sizeof address};
    struct mb_policy_decision decision;
    mb_policy_decide(config->policy, &who, unit, write, sizeof write, &decision);
    return decision.action;
}

/* Finding 6 of the review: front units 1 and 2 reach the same device, so a guard on unit 1
 * must hold on unit 2 too. */
static const char aliased[] =
    "backends:\n"
    "  - { name: plc1, address: 192.0.2.10, units: { 1: 1, 2: 1, 3: 3 } }\n"
    "  - { name: plc2, address: 192.0.2.11, units: { 9: 1 } }\n"
    "policy:\n"
    "  - name: guard\n"
    "    sources: [0.0.0.0/0]\n"
    "    units: [1]\n"
    "    access: write\n"
    "    action: deny\n"
    "  - name: rest\n"
    "    sources: [0.0.0.0/0]\n"
    "    action: allow\n";

TEST(a_rule_on_a_front_unit_covers_every_front_unit_of_its_device_by_default) {
    struct gateway_config config;
    if (LOAD_GATEWAY_OK(aliased, &config) != 0)
        return;
    CHECK_EQ(config.policy_front_units, 0);
    CHECK_EQ(plain_write_on(&config.front, 1), MB_POLICY_DENY);
    CHECK_EQ(plain_write_on(&config.front, 2), MB_POLICY_DENY);
    CHECK_EQ(plain_write_on(&config.front, 3), MB_POLICY_ALLOW);
    CHECK_EQ(plain_write_on(&config.front, 9), MB_POLICY_ALLOW);
    CHECK(config.policy_notes != NULL);
    CHECK_STR(config.policy_notes,
              "policy[0] (guard): also covers front unit 2 (as 1: backend plc1 "
              "unit 1), routed to the same device (policy_units: device)\n");
    config_gateway_free(&config);
}

TEST(policy_units_front_takes_unit_ids_literally_and_says_what_is_left_open) {
    struct gateway_config config;
    char text[1024];
    snprintf(text, sizeof text, "policy_units: front\n%s", aliased);
    if (LOAD_GATEWAY_OK(text, &config) != 0)
        return;
    CHECK_EQ(config.policy_front_units, 1);
    CHECK_EQ(plain_write_on(&config.front, 1), MB_POLICY_DENY);
    CHECK_EQ(plain_write_on(&config.front, 2), MB_POLICY_ALLOW);
    CHECK_STR(config.policy_notes,
              "policy[0] (guard): does not name front unit 2 (as 1: backend plc1 unit 1), which "
              "reaches the same device: requests through it get around this rule (policy_units: "
              "front)\n");
    config_gateway_free(&config);
}

TEST(a_rule_may_name_devices_a_backend_or_one_of_its_units) {
    struct gateway_config config;
    const char *text = "backends:\n"
                       "  - { name: plc1, address: 192.0.2.10, units: { 1: 1, 2: 1, 3: 3 } }\n"
                       "  - { name: plc2, address: 192.0.2.11, units: { 9: 1 } }\n"
                       "policy:\n"
                       "  - { name: g1, sources: [0.0.0.0/0], devices: plc1:1, access: write, "
                       "action: deny }\n"
                       "  - { name: g2, sources: [0.0.0.0/0], devices: [plc2], access: write, "
                       "action: drop }\n"
                       "  - { name: rest, sources: [0.0.0.0/0], action: allow }\n";
    if (LOAD_GATEWAY_OK(text, &config) != 0)
        return;
    CHECK_EQ(plain_write_on(&config.front, 1), MB_POLICY_DENY);
    CHECK_EQ(plain_write_on(&config.front, 2), MB_POLICY_DENY);
    CHECK_EQ(plain_write_on(&config.front, 3), MB_POLICY_ALLOW);
    CHECK_EQ(plain_write_on(&config.front, 9), MB_POLICY_DROP);
    CHECK(config.policy_notes == NULL);
    config_gateway_free(&config);
    CHECK_GATEWAY_ERROR("policy:\n  - { name: g, sources: [0.0.0.0/0], devices: [nope], action: "
                        "deny }\n",
                        "2:48: policy[0].devices[0]: nope is not the name of a backend");
    CHECK_GATEWAY_ERROR("policy:\n  - { name: g, sources: [0.0.0.0/0], devices: base-plc:7, "
                        "action: deny }\n",
                        "2:47: policy[0].devices: no front unit is routed to base-plc:7 (see "
                        "backends[0].units)");
    CHECK_GATEWAY_ERROR("policy:\n  - { name: g, sources: [0.0.0.0/0], devices: base-plc:300, "
                        "action: deny }\n",
                        "2:47: policy[0].devices: base-plc:300: the device unit after ':' is "
                        "0..255");
    CHECK_GATEWAY_ERROR("policy:\n  - { name: g, sources: [0.0.0.0/0], units: 1, devices: "
                        "base-plc, action: deny }\n",
                        "2:57: policy[0].devices: give units (front unit ids) or devices "
                        "(backends), not both");
    CHECK_ERROR("policy:\n  - { name: g, sources: [0.0.0.0/0], devices: plc, action: deny }\n",
                "2:47: policy[0].devices: devices name the backends of mbsec gateway; mbsec "
                "serve has none (use units)");
    CHECK_GATEWAY_ERROR("policy_units: both\n",
                        "1:15: policy_units: expected one of device, front, got \"both\"");
}

TEST(backends_errors) {
    /* The list and its items */
    CHECK_GATEWAY_ERROR("backends: { name: plc }\n", "1:11: backends: expected a list, got a "
                                                     "mapping");
    CHECK_GATEWAY_ERROR("backends: []\n", "1:11: backends: the list needs at least 1 item");
    CHECK_GATEWAY_ERROR("backends: [plc1]\n",
                        "1:12: backends[0]: expected a backend: a mapping with name, address "
                        "and units");
    CHECK_GATEWAY_ERROR("backends:\n  - name: plc1\n    adress: 192.0.2.1\n    units: [1]\n",
                        "3:5: unknown key \"adress\" in backends[0] (did you mean address?); "
                        "valid keys: name, address, connections, timeout, in_flight, queue, "
                        "share, units, tls, serial, framing, baud, parity, data_bits, "
                        "stop_bits, rs485, echo, answer_timeout, pause, open_pause, retries, "
                        "unit_failures, unit_backoff");
    CHECK_GATEWAY_ERROR(
        "backends:\n  - { name: plc1, address: 192.0.2.1, units: [1], in_flight: 1, "
        "queue: 3, share: 5 }\n",
        "2:5: backends[0]: share 5 is more than the 4 requests the backend holds "
        "(connections x (in_flight + queue)): one client could take it all");
    CHECK_GATEWAY_ERROR("backends:\n  - address: 192.0.2.1\n    units: [1]\n",
                        "2:5: backends[0]: name is missing (logs and --check use it)");
    CHECK_GATEWAY_ERROR("backends:\n  - name: plc1\n    units: [1]\n",
                        "2:5: backends[0]: address is missing: where the device listens, such "
                        "as 192.0.2.10:502 (or serial: /dev/ttyUSB0 for a serial line)");
    /* RTU buses: what belongs to which kind, and what a bus cannot take. */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: b, serial: ttyUSB0, units: [1] }\n",
                        "2:24: backends[0].serial: expected the path of a serial line, such as "
                        "/dev/ttyUSB0 or /dev/serial/by-id/...");
    CHECK_GATEWAY_ERROR(
        "backends:\n  - { name: b, address: 192.0.2.1, parity: even, units: [1] }\n",
        "2:44: backends[0].parity: only a serial line has it, and b is a "
        "Modbus/TCP device (serial: PATH makes one)");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: b, address: 192.0.2.1, framing: rtu, baud: 9600, "
                        "units: [1] }\n",
                        "2:56: backends[0].baud: only a serial line has it, and b is RTU over "
                        "TCP (serial: PATH makes one)");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: b, address: 192.0.2.1, retries: 1, units: [1] }\n",
                        "2:45: backends[0].retries: only an RTU bus has it (serial: PATH, or "
                        "framing: rtu for RTU over TCP), and b is a Modbus/TCP device");
    CHECK_GATEWAY_ERROR(
        "backends:\n  - { name: b, serial: /dev/ttyS0, in_flight: 4, units: [1] }\n",
        "2:47: backends[0].in_flight: b is a serial line: one transaction at a "
        "time on one line, so it is always 1");
    CHECK_GATEWAY_ERROR(
        "backends:\n  - { name: b, serial: /dev/ttyS0, parity: mark, units: [1] }\n",
        "2:44: backends[0].parity: expected one of none, even, odd, got \"mark\"");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: b, serial: /dev/ttyS0, rs485: half, units: [1] }\n",
                        "2:43: backends[0].rs485: expected one of none, kernel, rts, got \"half\"");
    CHECK_GATEWAY_ERROR(
        "backends:\n  - { name: b, serial: /dev/ttyS0, data_bits: 5, units: [1] }\n",
        "2:47: backends[0].data_bits: 5 is out of range; expected 7 or 8");
    CHECK_GATEWAY_ERROR("backends:\n  - name: plc1\n    address: 192.0.2.1\n",
                        "2:5: backends[0]: units is missing: the front unit ids this device "
                        "answers, as { 1: 1, 2: 5 } or [1, 2]");
    /* Names */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc 1, address: a, units: 1 }\n",
                        "2:13: backends[0].name: \"plc 1\" is not a backend name: use letters, "
                        "digits, '-', '_' and '.'");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: \"\", address: a, units: 1 }\n",
                        "2:13: backends[0].name: the name is empty");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - { name: plc, address: a, units: 1 }\n"
                        "  - { name: plc, address: b, units: 2 }\n",
                        "3:13: backends[1].name: plc is already the name of backends[0] on "
                        "line 2");
    /* Addresses */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc, address: \"::1\", units: 1 }\n",
                        "2:27: backends[0].address: ::1 is not a device's address: an IPv6 host "
                        "goes in brackets: [::1]:502");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc, address: \"192.0.2.1:99999\", units: 1 }\n",
                        "2:27: backends[0].address: 192.0.2.1:99999 is not a device's address: "
                        "the port must be a number 0..65535");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc, address: \":502\", units: 1 }\n",
                        "2:27: backends[0].address: the host is missing: the device's address, "
                        "such as 192.0.2.10:502 or plc1.example");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc, address: \"192.0.2.1:0\", units: 1 }\n",
                        "2:27: backends[0].address: 192.0.2.1:0: port 0 is not a device's port");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: plc, address: [192.0.2.1], units: 1 }\n",
                        "2:27: backends[0].address: expected a string, got a list");
    /* Numbers */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: 1, connections: 65 }\n",
                        "2:51: backends[0].connections: 65 is out of range; expected an integer "
                        "in 1..64");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: 1, in_flight: 0 }\n",
                        "2:49: backends[0].in_flight: 0 is out of range; expected an integer in "
                        "1..4096");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: 1, queue: 60001 }\n",
                        "2:45: backends[0].queue: 60001 is out of range; expected an integer in "
                        "1..60000");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: 1, timeout: 0 }\n",
                        "2:47: backends[0].timeout: the duration must be at least 1ms, got "
                        "\"0\"");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - { name: p, address: a, units: 1, connections: 64, in_flight: 4096,\n"
                        "      queue: 60000 }\n",
                        "2:5: backends[0]: the backends up to here hold 4102144 requests at "
                        "once (connections x (in_flight + queue)), more than the 1000000 a "
                        "gateway allows; lower connections, in_flight or queue");
    /* Units and routes */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: }\n",
                        "2:35: backends[0].units: no value; give the front unit ids this device "
                        "answers, as { 1: 1, 2: 5 } or [1, 2]");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [] }\n",
                        "2:35: backends[0].units: the list needs at least 1 item");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: { one: 1 } }\n",
                        "2:37: backends[0].units: expected a front unit id 0..255, got \"one\"");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: { 1: 256 } }\n",
                        "2:40: backends[0].units.1: 256 is out of range; expected a device unit "
                        "id 0..255");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: { 300: 1 } }\n",
                        "2:37: backends[0].units: 300 is out of range; expected a front unit id "
                        "0..255");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [1, 19-10] }\n",
                        "2:39: backends[0].units[1]: 19-10 ends before it starts");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [1, 250-256] }\n",
                        "2:39: backends[0].units[1]: 250-256 is out of range; expected a unit "
                        "id 0..255 or a range such as 10-19");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [\"1\"] }\n",
                        "2:36: backends[0].units[0]: expected a unit id 0..255 or a range such "
                        "as 10-19, got the quoted string \"1\"");
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [1-x] }\n",
                        "2:36: backends[0].units[0]: expected a unit id 0..255 or a range such "
                        "as 10-19, got \"1-x\"");
    /* A front unit is routed once: within a backend, and across backends. */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: [1-5, 5] }\n",
                        "2:41: backends[0].units[1]: front unit 5 is already routed on line 2");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: plc1\n"
                        "    address: 192.0.2.1\n"
                        "    units: { 1: 1, 2: 1 }\n"
                        "  - name: plc2\n"
                        "    address: 192.0.2.2\n"
                        "    units: { 3: 1, 2: 2 }\n",
                        "7:20: backends[1].units: front unit 2 is already routed to backend plc1 "
                        "on line 4");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - { name: plc1, address: 192.0.2.1, units: [0-255] }\n"
                        "  - { name: plc2, address: 192.0.2.2, units: [200] }\n",
                        "3:47: backends[1].units[0]: front unit 200 is already routed to backend "
                        "plc1 on line 2");
    /* TLS to a device */
    CHECK_GATEWAY_ERROR("backends:\n  - { name: p, address: a, units: 1, tls: { ca: ca.crt } }\n",
                        "2:43: backends[0].tls: a Modbus/TCP Security device authenticates the "
                        "gateway by its certificate: certificate and key are both needed (make "
                        "them with mbsec cert client)");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: p\n"
                        "    address: a\n"
                        "    units: 1\n"
                        "    tls: { certificate: gw.crt, key: gw.key }\n",
                        "5:10: backends[0].tls: nothing to trust the device's certificate by: "
                        "give ca (the CA that signed it) or pin (its fingerprint)");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: p\n"
                        "    address: a\n"
                        "    units: 1\n"
                        "    tls: { certificate: gw.crt, key: gw.key, pin: SHA256:1234 }\n",
                        "5:51: backends[0].tls.pin: expected SHA256: and 64 hex digits (mbsec "
                        "cert show prints a certificate's pin), got \"SHA256:1234\"");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: p\n"
                        "    address: a\n"
                        "    units: 1\n"
                        "    tls: { certificate: gw.crt, key: gw.key, ca: c, crl: d }\n",
                        "5:53: unknown key \"crl\" in backends[0].tls; valid keys: certificate, "
                        "key, ca, pin, server_name");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: p\n"
                        "    address: a\n"
                        "    units: 1\n"
                        "    tls: { certificate: \"\", key: gw.key, ca: c }\n",
                        "5:25: backends[0].tls.certificate: the value is empty");
    CHECK_GATEWAY_ERROR("backends:\n"
                        "  - name: p\n"
                        "    address: a\n"
                        "    units: 1\n"
                        "    tls: { certificate: a, key: b, ca: c, server_name: a b }\n",
                        "5:56: backends[0].tls.server_name: expected the DNS name or IP address "
                        "the device's certificate carries");
}

TEST(each_program_refuses_the_keys_of_the_other) {
    CHECK_ERROR("workers: 1\nbackends:\n  - { name: p, address: a, units: 1 }\n",
                "2:1: backends is a key of mbsec gateway: mbsec serve answers from its own data "
                "model (units) and forwards nothing");
    CHECK_GATEWAY_ERROR("units:\n  - { id: 1, coils: 0-9 }\n",
                        "1:1: units is a key of mbsec serve: the gateway has no data model; the "
                        "devices behind it (backends) answer");
    CHECK_GATEWAY_ERROR("persist: { path: a }\n",
                        "1:1: persist is a key of mbsec serve: the gateway has no data model; "
                        "the devices behind it (backends) answer");
    CHECK_GATEWAY_ERROR("log: { level: debug }\nidentity: { vendor_name: a }\n",
                        "2:1: identity is a key of mbsec serve: the gateway has no data model; "
                        "the devices behind it (backends) answer");
    CHECK_GATEWAY_ERROR("workers: 2\n", "1:10: workers: the gateway runs one event loop for now; "
                                        "1 is the only value (the backends' connections are "
                                        "shared by every client through it)");
    CHECK(config_gateway_workers_refused(1) == NULL);
    CHECK(config_gateway_workers_refused(0) != NULL);
    CHECK_GATEWAY_ERROR("backend: []\n",
                        "1:1: unknown key \"backend\" (did you mean backends?); valid keys: "
                        "listen, workers, user, log, limits, tls, authorize_plain, policy, "
                        "backends, audit, alerts, metrics, policy_units, mqtt, policy_mode");
    struct gateway_config config;
    LOAD_GATEWAY_OK("workers: 1\nuser: nobody\nlog: { format: json }\nlimits: { in_flight: 4 }\n",
                    &config);
    CHECK_EQ(config.front.workers, 1);
    CHECK_EQ(config.front.limits.max_in_flight, 4);
    config_gateway_free(&config);
}

TEST(the_gateway_takes_audit_metrics_alerts_and_a_rate_limit) {
    struct gateway_config config;
    if (LOAD_GATEWAY_OK("audit:\n"
                        "  file: log/audit.jsonl\n"
                        "  syslog: udp:127.0.0.1:514\n"
                        "  reads: true\n"
                        "metrics: { listen: \"[::1]:9502\" }\n"
                        "limits: { rate: 50, burst: 100, over_rate: close, in_flight: 8 }\n"
                        "alerts: { window: 30s, scan_units: 4, denials: 3, malformed: 2, "
                        "flood: 7 }\n",
                        &config) != 0)
        return;
    char want[400];
    snprintf(want, sizeof want, "%s/log/audit.jsonl", directory);
    CHECK_STR(config.guard.audit_file, want);
    CHECK_STR(config.guard.audit_syslog, "udp:127.0.0.1:514");
    CHECK_EQ(config.guard.audit_reads, 1);
    CHECK_STR(config.guard.metrics_listen, "[::1]:9502");
    CHECK_EQ(config.guard.rate, 50);
    CHECK_EQ(config.guard.burst, 100);
    CHECK_EQ(config.guard.over_rate, OVER_RATE_CLOSE);
    CHECK_EQ(config.front.limits.max_in_flight, 8);
    CHECK_EQ(config.guard.alert_window_ms, 30000);
    CHECK_EQ(config.guard.alert_scan_units, 4);
    CHECK_EQ(config.guard.alert_denials, 3);
    CHECK_EQ(config.guard.alert_malformed, 2);
    CHECK_EQ(config.guard.alert_rate_limited, 7);
    /* A copy owns its own strings. */
    struct gateway_config copy;
    CHECK_EQ(config_gateway_copy(&copy, &config), 0);
    CHECK(copy.guard.audit_file != config.guard.audit_file);
    CHECK_STR(copy.guard.audit_file, want);
    config_gateway_free(&config);
    CHECK_STR(copy.guard.metrics_listen, "[::1]:9502");
    config_gateway_free(&copy);
    /* The defaults: nothing written anywhere, no limit, the documented thresholds. */
    config_gateway_defaults(&config);
    CHECK(config.guard.audit_file == NULL && config.guard.metrics_listen == NULL);
    CHECK_EQ(config.guard.rate, 0);
    CHECK_EQ(config.guard.over_rate, OVER_RATE_BUSY);
    CHECK_EQ(config.guard.alert_window_ms, 10000);
    CHECK_EQ(config.guard.alert_scan_units, 8);
}

TEST(syslog_over_tls_with_a_spool_is_read_and_copied) {
    struct gateway_config config, copy;
    if (LOAD_GATEWAY_OK("audit:\n  syslog: tls:[::1]:6514\n  syslog_tls: { certificate: "
                        "gw.crt, key: gw.key, ca: ca.crt, server_name: siem.plant }\n"
                        "  spool: spool\n  spool_size: 2GiB\n",
                        &config) != 0)
        return;
    CHECK_STR(config.guard.audit_syslog, "tls:[::1]:6514");
    CHECK(strstr(config.guard.audit_syslog_tls.certificate, "/gw.crt") != NULL);
    CHECK(strstr(config.guard.audit_syslog_tls.ca, "/ca.crt") != NULL);
    CHECK_STR(config.guard.audit_syslog_tls.server_name, "siem.plant");
    CHECK(config.guard.audit_syslog_tls.pin == NULL);
    CHECK(strstr(config.guard.audit_spool, "/spool") != NULL);
    CHECK_EQ(config.guard.audit_spool_bytes, 2ull << 30);
    CHECK_EQ(config_gateway_copy(&copy, &config), 0);
    CHECK(copy.guard.audit_syslog_tls.key != config.guard.audit_syslog_tls.key);
    CHECK_STR(copy.guard.audit_syslog_tls.key, config.guard.audit_syslog_tls.key);
    CHECK_STR(copy.guard.audit_spool, config.guard.audit_spool);
    config_gateway_free(&copy);
    config_gateway_free(&config);
    if (LOAD_GATEWAY_OK("audit: { syslog: tcp:127.0.0.1:514, spool: /var/lib/x, spool_size: "
                        "65536 }\n",
                        &config) != 0)
        return;
    CHECK_EQ(config.guard.audit_spool_bytes, 65536);
    CHECK_STR(config.guard.audit_spool, "/var/lib/x");
    config_gateway_free(&config);
}

TEST(mqtt_is_read_with_its_defaults_and_copied) {
    struct gateway_config config, copy;
    if (LOAD_GATEWAY_OK("audit: { spool: spool }\nmqtt:\n  broker: tls:broker.plant:8883\n"
                        "  tls: { ca: ca.crt, certificate: gw.crt, key: gw.key }\n"
                        "  name: line-3.gw\n  protocol: 5\n  keepalive: 10s\n"
                        "  metrics_interval: 0\n  username: gw\n  password_file: secret\n"
                        "  audit: false\n",
                        &config) != 0)
        return;
    const struct config_mqtt *mqtt = &config.guard.mqtt;
    CHECK_STR(mqtt->broker, "tls:broker.plant:8883");
    CHECK(strstr(mqtt->tls.ca, "/ca.crt") != NULL);
    CHECK_STR(mqtt->name, "line-3.gw");
    CHECK(mqtt->prefix == NULL && mqtt->client_id == NULL);
    CHECK_EQ(mqtt->protocol, 5);
    CHECK_EQ(mqtt->keepalive_ms, 10000);
    CHECK_EQ(mqtt->metrics_interval_ms, 0);
    CHECK_STR(mqtt->username, "gw");
    CHECK(strstr(mqtt->password_file, "/secret") != NULL);
    CHECK_EQ(mqtt->audit, 0);
    CHECK_EQ(config_gateway_copy(&copy, &config), 0);
    CHECK(copy.guard.mqtt.broker != mqtt->broker);
    CHECK_STR(copy.guard.mqtt.broker, mqtt->broker);
    CHECK_STR(copy.guard.mqtt.tls.key, mqtt->tls.key);
    CHECK_STR(copy.guard.mqtt.password_file, mqtt->password_file);
    config_gateway_free(&copy);
    config_gateway_free(&config);
    if (LOAD_GATEWAY_OK("audit: { spool: s }\nmqtt: { broker: tcp:127.0.0.1:1883, prefix: "
                        "site/a/gw }\n",
                        &config) != 0)
        return;
    CHECK_EQ(config.guard.mqtt.protocol, 4);
    CHECK_EQ(config.guard.mqtt.keepalive_ms, 30000);
    CHECK_EQ(config.guard.mqtt.metrics_interval_ms, 60000);
    CHECK_EQ(config.guard.mqtt.audit, 1);
    CHECK_STR(config.guard.mqtt.prefix, "site/a/gw");
    config_gateway_free(&config);
}

TEST(bad_mqtt_keys_are_named) {
    CHECK_GATEWAY_ERROR("mqtt: { broker: tcp:127.0.0.1:1883 }\n",
                        "1:7: mqtt: what the broker has not acknowledged waits in a spool: give "
                        "audit.spool, a directory (e.g. /var/lib/mbsec/spool)");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { name: x }\n",
                        "2:7: mqtt: broker is missing (tcp:host:port or tls:host:port)");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: mqtt://b:1883 }\n",
                        "2:17: mqtt.broker: give tcp:host:port or tls:host:port (1883 and 8883 "
                        "are the usual ports)");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tls:b:8883 }\n",
                        "2:17: mqtt.broker: tls: needs mqtt.tls (ca or pin, and the gateway's "
                        "certificate and key when the broker asks for one)");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, tls: { ca: c } }\n",
                        "2:34: mqtt.tls: only for mqtt.broker: tls:host:port");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, prefix: a/# }\n",
                        "2:37: mqtt.prefix: no wildcards (+ or #) in a topic one publishes to");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, prefix: a/ }\n",
                        "2:37: mqtt.prefix: no '/' at the start or the end (topics are "
                        "PREFIX/audit/TYPE, PREFIX/status)");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, name: \"a b\" }\n",
                        "2:35: mqtt.name: 1 to 64 letters, digits, '-', '_' or '.'");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, protocol: 4 }\n",
                        "2:39: mqtt.protocol: expected one of 3.1.1, 5, got \"4\"");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, keepalive: 1s }\n",
                        "2:40: mqtt.keepalive: from 5s to 65535s");
    CHECK_GATEWAY_ERROR("audit: { spool: s }\nmqtt: { broker: tcp:b:1883, password_file: p }\n",
                        "2:7: mqtt: password_file needs a username");
    CHECK_ERROR("mqtt: { broker: tcp:b:1883 }\n",
                "1:1: mqtt is a key of mbsec gateway; mbsec serve logs denials on stderr (log) "
                "and has no mqtt section");
}

TEST(bad_audit_metrics_alerts_and_rate_keys_are_named) {
    CHECK_GATEWAY_ERROR("audit: { syslog: relp:1.2.3.4:514 }\n",
                        "1:18: audit.syslog: give unix (the local syslog daemon, /dev/log), "
                        "unix:/path/of/socket, udp:host:port, tcp:host:port or tls:host:port");
    CHECK_GATEWAY_ERROR("audit: { syslog: tcp:1.2.3.4:514 }\n",
                        "1:18: audit.syslog: syslog over tcp and tls keeps what is not yet "
                        "delivered in a spool: give audit.spool, a directory (e.g. "
                        "/var/lib/mbsec/spool)");
    CHECK_GATEWAY_ERROR("audit: { syslog: tls:1.2.3.4:6514, spool: s }\n",
                        "1:18: audit.syslog: tls: needs audit.syslog_tls (ca or pin, and the "
                        "gateway's certificate and key when the collector asks for one)");
    CHECK_GATEWAY_ERROR("audit: { syslog: tcp:1.2.3.4:514, spool: s, syslog_tls: { ca: c } }\n",
                        "1:57: audit.syslog_tls: only for audit.syslog: tls:host:port");
    CHECK_GATEWAY_ERROR("audit: { syslog: tls:1.2.3.4:6514, spool: s, syslog_tls: { key: k, "
                        "ca: c } }\n",
                        "1:58: audit.syslog_tls: certificate and key go together");
    CHECK_GATEWAY_ERROR("audit: { syslog: tls:1.2.3.4:6514, spool: s, syslog_tls: { certificate: "
                        "c, key: k } }\n",
                        "1:58: audit.syslog_tls: nothing to trust the peer's certificate by: give "
                        "ca (the CA that signed it) or pin (its fingerprint)");
    CHECK_GATEWAY_ERROR("audit: { syslog: tls:1.2.3.4:6514, spool: s, syslog_tls: { pin: x } }\n",
                        "1:65: audit.syslog_tls.pin: expected SHA256: and 64 hex digits (mbsec "
                        "cert show prints a certificate's pin), got \"x\"");
    CHECK_GATEWAY_ERROR("audit: { spool: s, spool_size: 1KiB }\n",
                        "1:32: audit.spool_size: expected a size from 64 KiB to 1024 GiB, such as "
                        "64MiB, got \"1KiB\"");
    CHECK_GATEWAY_ERROR("audit: { spool: s, spool_size: 64 MiB }\n",
                        "1:32: audit.spool_size: expected a size from 64 KiB to 1024 GiB, such as "
                        "64MiB, got \"64 MiB\"");
    CHECK_GATEWAY_ERROR("audit: { syslog: \"udp:host\" }\n",
                        "1:18: audit.syslog: expected host:port, such as 0.0.0.0:502 or [::]:502");
    CHECK_GATEWAY_ERROR("audit: { file: \"\" }\n", "1:16: audit.file: the path is empty");
    CHECK_GATEWAY_ERROR("audit: { files: a }\n",
                        "1:10: unknown key \"files\" in audit (did you mean file?); valid keys: "
                        "file, syslog, reads, syslog_tls, spool, spool_size");
    CHECK_GATEWAY_ERROR(
        "metrics: { listen: 9502 }\n",
        "1:20: metrics.listen: expected host:port, such as 0.0.0.0:502 or [::]:502");
    CHECK_GATEWAY_ERROR("limits: { rate: -1 }\n",
                        "1:17: limits.rate: -1 is negative; expected an integer in 0..1000000");
    CHECK_GATEWAY_ERROR("limits: { over_rate: wait }\n",
                        "1:22: limits.over_rate: expected one of busy, drop, close, got \"wait\"");
    CHECK_GATEWAY_ERROR("alerts: { window: 10ms }\n", "1:19: alerts.window: at least 100ms");
    CHECK_GATEWAY_ERROR(
        "alerts: { scan_units: 1 }\n",
        "1:23: alerts.scan_units: 1 is out of range; expected an integer in 2..256");
    CHECK_ERROR("audit: { file: a }\n",
                "1:1: audit is a key of mbsec gateway; mbsec serve logs denials on stderr (log) "
                "and has no audit section");
    CHECK_ERROR("limits: { rate: 5 }\n",
                "1:11: unknown key \"rate\" in limits; valid keys: max_connections, "
                "max_per_source, idle_timeout, in_flight, shutdown_grace, source_prefix_ipv4, "
                "source_prefix_ipv6");
    CHECK_GATEWAY_ERROR("limits: { over_share: later }\n",
                        "1:23: limits.over_share: expected one of busy, drop, close, got "
                        "\"later\"");
}

TEST(the_rules_are_kept_as_written_for_check) {
    struct serve_config config;
    LOAD_OK("policy:\n"
            "  - name: operators-read\n"
            "    roles: [operator, \"any\"]\n"
            "    preset: read-only   # a comment is not kept\n"
            "    action: allow\n"
            "  - name: setpoints\n"
            "    roles: engineer\n"
            "    tables: { holding_registers: [100-110, 0x200] }\n"
            "    values: 0-500\n"
            "    action: allow\n"
            "  - { name: quiet, sources: 10.0.0.0/8, action: drop }\n",
            &config);
    CHECK_STR(config.front.policy_text,
              "roles: [operator, \"any\"], preset: read-only, action: allow\n"
              "roles: engineer, tables: { holding_registers: [100-110, "
              "0x200] }, values: 0-500, action: allow\n"
              "sources: 10.0.0.0/8, action: drop\n");
    struct serve_config copy;
    CHECK_EQ(config_serve_copy(&copy, &config), 0);
    config_serve_free(&config);
    CHECK(copy.front.policy_text != NULL &&
          strstr(copy.front.policy_text, "sources: 10.0.0.0/8") != NULL);
    config_serve_free(&copy);
    CHECK(copy.front.policy_text == NULL);
    /* policy: [] has no rules, and no lines. */
    LOAD_OK("policy: []\n", &config);
    CHECK_STR(config.front.policy_text, "");
    config_serve_free(&config);
}

TEST(a_gateway_copy_is_deep) {
    struct gateway_config original, copy;
    LOAD_GATEWAY_OK(gateway_base_text, &original);
    CHECK_EQ(config_gateway_copy(&copy, &original), 0);
    config_gateway_free(&original);
    CHECK_EQ(copy.backend_count, 1);
    CHECK_STR(copy.backends[0].name, "base-plc");
    CHECK_STR(copy.backends[0].address, "192.0.2.1:502");
    CHECK_STR(copy.backends[0].tls_pin, pin_text);
    CHECK_EQ(copy.route_count, 2);
    CHECK_EQ(copy.routes[1].front_unit, 2);
    CHECK_EQ(copy.routes[1].device_unit, 5);
    config_gateway_free(&copy);
    CHECK_EQ(copy.backend_count, 0);
    CHECK_EQ(copy.front.authorize_plain, 1);
}

/* ---- loading over a loaded configuration, copy and free ---- */

TEST(a_load_goes_over_the_configuration_it_is_given) {
    struct serve_config config;
    char error[256];
    LOAD_OK(base_text, &config);
    CHECK_EQ(load_text("workers: 3\nidentity: { vendor_name: Second }\nlisten: 0.0.0.0:1\n",
                       &config, error, sizeof error),
             0);
    CHECK_EQ(config.front.workers, 3);
    CHECK_STR(config.front.user, "nobody");
    CHECK_EQ(config.front.log_format, LOG_JSON);
    CHECK_STR(config.model.identity.vendor_name, "Second");
    CHECK_STR(config.model.identity.product_code, "BASE-1");
    CHECK_EQ(config.front.listen_count, 1);
    CHECK_STR(config.front.listen[0], "0.0.0.0:1");
    CHECK_EQ(config.model.unit_count, 1);
    CHECK_EQ(config.units[0].unit_id, 7);
    CHECK(config.units[0].fifos == &config.fifos[0]);
    CHECK(config.model.units == config.units);
    CHECK(config.model.identity.server_id == config.server_id);
    CHECK_BYTES(config.model.identity.server_id, config.model.identity.server_id_length, 'B', 'A',
                'S', 'E');
    /* A units list replaces the earlier one whole, FIFOs included. */
    CHECK_EQ(load_text("units: [ { id: any, coils: 0-1 } ]\n", &config, error, sizeof error), 0);
    CHECK_EQ(config.model.any_unit, 1);
    CHECK_EQ(config.model.unit_count, 1);
    CHECK_EQ(config.fifo_count, 0);
    CHECK_EQ(config.units[0].fifo_count, 0);
    CHECK_EQ(config.units[0].holding_registers.size, 0);
    config_serve_free(&config);
}

TEST(reloading_many_times_neither_leaks_nor_runs_out_of_string_slots) {
    struct serve_config config;
    char error[256];
    LOAD_OK(base_text, &config);
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(load_text("identity:\n  vendor_name: a\n  product_code: b\n  revision: c\n"
                           "  vendor_url: d\n  product_name: e\n  model_name: f\n"
                           "  application_name: g\npersist: { path: /h }\nuser: u\n"
                           "listen: [a:1, b:2]\n",
                           &config, error, sizeof error),
                 0);
        CHECK_EQ(
            load_text("workers: 99\nidentity: { vendor_name: x }\n", &config, error, sizeof error),
            MB_ECONFIG);
    }
    CHECK_EQ(config.string_count, 8);
    CHECK_STR(config.model.identity.application_name, "g");
    CHECK_STR(config.model.persist_path, "/h");
    config_serve_free(&config);
}

TEST(copy_is_deep_and_points_into_itself) {
    struct serve_config original, copy;
    LOAD_OK(base_text, &original);
    CHECK_EQ(config_serve_copy(&copy, &original), 0);
    config_serve_free(&original);
    /* The original is gone: everything below must live in the copy. */
    CHECK_EQ(copy.front.listen_count, 2);
    CHECK_STR(copy.front.listen[0], "127.0.0.1:5020");
    CHECK_STR(copy.front.user, "nobody");
    CHECK_STR(copy.model.identity.vendor_name, "Base Vendor");
    CHECK_STR(copy.model.identity.product_code, "BASE-1");
    CHECK_STR(copy.model.persist_path, "/var/lib/mbsec/base.state");
    int owned = 0;
    for (size_t k = 0; k < copy.string_count; k++)
        owned += copy.model.identity.vendor_name == copy.strings[k];
    CHECK_EQ(owned, 1);
    CHECK(copy.model.identity.server_id == copy.server_id);
    CHECK(copy.model.units == copy.units);
    CHECK(copy.units[0].fifos == &copy.fifos[0]);
    CHECK_EQ(copy.units[0].fifos[0].address, 10);
    CHECK_EQ(copy.units[0].fifos[0].capacity, 5);
    CHECK_EQ(copy.front.tls_listen_count, 1);
    CHECK_STR(copy.front.tls_listen[0], "127.0.0.1:8802");
    CHECK_STR(copy.front.tls_certificate, "/etc/mbsec/base.crt");
    CHECK_STR(copy.front.tls_key, "/etc/mbsec/base.key");
    CHECK_STR(copy.front.tls_ca, "/etc/mbsec/ca.crt");
    CHECK_STR(copy.front.tls_crl, "/etc/mbsec/ca.crl");
    CHECK_EQ(copy.front.tls_session_tickets, 1);
    CHECK_EQ(copy.front.tls_handshake_timeout_ms, 3000);
    CHECK_EQ(copy.front.authorize_plain, 1);
    CHECK(copy.front.policy != NULL);
    CHECK_STR(mb_policy_rule_name(copy.front.policy, 0), "base-readers");

    /* A copy of the defaults, and a copy of a copy. */
    struct serve_config defaults, second;
    config_serve_defaults(&defaults);
    CHECK_EQ(config_serve_copy(&second, &defaults), 0);
    CHECK(second.model.units == second.units);
    config_serve_free(&second);
    CHECK_EQ(config_serve_copy(&second, &copy), 0);
    CHECK(second.model.units == second.units);
    CHECK(second.units[0].fifos == &second.fifos[0]);
    CHECK(second.model.identity.vendor_name != copy.model.identity.vendor_name);
    CHECK_STR(second.model.identity.vendor_name, "Base Vendor");
    CHECK(second.front.policy != copy.front.policy);
    CHECK(second.front.tls_ca != copy.front.tls_ca);
    CHECK_STR(second.front.tls_ca, "/etc/mbsec/ca.crt");
    CHECK_STR(mb_policy_rule_name(second.front.policy, 0), "base-readers");
    config_serve_free(&second);

    /* Free resets to the defaults. */
    config_serve_free(&copy);
    CHECK_EQ(copy.front.listen_count, 0);
    CHECK(copy.front.user == NULL);
    CHECK_EQ(copy.string_count, 0);
    CHECK(copy.model.identity.vendor_name == NULL);
    CHECK(copy.model.persist_path == NULL);
    CHECK(copy.front.policy == NULL);
    CHECK_EQ(copy.front.tls_listen_count, 0);
    CHECK(copy.front.tls_ca == NULL);
    CHECK_EQ(copy.model.any_unit, 1);
    CHECK(copy.model.units == copy.units);
    CHECK_EQ(copy.units[0].coils.size, 65536);
    config_serve_free(&copy);
}

/* ---- the examples and the documentation ---- */

/* A file or block with a top-level backends key is a gateway's. */
/* A file or block with a top-level key only the gateway has (backends, audit, alerts,
 * metrics) is a gateway's. */
static int is_gateway_text(const char *text) {
    static const char *const keys[] = {"backends:", "audit:", "alerts:", "metrics:"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char line[16];
        snprintf(line, sizeof line, "\n%s", keys[i]);
        if (strncmp(text, keys[i], strlen(keys[i])) == 0 || strstr(text, line) != NULL)
            return 1;
    }
    return 0;
}

static int is_gateway_file(const char *path) {
    static char text[1 << 16];
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return 0;
    size_t size = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[size] = '\0';
    return is_gateway_text(text);
}

/* Loads `path` over the defaults of the program it is for; a file of serve's must give a model
 * mb_model_create() accepts (`name` says which in a failure). Returns the load's status. */
static int load_as_its_program(const char *path, int gateway, const char *name, char *error,
                               size_t capacity) {
    if (gateway) {
        struct gateway_config config;
        config_gateway_defaults(&config);
        int status = config_gateway_load(path, &config, error, capacity);
        config_gateway_free(&config);
        return status;
    }
    struct serve_config config;
    config_serve_defaults(&config);
    int status = config_serve_load(path, &config, error, capacity);
    if (status == 0)
        check_model_accepts(name, &config);
    config_serve_free(&config);
    return status;
}

TEST(every_example_file_loads) {
    char path[1024], examples[512], error[512];
    int loaded = 0;
    source_path(examples, sizeof examples, "examples");
    DIR *folder = opendir(examples);
    CHECK(folder != NULL);
    if (folder == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length < 6 || strcmp(entry->d_name + length - 5, ".yaml") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", examples, entry->d_name);
        int status = load_as_its_program(path, is_gateway_file(path), path, error, sizeof error);
        CHECK_EQ(status, 0);
        if (status != 0)
            fprintf(stderr, "  %s\n", error);
        loaded++;
    }
    closedir(folder);
    CHECK(loaded >= 3);

    /* The simulator example is what it says it is. */
    struct serve_config config;
    snprintf(path, sizeof path, "%s/simulator.yaml", examples);
    config_serve_defaults(&config);
    CHECK_EQ(config_serve_load(path, &config, error, sizeof error), 0);
    CHECK_EQ(config.model.any_unit, 0);
    CHECK_EQ(config.model.unit_count, 3);
    CHECK_EQ(config.fifo_count, 2);
    CHECK_EQ(config.units[0].files, 4);
    CHECK(config.model.persist_path != NULL);
    CHECK_STR(config.model.identity.vendor_name, "Example Automation");
    config_serve_free(&config);
}

TEST(the_policy_example_does_what_its_comments_say) {
    char path[600], examples[512], error[512], want[700];
    const char *rule = NULL;
    const char *site = "2001:db8::7";
    struct serve_config config;
    source_path(examples, sizeof examples, "examples");
    snprintf(path, sizeof path, "%s/policy.yaml", examples);
    config_serve_defaults(&config);
    CHECK_EQ(config_serve_load(path, &config, error, sizeof error), 0);
    struct mb_policy *policy = config.front.policy;
    CHECK(policy != NULL);
    if (policy == NULL)
        return;
    CHECK_EQ(config.front.authorize_plain, 0);
    CHECK_EQ(config.front.tls_listen_count, 2);
    CHECK_STR(config.front.tls_listen[0], "0.0.0.0:802");
    CHECK_STR(config.front.tls_listen[1], "[::]:802");
    snprintf(want, sizeof want, "%s/pki/clients-ca.crt", examples);
    CHECK_STR(config.front.tls_ca, want);
    /* operator: reads, the device, and nothing else */
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x03, 0x00, 0x64, 0x00, 0x0B),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x01, 0x00, 0x00, 0x01, 0x00),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x2B, 0x0E, 0x01, 0x00), MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x08, 0x00, 0x0B, 0x00, 0x00),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x06, 0x00, 0x64, 0x00, 0x01),
             MB_POLICY_DENY);
    CHECK_STR(rule, "default");
    CHECK_EQ(ACTION(policy, "operator", 1, site, rule, 0x05, 0x00, 0x00, 0xFF, 0x00),
             MB_POLICY_DENY);
    CHECK_EQ(ACTION(policy, "Operator", 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_DENY);
    /* engineer: setpoints within 0..500 by FC 6 and 16 only */
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x64, 0x01, 0xF4),
             MB_POLICY_ALLOW);
    CHECK_STR(rule, "engineer-setpoints");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x10, 0x00, 0x6D, 0x00, 0x02, 0x04, 0x00,
                    0x00, 0x00, 0x01),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x64, 0x01, 0xF5),
             MB_POLICY_DENY);
    CHECK_STR(rule, "setpoints-guard");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x10, 0x00, 0x5F, 0x00, 0x06, 0x0C, 0x00,
                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
             MB_POLICY_DENY);
    CHECK_STR(rule, "setpoints-guard");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x16, 0x00, 0x64, 0x00, 0x00, 0x00, 0x01),
             MB_POLICY_DENY);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x65,
                    0x00, 0x01, 0x02, 0x00, 0x01),
             MB_POLICY_DENY);
    /* engineer: everything else on unit 1, but no restart and no listen-only */
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x06, 0x00, 0x0A, 0xFF, 0xFF),
             MB_POLICY_ALLOW);
    CHECK_STR(rule, "engineer");
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x0F, 0x00, 0x00, 0x00, 0x03, 0x01, 0x05),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x08, 0x00, 0x0A, 0x00, 0x00),
             MB_POLICY_ALLOW);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x08, 0x00, 0x01, 0x00, 0x00),
             MB_POLICY_DENY);
    CHECK_EQ(ACTION(policy, "engineer", 1, site, rule, 0x08, 0x00, 0x04, 0x00, 0x00),
             MB_POLICY_DENY);
    /* no role: the connection is closed; another role: denied */
    CHECK_EQ(ACTION(policy, NULL, 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_CLOSE);
    CHECK_EQ(ACTION(policy, "guest", 1, site, rule, 0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_DENY);
    config_serve_free(&config);
}

/* The action the policy takes on `pdu` for unit `unit`, from `role` over TLS or from the plain
 * client at `address` (IPv4-mapped, as a dual-stack socket sees it). */
static enum mb_policy_action gateway_action(const struct mb_policy *policy, const char *role,
                                            const char *address, uint8_t unit, const uint8_t *pdu,
                                            size_t length) {
    struct sockaddr_in6 storage;
    struct mb_policy_identity who = client(role, role != NULL, address, &storage);
    struct mb_policy_decision decision;
    if (mb_policy_decide(policy, &who, unit, pdu, length, &decision) != 0)
        return 0;
    return decision.action;
}

#define GATEWAY_ACTION(policy, role, address, unit, ...) \
    gateway_action(policy, role, address, unit, BYTES(__VA_ARGS__))

TEST(the_gateway_example_does_what_its_comments_say) {
    char path[600], examples[512], error[512], want[700];
    struct gateway_config config;
    source_path(examples, sizeof examples, "examples");
    snprintf(path, sizeof path, "%s/gateway.yaml", examples);
    config_gateway_defaults(&config);
    CHECK_EQ(config_gateway_load(path, &config, error, sizeof error), 0);
    CHECK_EQ(config.front.authorize_plain, 1);
    CHECK_EQ(config.backend_count, 3);
    CHECK_STR(config.backends[0].name, "plc1");
    CHECK_STR(config.backends[0].address, "10.20.5.10:502");
    CHECK_EQ(config.backends[0].in_flight, 1);
    CHECK_STR(config.backends[1].name, "meters");
    CHECK_EQ(config.backends[1].timeout_ms, 500);
    CHECK_STR(config.backends[2].address, "10.20.5.30:802");
    snprintf(want, sizeof want, "%s/pki/gateway-client.crt", examples);
    CHECK_STR(config.backends[2].tls_certificate, want);
    CHECK(config.backends[2].tls_pin != NULL);
    /* Front 1 and 2 are the PLC's unit 1; 11..18 the meters 1..8; 20 the drive's 20. */
    CHECK_EQ(config.route_count, 11);
    int seen = 0;
    for (size_t i = 0; i < config.route_count; i++) {
        const struct mb_gateway_route *route = &config.routes[i];
        if (route->front_unit == 2)
            seen += route->backend == 0 && route->device_unit == 1;
        if (route->front_unit == 15)
            seen += route->backend == 1 && route->device_unit == 5;
        if (route->front_unit == 20)
            seen += route->backend == 2 && route->device_unit == 20;
    }
    CHECK_EQ(seen, 3);
    const struct mb_policy *policy = config.front.policy;
    CHECK(policy != NULL);
    if (policy == NULL) {
        config_gateway_free(&config);
        return;
    }
    const char *site = "2001:db8::7", *scada = "::ffff:10.20.1.5", *other = "::ffff:10.20.1.6";
    /* operator: reads anything, writes nothing */
    CHECK_EQ(GATEWAY_ACTION(policy, "operator", site, 20, 0x04, 0x00, 0x00, 0x00, 0x02),
             MB_POLICY_ALLOW);
    CHECK_EQ(GATEWAY_ACTION(policy, "operator", site, 1, 0x06, 0x00, 0x64, 0x00, 0x01),
             MB_POLICY_DENY);
    /* engineer: setpoints of the PLC within 0..500, by FC 6 and 16, through either front unit */
    CHECK_EQ(GATEWAY_ACTION(policy, "engineer", site, 2, 0x06, 0x00, 0x64, 0x01, 0xF4),
             MB_POLICY_ALLOW);
    CHECK_EQ(GATEWAY_ACTION(policy, "engineer", site, 1, 0x06, 0x00, 0x64, 0x01, 0xF5),
             MB_POLICY_DENY);
    CHECK_EQ(GATEWAY_ACTION(policy, "engineer", site, 11, 0x06, 0x00, 0x64, 0x00, 0x01),
             MB_POLICY_DENY);
    CHECK_EQ(GATEWAY_ACTION(policy, "engineer", site, 1, 0x05, 0x00, 0x00, 0xFF, 0x00),
             MB_POLICY_DENY);
    /* SCADA: plain reads of the PLC and the meters, from its address only */
    CHECK_EQ(GATEWAY_ACTION(policy, NULL, scada, 14, 0x03, 0x00, 0x00, 0x00, 0x0A),
             MB_POLICY_ALLOW);
    CHECK_EQ(GATEWAY_ACTION(policy, NULL, scada, 20, 0x03, 0x00, 0x00, 0x00, 0x0A), MB_POLICY_DENY);
    CHECK_EQ(GATEWAY_ACTION(policy, NULL, scada, 1, 0x06, 0x00, 0x64, 0x00, 0x01), MB_POLICY_DENY);
    CHECK_EQ(GATEWAY_ACTION(policy, NULL, other, 1, 0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_DENY);
    config_gateway_free(&config);
}

TEST(every_yaml_block_of_the_configuration_guide_loads) {
    char path[600], error[512];
    int blocks = 0;
    source_path(path, sizeof path, "docs/configuration.md");
    FILE *file = fopen(path, "rb");
    CHECK(file != NULL);
    if (file == NULL)
        return;
    static char guide[1 << 17];
    size_t size = fread(guide, 1, sizeof guide - 1, file);
    fclose(file);
    CHECK(size < sizeof guide - 1);
    guide[size] = '\0';
    const char *cursor = guide;
    while ((cursor = strstr(cursor, "\n```yaml\n")) != NULL) {
        const char *start = cursor + 9;
        const char *end = strstr(start, "\n```\n");
        CHECK(end != NULL);
        if (end == NULL)
            break;
        write_text(config_path, start, (size_t)(end - start) + 1);
        /* A block with backends is a gateway's (and never has units). */
        char block[8192];
        snprintf(block, sizeof block, "%.*s", (int)(end - start), start);
        int status = load_as_its_program(config_path, is_gateway_text(block),
                                         "docs/configuration.md", error, sizeof error);
        CHECK_EQ(status, 0);
        if (status != 0)
            fprintf(stderr, "  block %d: %s\n", blocks + 1, error);
        blocks++;
        cursor = end;
    }
    CHECK(blocks >= 10);
}

/* ---- setup ---- */

static void remove_directory(void) {
    char path[600];
    DIR *folder = opendir(directory);
    if (folder == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", directory, entry->d_name);
        unlink(path);
    }
    closedir(folder);
    rmdir(directory);
}

int main(void) {
    const char *temporary = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/mbsec-config-XXXXXX",
             temporary != NULL && temporary[0] != '\0' ? temporary : "/tmp");
    if (mkdtemp(directory) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(config_path, sizeof config_path, "%s/config.yaml", directory);

    RUN(defaults_are_the_built_in_simulator);
    RUN(an_empty_file_a_comment_or_an_empty_document_change_nothing);
    RUN(empty_sections_are_the_same_as_sections_left_out);
    RUN(every_key_takes_effect);
    RUN(listen_takes_one_address_or_a_list);
    RUN(listen_errors);
    RUN(integers_are_decimal_or_hex_and_nothing_else);
    RUN(user_and_log);
    RUN(limits_take_integers_and_durations);
    RUN(persist_path_is_relative_to_the_configuration_file);
    RUN(identity_strings_conformity_server_id_and_running);
    RUN(units_any_answers_every_unit_id_with_one_set_of_tables);
    RUN(units_take_ids_0_to_255_and_tables_as_ranges_or_start_and_size);
    RUN(units_errors);
    RUN(units_files);
    RUN(units_fifos);
    RUN(tls_takes_addresses_files_tickets_and_a_handshake_timeout);
    RUN(tls_errors);
    RUN(policy_rules_take_every_key);
    RUN(policy_errors);
    RUN(policy_mode_monitor_covers_refusing_rules_without_a_mode_and_the_default);
    RUN(a_failed_load_keeps_the_policy_it_had);
    RUN(gateway_defaults_check_plain_requests_too);
    RUN(backends_take_every_key);
    RUN(a_backends_list_replaces_the_one_loaded_before);
    RUN(a_rule_on_a_front_unit_covers_every_front_unit_of_its_device_by_default);
    RUN(policy_units_front_takes_unit_ids_literally_and_says_what_is_left_open);
    RUN(a_rule_may_name_devices_a_backend_or_one_of_its_units);
    RUN(backends_errors);
    RUN(each_program_refuses_the_keys_of_the_other);
    RUN(the_gateway_takes_audit_metrics_alerts_and_a_rate_limit);
    RUN(syslog_over_tls_with_a_spool_is_read_and_copied);
    RUN(bad_audit_metrics_alerts_and_rate_keys_are_named);
    RUN(mqtt_is_read_with_its_defaults_and_copied);
    RUN(bad_mqtt_keys_are_named);
    RUN(the_rules_are_kept_as_written_for_check);
    RUN(a_gateway_copy_is_deep);
    RUN(yaml_syntax_errors_carry_libyamls_message_and_position);
    RUN(the_file_is_one_mapping_of_known_keys_in_one_document);
    RUN(windows_line_endings_and_a_byte_order_mark_are_read);
    RUN(a_file_that_cannot_be_read_is_a_system_error_and_changes_nothing);
    RUN(the_error_buffer_may_be_small_or_absent);
    RUN(a_load_goes_over_the_configuration_it_is_given);
    RUN(reloading_many_times_neither_leaks_nor_runs_out_of_string_slots);
    RUN(copy_is_deep_and_points_into_itself);
    RUN(every_example_file_loads);
    RUN(the_policy_example_does_what_its_comments_say);
    RUN(the_gateway_example_does_what_its_comments_say);
    RUN(every_yaml_block_of_the_configuration_guide_loads);

    remove_directory();
    return harness_result();
}
