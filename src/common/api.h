/* SPDX-License-Identifier: Apache-2.0 */
/* Marks the functions of the public ABI: everything else is built hidden
 * (-fvisibility=hidden) and src/libferry.map lists what is exported. */
#ifndef FY_COMMON_API_H
#define FY_COMMON_API_H

#define FY_API __attribute__((visibility("default")))

#endif
