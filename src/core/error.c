/* SPDX-License-Identifier: MIT */
#include "mbsec/error.h"
#include "mbsec/version.h"

const char *mb_strerror(int error) {
    switch (error) {
#define MB_ERROR_MESSAGE_(name, value, message) \
    case MB_##name:                             \
        return message;
        MB_ERROR_MAP(MB_ERROR_MESSAGE_)
#undef MB_ERROR_MESSAGE_
    }
    return error >= 0 ? "success" : "unknown error";
}

const char *mb_error_name(int error) {
    switch (error) {
#define MB_ERROR_NAME_(name, value, message) \
    case MB_##name:                          \
        return "MB_" #name;
        MB_ERROR_MAP(MB_ERROR_NAME_)
#undef MB_ERROR_NAME_
    }
    return "MB_E?";
}

const char *mb_version(void) {
    return MBSEC_VERSION_TEXT;
}
