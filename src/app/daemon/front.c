/* SPDX-License-Identifier: MIT */
#include "app/daemon/front.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/commands.h"
#include "app/common/policy_hash.h"
#include "mbsec/error.h"
#include "mbsec/pdu.h"

#define SYSTEMD_FIRST_FD 3

/* ---- port 502 ---- */

static void explain_privileged_port(const char *program, const char *address) {
    fprintf(stderr,
            "%s: cannot listen on %s: permission denied.\n"
            "Ports below 1024 (Modbus uses 502, Modbus/TCP Security 802) need privileges. "
            "Any one of these works:\n"
            "  - systemd socket activation: systemctl enable --now mbsec-serve.socket (the\n"
            "    gateway: mbsec-gateway-tls.socket); systemd binds the port and the server runs\n"
            "    unprivileged (docs/systemd.md)\n"
            "  - start as root with --user NAME: mbsec binds, then drops to NAME for good\n"
            "  - grant the capability: setcap cap_net_bind_service=+ep $(command -v mbsec)\n"
            "  - use an unprivileged port, e.g. --listen 0.0.0.0:5020, and redirect 502 to it:\n"
            "      nft add table ip nat; nft add chain ip nat prerouting '{ type nat hook "
            "prerouting priority -100; }'\n"
            "      nft add rule ip nat prerouting tcp dport 502 redirect to :5020\n"
            "    or: iptables -t nat -A PREROUTING -p tcp --dport 502 -j REDIRECT --to-ports "
            "5020\n"
            "See docs/port-502.md.\n",
            program, address);
}

/*
 * systemd socket activation: LISTEN_PID names us, LISTEN_FDS descriptors start at 3, and
 * LISTEN_FDNAMES names them in order, colon-separated (FileDescriptorName= of their socket
 * unit). A socket named "tls" serves Modbus/TCP Security: a name, not a port number, says so,
 * since systemd may pass any port. Returns the number of sockets, with tls[i] set for each
 * socket named "tls".
 */
static int activated_sockets(int tls[CONFIG_MAX_LISTEN]) {
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL)
        return 0;
    char *end;
    long listen_pid = strtol(pid, &end, 10);
    if (*end != '\0' || listen_pid != (long)getpid())
        return 0;
    long count = strtol(fds, &end, 10);
    if (*end != '\0' || count < 1 || count > CONFIG_MAX_LISTEN)
        return 0;
    const char *names = getenv("LISTEN_FDNAMES");
    for (long i = 0; i < count; i++) {
        size_t length = names ? strcspn(names, ":") : 0;
        tls[i] = length == 3 && memcmp(names, "tls", 3) == 0;
        if (names != NULL)
            names = names[length] == ':' ? names + length + 1 : NULL;
    }
    /* Children must not think the sockets are theirs. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)count;
}

/* Serves the sockets systemd passed, each on every server; those named "tls" with `tls`. */
static int adopt_activated(const char *program, const struct front_config *config,
                           struct mb_server *const *servers, int count, struct mb_tls_context *tls,
                           struct logger *logger, int activated, const int *secure) {
    int secure_count = 0;
    for (int i = 0; i < activated; i++)
        secure_count += secure[i];
    if (secure_count > 0 && tls == NULL) {
        /* Served as plain Modbus/TCP, a socket meant for Modbus/TCP Security would carry
         * unauthenticated requests on port 802: refuse to start instead. */
        fprintf(stderr,
                "%s: systemd passed %d socket(s) named \"tls\" (FileDescriptorName=tls) for "
                "Modbus/TCP Security, but the configuration has no tls section\n",
                program, secure_count);
        return EXIT_STATUS_USAGE;
    }
    if (config->listen_count > 0)
        logger_message(logger, MB_LOG_WARNING, "socket_activation",
                       "systemd passed %d socket(s); listen addresses are ignored", activated);
    if (tls != NULL && secure_count == 0)
        logger_message(logger, MB_LOG_WARNING, "socket_activation",
                       "no socket systemd passed is named \"tls\" (FileDescriptorName=tls): "
                       "Modbus/TCP Security is not served");
    for (int w = 0; w < count; w++)
        for (int i = 0; i < activated; i++) {
            int index = mb_server_adopt(servers[w], SYSTEMD_FIRST_FD + i, w == 0);
            if (index < 0) {
                fprintf(stderr, "%s: descriptor %d from systemd is unusable\n", program,
                        SYSTEMD_FIRST_FD + i);
                return EXIT_STATUS_FAILURE;
            }
            if (!secure[i])
                continue;
            mb_server_listener_set_tls(servers[w], index, tls);
            if (w > 0)
                continue;
            char bound[64];
            mb_server_listener_address(servers[0], index, bound, sizeof bound);
            logger_message(logger, MB_LOG_INFO, "tls_listener",
                           "%s is Modbus/TCP Security (TLS, client certificates required)", bound);
        }
    return 0;
}

/* ---- listeners ---- */

int front_open_listeners(const char *program, const struct front_config *config,
                         struct mb_server *const *servers, int count, struct mb_tls_context *tls,
                         struct logger *logger) {
    int secure[CONFIG_MAX_LISTEN] = {0};
    int activated = activated_sockets(secure);
    if (activated > 0)
        return adopt_activated(program, config, servers, count, tls, logger, activated, secure);

    const char *defaults[] = {"0.0.0.0:502", "[::]:502"};
    size_t plain = config->listen_count;
    const char *addresses[2 * CONFIG_MAX_LISTEN + 2];
    size_t address_count = 0;
    for (size_t i = 0; i < plain; i++)
        addresses[address_count++] = config->listen[i];
    /* Without any address given, the plain default; a TLS listener alone stands alone. */
    if (plain == 0 && config->tls_listen_count == 0) {
        addresses[address_count++] = defaults[0];
        addresses[address_count++] = defaults[1];
    }
    size_t first_tls = address_count;
    for (size_t i = 0; i < config->tls_listen_count; i++)
        addresses[address_count++] = config->tls_listen[i];
    for (size_t i = 0; i < address_count; i++) {
        int index = mb_server_listen(servers[0], addresses[i], 0);
        if (index == MB_EADDRESS && i < first_tls && plain == 0) {
            /* No IPv6 on this machine: the IPv4 default still serves. */
            logger_message(logger, MB_LOG_WARNING, "listener_skipped",
                           "%s is not available on this machine", addresses[i]);
            continue;
        }
        if (index < 0) {
            if (index == MB_EACCES)
                explain_privileged_port(program, addresses[i]);
            else
                fprintf(stderr, "%s: cannot listen on %s: %s%s%s\n", program, addresses[i],
                        mb_strerror(index), index == MB_ESYSTEM ? ": " : "",
                        index == MB_ESYSTEM ? strerror(errno) : "");
            return index == MB_EADDRESS ? EXIT_STATUS_USAGE : EXIT_STATUS_FAILURE;
        }
        struct mb_tls_context *context = i >= first_tls ? tls : NULL;
        /* The other workers bind the address actually bound, so port 0 means one port. */
        char bound[64];
        mb_server_listener_address(servers[0], index, bound, sizeof bound);
        if (context != NULL) {
            mb_server_listener_set_tls(servers[0], index, context);
            logger_message(logger, MB_LOG_INFO, "tls_listener",
                           "%s is Modbus/TCP Security (TLS, client certificates required)", bound);
        }
        for (int w = 1; w < count; w++) {
            int shared = mb_server_listen_shared(servers[w], bound, 0);
            if (shared < 0) {
                fprintf(stderr, "%s: worker %d cannot listen on %s\n", program, w, bound);
                return EXIT_STATUS_FAILURE;
            }
            if (context != NULL)
                mb_server_listener_set_tls(servers[w], shared, context);
        }
    }
    if (mb_server_listener_fd(servers[0], 0) < 0) {
        fprintf(stderr, "%s: nothing to listen on\n", program);
        return EXIT_STATUS_FAILURE;
    }
    return 0;
}

/* ---- TLS ---- */

int front_tls_create(const struct front_config *config, struct mb_tls_context **tls, char *error,
                     size_t capacity) {
    *tls = NULL;
    if (config->tls_listen_count == 0)
        return 0;
    struct stat status;
    int directory = stat(config->tls_ca, &status) == 0 && S_ISDIR(status.st_mode);
    struct mb_tls_config settings = {
        .certificate_file = config->tls_certificate,
        .key_file = config->tls_key,
        .ca_file = directory ? NULL : config->tls_ca,
        .ca_directory = directory ? config->tls_ca : NULL,
        .crl_file = config->tls_crl,
        .session_tickets = config->tls_session_tickets,
    };
    return mb_tls_context_create(1, &settings, tls, error, capacity) != 0 ? -1 : 0;
}

void front_stamp_files(char *stamp, size_t capacity, const char *const *files, size_t count) {
    size_t used = strnlen(stamp, capacity);
    for (size_t i = 0; i < count && used < capacity; i++) {
        struct stat status;
        if (files[i] == NULL || stat(files[i], &status) != 0)
            memset(&status, 0, sizeof status); /* a missing file stamps as zeros */
        used += (size_t)snprintf(stamp + used, capacity - used, "|%s:%lu:%lld:%lld.%09ld",
                                 files[i] ? files[i] : "", (unsigned long)status.st_ino,
                                 (long long)status.st_size, (long long)status.st_mtim.tv_sec,
                                 status.st_mtim.tv_nsec);
    }
}

void front_tls_stamp(const struct front_config *config, char *stamp, size_t capacity) {
    const char *const files[] = {config->tls_certificate, config->tls_key, config->tls_ca,
                                 config->tls_crl};
    snprintf(stamp, capacity, "tickets:%d", config->tls_session_tickets);
    front_stamp_files(stamp, capacity, files, sizeof files / sizeof files[0]);
}

/* ---- privileges and descriptors ---- */

int front_user_ids(const char *name, unsigned *uid, unsigned *gid) {
    struct passwd *user = getpwnam(name);
    if (user == NULL)
        return -1;
    *uid = user->pw_uid;
    *gid = user->pw_gid;
    return 0;
}

int front_drop_privileges(const char *program, const char *name) {
    struct passwd *user = getpwnam(name);
    if (user == NULL) {
        fprintf(stderr, "%s: --user %s: no such user\n", program, name);
        return -1;
    }
    if (getuid() != 0 && geteuid() != 0) {
        if (getuid() == user->pw_uid)
            return 0;
        fprintf(stderr, "%s: --user %s needs to start as root\n", program, name);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || initgroups(name, user->pw_gid) != 0 ||
        setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0) {
        fprintf(stderr, "%s: could not become user %s: %s\n", program, name, strerror(errno));
        return -1;
    }
    if (user->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || getuid() == 0 ||
                              geteuid() == 0 || getegid() != user->pw_gid)) {
        fprintf(stderr,
                "%s: root privileges could be regained after switching to %s; refusing to run\n",
                program, name);
        return -1;
    }
    return 0;
}

/*
 * With the common soft limit of 1024 descriptors, accept() would fail with EMFILE long before
 * max_connections: the soft limit goes up to the hard one, with a warning when even that is too
 * low.
 */
void front_raise_descriptor_limit(struct logger *logger, uint32_t max_connections, int workers) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    rlim_t wanted = (rlim_t)max_connections + 64 + 8 * (rlim_t)workers;
    if (limit.rlim_cur >= wanted)
        return;
    rlim_t target =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= wanted ? wanted : limit.rlim_max;
    struct rlimit raised = {.rlim_cur = target, .rlim_max = limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0 || target < wanted)
        logger_message(logger, MB_LOG_WARNING, "descriptor_limit",
                       "max_connections is %u but only %llu descriptors are allowed "
                       "(ulimit -n); connections beyond that wait in the backlog",
                       max_connections,
                       (unsigned long long)(target < wanted ? target : limit.rlim_cur));
}

/* ---- authorization ---- */

int front_authorize(const struct mb_policy *policy, int authorize_plain, struct logger *logger,
                    const struct mb_server_request *call, uint8_t *response,
                    struct mb_policy_decision *decision, int *answer) {
    decision->action = 0;
    decision->monitor = 0;
    if (!call->peer->secure && !authorize_plain) {
        decision->access = mb_policy_decoded_access(call->pdu, call->pdu_length, call->request);
        return 1;
    }
    if (policy == NULL) {
        decision->access = mb_policy_decoded_access(call->pdu, call->pdu_length, call->request);
        logger_message(logger, MB_LOG_WARNING, "denied",
                       "%s%s%s from %s: FC %u on unit %u denied: no policy configured",
                       call->peer->role ? "role '" : "no role",
                       call->peer->role ? call->peer->role : "", call->peer->role ? "'" : "",
                       call->peer->text, call->pdu[0], call->unit_id);
        *answer = mb_exception_answer(call->pdu[0], MB_EX_ILLEGAL_FUNCTION, response, MB_PDU_MAX);
        return 0;
    }
    struct mb_policy_identity who = {
        .role = call->peer->role,
        .tls = call->peer->secure,
        .address = (const struct sockaddr *)&call->peer->address,
        .address_length = call->peer->address_length,
    };
    if (mb_policy_decide_decoded(policy, &who, call->unit_id, call->pdu, call->pdu_length,
                                 call->request, decision) != 0)
        return MB_EINVAL;
    if (decision->action == MB_POLICY_ALLOW)
        return 1;
    if (decision->monitor) {
        /* Monitor mode: served as if allowed; the audit trail and metrics say what enforcement
         * would have done. */
        logger_message(logger, MB_LOG_INFO, "would_deny", "%s", decision->reason);
        return 1;
    }
    logger_message(logger, MB_LOG_WARNING, "denied", "%s", decision->reason);
    if (decision->action == MB_POLICY_CLOSE)
        *answer = MB_SERVER_CLOSE;
    else if (decision->action == MB_POLICY_DROP)
        *answer = 0; /* no answer */
    else
        *answer = mb_exception_answer(
            call->pdu[0], decision->exception ? decision->exception : MB_EX_ILLEGAL_FUNCTION,
            response, MB_PDU_MAX);
    return 0;
}

void front_block_signals(sigset_t *signals) {
    sigemptyset(signals);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGINT);
    sigaddset(signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void front_print_rules(const struct front_config *config) {
    const struct mb_policy *policy = config->policy;
    size_t rules = mb_policy_rule_count(policy);
    const char *line = config->policy_text != NULL ? config->policy_text : "";
    size_t monitored = (size_t)mb_policy_rule_monitor(policy, rules);
    for (size_t i = 0; i < rules; i++) {
        const char *end = strchr(line, '\n');
        int length = end != NULL ? (int)(end - line) : (int)strlen(line);
        int monitor = mb_policy_rule_monitor(policy, i);
        monitored += (size_t)monitor;
        printf("  %zu. %s: %.*s%s\n", i + 1, mb_policy_rule_name(policy, i), length, line,
               monitor ? " [monitor: not enforced]" : "");
        line = end != NULL ? end + 1 : line + length;
    }
    printf("  -. default: what no rule matches is denied with exception 01%s\n",
           mb_policy_rule_monitor(policy, rules)
               ? " [monitor: not enforced; served and audited as would_deny]"
               : "");
    if (monitored > 0)
        printf("  monitor mode: %zu refusal%s (of rules and the default) not enforced: what "
               "%s refuse%s is served and reported as would_deny\n",
               monitored, monitored == 1 ? "" : "s", monitored == 1 ? "it" : "they",
               monitored == 1 ? "s" : "");
    char hash[POLICY_HASH_TEXT];
    policy_hash(policy, hash);
    printf("  policy sha256: %s (of its canonical form: the same for the same rules, whatever "
           "the layout)\n",
           hash);
}

void front_log_monitor(struct logger *logger, const struct mb_policy *policy) {
    size_t rules = mb_policy_rule_count(policy);
    char names[400];
    size_t used = 0, monitored = 0;
    names[0] = '\0';
    for (size_t i = 0; i <= rules; i++) {
        if (!mb_policy_rule_monitor(policy, i))
            continue;
        const char *name = i < rules ? mb_policy_rule_name(policy, i) : "default";
        if (monitored++ < 8 && used < sizeof names) {
            int written =
                snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", name);
            used += written > 0 ? (size_t)written : 0;
        }
    }
    if (monitored == 0)
        return;
    logger_message(logger, MB_LOG_WARNING, "policy_monitor",
                   "monitor mode: %zu refusal%s not enforced (%s%s): what %s refuse%s is served "
                   "and reported as would_deny",
                   monitored, monitored == 1 ? "" : "s", names, monitored > 8 ? ", ..." : "",
                   monitored == 1 ? "it" : "they", monitored == 1 ? "s" : "");
}
