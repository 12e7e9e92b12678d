/* SPDX-License-Identifier: MIT */
/* mbsec: a Modbus/TCP toolkit built for security. Include this header for the whole public API. */
#ifndef MBSEC_MBSEC_H
#define MBSEC_MBSEC_H

#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/export.h"
#include "mbsec/gateway.h"
#include "mbsec/loop.h"
#include "mbsec/mbap.h"
#include "mbsec/model.h"
#include "mbsec/pdu.h"
#include "mbsec/policy.h"
#include "mbsec/serial.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"
#include "mbsec/validate.h"
#include "mbsec/value.h"
#include "mbsec/version.h"

#endif
