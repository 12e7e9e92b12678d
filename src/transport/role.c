/* SPDX-License-Identifier: MIT */
/*
 * Reading the Modbus/TCP Security role from a certificate. The extension's value comes from the
 * peer, so it is read by hand as DER, one bounded tag-length-value at a time, rather than
 * handed to a generic decoder: that way each malformed shape gets a diagnostic naming what was
 * found, which is what a person debugging "why has this client no role" needs.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "mbsec/error.h"
#include "transport/role.h"

/* The OID's content octets, without its tag (06) and length (0B). */
static const unsigned char role_oid[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x83,
                                         0x89, 0x0C, 0x86, 0x22, 0x01};

enum {
    TAG_UTF8STRING = 0x0C,
    TAG_SEQUENCE = 0x30,
    TAG_SET = 0x31,
};

/* One DER tag-length-value. */
struct der_element {
    unsigned tag; /* the identifier octet: class, constructed bit and tag number */
    const unsigned char *content;
    size_t length; /* of the content */
    size_t size;   /* of the whole element, identifier and length octets included */
};

/* Reads the element at the start of data[0..available). Returns 0, or -1 when the bytes are
 * not one DER element: truncated, an indefinite length, a high tag number, a length in more
 * octets than needed. */
static int der_read(const unsigned char *data, size_t available, struct der_element *element) {
    if (available < 2 || (data[0] & 0x1F) == 0x1F)
        return -1;
    size_t header = 2;
    size_t length = data[1];
    if (length & 0x80) {
        size_t octets = length & 0x7F;
        if (octets == 0 || octets > 4 || available < 2 + octets || data[2] == 0)
            return -1;
        length = 0;
        for (size_t i = 0; i < octets; i++)
            length = length << 8 | data[2 + i];
        if (length < 0x80)
            return -1;
        header += octets;
    }
    if (length > available - header)
        return -1;
    element->tag = data[0];
    element->content = data + header;
    element->length = length;
    element->size = header + length;
    return 0;
}

/* The universal types a role might be found encoded as, by name. */
static const char *tag_name(unsigned tag) {
    switch (tag) {
    case 0x01:
        return "BOOLEAN";
    case 0x02:
        return "INTEGER";
    case 0x03:
        return "BIT STRING";
    case 0x04:
        return "OCTET STRING";
    case 0x05:
        return "NULL";
    case 0x06:
        return "OBJECT IDENTIFIER";
    case 0x0A:
        return "ENUMERATED";
    case 0x0C:
        return "UTF8String";
    case 0x12:
        return "NumericString";
    case 0x13:
        return "PrintableString";
    case 0x14:
        return "T61String";
    case 0x16:
        return "IA5String";
    case 0x17:
        return "UTCTime";
    case 0x18:
        return "GeneralizedTime";
    case 0x1A:
        return "VisibleString";
    case 0x1C:
        return "UniversalString";
    case 0x1E:
        return "BMPString";
    case 0x2C:
        return "constructed UTF8String";
    case TAG_SEQUENCE:
        return "SEQUENCE";
    case TAG_SET:
        return "SET";
    }
    return NULL;
}

/* "an" before OCTET STRING, INTEGER, IA5String; "a" before UTF8String, SEQUENCE. */
static const char *article(const char *name) {
    return strchr("AEIO", name[0]) != NULL ? "an" : "a";
}

/* Writes the reason into the caller's buffer, which may be absent. Returns 0 (no role). */
static int say(char *diagnostic, size_t diagnostic_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int say(char *diagnostic, size_t diagnostic_size, const char *format, ...) {
    if (diagnostic != NULL && diagnostic_size > 0) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(diagnostic, diagnostic_size, format, arguments);
        va_end(arguments);
    }
    return 0;
}

static int say_holds(char *diagnostic, size_t diagnostic_size, unsigned tag) {
    const char *name = tag_name(tag);
    if (name != NULL)
        return say(diagnostic, diagnostic_size, "role extension holds %s %s, not a UTF8String",
                   article(name), name);
    return say(diagnostic, diagnostic_size,
               "role extension holds an element with tag 0x%02X, not a UTF8String", tag);
}

/* The length of the UTF-8 sequence starting at text[0], or 0 if it is not valid UTF-8 (RFC
 * 3629). Sets *code_point. */
static size_t utf8_sequence(const unsigned char *text, size_t available, uint32_t *code_point) {
    unsigned char lead = text[0];
    size_t length;
    uint32_t value, minimum;
    if (lead < 0x80) {
        *code_point = lead;
        return 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        value = lead & 0x1Fu;
        minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        value = lead & 0x0Fu;
        minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        value = lead & 0x07u;
        minimum = 0x10000;
    } else {
        return 0;
    }
    if (available < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((text[i] & 0xC0) != 0x80)
            return 0;
        value = value << 6 | (text[i] & 0x3Fu);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *code_point = value;
    return length;
}

int mb_role_check(const char *role_text, size_t length, char *diagnostic, size_t diagnostic_size) {
    const unsigned char *role = (const unsigned char *)role_text;
    if (length == 0)
        return say(diagnostic, diagnostic_size, "role is empty");
    if (length > MB_ROLE_MAX)
        return say(diagnostic, diagnostic_size, "role is %zu bytes long, more than %d", length,
                   MB_ROLE_MAX);
    for (size_t i = 0; i < length;) {
        uint32_t code_point;
        size_t sequence = utf8_sequence(role + i, length - i, &code_point);
        if (sequence == 0)
            return say(diagnostic, diagnostic_size, "role is not valid UTF-8");
        if (code_point == 0)
            return say(diagnostic, diagnostic_size, "role contains a NUL byte");
        if (code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F))
            return say(diagnostic, diagnostic_size, "role contains control character U+%04X",
                       (unsigned)code_point);
        i += sequence;
    }
    if (diagnostic != NULL && diagnostic_size > 0)
        diagnostic[0] = '\0';
    return 1;
}

/* Reads the extension's value: exactly one UTF8String, nothing around it. */
static int role_from_value(const unsigned char *value, size_t value_length, char *role,
                           size_t role_size, char *diagnostic, size_t diagnostic_size) {
    struct der_element element;
    if (der_read(value, value_length, &element) != 0)
        return say(diagnostic, diagnostic_size, "role extension is not valid DER");
    if (element.tag == TAG_SEQUENCE || element.tag == TAG_SET) {
        /* Count what it holds, so that "2 values" can be said rather than just "a SEQUENCE". */
        size_t count = 0, offset = 0;
        struct der_element inner = {0};
        while (offset < element.length) {
            if (der_read(element.content + offset, element.length - offset, &inner) != 0)
                return say(diagnostic, diagnostic_size, "role extension is not valid DER");
            offset += inner.size;
            count++;
        }
        const char *kind = element.tag == TAG_SEQUENCE ? "SEQUENCE" : "SET";
        if (count != 1)
            return say(diagnostic, diagnostic_size, "role extension holds %zu values in a %s",
                       count, kind);
        const char *inner_name = tag_name(inner.tag);
        return say(diagnostic, diagnostic_size,
                   "role extension holds a %s of one %s, not a bare UTF8String", kind,
                   inner_name != NULL ? inner_name : "element of another type");
    }
    if (element.tag != TAG_UTF8STRING)
        return say_holds(diagnostic, diagnostic_size, element.tag);
    if (element.size != value_length)
        return say(diagnostic, diagnostic_size,
                   "role extension has %zu byte%s after its UTF8String",
                   value_length - element.size, value_length - element.size == 1 ? "" : "s");
    if (mb_role_check((const char *)element.content, element.length, diagnostic, diagnostic_size) !=
        1)
        return 0;
    if (element.length >= role_size)
        return say(diagnostic, diagnostic_size, "role is %zu bytes long, more than %zu",
                   element.length, role_size - 1);
    memcpy(role, element.content, element.length);
    role[element.length] = '\0';
    return 1;
}

int mb__role_from_certificate(X509 *certificate, char *role, size_t role_size, char *diagnostic,
                              size_t diagnostic_size) {
    if (certificate == NULL || role == NULL || role_size == 0)
        return MB_EINVAL;
    role[0] = '\0';
    if (diagnostic != NULL && diagnostic_size > 0)
        diagnostic[0] = '\0';

    /* Compared by content octets: looking the OID up by name would allocate an ASN1_OBJECT. */
    X509_EXTENSION *found = NULL;
    int found_count = 0;
    int count = X509_get_ext_count(certificate);
    for (int i = 0; i < count; i++) {
        X509_EXTENSION *extension = X509_get_ext(certificate, i);
        const ASN1_OBJECT *object = X509_EXTENSION_get_object(extension);
        if (object != NULL && OBJ_length(object) == sizeof role_oid &&
            memcmp(OBJ_get0_data(object), role_oid, sizeof role_oid) == 0) {
            found = extension;
            found_count++;
        }
    }
    if (found_count == 0)
        return say(diagnostic, diagnostic_size, "no role extension");
    if (found_count > 1)
        return say(diagnostic, diagnostic_size, "certificate holds %d role extensions",
                   found_count);
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(found);
    if (value == NULL || ASN1_STRING_length(value) <= 0)
        return say(diagnostic, diagnostic_size, "role extension is not valid DER");
    int found_role =
        role_from_value(ASN1_STRING_get0_data(value), (size_t)ASN1_STRING_length(value), role,
                        role_size, diagnostic, diagnostic_size);
    if (found_role != 1)
        role[0] = '\0';
    return found_role;
}

int mb_role_from_certificate(const uint8_t *der, size_t der_length, char *role, size_t role_size,
                             char *diagnostic, size_t diagnostic_size) {
    if (der == NULL || role == NULL || role_size == 0 || der_length > LONG_MAX)
        return MB_EINVAL;
    const unsigned char *cursor = der;
    X509 *certificate = d2i_X509(NULL, &cursor, (long)der_length);
    int rc = MB_EINVAL;
    if (certificate != NULL && cursor == der + der_length)
        rc = mb__role_from_certificate(certificate, role, role_size, diagnostic, diagnostic_size);
    X509_free(certificate);
    ERR_clear_error();
    return rc;
}
