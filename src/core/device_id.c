/* SPDX-License-Identifier: MIT */
/* FC 43/14 read device identification: choosing the objects a server sends. */
#include <string.h>

#include "core/codec.h"
#include "mbsec/pdu.h"

/* Bytes before the first object: function, MEI type, read code, conformity level, more
 * follows, next object id, number of objects. */
#define DEVICE_ID_HEADER 7

/* The highest object id a read code streams: basic 0x00..0x02, regular up to 0x7F, extended
 * up to 0xFF. */
static uint8_t last_id_of(uint8_t category) {
    switch (category) {
    case MB_DEVICE_ID_BASIC:
        return MB_OBJECT_MAJOR_MINOR_REVISION;
    case MB_DEVICE_ID_REGULAR:
        return 0x7F;
    default:
        return 0xFF;
    }
}

static const struct mb_device_object *find_object(const struct mb_device_object *objects,
                                                  size_t count, uint8_t id) {
    for (size_t i = 0; i < count; i++)
        if (objects[i].id == id)
            return &objects[i];
    return NULL;
}

static void put_object(uint8_t *at, const struct mb_device_object *object) {
    at[0] = object->id;
    at[1] = object->length;
    if (object->length > 0)
        memcpy(at + 2, object->value, object->length);
}

/* Writes the exception response for FC 43 and returns its length. */
static int exception_response(uint8_t code, uint8_t *pdu, size_t capacity) {
    return mb_exception_encode(MB_FC_ENCAPSULATED_INTERFACE, code, pdu, capacity);
}

int mb_device_id_respond(const struct mb_request *request, uint8_t conformity_level,
                         const struct mb_device_object *objects, size_t count, uint8_t *pdu,
                         size_t capacity) {
    if (request == NULL || pdu == NULL || (objects == NULL && count > 0) ||
        !mb__conformity_valid(conformity_level))
        return MB_EINVAL;
    if (request->function != MB_FC_ENCAPSULATED_INTERFACE ||
        request->device_id.mei_type != MB_MEI_DEVICE_ID)
        return MB_EINVAL;
    for (size_t i = 0; i < count; i++) {
        /* An object longer than this could never be sent whole, and objects are never split. */
        if (objects[i].length > MB_PDU_MAX - DEVICE_ID_HEADER - 2 ||
            (objects[i].length > 0 && objects[i].value == NULL) ||
            (i > 0 && objects[i].id <= objects[i - 1].id))
            return MB_EINVAL;
    }

    /* The answer is built in a full PDU: where a stream splits depends on the PDU limit only,
     * never on the caller's buffer, which either holds the whole answer or gets MB_ENOSPC. */
    uint8_t out[MB_PDU_MAX];
    uint8_t read_code = request->device_id.read_code;
    uint8_t object_id = request->device_id.object_id;
    uint8_t more_follows = 0x00, next_object_id = 0x00, sent = 0;
    size_t size = DEVICE_ID_HEADER;

    if (read_code == MB_DEVICE_ID_SPECIFIC) {
        /* Individual access is offered only by conformity levels 0x81..0x83. */
        if (!(conformity_level & 0x80))
            return exception_response(MB_EX_ILLEGAL_FUNCTION, pdu, capacity);
        const struct mb_device_object *object = find_object(objects, count, object_id);
        if (object == NULL || object_id > last_id_of(conformity_level & 0x7F))
            return exception_response(MB_EX_ILLEGAL_DATA_ADDRESS, pdu, capacity);
        put_object(out + size, object);
        size += 2 + (size_t)object->length;
        sent = 1;
    } else if (read_code >= MB_DEVICE_ID_BASIC && read_code <= MB_DEVICE_ID_EXTENDED) {
        /* A device asked for more than its conformity level answers at its own level. */
        uint8_t category = read_code;
        if (category > (conformity_level & 0x7F))
            category = conformity_level & 0x7F;
        uint8_t last_id = last_id_of(category);
        /* A start object the device does not have, or outside the category, restarts at 0. */
        if (object_id > last_id || find_object(objects, count, object_id) == NULL)
            object_id = 0;
        for (size_t i = 0; i < count; i++) {
            if (objects[i].id < object_id)
                continue;
            if (objects[i].id > last_id)
                break;
            if (size + 2 + objects[i].length > MB_PDU_MAX) {
                more_follows = 0xFF;
                next_object_id = objects[i].id;
                break;
            }
            put_object(out + size, &objects[i]);
            size += 2 + (size_t)objects[i].length;
            sent++;
        }
        if (sent == 0)
            return exception_response(MB_EX_ILLEGAL_DATA_ADDRESS, pdu, capacity);
    } else {
        return exception_response(MB_EX_ILLEGAL_DATA_VALUE, pdu, capacity);
    }

    if (size > capacity)
        return MB_ENOSPC;
    out[0] = MB_FC_ENCAPSULATED_INTERFACE;
    out[1] = MB_MEI_DEVICE_ID;
    out[2] = read_code;
    out[3] = conformity_level;
    out[4] = more_follows;
    out[5] = next_object_id;
    out[6] = sent;
    memcpy(pdu, out, size);
    return (int)size;
}
