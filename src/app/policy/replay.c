/* SPDX-License-Identifier: MIT */
/*
 * mbsec policy test: every request of the inputs decided by a policy, as the gateway would
 * decide it, and what it would refuse listed, grouped by who, unit, function and the rule that
 * refuses; with two policies, the requests one allows and the other refuses.
 *
 * Refusals by rules in monitor mode count as refusals here: the question is what enforcing the
 * policy would refuse.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "app/commands.h"
#include "app/common/json.h"
#include "app/common/log.h"
#include "app/common/policy_hash.h"
#include "app/config/config.h"
#include "app/policy/index_table.h"
#include "app/policy/inputs.h"
#include "app/policy/policy_command.h"
#include "app/policy/ranges.h"
#include "mbsec/pdu.h"
#include "mbsec/policy.h"

#define MAX_REPORT_GROUPS 1000000 /* beyond, refusals are counted but not grouped */

struct loaded {
    const char *path;
    struct mb_policy *policy;
    char hash[POLICY_HASH_TEXT];
};

/* Refused requests alike: who, unit, function, and the refusal. */
struct report_group {
    char *key;  /* owned; what the group is told apart by */
    int policy; /* the index of the policy that refuses (0 or 1) */
    char who[96];
    uint8_t unit;
    uint8_t function;
    int sub;
    int decodes;
    char rule[MB_POLICY_MAX_NAME + 1];
    enum mb_policy_action action;
    uint8_t exception;
    int monitor;
    struct ranges addresses;
    int has_addresses;
    uint64_t count;
    int64_t first_us, last_us;
    char example[160];
};

struct replay {
    struct loaded policies[2];
    size_t policy_count;
    uint64_t requests;
    uint64_t refused[2]; /* with one policy: [0]; with two: refused by [i] and allowed by the
                            other */
    uint64_t ungrouped;
    struct report_group *groups;
    size_t group_count, group_capacity;
    struct index_table index;
    int out_of_memory;
};

/* ---- loading a policy ---- */

/* 1 when the file has a top-level `backends:` key: a gateway's configuration. */
static int is_gateway_file(const char *path) {
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return 0;
    char line[512];
    int gateway = 0;
    while (!gateway && fgets(line, sizeof line, file) != NULL)
        gateway = strncmp(line, "backends:", 9) == 0;
    fclose(file);
    return gateway;
}

static int load_policy(struct loaded *loaded, char *error, size_t capacity) {
    int status;
    if (is_gateway_file(loaded->path)) {
        struct gateway_config config;
        config_gateway_defaults(&config);
        status = config_gateway_load(loaded->path, &config, error, capacity);
        if (status == 0)
            loaded->policy = mb_policy_ref(config.front.policy);
        config_gateway_free(&config);
    } else {
        struct serve_config config;
        config_serve_defaults(&config);
        status = config_serve_load(loaded->path, &config, error, capacity);
        if (status == 0)
            loaded->policy = mb_policy_ref(config.front.policy);
        config_serve_free(&config);
    }
    if (status != 0)
        return -1;
    if (loaded->policy == NULL) {
        snprintf(error, capacity,
                 "%s: no policy section (a gateway without one denies every request it checks)",
                 loaded->path);
        return -1;
    }
    policy_hash(loaded->policy, loaded->hash);
    return 0;
}

/* ---- grouping refusals ---- */

static uint64_t hash_text(const char *text) {
    return index_table_finish(index_table_mix(INDEX_TABLE_HASH_START, text, strlen(text)));
}

static uint64_t group_hash_at(const void *items, uint32_t index) {
    return hash_text(((const struct report_group *)items)[index].key);
}

static int group_is(const void *items, uint32_t index, const void *wanted) {
    return strcmp(((const struct report_group *)items)[index].key, wanted) == 0;
}

static struct report_group *group_of(struct replay *replay, const char *key, int *fresh) {
    *fresh = 0;
    uint64_t hash = hash_text(key);
    long found = index_table_find(&replay->index, hash, group_is, replay->groups, key);
    if (found >= 0)
        return &replay->groups[found];
    if (replay->group_count == MAX_REPORT_GROUPS)
        return NULL;
    struct report_group *groups = index_table_reserve(replay->groups, &replay->group_capacity,
                                                      replay->group_count, sizeof *groups, 64);
    if (groups == NULL)
        return NULL;
    replay->groups = groups;
    size_t index = replay->group_count;
    struct report_group *group = &replay->groups[index];
    memset(group, 0, sizeof *group);
    group->key = strdup(key);
    if (group->key == NULL || index_table_add(&replay->index, hash, (uint32_t)index, index,
                                              group_hash_at, replay->groups) != 0) {
        free(group->key);
        return NULL;
    }
    replay->group_count++;
    *fresh = 1;
    return group;
}

/* Who, for the report: the role (printable, cut) or the client's address. */
static void describe_who(const struct observed *request, char *text, size_t capacity) {
    if (request->role != NULL) {
        char role[48];
        size_t used = 0;
        for (const unsigned char *at = (const unsigned char *)request->role;
             *at != '\0' && used + 1 < sizeof role; at++)
            role[used++] = *at >= 0x20 && *at < 0x7F ? (char)*at : '?';
        role[used] = '\0';
        snprintf(text, capacity, "role '%s'%s", role,
                 strlen(request->role) > sizeof role - 1 ? "..." : "");
        return;
    }
    char address[INET6_ADDRSTRLEN] = "unknown";
    if (request->address_length > 0 && request->address.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&request->address)->sin_addr, address,
                  sizeof address);
    else if (request->address_length > 0 && request->address.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&request->address)->sin6_addr, address,
                  sizeof address);
    snprintf(text, capacity, "%s", address);
}

/* The addresses a request touches, for the report (file numbers for FC 20 and 21). */
static int add_addresses(struct report_group *group, const struct mb_request *request) {
    int status = 0;
    group->has_addresses = 1;
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return ranges_add(&group->addresses, request->read.address,
                          ranges_last(request->read.address, request->read.quantity));
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        return ranges_add(&group->addresses, request->write_single.address,
                          request->write_single.address);
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return ranges_add(
            &group->addresses, request->write_multiple.address,
            ranges_last(request->write_multiple.address, request->write_multiple.quantity));
    case MB_FC_MASK_WRITE_REGISTER:
        return ranges_add(&group->addresses, request->mask_write.address,
                          request->mask_write.address);
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        status = ranges_add(
            &group->addresses, request->read_write.write_address,
            ranges_last(request->read_write.write_address, request->read_write.write_quantity));
        return status != 0 ? status
                           : ranges_add(&group->addresses, request->read_write.read_address,
                                        ranges_last(request->read_write.read_address,
                                                    request->read_write.read_quantity));
    case MB_FC_READ_FIFO_QUEUE:
        return ranges_add(&group->addresses, request->fifo.address, request->fifo.address);
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        size_t offset = 0;
        struct mb_file_record record;
        while (status == 0 && mb_file_records_next(&request->file, &offset, &record) == 1)
            status = ranges_add(&group->addresses, record.file_number, record.file_number);
        return status;
    }
    default:
        group->has_addresses = 0;
        return 0;
    }
}

static int sub_function_of(const struct mb_request *request) {
    if (request->function == MB_FC_DIAGNOSTICS)
        return request->diagnostics.sub_function;
    if (request->function == MB_FC_ENCAPSULATED_INTERFACE)
        return request->mei.mei_type;
    return -1;
}

static void note_refusal(struct replay *replay, int policy, const struct observed *request,
                         const struct mb_request *decoded,
                         const struct mb_policy_decision *decision) {
    char who[96], key[1024];
    describe_who(request, who, sizeof who);
    uint8_t function = request->pdu_length > 0 ? request->pdu[0] : 0;
    int sub = decoded != NULL ? sub_function_of(decoded) : -1;
    /* Told apart by the whole role (the shown one is cut and made printable), last and with its
     * length, so that no role can pass for another's key. */
    const char *role = request->role != NULL ? request->role : "";
    snprintf(key, sizeof key, "%d\x1f%s\x1f%u\x1f%u\x1f%d\x1f%d\x1f%s\x1f%d\x1f%u\x1f%d\x1f%zu:%s",
             policy, who, request->unit, function, sub, decoded != NULL, decision->rule_name,
             decision->action, decision->exception, decision->monitor, strlen(role), role);
    int fresh;
    struct report_group *group = group_of(replay, key, &fresh);
    if (group == NULL) {
        replay->ungrouped++;
        return;
    }
    if (fresh) {
        group->policy = policy;
        snprintf(group->who, sizeof group->who, "%s", who);
        group->unit = request->unit;
        group->function = function;
        group->sub = sub;
        group->decodes = decoded != NULL;
        snprintf(group->rule, sizeof group->rule, "%s", decision->rule_name);
        group->action = decision->action;
        group->exception = decision->exception;
        group->monitor = decision->monitor;
        group->first_us = request->time_us;
        snprintf(group->example, sizeof group->example, "%s",
                 request->origin != NULL ? request->origin : "");
    }
    group->count++;
    if (request->time_us != 0 && (group->first_us == 0 || request->time_us < group->first_us))
        group->first_us = request->time_us;
    if (request->time_us > group->last_us)
        group->last_us = request->time_us;
    if (decoded != NULL && add_addresses(group, decoded) != 0)
        replay->out_of_memory = 1;
}

static int replay_visit(void *data, const struct observed *request) {
    struct replay *replay = data;
    replay->requests++;
    struct mb_request decoded;
    const struct mb_request *view =
        request->pdu_length > 0 &&
                mb_request_decode(request->pdu, request->pdu_length, &decoded) == 0
            ? &decoded
            : NULL;
    struct mb_policy_identity who = {
        .role = request->role,
        .tls = request->tls,
        .address = request->address_length > 0 ? (const struct sockaddr *)&request->address : NULL,
        .address_length = request->address_length,
    };
    static const uint8_t empty[1] = {0};
    const uint8_t *pdu = request->pdu_length > 0 ? request->pdu : empty;
    size_t length = request->pdu_length > 0 ? request->pdu_length : 1;
    struct mb_policy_decision decisions[2];
    for (size_t i = 0; i < replay->policy_count; i++)
        mb_policy_decide_decoded(replay->policies[i].policy, &who, request->unit, pdu, length, view,
                                 &decisions[i]);
    if (replay->policy_count == 1) {
        if (decisions[0].action != MB_POLICY_ALLOW) {
            replay->refused[0]++;
            note_refusal(replay, 0, request, view, &decisions[0]);
        }
        return 0;
    }
    int allowed[2] = {decisions[0].action == MB_POLICY_ALLOW,
                      decisions[1].action == MB_POLICY_ALLOW};
    for (int i = 0; i < 2; i++)
        if (!allowed[i] && allowed[1 - i]) {
            replay->refused[i]++;
            note_refusal(replay, i, request, view, &decisions[i]);
        }
    return 0;
}

/* ---- the report ---- */

static void function_text(const struct report_group *group, char *text, size_t capacity) {
    const char *name = group->sub >= 0 ? mb_policy_function_name(group->function, group->sub)
                                       : mb_policy_function_name(group->function, -1);
    if (!group->decodes)
        snprintf(text, capacity, "FC %u (does not decode)", group->function);
    else if (name != NULL)
        snprintf(text, capacity, "%s", name);
    else if (group->sub >= 0)
        snprintf(text, capacity, "FC %u/%u", group->function, group->sub);
    else
        snprintf(text, capacity, "FC %u", group->function);
}

/* The addresses as a list, whole ranges only, "..." when they do not all fit. */
static void addresses_text(const struct report_group *group, char *text, size_t capacity) {
    if (!group->has_addresses) {
        snprintf(text, capacity, "-");
        return;
    }
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < group->addresses.count; i++) {
        char item[24];
        const struct mb_policy_range *range = &group->addresses.items[i];
        if (range->first == range->last)
            snprintf(item, sizeof item, "%s%u", i ? "," : "", range->first);
        else
            snprintf(item, sizeof item, "%s%u-%u", i ? "," : "", range->first, range->last);
        if (used + strlen(item) + 5 >= capacity) {
            snprintf(text + used, capacity - used, ",...");
            return;
        }
        used += (size_t)snprintf(text + used, capacity - used, "%s", item);
    }
}

static void answer_text(const struct report_group *group, char *text, size_t capacity) {
    if (group->action == MB_POLICY_DENY)
        snprintf(text, capacity, "exception %02X", group->exception);
    else
        snprintf(text, capacity, "%s", group->action == MB_POLICY_DROP ? "drop" : "close");
}

static int compare_groups(const void *x, const void *y) {
    const struct report_group *a = x, *b = y;
    if (a->policy != b->policy)
        return a->policy - b->policy;
    int c = strcmp(a->who, b->who);
    if (c != 0)
        return c;
    if (a->unit != b->unit)
        return a->unit - b->unit;
    if (a->function != b->function)
        return a->function - b->function;
    if (a->sub != b->sub)
        return a->sub - b->sub;
    return strcmp(a->rule, b->rule);
}

static void print_table(const struct replay *replay, int policy, size_t most) {
    char function[48], addresses[64], answer[24], rule[96];
    int shown = 0;
    size_t rows = 0, total = 0;
    for (size_t i = 0; i < replay->group_count; i++)
        total += replay->groups[i].policy == policy;
    for (size_t i = 0; i < replay->group_count; i++) {
        const struct report_group *group = &replay->groups[i];
        if (group->policy != policy)
            continue;
        if (most != 0 && rows == most) {
            printf("  ... %zu more group%s (--rows 0 shows them all)\n", total - rows,
                   total - rows == 1 ? "" : "s");
            break;
        }
        if (!shown) {
            printf("  %9s  %-24s %4s  %-30s %-20s %-26s %s\n", "requests", "who", "unit",
                   "function", "addresses", "refused by", "answer");
            shown = 1;
        }
        function_text(group, function, sizeof function);
        addresses_text(group, addresses, sizeof addresses);
        answer_text(group, answer, sizeof answer);
        snprintf(rule, sizeof rule, "%s%s", group->rule, group->monitor ? " (monitor)" : "");
        printf("  %9llu  %-24s %4u  %-30s %-20s %-26s %s\n", (unsigned long long)group->count,
               group->who, group->unit, function, addresses, rule, answer);
        printf("  %9s  first: %s\n", "", group->example);
        rows++;
    }
}

static void print_text(const struct replay *replay, size_t most) {
    for (size_t i = 0; i < replay->policy_count; i++) {
        char which[4] = "";
        if (replay->policy_count > 1)
            snprintf(which, sizeof which, " %c", 'A' + (int)i);
        printf("policy%s: %s (sha256 %.16s..., %zu rules)\n", which, replay->policies[i].path,
               replay->policies[i].hash, mb_policy_rule_count(replay->policies[i].policy));
    }
    printf("%llu requests replayed\n", (unsigned long long)replay->requests);
    if (replay->policy_count == 1) {
        printf("%llu would be refused%s\n", (unsigned long long)replay->refused[0],
               replay->refused[0] > 0 ? ":" : "");
        print_table(replay, 0, most);
    } else {
        for (int i = 0; i < 2; i++) {
            printf("%llu allowed by %c and refused by %c%s\n",
                   (unsigned long long)replay->refused[i], 'A' + (1 - i), 'A' + i,
                   replay->refused[i] > 0 ? ":" : "");
            print_table(replay, i, most);
        }
    }
    if (replay->ungrouped > 0)
        printf("(%llu refusals not grouped: too many groups)\n",
               (unsigned long long)replay->ungrouped);
}

static void print_json(const struct replay *replay) {
    struct json json;
    char text[2048], time[40];
    printf("{\"requests\":%llu,\"policies\":[", (unsigned long long)replay->requests);
    for (size_t i = 0; i < replay->policy_count; i++) {
        json_begin(&json);
        json_string(&json, "path", replay->policies[i].path);
        json_string(&json, "sha256", replay->policies[i].hash);
        json_uint(&json, "rules", mb_policy_rule_count(replay->policies[i].policy));
        json_uint(&json, "refused", replay->refused[i]);
        printf("%s%s", i ? "," : "", json_end(&json));
    }
    printf("],\"groups\":[");
    for (size_t i = 0; i < replay->group_count; i++) {
        const struct report_group *group = &replay->groups[i];
        json_begin(&json);
        if (replay->policy_count > 1) {
            char which[2] = {(char)('A' + group->policy), '\0'};
            json_string(&json, "refused_by", which);
        }
        json_string(&json, "who", group->who);
        json_uint(&json, "unit", group->unit);
        json_uint(&json, "function", group->function);
        if (group->sub >= 0)
            json_uint(&json, "sub_function", (uint64_t)group->sub);
        function_text(group, text, sizeof text);
        json_string(&json, "function_name", text);
        if (group->has_addresses) {
            addresses_text(group, text, sizeof text);
            json_string(&json, "addresses", text);
        }
        json_uint(&json, "requests", group->count);
        json_string(&json, "rule", group->rule);
        json_string(&json, "action", mb_policy_action_name(group->action));
        if (group->action == MB_POLICY_DENY)
            json_uint(&json, "exception", group->exception);
        json_bool(&json, "monitor", group->monitor);
        if (group->first_us > 0) {
            log_time_of((uint64_t)group->first_us / 1000, time, sizeof time);
            json_string(&json, "first", time);
            log_time_of((uint64_t)group->last_us / 1000, time, sizeof time);
            json_string(&json, "last", time);
        }
        json_string(&json, "example", group->example);
        printf("%s%s", i ? "," : "", json_end(&json));
    }
    printf("]}\n");
}

/* ---- the command ---- */

static void usage(FILE *out) {
    fputs("usage: mbsec policy test --policy FILE [--policy FILE2] [options] INPUT...\n"
          "\n"
          "Replays every request of the inputs against the policy of FILE, as the gateway\n"
          "would decide it, and lists what it would refuse, grouped by who, unit, function\n"
          "and the refusing rule, with the addresses and the first request of each group.\n"
          "Rules in monitor mode count as refusing. With two policies, lists the requests\n"
          "one allows and the other refuses, both ways. FILE is a configuration of mbsec\n"
          "gateway or mbsec serve, or a file with only a policy (as policy learn writes).\n"
          "INPUT is a packet capture (pcap, pcapng) or a gateway audit file (JSON lines).\n"
          "\n"
          "Options:\n"
          "  --policy FILE          the policy to test (twice: two policies to compare)\n"
          "  --port PORTS           Modbus/TCP ports in captures, comma-separated (502)\n"
          "  --tls-port PORTS       Modbus/TCP Security ports, reported but not readable (802)\n"
          "  --role ROLE            take the requests of captures as sent over TLS by ROLE\n"
          "  --rows N               groups shown per table (default 100; 0: all)\n"
          "  --json                 the report as one JSON object\n"
          "  -h, --help             this text\n"
          "\n"
          "Examples:\n"
          "  mbsec policy test --policy learned.yaml plant.pcap\n"
          "  mbsec policy test --policy gateway.yaml --policy learned.yaml audit.jsonl\n"
          "\n"
          "Exit status: 0 nothing refused (no difference), 1 requests refused (or a\n"
          "difference), 2 usage, a policy that does not load, or an input not read wholly.\n",
          out);
}

static void replay_free(struct replay *replay) {
    for (size_t i = 0; i < replay->group_count; i++) {
        free(replay->groups[i].key);
        ranges_free(&replay->groups[i].addresses);
    }
    free(replay->groups);
    index_table_free(&replay->index);
    for (size_t i = 0; i < replay->policy_count; i++)
        mb_policy_destroy(replay->policies[i].policy);
}

int policy_test(int argc, char **argv) {
    static const struct option long_options[] = {
        {"policy", required_argument, NULL, 'P'},   {"port", required_argument, NULL, 'p'},
        {"tls-port", required_argument, NULL, 't'}, {"role", required_argument, NULL, 'R'},
        {"rows", required_argument, NULL, 'n'},     {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct replay replay = {0};
    struct inputs_options inputs = {0};
    int json = 0;
    unsigned long rows = 100;
    char error[600];
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
        case 'P':
            if (replay.policy_count == 2) {
                fprintf(stderr, "mbsec policy test: --policy: at most two policies\n");
                replay_free(&replay);
                return EXIT_STATUS_USAGE;
            }
            replay.policies[replay.policy_count].path = optarg;
            if (load_policy(&replay.policies[replay.policy_count], error, sizeof error) != 0) {
                fprintf(stderr, "mbsec policy test: %s\n", error);
                replay_free(&replay);
                return EXIT_STATUS_USAGE;
            }
            replay.policy_count++;
            break;
        case 'p':
        case 't':
            if (inputs_parse_ports(optarg, option == 'p' ? inputs.ports : inputs.tls_ports,
                                   option == 'p' ? &inputs.port_count : &inputs.tls_port_count,
                                   error, sizeof error) != 0) {
                fprintf(stderr, "mbsec policy test: --%s: %s\n",
                        option == 'p' ? "port" : "tls-port", error);
                replay_free(&replay);
                return EXIT_STATUS_USAGE;
            }
            break;
        case 'R':
            if (optarg[0] == '\0' || strlen(optarg) > MB_POLICY_MAX_ROLE) {
                fprintf(stderr, "mbsec policy test: --role: 1..%d bytes\n", MB_POLICY_MAX_ROLE);
                replay_free(&replay);
                return EXIT_STATUS_USAGE;
            }
            inputs.role = optarg;
            break;
        case 'n': {
            char *end;
            errno = 0;
            rows = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0) {
                fprintf(stderr, "mbsec policy test: --rows: '%s': expected a number\n", optarg);
                replay_free(&replay);
                return EXIT_STATUS_USAGE;
            }
            break;
        }
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            replay_free(&replay);
            return EXIT_STATUS_OK;
        default:
            fprintf(stderr, "mbsec policy test: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            replay_free(&replay);
            return EXIT_STATUS_USAGE;
        }
    }
    if (replay.policy_count == 0 || optind >= argc) {
        fprintf(stderr, "mbsec policy test: %s\n\n",
                replay.policy_count == 0 ? "no --policy given" : "no input given");
        usage(stderr);
        replay_free(&replay);
        return EXIT_STATUS_USAGE;
    }
    size_t input_count = (size_t)(argc - optind);
    struct input_summary *summaries = calloc(input_count, sizeof *summaries);
    if (summaries == NULL) {
        replay_free(&replay);
        return EXIT_STATUS_FAILURE;
    }
    int status = inputs_read(argv + optind, input_count, &inputs, replay_visit, &replay, summaries);
    inputs_describe(stderr, "mbsec policy test: ", summaries, input_count);
    free(summaries);
    if (replay.out_of_memory || status > 1) {
        /* Not 1: that is "requests refused", and nobody could tell. */
        fprintf(stderr, "mbsec policy test: out of memory\n");
        replay_free(&replay);
        return EXIT_STATUS_USAGE;
    }
    if (replay.group_count > 1)
        qsort(replay.groups, replay.group_count, sizeof *replay.groups, compare_groups);
    if (json)
        print_json(&replay);
    else
        print_text(&replay, rows);
    int refused = replay.refused[0] > 0 || replay.refused[1] > 0;
    replay_free(&replay);
    if (status == 1) {
        fprintf(stderr, "mbsec policy test: an input could not be read wholly: the report "
                        "covers what was read\n");
        return EXIT_STATUS_USAGE;
    }
    return refused ? EXIT_STATUS_FAILURE : EXIT_STATUS_OK;
}
