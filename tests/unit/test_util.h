/* SPDX-License-Identifier: MIT */
/* Small helpers several unit-test groups share (cmocka asserts inside). */
#ifndef VIO_TEST_UTIL_H
#define VIO_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defined in a ThreadSanitizer build (gcc says __SANITIZE_THREAD__, clang __has_feature). */
#if defined(__SANITIZE_THREAD__)
#define VIO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VIO_TEST_TSAN 1
#endif
#endif

/* Open file descriptors of this process (for leak checks). */
int count_fds(void);

/* True if every one of the len bytes at b is v. */
bool all_byte(const uint8_t *b, size_t len, uint8_t v);

#endif
