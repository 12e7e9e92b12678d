/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP Security role parser (mb__role_from_certificate()) against any extension
 * value: the input becomes the value of extension 1.3.6.1.4.1.50316.802.1 of a certificate, as
 * a client could send it. Properties:
 *   - the parser answers 1 (a role) or 0 (none, with a diagnostic), never anything else;
 *   - a role is returned exactly when the value is one DER UTF8String (short-form length, no
 *     trailing bytes) whose content passes mb_role_check(), and the role is that content;
 *   - without a role, the role buffer is empty and the diagnostic is not.
 */
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "transport/role.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096)
        return 0;
    X509 *certificate = X509_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(MB_ROLE_OID, 1);
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    FUZZ_CHECK(certificate != NULL && oid != NULL && value != NULL);
    FUZZ_CHECK(ASN1_OCTET_STRING_set(value, data, (int)size) == 1);
    X509_EXTENSION *extension = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, value);
    FUZZ_CHECK(extension != NULL && X509_add_ext(certificate, extension, -1) == 1);

    char role[MB_ROLE_MAX + 1], diagnostic[160];
    memset(role, 'x', sizeof role);
    int found =
        mb__role_from_certificate(certificate, role, sizeof role, diagnostic, sizeof diagnostic);
    FUZZ_CHECK(found == 0 || found == 1);

    int well_formed = size >= 2 && data[0] == 0x0C && data[1] < 0x80 &&
                      (size_t)data[1] + 2 == size &&
                      mb_role_check((const char *)data + 2, data[1], NULL, 0) == 1;
    FUZZ_CHECK(found == well_formed);
    if (found) {
        FUZZ_CHECK(strlen(role) == data[1] && memcmp(role, data + 2, data[1]) == 0);
        FUZZ_CHECK(diagnostic[0] == '\0');
    } else {
        FUZZ_CHECK(role[0] == '\0');
        FUZZ_CHECK(diagnostic[0] != '\0');
    }

    X509_EXTENSION_free(extension);
    ASN1_OCTET_STRING_free(value);
    ASN1_OBJECT_free(oid);
    X509_free(certificate);
    return 0;
}
