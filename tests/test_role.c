/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP Security role extension (OID 1.3.6.1.4.1.50316.802.1, one UTF8String), read by
 * mb__role_from_certificate() from certificates built here in memory, each with the extension's
 * value written out byte for byte, then encoded to DER and decoded again as a peer's certificate
 * would be.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "harness.h"
#include "mbsec/error.h"
#include "transport/role.h"

static EVP_PKEY *key;

/* A signed certificate with `count` role extensions, each holding value[0..length), after a
 * trip through DER. */
static X509 *certificate_with(const uint8_t *value, size_t length, int count) {
    X509 *built = X509_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(MB_ROLE_OID, 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    CHECK(built != NULL && oid != NULL && data != NULL);
    CHECK(ASN1_OCTET_STRING_set(data, value, (int)length) == 1);
    X509_set_version(built, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(built), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(built), "CN", MBSTRING_ASC,
                               (const unsigned char *)"role test", -1, -1, 0);
    X509_set_issuer_name(built, X509_get_subject_name(built));
    X509_gmtime_adj(X509_getm_notBefore(built), 0);
    X509_gmtime_adj(X509_getm_notAfter(built), 3600);
    X509_set_pubkey(built, key);
    for (int i = 0; i < count; i++) {
        X509_EXTENSION *extension = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, data);
        CHECK(extension != NULL && X509_add_ext(built, extension, -1) == 1);
        X509_EXTENSION_free(extension);
    }
    CHECK(X509_sign(built, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int der_length = i2d_X509(built, &der);
    CHECK(der_length > 0);
    const unsigned char *cursor = der;
    X509 *decoded = d2i_X509(NULL, &cursor, der_length);
    CHECK(decoded != NULL);
    OPENSSL_free(der);
    X509_free(built);
    ASN1_OCTET_STRING_free(data);
    ASN1_OBJECT_free(oid);
    return decoded;
}

/* Reads the role of a certificate with one extension holding the given bytes. */
static int role_of(const uint8_t *value, size_t length, char *role, size_t role_size,
                   char *diagnostic, size_t diagnostic_size) {
    X509 *certificate = certificate_with(value, length, 1);
    int result =
        mb__role_from_certificate(certificate, role, role_size, diagnostic, diagnostic_size);
    X509_free(certificate);
    return result;
}

#define CHECK_NO_ROLE(why, ...)                                                                    \
    do {                                                                                           \
        char role_[MB_ROLE_MAX + 1] = "x", diagnostic_[160] = "";                                  \
        CHECK_EQ(                                                                                  \
            role_of(BYTES(__VA_ARGS__), role_, sizeof role_, diagnostic_, sizeof diagnostic_), 0); \
        CHECK_STR(role_, "");                                                                      \
        CHECK_STR(diagnostic_, why);                                                               \
    } while (0)

/* ---- a role ---- */

TEST(reads_a_utf8string_role) {
    char role[MB_ROLE_MAX + 1], diagnostic[160] = "stale";
    CHECK_EQ(role_of(BYTES(0x0C, 0x08, 'O', 'p', 'e', 'r', 'a', 't', 'o', 'r'), role, sizeof role,
                     diagnostic, sizeof diagnostic),
             1);
    CHECK_STR(role, "Operator");
    CHECK_STR(diagnostic, "");
}

TEST(reads_a_role_beyond_ascii) {
    /* "Opérateur": é is C3 A9. */
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    CHECK_EQ(role_of(BYTES(0x0C, 0x0A, 'O', 'p', 0xC3, 0xA9, 'r', 'a', 't', 'e', 'u', 'r'), role,
                     sizeof role, diagnostic, sizeof diagnostic),
             1);
    CHECK_STR(role, "Op\xC3\xA9rateur");
}

TEST(reads_a_role_of_one_byte_and_of_127_bytes) {
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    CHECK_EQ(role_of(BYTES(0x0C, 0x01, 'E'), role, sizeof role, diagnostic, sizeof diagnostic), 1);
    CHECK_STR(role, "E");
    uint8_t value[2 + 127];
    value[0] = 0x0C;
    value[1] = 0x7F;
    memset(value + 2, 'r', 127);
    CHECK_EQ(role_of(value, sizeof value, role, sizeof role, diagnostic, sizeof diagnostic), 1);
    CHECK_EQ(strlen(role), 127);
}

TEST(reads_the_largest_code_point) {
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    CHECK_EQ(role_of(BYTES(0x0C, 0x04, 0xF4, 0x8F, 0xBF, 0xBF), role, sizeof role, diagnostic,
                     sizeof diagnostic),
             1);
    CHECK_STR(role, "\xF4\x8F\xBF\xBF");
}

TEST(reads_a_role_marked_critical) {
    /* The specification says non-critical; a critical one still carries a role. */
    X509 *certificate = certificate_with(BYTES(0x0C, 0x02, 'O', 'p'), 1);
    X509_EXTENSION_set_critical(X509_get_ext(certificate, 0), 1);
    char role[16], diagnostic[160];
    CHECK_EQ(
        mb__role_from_certificate(certificate, role, sizeof role, diagnostic, sizeof diagnostic),
        1);
    CHECK_STR(role, "Op");
    X509_free(certificate);
}

TEST(accepts_no_diagnostic_buffer) {
    char role[16];
    X509 *certificate = certificate_with(BYTES(0x0C, 0x02, 'O', 'p'), 1);
    CHECK_EQ(mb__role_from_certificate(certificate, role, sizeof role, NULL, 0), 1);
    X509_free(certificate);
    certificate = certificate_with(BYTES(0x04, 0x02, 'O', 'p'), 1);
    CHECK_EQ(mb__role_from_certificate(certificate, role, sizeof role, NULL, 0), 0);
    X509_free(certificate);
}

/* ---- no role ---- */

TEST(says_no_role_extension_without_one) {
    X509 *certificate = certificate_with(BYTES(0x00), 0);
    char role[16] = "x", diagnostic[160];
    CHECK_EQ(
        mb__role_from_certificate(certificate, role, sizeof role, diagnostic, sizeof diagnostic),
        0);
    CHECK_STR(role, "");
    CHECK_STR(diagnostic, "no role extension");
    X509_free(certificate);
}

TEST(names_an_octet_string) {
    CHECK_NO_ROLE("role extension holds an OCTET STRING, not a UTF8String", 0x04, 0x08, 'O', 'p',
                  'e', 'r', 'a', 't', 'o', 'r');
}

TEST(names_other_string_types) {
    CHECK_NO_ROLE("role extension holds a PrintableString, not a UTF8String", 0x13, 0x02, 'O', 'p');
    CHECK_NO_ROLE("role extension holds an IA5String, not a UTF8String", 0x16, 0x02, 'O', 'p');
    CHECK_NO_ROLE("role extension holds a BMPString, not a UTF8String", 0x1E, 0x04, 0x00, 'O', 0x00,
                  'p');
    CHECK_NO_ROLE("role extension holds an INTEGER, not a UTF8String", 0x02, 0x01, 0x05);
    CHECK_NO_ROLE("role extension holds an element with tag 0xA0, not a UTF8String", 0xA0, 0x00);
}

TEST(counts_the_values_of_a_sequence) {
    CHECK_NO_ROLE("role extension holds 2 values in a SEQUENCE", 0x30, 0x14, 0x0C, 0x08, 'O', 'p',
                  'e', 'r', 'a', 't', 'o', 'r', 0x0C, 0x08, 'E', 'n', 'g', 'i', 'n', 'e', 'e', 'r');
    CHECK_NO_ROLE("role extension holds 0 values in a SEQUENCE", 0x30, 0x00);
    CHECK_NO_ROLE("role extension holds 3 values in a SET", 0x31, 0x09, 0x0C, 0x01, 'A', 0x0C, 0x01,
                  'B', 0x0C, 0x01, 'C');
}

TEST(names_one_value_wrapped_in_a_sequence_or_set) {
    CHECK_NO_ROLE("role extension holds a SEQUENCE of one UTF8String, not a bare UTF8String", 0x30,
                  0x04, 0x0C, 0x02, 'O', 'p');
    CHECK_NO_ROLE("role extension holds a SET of one OCTET STRING, not a bare UTF8String", 0x31,
                  0x04, 0x04, 0x02, 'O', 'p');
}

TEST(says_an_empty_role_is_empty) {
    CHECK_NO_ROLE("role is empty", 0x0C, 0x00);
}

TEST(refuses_invalid_utf8) {
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x02, 0xC3, 0x28);       /* bad continuation */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x02, 0xC0, 0xAF);       /* overlong '/' */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x03, 0xE0, 0x80, 0xAF); /* overlong */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x03, 0xED, 0xA0, 0x80); /* surrogate */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x04, 0xF4, 0x90, 0x80, 0x80); /* >10FFFF */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x02, 'O', 0xC3);              /* cut short */
    CHECK_NO_ROLE("role is not valid UTF-8", 0x0C, 0x01, 0xFF);
}

TEST(refuses_nul_and_control_characters) {
    /* "Engineer\0x" would read as "Engineer" in C. */
    CHECK_NO_ROLE("role contains a NUL byte", 0x0C, 0x0A, 'E', 'n', 'g', 'i', 'n', 'e', 'e', 'r',
                  0x00, 'x');
    CHECK_NO_ROLE("role contains control character U+000A", 0x0C, 0x03, 'O', 'p', 0x0A);
    CHECK_NO_ROLE("role contains control character U+007F", 0x0C, 0x01, 0x7F);
    CHECK_NO_ROLE("role contains control character U+0085", 0x0C, 0x02, 0xC2, 0x85);
}

TEST(refuses_bytes_after_the_utf8string) {
    CHECK_NO_ROLE("role extension has 1 byte after its UTF8String", 0x0C, 0x02, 'O', 'p', 0x00);
    CHECK_NO_ROLE("role extension has 4 bytes after its UTF8String", 0x0C, 0x02, 'O', 'p', 0x0C,
                  0x02, 'O', 'p');
}

TEST(refuses_what_is_not_der) {
    CHECK_NO_ROLE("role extension is not valid DER", 0x0C, 0x09, 'O', 'p', 'e', 'r', 'a', 't', 'o',
                  'r'); /* truncated */
    CHECK_NO_ROLE("role extension is not valid DER", 0x0C);
    CHECK_NO_ROLE("role extension is not valid DER", 0x0C, 0x80, 'O', 0x00, 0x00); /* BER */
    CHECK_NO_ROLE("role extension is not valid DER", 0x0C, 0x81, 0x02, 'O', 'p');  /* long form */
    CHECK_NO_ROLE("role extension is not valid DER", 0x0C, 0x82, 0x00, 0x02, 'O', 'p');
    CHECK_NO_ROLE("role extension is not valid DER", 0x1F, 0x22, 0x01, 'O');       /* high tag */
    CHECK_NO_ROLE("role extension is not valid DER", 0x30, 0x03, 0x0C, 0x02, 'O'); /* inside */
    CHECK_NO_ROLE("role extension is not valid DER", 0x2C, 0x80, 0x00, 0x00);      /* constructed */
}

TEST(refuses_an_empty_extension_value) {
    X509 *certificate = certificate_with((const uint8_t *)"", 0, 1);
    char role[16], diagnostic[160];
    CHECK_EQ(
        mb__role_from_certificate(certificate, role, sizeof role, diagnostic, sizeof diagnostic),
        0);
    CHECK_STR(diagnostic, "role extension is not valid DER");
    X509_free(certificate);
}

TEST(refuses_a_role_longer_than_127_bytes) {
    uint8_t value[3 + 128];
    value[0] = 0x0C;
    value[1] = 0x81;
    value[2] = 0x80;
    memset(value + 3, 'r', 128);
    char role[256], diagnostic[160];
    CHECK_EQ(role_of(value, sizeof value, role, sizeof role, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role is 128 bytes long, more than 127");
}

TEST(refuses_a_role_longer_than_the_callers_buffer) {
    char role[4] = "x", diagnostic[160];
    CHECK_EQ(role_of(BYTES(0x0C, 0x04, 'O', 'p', 'e', 'r'), role, sizeof role, diagnostic,
                     sizeof diagnostic),
             0);
    CHECK_STR(role, "");
    CHECK_STR(diagnostic, "role is 4 bytes long, more than 3");
    CHECK_EQ(
        role_of(BYTES(0x0C, 0x03, 'O', 'p', 'e'), role, sizeof role, diagnostic, sizeof diagnostic),
        1);
    CHECK_STR(role, "Ope");
}

TEST(refuses_two_role_extensions) {
    X509 *certificate = certificate_with(BYTES(0x0C, 0x02, 'O', 'p'), 2);
    char role[16], diagnostic[160];
    CHECK_EQ(
        mb__role_from_certificate(certificate, role, sizeof role, diagnostic, sizeof diagnostic),
        0);
    CHECK_STR(diagnostic, "certificate holds 2 role extensions");
    X509_free(certificate);
}

TEST(truncates_the_diagnostic_to_its_buffer) {
    char role[16], diagnostic[12];
    CHECK_EQ(role_of(BYTES(0x04, 0x02, 'O', 'p'), role, sizeof role, diagnostic, sizeof diagnostic),
             0);
    CHECK_STR(diagnostic, "role extens");
}

/* ---- arguments ---- */

TEST(returns_einval_without_a_certificate_or_a_buffer) {
    char role[16], diagnostic[160];
    CHECK_EQ(mb__role_from_certificate(NULL, role, sizeof role, diagnostic, sizeof diagnostic),
             MB_EINVAL);
    X509 *certificate = certificate_with(BYTES(0x0C, 0x02, 'O', 'p'), 1);
    CHECK_EQ(mb__role_from_certificate(certificate, NULL, 16, diagnostic, sizeof diagnostic),
             MB_EINVAL);
    CHECK_EQ(mb__role_from_certificate(certificate, role, 0, diagnostic, sizeof diagnostic),
             MB_EINVAL);
    X509_free(certificate);
}

int main(void) {
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    RUN(reads_a_utf8string_role);
    RUN(reads_a_role_beyond_ascii);
    RUN(reads_a_role_of_one_byte_and_of_127_bytes);
    RUN(reads_the_largest_code_point);
    RUN(reads_a_role_marked_critical);
    RUN(accepts_no_diagnostic_buffer);
    RUN(says_no_role_extension_without_one);
    RUN(names_an_octet_string);
    RUN(names_other_string_types);
    RUN(counts_the_values_of_a_sequence);
    RUN(names_one_value_wrapped_in_a_sequence_or_set);
    RUN(says_an_empty_role_is_empty);
    RUN(refuses_invalid_utf8);
    RUN(refuses_nul_and_control_characters);
    RUN(refuses_bytes_after_the_utf8string);
    RUN(refuses_what_is_not_der);
    RUN(refuses_an_empty_extension_value);
    RUN(refuses_a_role_longer_than_127_bytes);
    RUN(refuses_a_role_longer_than_the_callers_buffer);
    RUN(refuses_two_role_extensions);
    RUN(truncates_the_diagnostic_to_its_buffer);
    RUN(returns_einval_without_a_certificate_or_a_buffer);
    EVP_PKEY_free(key);
    return harness_result();
}
