/* SPDX-License-Identifier: MIT */
/**
 * @file export.h
 * The one marker of libvio's ABI. libvio is built with hidden visibility:
 * a function is exported from the shared library only when its declaration
 * in include/vio carries VIO_API, and tests/abi checks that the exported
 * set is exactly the declared one. Everything else is internal and may
 * change at any time; internal calls are direct (no PLT).
 */
#ifndef VIO_EXPORT_H
#define VIO_EXPORT_H

#if defined(__GNUC__)
#define VIO_API __attribute__((visibility("default")))
#else
#define VIO_API
#endif

#endif
