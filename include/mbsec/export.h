/* SPDX-License-Identifier: MIT */
/* Symbol visibility: the library is built with -fvisibility=hidden and exports what MB_API marks.
 */
#ifndef MBSEC_EXPORT_H
#define MBSEC_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define MB_API __attribute__((visibility("default")))
#else
#define MB_API
#endif

#endif
