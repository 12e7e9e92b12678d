#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Modbus/TCP Security end to end, with real processes only: a PKI made by `mbsec cert` (a CA, a
# server certificate for 127.0.0.1, clients with the roles operator and engineer, one without a
# role, an expired one, a revoked one listed in a CRL, and one from a second CA nobody trusts),
# then `mbsec serve --config` with a plain and a TLS listener and a policy, driven by
# `mbsec read/write --tls` and `openssl s_client`. Checks values, exit statuses, the client's
# messages and the server's log (audit lines, handshake failures, reloads).
#
# The policy (first matching rule decides, anything else is denied with 01):
#   operator   reads unit 1 (preset read-only), writes nothing
#   engineer   unit 1: FC 6/16 on holding registers 100..110 with values 0..500 only; any other
#              write touching 100..110 denied (setpoints-guard); everything else on unit 1
#              allowed (preset read-write), so register 200 takes any value
#   any role   FC 43/14 and FC 17 on every unit; a certificate without a role is not "any"
#
# Then: the policy reloaded on SIGHUP (a good one and a broken one), a server with a TLS
# listener and no policy, 70 reloads alternating two policies on two workers (plain requests
# authorized), the close and drop actions, TLS files rotated on SIGHUP (a polling
# client revoked and cut off while another polls on, a garbage key refused, a new server
# certificate), and serve's usage errors for TLS.
#
# Servers listen on 127.0.0.1 port 0; their ports come from the "listening on" lines (the plain
# listener is opened first, then the TLS one), readiness and every log line are polled for
# with a deadline, and every process is stopped by its PID.
#
#   test_serve_tls.sh MBSEC_BINARY
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_serve_tls.sh MBSEC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
DEADLINE=10 # seconds, for every wait
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 123

# start_tls_server NAME ARGS...: start_device NAME ARGS; the "listening on" lines before its
# "started" name two ports, the plain listener's first, then the TLS one's (each worker logs its
# own line for each). Sets SERVER_PID, LOG, PLAIN and TLS (host:port), or exits the script.
start_tls_server() {
    start_device "$@"
    SERVER_PID=$DEVICE_PID LOG=$scratch/$1.log
    local ports
    ports=$(ports_of "$LOG")
    PLAIN=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 1p)
    TLS=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 2p)
    if [ "$(printf '%s\n' "$ports" | wc -l)" != 2 ]; then
        fail_log "listening lines for two ports" "$LOG"
        exit 1
    fi
}

pki=$scratch/pki

# ====================================================================================
# The PKI, made with mbsec cert.
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "serve_tls test CA"
certify ca --out-dir "$pki/foreign-ca" --name "foreign CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/engineer" --role engineer
certify client --ca-dir "$pki/ca" --out "$pki/norole" --no-role
certify client --ca-dir "$pki/ca" --out "$pki/expired" --role operator \
    --not-before 2020-01-01 --not-after 2020-01-02
certify client --ca-dir "$pki/ca" --out "$pki/revoked" --role operator
certify revoke --ca-dir "$pki/ca" "$pki/revoked.crt" --reason keyCompromise
certify crl --ca-dir "$pki/ca" --out "$pki/ca.crl"
certify client --ca-dir "$pki/foreign-ca" --out "$pki/foreign" --role operator
if [ "$pki_ok" = 1 ]; then
    ok "mbsec cert makes the PKI (CA, server, 6 clients, a foreign CA, a CRL)"
else
    STATUS=- OUT=$(cat "$scratch/pki.out") ERR=''
    fail "mbsec cert makes the PKI"
    exit 1
fi

# ====================================================================================
# The server: plain and TLS listeners, the policy above. Paths are relative to the file.
config=$scratch/serve.yaml
write_config() {
    cat >"$config" <<'YAML'
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
  crl: pki/ca.crl
  handshake_timeout: 5s
policy:
YAML
    cat >>"$config"
    cat >>"$config" <<'YAML'
  - name: operators-read
    roles: [operator]
    units: 1
    preset: read-only
    action: allow
  - name: engineer-setpoints
    roles: [engineer]
    units: 1
    functions: [write_single_register, write_multiple_registers]
    tables: { holding_registers: 100-110 }
    values: 0-500
    action: allow
  - name: setpoints-guard
    roles: [engineer]
    access: write
    tables: { holding_registers: 100-110 }
    action: deny
  - name: engineer-elsewhere
    roles: [engineer]
    units: 1
    preset: read-write
    action: allow
  - name: identify-any-role
    roles: [any]
    functions: [read_device_identification, report_server_id]
    action: allow
YAML
}
write_config </dev/null
start_tls_server policy --config "$config"
echo "# plain $PLAIN, TLS $TLS"

# ---- operator: reads, never writes ----
run write "$PLAIN" holding 0 11 22 33
expect "plain write (unchecked: authorize_plain is false) of registers 0..2" 0
mark_log
as operator read "$TLS" holding 0 3 --json
expect "operator reads unit 1 over TLS: the values" 0 '"values":\[11,22,33\]'
expect_log "the TLS listener is the second one, and the handshake names the role" \
    "tls_established peer=127\.0\.0\.1:[0-9]+ connection=[0-9]+ reason=\"TLSv1\.3 [^,]+, role 'operator', /CN=operator\""
as operator read "$TLS" coils 0 8
expect "operator reads coils (read-only preset)" 0 "^7 +0$"
mark_log
as operator write "$TLS" holding 100 5
expect_one_line "operator write: exit 5, exception 01 illegal function" 5 \
    "^mbsec write: exception 01 illegal function \(FC 6 write single register at 100, quantity 1, unit 1\)$"
expect_log "operator write: a denied audit line with role, source, what and the rule" \
    "warning +denied reason=\"role 'operator' from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) matched no rule \(default deny\)\""
as operator write "$TLS" coils 3 1
expect "operator coil write: 01" 5 "exception 01 illegal function"
mark_log
as operator read "$TLS" holding 0 --unit 2
expect "operator read of unit 2 (the rule says unit 1): 01" 5 "exception 01 illegal function"
expect_log "the unit 2 denial is audited" "denied reason=\"role 'operator' from 127\.0\.0\.1: read holding register 0 on unit 2 \(FC 3\) matched no rule"
as operator read "$TLS" holding 0 --json
expect "after denials the operator still reads (nothing was written)" 0 '"values":\[11\]'

# ---- engineer: setpoints 100..110 within 0..500, the rest of unit 1 freely ----
as engineer write "$TLS" holding 100 250
expect "engineer writes 250 to setpoint 100 (FC 6)" 0 "wrote 1 holding register at 100 \(FC 6"
as engineer read "$TLS" holding 100 --json
expect "engineer reads 250 back" 0 '"values":\[250\]'
mark_log
as engineer write "$TLS" holding 100 600
expect_one_line "engineer writes 600 to 100: exit 5, exception 01" 5 \
    "^mbsec write: exception 01 illegal function \(FC 6 write single register at 100"
expect_log "engineer 600: denied by setpoints-guard" \
    "denied reason=\"role 'engineer' from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) denied by rule 'setpoints-guard'\""
as engineer read "$TLS" holding 100 --json
expect "the refused 600 did not reach the register" 0 '"values":\[250\]'
as engineer write "$TLS" holding 104 500 0 499
expect "engineer writes 104..106 (FC 16) within 0..500" 0 "wrote 3 holding registers at 104 \(FC 16"
as engineer write "$TLS" holding 98 1 2 3
expect "engineer FC 16 over 98..100 touches the setpoints: 01 (setpoints-guard)" 5 \
    "exception 01 illegal function"
as engineer write "$TLS" holding 110 1 2
expect "engineer FC 16 over 110..111 runs past the setpoints: 01" 5 "exception 01"
as engineer write "$TLS" holding 200 600
expect "engineer writes 600 to 200: outside 100..110, allowed by engineer-elsewhere" 0 \
    "wrote 1 holding register at 200"
as engineer read "$TLS" holding 200 --json
expect "register 200 holds 600" 0 '"values":\[600\]'
as engineer write "$TLS" coils 3 1
expect "engineer writes a coil (read-write preset)" 0 "wrote 1 coil at 3"
as engineer write "$TLS" holding 200 1 --unit 2
expect "engineer write to unit 2: 01" 5 "exception 01 illegal function"
as engineer info "$TLS" --unit 7
expect "identification is allowed to any role on any unit" 0 "VendorName +mbsec$"

# ---- no role: nothing at all ----
mark_log
as norole read "$TLS" holding 0
expect_one_line "no-role read: exit 5, 01" 5 "^mbsec read: exception 01 illegal function"
expect_log "the handshake of the no-role client says why it has none" \
    "tls_established .*no role \(no role extension\), /CN=norole"
expect_log "no-role read: audited as no role, default deny" \
    "denied reason=\"no role from 127\.0\.0\.1: read holding register 0 on unit 1 \(FC 3\) matched no rule \(default deny\)\""
as norole read "$TLS" coils 0
expect "no-role coil read: 01" 5 "exception 01 illegal function"
as norole read "$TLS" input 0
expect "no-role input register read: 01" 5 "exception 01 illegal function"
as norole write "$TLS" holding 300 1
expect "no-role write: 01" 5 "exception 01 illegal function"
as norole info "$TLS"
expect "no-role identification: 'any' role does not cover no role (both 01)" 5 \
    "exception 01"
as norole diag "$TLS" echo 12 34
expect "no-role FC 8 echo: 01" 5 "exception 01 illegal function"
as norole raw "$TLS" 07
expect "no-role FC 7: 01" 5 "^exception: 01 illegal function$"

# ---- certificates the server refuses ----
refused() { # refused NAME DESCRIPTION CLIENT-PATTERN SERVER-PATTERN
    mark_log
    as "$1" read "$TLS" holding 0
    expect_one_line "$2 client: exit 3 with the cause on one line" 3 "$3"
    expect_log "$2 client: the server logs tls_failed naming the cause" \
        "warning +tls_failed peer=127\.0\.0\.1:[0-9]+ connection=[0-9]+ reason=\"TLS handshake failed: $4"
}
refused expired "expired" "expired" "certificate expired"
refused revoked "revoked" "revoked" "certificate revoked"
refused foreign "foreign-CA" "unknown CA|unknown ca" "unknown CA"

# ---- old protocol versions and a client without a certificate (openssl s_client) ----
if command -v openssl >/dev/null 2>&1; then
    # s_client -VERSION: the handshake must fail, and the server must say why. SECLEVEL=0 lets
    # this OpenSSL offer the old versions at all.
    old_version() {
        mark_log
        OUT=$(timeout "$DEADLINE" openssl s_client -connect "$TLS" "$1" -cipher 'DEFAULT:@SECLEVEL=0' \
            -cert "$pki/operator.crt" -key "$pki/operator.key" </dev/null 2>&1)
        STATUS=$? ERR=''
        if [ "$STATUS" != 0 ] && ! printf '%s\n' "$OUT" | grep -qE "Cipher is [A-Z]"; then
            ok "openssl s_client $1: the handshake fails"
        else
            fail "openssl s_client $1: the handshake fails"
        fi
        expect_log "openssl s_client $1: the server log names the protocol version" \
            "tls_failed .*reason=\"TLS handshake failed: protocol version \(TLS 1\.2 or 1\.3 required\)"
    }
    old_version -tls1_1
    if openssl s_client -help 2>&1 | grep -qE '^ *-tls1 '; then
        old_version -tls1
    else
        echo "# openssl s_client has no -tls1: not checked"
    fi
    for version in -tls1_2 -tls1_3; do
        mark_log
        OUT=$(timeout "$DEADLINE" openssl s_client -connect "$TLS" "$version" \
            -CAfile "$pki/ca/ca.crt" </dev/null 2>&1)
        STATUS=$? ERR=''
        expect_log "openssl s_client $version without a client certificate: the server logs it" \
            "tls_failed .*reason=\"TLS handshake failed: no client certificate"
    done
else
    echo "# no openssl command: s_client checks not run"
fi

# ---- pins and names ----
pin=$("$mbsec" cert show "$pki/server.crt" | sed -n 's/^pin: *//p' | head -n 1)
openssl_pin=$(openssl x509 -in "$pki/server.crt" -noout -fingerprint -sha256 2>/dev/null |
    sed 's/.*=//' | tr 'A-F' 'a-f')
ca_pin=$("$mbsec" cert show "$pki/ca/ca.crt" | sed -n 's/^pin: *//p' | head -n 1)
run read "$TLS" holding 0 --json --tls --cert "$pki/operator.crt" --key "$pki/operator.key" --pin "$pin"
expect "--pin from mbsec cert show, without --ca: the values" 0 '"values":\[11\]'
if [ -n "$openssl_pin" ]; then
    run read "$TLS" holding 0 --json --cert "$pki/operator.crt" --key "$pki/operator.key" \
        --pin "$openssl_pin"
    expect "--pin as openssl prints it (colons, lower case), --tls implied by --cert" 0 '"values":\[11\]'
fi
run read "$TLS" holding 0 --tls --cert "$pki/operator.crt" --key "$pki/operator.key" --pin "$ca_pin"
expect_one_line "a wrong pin (the CA's fingerprint): exit 3" 3 "TLS handshake with $TLS failed"
run read "$TLS" holding 0 --tls --cert "$pki/operator.crt" --key "$pki/operator.key" \
    --pin "SHA256:$(printf '%064d' 0)"
expect_one_line "a wrong pin (zeros): exit 3" 3 "TLS handshake with $TLS failed"
run read "$TLS" holding 0 --tls --cert "$pki/operator.crt" --key "$pki/operator.key" --pin SHA256:1234
expect "a malformed pin is a usage error" 2 "pin"
as operator read "$TLS" holding 0 --server-name plc.example
expect_one_line "--server-name plc.example (the certificate says 127.0.0.1): exit 3" 3 "name mismatch"
as operator read "$TLS" holding 0 --json --server-name 127.0.0.1
expect "--server-name 127.0.0.1 matches the IP SAN" 0 '"values":\[11\]'
run read "$TLS" holding 0 --tls --cert "$pki/operator.crt" --key "$pki/operator.key" \
    --ca "$pki/foreign-ca/ca.crt"
expect_one_line "trusting another CA than the server's: exit 3, unknown CA" 3 "unknown CA"
run read "$TLS" holding 0 --tls --ca "$pki/ca/ca.crt"
expect "TLS without --cert is a usage error" 2 "--cert"

# ---- the plain listener does not go through the policy ----
run read "$PLAIN" holding 100 --json
expect "plain read works (authorize_plain false)" 0 '"values":\[250\]'
run write "$PLAIN" holding 101 900
expect "plain write of 900 to a setpoint works: plain is not authorized" 0 "wrote 1 holding register"
run read "$PLAIN" holding 101 --json
expect "plain read back" 0 '"values":\[900\]'
as operator read "$PLAIN" holding 101
expect "TLS to the plain port fails to connect (exit 3)" 3

# ---- SIGHUP: a policy that lets the operator write ----
as operator write "$TLS" holding 50 7
expect "before the reload the operator cannot write register 50" 5 "exception 01"
write_config <<'YAML'
  - name: operators-write-low
    roles: [operator]
    units: 1
    access: write
    tables: { holding_registers: 0-99 }
    action: allow
YAML
mark_log
kill -HUP "$SERVER_PID"
expect_log "SIGHUP: the reload applies the policy" "info +reloaded reason=\"limits, logging, policy applied"
as operator write "$TLS" holding 50 7
expect "after the reload the operator writes register 50" 0 "wrote 1 holding register at 50"
as operator read "$TLS" holding 50 --json
expect "register 50 holds 7" 0 '"values":\[7\]'
as operator write "$TLS" holding 100 7
expect "the new rule covers 0..99 only: operator write to 100 still 01" 5 "exception 01"

# ---- SIGHUP with a broken policy: refused, the policy in force stays ----
write_config <<'YAML'
  - name: operators-write-low
    roles: [operator]
    units: 1
    access: write
    tables: { holding_registers: 0-99 }
    action: permit
YAML
bad_line=$(grep -n 'action: permit' "$config" | cut -d: -f1)
mark_log
kill -HUP "$SERVER_PID"
expect_log "SIGHUP with a broken policy: refused with FILE:LINE:COLUMN" \
    "error +reload_refused reason=\"$config:$bad_line:13: policy\[0\]\.action: .*permit.*the running configuration stays in force\""
as operator write "$TLS" holding 51 8
expect "after the refused reload the operator still writes 0..99 (the policy in force)" 0 \
    "wrote 1 holding register at 51"
as operator write "$TLS" holding 100 8
expect "... and still not 100" 5 "exception 01"
as norole read "$TLS" holding 0
expect "... and the no-role client is still denied" 5 "exception 01"
if kill -0 "$SERVER_PID" 2>/dev/null; then
    ok "the server survived every client above"
else
    STATUS=dead OUT='' ERR=$(tail -n 5 "$LOG")
    fail "the server survived every client above"
fi
# Several requests in separate TLS records of one TCP send: with read-ahead the later records
# wait inside OpenSSL, where no socket event announces them; every one must be answered.
for version in 1.3 1.2; do
    records=$(/usr/bin/python3 "$here/raw_records.py" 127.0.0.1 "${TLS##*:}" "$pki/ca/ca.crt" \
        "$pki/operator.crt" "$pki/operator.key" "$version" 5 2>&1)
    if grep -q "answers: 5 transactions: \[1, 2, 3, 4, 5\]" <<<"$records"; then
        ok "TLS $version: 5 requests in 5 records of one send, all answered in order"
    else
        STATUS=- OUT=$records ERR=
        fail "TLS $version: 5 requests in 5 records of one send, all answered in order"
    fi
done
check "policy server: stops on SIGTERM with status 0" stop_server

# ====================================================================================
# A TLS listener without any policy: a warning once, and every TLS request denied.
start_tls_server nopolicy --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --workers 2 \
    --cert "$pki/server.crt" --key "$pki/server.key" --ca "$pki/ca/ca.crt"
count=$(grep -cE "warning +no_policy reason=\"no policy configured: every request over TLS is denied with exception 01" "$LOG")
if [ "$count" = 1 ]; then
    ok "no policy: the no_policy warning, once (with 2 workers)"
else
    STATUS=$count OUT='' ERR=$(cat "$LOG")
    fail "no policy: the no_policy warning, once (with 2 workers)"
fi
mark_log
as operator read "$TLS" holding 0
expect_one_line "no policy: an operator's TLS read is denied with 01" 5 "exception 01 illegal function"
expect_log "no policy: the denial is audited" \
    "denied reason=\"role 'operator' from 127\.0\.0\.1:[0-9]+: FC 3 on unit 1 denied: no policy configured\""
as engineer write "$TLS" holding 0 1
expect "no policy: an engineer's TLS write is denied with 01" 5 "exception 01 illegal function"
run write "$PLAIN" holding 0 4
expect "no policy: plain requests are served" 0 "wrote 1 holding register"
count=$(grep -c "no_policy" "$LOG")
if [ "$count" = 1 ]; then
    ok "no policy: still one no_policy line after the requests"
else
    STATUS=$count OUT='' ERR=$(cat "$LOG")
    fail "no policy: still one no_policy line after the requests"
fi
check "no-policy server: stops on SIGTERM with status 0" stop_server

# ====================================================================================
# systemd socket activation with two workers: the socket whose unit says FileDescriptorName=tls
# is a Modbus/TCP Security listener in every worker, the other one plain.
write_config </dev/null
LOG=$scratch/activated.log
/usr/bin/python3 "$here/../lib/socket_activate.py" --names modbus:tls "$LOG" \
    "$scratch/activated.ports" "$mbsec" serve --config "$config" --workers 2 &
SERVER_PID=$!
pids+=("$SERVER_PID")
if wait_for "$LOG" " started "; then
    PLAIN=127.0.0.1:$(sed -n 1p "$scratch/activated.ports")
    TLS=127.0.0.1:$(sed -n 2p "$scratch/activated.ports")
    run write "$PLAIN" holding 0 77
    expect "activation: the socket named modbus serves plain Modbus/TCP" 0 "wrote 1 holding register"
    activated_reads=0
    for _ in 1 2 3 4 5 6; do
        as operator read "$TLS" holding 0 --json
        [ "$STATUS" = 0 ] && printf '%s\n' "$OUT" | grep -q '"values":\[77\]' &&
            activated_reads=$((activated_reads + 1))
    done
    STATUS=$activated_reads
    expect "activation: six TLS reads on the socket named tls, whichever worker accepts" 6
    run read "$TLS" holding 0 --timeout 2000
    [ "$STATUS" != 0 ]
    STATUS=$?
    expect "activation: a plain request on the socket named tls gets no answer" 0
    check "activated server: stops on SIGTERM with status 0" stop_server
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "activation: serve starts on the sockets systemd passed"
fi

# ====================================================================================
# Many reloads: every one applies the policy it loaded, on every worker (a CRL rotated daily
# with SIGHUP makes 64 reloads in about two months). Plain clients go through the policy
# (authorize_plain); the file alternates between a policy that lets them write holding register
# 10 and one that denies it. 70 reloads, each waited for by its "reloaded" line; after each of
# the last four, writes on six connections of their own (both workers take some) must meet the
# policy loaded last.
many=$scratch/many-reloads.yaml
many_reloads_config() { # allow|deny: the policy for holding register 10, in place atomically
    cat >"$many.new" <<YAML
listen: 127.0.0.1:0
authorize_plain: true
policy:
  - name: plain-write-10
    sources: [127.0.0.1]
    tls: false
    tables: { holding_registers: 10 }
    action: $1
YAML
    mv "$many.new" "$many"
}
# reloads_logged: how many "reloaded" lines the log has.
reloads_logged() { grep -cE "info +reloaded " "$LOG"; }
many_reloads_config allow
start_device many-reloads --config "$many" --workers 2
LOG=$scratch/many-reloads.log SERVER_PID=$DEVICE_PID
run write "$DEVICE" holding 10 5
expect "many reloads: before any, the policy lets a plain client write register 10" 0 \
    "wrote 1 holding register at 10"
reload_count=70
for ((reload = 1; reload <= reload_count; reload++)); do
    action=allow
    [ $((reload % 2)) = 1 ] && action=deny
    many_reloads_config "$action"
    kill -HUP "$SERVER_PID"
    deadline=$((SECONDS + DEADLINE))
    while [ "$(reloads_logged)" -lt "$reload" ] && [ $SECONDS -lt $deadline ]; do sleep 0.01; done
    if [ "$(reloads_logged)" -lt "$reload" ]; then
        STATUS=- OUT='' ERR=$(tail -n 5 "$LOG")
        fail "many reloads: reload $reload was never logged as reloaded"
        break
    fi
    [ $reload -gt $((reload_count - 4)) ] || continue
    met=0
    for connection in 1 2 3 4 5 6; do
        run write "$DEVICE" holding 10 5
        if [ "$action" = allow ]; then
            [ "$STATUS" = 0 ] && met=$((met + 1))
        else
            [ "$STATUS" = 5 ] && grep -q "exception 01" <<<"$ERR" && met=$((met + 1))
        fi
    done
    if [ $met = 6 ]; then
        ok "many reloads: after reload $reload (to $action) all 6 writes, one connection each, meet it"
    else
        fail "many reloads: after reload $reload (to $action) only $met of 6 writes met it (last below)"
    fi
done
applied=$(grep -cE "info +reloaded reason=\"limits, logging, policy applied" "$LOG")
if [ "$applied" = "$reload_count" ]; then
    ok "many reloads: each of the $reload_count reloaded lines says the policy was applied"
else
    STATUS=$applied OUT='' ERR=$(grep -E "reloaded" "$LOG" | tail -n 3)
    fail "many reloads: each of the $reload_count reloaded lines says the policy was applied"
fi
check "many-reloads server: stops on SIGTERM with status 0" stop_server

# ====================================================================================
# The refusing actions other than deny: close (examples/policy.yaml closes the connection of a
# certificate without a role) and drop (no answer at all).
cat >"$scratch/close.yaml" <<'YAML'
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
policy:
  - name: no-role-close
    roles: [none]
    tls: true
    action: close
  - name: operator-writes-dropped
    roles: [operator]
    access: write
    action: drop
  - name: operators-read
    roles: [operator]
    preset: read-only
    action: allow
YAML
start_tls_server close --config "$scratch/close.yaml"
mark_log
as norole read "$TLS" holding 0 --timeout 3000
expect_one_line "action close: the no-role client sees the connection closed (exit 6), not a timeout" 6 \
    "closed the connection|reset"
expect_log "action close: audited as closed by the rule" \
    "denied reason=\"no role from 127\.0\.0\.1: read holding register 0 on unit 1 \(FC 3\) connection closed by rule 'no-role-close'\""
# After a rule closes the connection nothing more is served, not even requests already read.
records=$(/usr/bin/python3 "$here/raw_records.py" 127.0.0.1 "${TLS##*:}" "$pki/ca/ca.crt" \
    "$pki/norole.crt" "$pki/norole.key" 1.3 4 2>&1)
if grep -q "answers: 0 " <<<"$records"; then
    ok "action close: requests after the closing one, in the same send, are not served"
else
    STATUS=- OUT=$records ERR=
    fail "action close: requests after the closing one, in the same send, are not served"
fi
as operator write "$TLS" holding 0 1 --timeout 300
expect_one_line "action drop: no answer, the client times out (exit 4)" 4 "no answer from $TLS within 300 ms"
as operator read "$TLS" holding 0 --json
expect "action drop: the dropped write did not happen" 0 '"values":\[0\]'
check "close/drop server: stops on SIGTERM with status 0" stop_server

# ====================================================================================
# Reload rotates TLS files: a server of its own (its own server certificate, key and CRL files,
# the same CA), two operators polling it over TLS, alice and bob. On SIGHUP after alice's
# revocation her connection is closed and her handshakes fail, while bob's connection goes on;
# a garbage key refuses the reload (TLS still served with the old files); a new server
# certificate is what new clients see, while bob's established connection goes on.
rot=$scratch/rotate
mkdir -p "$rot"
certify client --ca-dir "$pki/ca" --out "$pki/alice" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/bob" --role operator
cp "$pki/server.crt" "$pki/rotate-server.crt"
cp "$pki/server.key" "$pki/rotate-server.key"
certify crl --ca-dir "$pki/ca" --out "$pki/rotate.crl"
if [ "$pki_ok" = 1 ]; then
    ok "rotate: clients alice and bob, a copy of the server certificate, a CRL"
else
    STATUS=- OUT=$(cat "$scratch/pki.out") ERR=''
    fail "rotate: clients alice and bob, a copy of the server certificate, a CRL"
fi
cat >"$scratch/rotate.yaml" <<'YAML'
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/rotate-server.crt
  key: pki/rotate-server.key
  ca: pki/ca/ca.crt
  crl: pki/rotate.crl
policy:
  - name: operators-read
    roles: [operator]
    preset: read-only
    action: allow
YAML
start_tls_server rotate --config "$scratch/rotate.yaml"
run write "$PLAIN" holding 0 4242 17
expect "rotate: plain write of 4242, 17 to registers 0..1" 0 "wrote 2 holding registers at 0"

# shellcheck source=../lib/rotate.sh
. "$here/../lib/rotate.sh"

poll_start alice || echo "# alice's poll printed no reading"
alice_pid=$POLL_PID
poll_start bob || echo "# bob's poll printed no reading"
bob_pid=$POLL_PID
alice_conn=$(connection_of alice)
bob_conn=$(connection_of bob)
[ -n "$alice_conn" ] && [ -n "$bob_conn" ] && [ "$alice_conn" != "$bob_conn" ] &&
    [ "$(poll_count "$rot/alice.out" values)" -gt 0 ] && [ "$(poll_count "$rot/bob.out" values)" -gt 0 ]
rotate_check $? "rotate: alice and bob poll over TLS, on connections $alice_conn and $bob_conn" \
    "$rot/bob.out"

# ---- alice revoked: a new CRL over the configured one, SIGHUP ----
certify revoke --ca-dir "$pki/ca" "$pki/alice.crt"
certify crl --ca-dir "$pki/ca" --out "$pki/rotate.crl" --force
mark_log
kill -HUP "$SERVER_PID"
expect_log "rotate: SIGHUP closes alice's connection: tls_revoked, certificate revoked" \
    "warning +tls_revoked peer=127\.0\.0\.1:[0-9]+ connection=$alice_conn listener=$TLS reason=\"client certificate no longer accepted \(new CA or CRL\): certificate revoked\""
expect_log "rotate: the reloaded line names the TLS files" \
    "info +reloaded reason=\"limits, logging, policy, front TLS \(certificate, key, CA, CRL\) applied"
revoked_at=$(log_time "tls_revoked .*connection=$alice_conn ")
reloaded_at=$(log_time "info +reloaded ")
expect_log "rotate: alice's poll reconnects, and her handshake fails as revoked" \
    "warning +tls_failed .*reason=\"TLS handshake failed: certificate revoked"
wait_for "$rot/alice.out" '"error":"TLS with .* failed: certificate revoked'
poll_stop "$alice_pid"
[ -n "$revoked_at" ] && [ "$(poll_count "$rot/alice.out" error "$revoked_at")" -gt 0 ] &&
    grep -q '"error":"TLS with .* failed: certificate revoked' "$rot/alice.out"
rotate_check $? "rotate: alice's poll fails after the reload (connection closed, then revoked)" \
    "$rot/alice.out"
[ -n "$revoked_at" ] && [ "$(poll_count "$rot/alice.out" values "$revoked_at")" = 0 ]
rotate_check $? "rotate: alice's poll has no reading stamped after $revoked_at" "$rot/alice.out"
[ "$POLL_STATUS" != 0 ]
rotate_check $? "rotate: alice's poll exits non-zero (its last poll failed)" "$rot/alice.out"
if tail -n +$((MARK + 1)) "$LOG" | grep -qE "tls_revoked .*connection=$bob_conn "; then
    STATUS=- OUT='' ERR=$(grep tls_revoked "$LOG")
    fail "rotate: bob's connection is not revoked"
else
    ok "rotate: bob's connection is not revoked"
fi
as alice read "$TLS" holding 0
expect_one_line "rotate: a new read with alice's certificate: exit 3, revoked" 3 "revoked"
readings_after "$rot/bob.out" "$reloaded_at"
[ -n "$reloaded_at" ] && [ "$(poll_count "$rot/bob.out" values "$reloaded_at")" -gt 0 ]
rotate_check $? "rotate: bob's poll reads on after the reload ($reloaded_at)" "$rot/bob.out"

# ---- a garbage key: the reload is refused, the old files stay in force ----
cp "$pki/rotate-server.key" "$rot/server.key.good"
printf 'not a key\n' >"$pki/rotate-server.key"
mark_log
kill -HUP "$SERVER_PID"
expect_log "rotate: a garbage key: reload_refused, TLS: ..." \
    "error +reload_refused reason=\"TLS: .*the running configuration stays in force\""
refused_at=$(log_time "reload_refused ")
as bob read "$TLS" holding 0 2 --json
expect "rotate: after the refused reload bob's new TLS read works" 0 '"values":\[4242,17\]'
as alice read "$TLS" holding 0
expect "rotate: ... and alice is still refused (the new CRL stays in force)" 3 "revoked"
readings_after "$rot/bob.out" "$refused_at"
[ -n "$refused_at" ] && [ "$(poll_count "$rot/bob.out" values "$refused_at")" -gt 0 ]
rotate_check $? "rotate: bob's poll reads on after the refused reload ($refused_at)" "$rot/bob.out"
cp "$rot/server.key.good" "$pki/rotate-server.key"
mark_log
kill -HUP "$SERVER_PID"
expect_log "rotate: the key restored: reloaded with TLS" \
    "info +reloaded reason=\".*front TLS \(certificate, key, CA, CRL\) applied"

# ---- a new server certificate (same CA) over the configured files ----
old_serial=$(openssl x509 -in "$pki/rotate-server.crt" -noout -serial 2>/dev/null)
certify server --ca-dir "$pki/ca" --out "$pki/rotate-server" --ip 127.0.0.1 --force
new_serial=$(openssl x509 -in "$pki/rotate-server.crt" -noout -serial 2>/dev/null)
mark_log
kill -HUP "$SERVER_PID"
expect_log "rotate: a new server certificate: reloaded with TLS" \
    "info +reloaded reason=\".*front TLS \(certificate, key, CA, CRL\) applied"
rotated_at=$(log_time "info +reloaded ")
if command -v openssl >/dev/null 2>&1; then
    seen_serial=$(timeout "$DEADLINE" openssl s_client -connect "$TLS" -cert "$pki/bob.crt" \
        -key "$pki/bob.key" -CAfile "$pki/ca/ca.crt" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null)
    if [ -n "$new_serial" ] && [ "$seen_serial" = "$new_serial" ] && [ "$old_serial" != "$new_serial" ]; then
        ok "rotate: a new client sees the new server certificate ($new_serial)"
    else
        STATUS=- OUT="old $old_serial, new $new_serial, seen $seen_serial" ERR=''
        fail "rotate: a new client sees the new server certificate"
    fi
else
    echo "# no openssl command: the new server certificate's serial not checked"
fi
as bob read "$TLS" holding 0 2 --json
expect "rotate: bob's new read verifies the new certificate" 0 '"values":\[4242,17\]'
readings_after "$rot/bob.out" "$rotated_at"
[ -n "$rotated_at" ] && [ "$(poll_count "$rot/bob.out" values "$rotated_at")" -gt 0 ]
rotate_check $? "rotate: bob's established poll reads on after the rotation ($rotated_at)" \
    "$rot/bob.out"
! grep -qE "connection_closed .*connection=$bob_conn " "$LOG"
rotate_check $? "rotate: bob's connection $bob_conn stayed open through the four reloads" "$LOG"
mark_log
poll_stop "$bob_pid"
[ "$(poll_count "$rot/bob.out" values)" -ge 3 ] &&
    [ "$(poll_count "$rot/bob.out" values)" = "$(grep -c '"values":\[4242,17\]' "$rot/bob.out")" ] &&
    [ "$(poll_count "$rot/bob.out" error)" = 0 ] && [ "$POLL_STATUS" = 0 ]
rotate_check $? "rotate: bob's poll: every reading 4242, 17, not one failure, exit 0" "$rot/bob.out"
expect_log "rotate: bob's connection closes when his poll stops" \
    "connection_closed .*connection=$bob_conn .*reason=\"peer closed\""
check "rotate server: stops on SIGTERM with status 0" stop_server

# ====================================================================================
# A TLS listener without its certificate is a usage error, said before anything listens.
run serve --tls-listen 127.0.0.1:0
expect_one_line "serve --tls-listen without --cert: exit 2, says what is missing" 2 \
    "^mbsec serve: a TLS listener needs a certificate, its key and the CA of the clients \(--cert, --key, --ca"
run serve --tls-listen 127.0.0.1:0 --cert "$pki/server.crt" --key "$pki/server.key"
expect_one_line "serve --tls-listen without --ca: exit 2" 2 "needs a certificate, its key and the CA"
run serve --tls-listen 127.0.0.1:0 --cert "$pki/server.crt" --key "$pki/operator.key" \
    --ca "$pki/ca/ca.crt"
expect_one_line "serve with a key that is not the certificate's: exit 2" 2 "^mbsec serve: TLS: .*key"

