/* SPDX-License-Identifier: MIT */
/*
 * The public role API of tls.h (mb_role_check(), mb_role_from_certificate()), linked against the
 * shared library so that what `mbsec cert` and other programs use is proven exported. The
 * certificates are built here in memory with libcrypto and handed over as DER.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/tls.h"

static EVP_PKEY *key;

/* A signed certificate, as DER in *der (OPENSSL_free it), with a role extension holding
 * value[0..length) when value is not NULL. Returns the DER length. */
static int certificate_der(const uint8_t *value, size_t length, unsigned char **der) {
    X509 *built = X509_new();
    CHECK(built != NULL);
    X509_set_version(built, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(built), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(built), "CN", MBSTRING_ASC,
                               (const unsigned char *)"role api test", -1, -1, 0);
    X509_set_issuer_name(built, X509_get_subject_name(built));
    X509_gmtime_adj(X509_getm_notBefore(built), 0);
    X509_gmtime_adj(X509_getm_notAfter(built), 3600);
    X509_set_pubkey(built, key);
    if (value != NULL) {
        ASN1_OBJECT *oid = OBJ_txt2obj(MB_ROLE_OID, 1);
        ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
        CHECK(oid != NULL && data != NULL && ASN1_OCTET_STRING_set(data, value, (int)length));
        X509_EXTENSION *extension = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, data);
        CHECK(extension != NULL && X509_add_ext(built, extension, -1) == 1);
        X509_EXTENSION_free(extension);
        ASN1_OCTET_STRING_free(data);
        ASN1_OBJECT_free(oid);
    }
    CHECK(X509_sign(built, key, EVP_sha256()) > 0);
    *der = NULL;
    int der_length = i2d_X509(built, der);
    CHECK(der_length > 0);
    X509_free(built);
    return der_length;
}

TEST(check_accepts_utf8_roles_up_to_127_bytes) {
    char diagnostic[160];
    CHECK_EQ(mb_role_check("Operator", 8, diagnostic, sizeof diagnostic), 1);
    CHECK_STR(diagnostic, "");
    CHECK_EQ(mb_role_check("Bediener\xC3\xBC", 10, NULL, 0), 1);
    char long_role[MB_ROLE_MAX + 1];
    memset(long_role, 'r', sizeof long_role);
    CHECK_EQ(mb_role_check(long_role, MB_ROLE_MAX, diagnostic, sizeof diagnostic), 1);
    CHECK_EQ(mb_role_check(long_role, MB_ROLE_MAX + 1, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role is 128 bytes long, more than 127");
}

TEST(check_refuses_empty_roles_control_characters_and_invalid_utf8) {
    char diagnostic[160];
    CHECK_EQ(mb_role_check("", 0, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role is empty");
    CHECK_EQ(mb_role_check("A\tB", 3, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role contains control character U+0009");
    CHECK_EQ(mb_role_check("A\0B", 3, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role contains a NUL byte");
    CHECK_EQ(mb_role_check("\xC3", 1, diagnostic, sizeof diagnostic), 0);
    CHECK_STR(diagnostic, "role is not valid UTF-8");
}

TEST(reads_the_role_of_a_der_certificate) {
    static const uint8_t value[] = {0x0C, 0x08, 'O', 'p', 'e', 'r', 'a', 't', 'o', 'r'};
    unsigned char *der;
    int length = certificate_der(value, sizeof value, &der);
    char role[MB_ROLE_MAX + 1] = "x", diagnostic[160] = "stale";
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length, role, sizeof role, diagnostic,
                                      sizeof diagnostic),
             1);
    CHECK_STR(role, "Operator");
    CHECK_STR(diagnostic, "");
    OPENSSL_free(der);
}

TEST(says_why_a_der_certificate_has_no_role) {
    static const uint8_t octets[] = {0x04, 0x02, 'O', 'p'};
    unsigned char *der;
    char role[MB_ROLE_MAX + 1] = "x", diagnostic[160];
    int length = certificate_der(NULL, 0, &der);
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length, role, sizeof role, diagnostic,
                                      sizeof diagnostic),
             0);
    CHECK_STR(role, "");
    CHECK_STR(diagnostic, "no role extension");
    OPENSSL_free(der);
    length = certificate_der(octets, sizeof octets, &der);
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length, role, sizeof role, diagnostic,
                                      sizeof diagnostic),
             0);
    CHECK_STR(diagnostic, "role extension holds an OCTET STRING, not a UTF8String");
    OPENSSL_free(der);
}

TEST(returns_einval_for_what_is_not_one_der_certificate) {
    static const uint8_t value[] = {0x0C, 0x01, 'R'};
    unsigned char *der;
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    int length = certificate_der(value, sizeof value, &der);
    /* Cut short, or with a byte after it. */
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length - 1, role, sizeof role, diagnostic,
                                      sizeof diagnostic),
             MB_EINVAL);
    unsigned char *longer = OPENSSL_malloc((size_t)length + 1);
    CHECK(longer != NULL);
    memcpy(longer, der, (size_t)length);
    longer[length] = 0x00;
    CHECK_EQ(mb_role_from_certificate(longer, (size_t)length + 1, role, sizeof role, diagnostic,
                                      sizeof diagnostic),
             MB_EINVAL);
    CHECK_EQ(mb_role_from_certificate(NULL, 0, role, sizeof role, NULL, 0), MB_EINVAL);
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length, NULL, 16, NULL, 0), MB_EINVAL);
    CHECK_EQ(mb_role_from_certificate(der, (size_t)length, role, 0, NULL, 0), MB_EINVAL);
    OPENSSL_free(longer);
    OPENSSL_free(der);
}

int main(void) {
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    RUN(check_accepts_utf8_roles_up_to_127_bytes);
    RUN(check_refuses_empty_roles_control_characters_and_invalid_utf8);
    RUN(reads_the_role_of_a_der_certificate);
    RUN(says_why_a_der_certificate_has_no_role);
    RUN(returns_einval_for_what_is_not_one_der_certificate);
    EVP_PKEY_free(key);
    return harness_result();
}
