/* SPDX-License-Identifier: MIT */
/* mbsec: a Modbus/TCP toolkit built for security. Include this header for the whole public API. */
#ifndef MBSEC_MBSEC_H
#define MBSEC_MBSEC_H

#include "mbsec/error.h"
#include "mbsec/export.h"
#include "mbsec/mbap.h"
#include "mbsec/pdu.h"
#include "mbsec/serial.h"
#include "mbsec/validate.h"
#include "mbsec/value.h"
#include "mbsec/version.h"

#endif
