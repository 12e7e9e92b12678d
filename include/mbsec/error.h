/* SPDX-License-Identifier: MIT */
/*
 * mbsec error codes.
 *
 * Every mbsec function that can fail returns an int: 0 or a positive value on success, a
 * negative MB_E* code on failure. The library never sets errno for the caller. Each code has a
 * short name ("MB_ETRUNCATED") and a one-line message, both from the table below.
 *
 * A Modbus exception received from a peer is not an error: it is data, carried in
 * struct mb_response (see pdu.h).
 */
#ifndef MBSEC_ERROR_H
#define MBSEC_ERROR_H

#include "mbsec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X(name, value, message). The table is the one source of the enum, of mb_error_name() and of
 * mb_strerror(); add new codes at the end of their group and never renumber.
 */
#define MB_ERROR_MAP(X)                                                                     \
    /* arguments and buffers */                                                             \
    X(EINVAL, -1, "invalid argument")                                                       \
    X(ENOSPC, -2, "output buffer too small")                                                \
    /* PDU decoding; the server answers these with exception 01 or 03 */                    \
    X(ETRUNCATED, -10, "PDU shorter than its function code requires")                       \
    X(ELENGTH, -11, "PDU length disagrees with its function code or byte count")            \
    X(EQUANTITY, -12, "quantity outside the limits of the function code")                   \
    X(EBYTECOUNT, -13, "byte count disagrees with the quantity")                            \
    X(EVALUE, -14, "field holds a value the function code does not allow")                  \
    X(EFUNCTION, -15, "function code not defined by Modbus")                                \
    X(ESUBFUNCTION, -16, "diagnostics sub-function is reserved")                            \
    X(EMEI, -17, "encapsulated interface type not supported")                               \
    X(EEXCEPTION_CODE, -18, "exception response carries exception code 0")                  \
    /* MBAP framing */                                                                      \
    X(EMBAP_LENGTH, -20, "MBAP length outside 2..254; the stream cannot be resynchronised") \
    /* serial framing */                                                                    \
    X(EFRAME, -30, "serial frame too short or too long")                                    \
    X(ECRC, -31, "RTU CRC does not match")                                                  \
    X(ELRC, -32, "ASCII LRC does not match")                                                \
    X(ECHARACTER, -33, "ASCII frame holds a character that is not a hex digit")             \
    /* client side */                                                                       \
    X(EMISMATCH, -40, "response does not match its request")                                \
    /* system and runtime (transports, event loop, server, data model) */                   \
    X(ENOMEM, -50, "out of memory")                                                         \
    X(EAGAIN, -51, "operation would block; try again when the descriptor is ready")         \
    X(ECLOSED, -52, "connection closed by the peer")                                        \
    X(EIO, -53, "input/output error")                                                       \
    X(ETIMEDOUT, -54, "timed out")                                                          \
    X(ELIMIT, -55, "a configured limit was reached")                                        \
    X(EACCES, -56, "permission denied")                                                     \
    X(EADDRINUSE, -57, "address already in use")                                            \
    X(EADDRESS, -58, "address cannot be parsed or resolved")                                \
    X(ECONFIG, -59, "configuration is invalid")                                             \
    X(EPERSIST, -60, "persistence file is truncated, foreign or of another layout")         \
    X(ESYSTEM, -61, "system call failed")                                                   \
    X(ECONNECT, -62, "connection refused, unreachable or not established in time")          \
    X(ECANCELED, -63, "request canceled before it was answered")                            \
    X(ETLS, -64, "TLS handshake or record failed")                                          \
    X(EBUSY, -65, "device in use by another program")                                       \
    X(EUNSUPPORTED, -66, "device does not support the setting asked for")                   \
    X(EBACKOFF, -67, "unit skipped: it stopped answering and is backing off")

/* The error codes, MB_EINVAL and so on. */
enum mb_error {
#define MB_ERROR_ENUM_(name, value, message) MB_##name = (value),
    MB_ERROR_MAP(MB_ERROR_ENUM_)
#undef MB_ERROR_ENUM_
};

/*
 * The message for an error code, a static string without a trailing newline. Unknown codes,
 * and 0 or positive values, give a generic message; never NULL.
 */
MB_API const char *mb_strerror(int error);

/* The name of an error code ("MB_ECRC"), or "MB_E?" for an unknown code; never NULL. */
MB_API const char *mb_error_name(int error);

#ifdef __cplusplus
}
#endif

#endif
