/* SPDX-License-Identifier: MIT */
/*
 * The one number grammar of every vio program (viod, vio-bench, vioctl);
 * docs/numbers.md states it for users:
 *
 *   COUNT := DIGITS                         decimal, no sign, no spaces
 *   SIZE  := DIGITS [UNIT]                  UNIT, case-insensitive, powers of 1024:
 *            K | KB | KiB, M | MB | MiB, G | GB | GiB, T | TB | TiB; or B (bytes)
 *
 * A value that does not fit 64 bits, or lies outside the caller's range,
 * is out of range, never silently cut. Not part of libvio: the programs link it.
 */
#ifndef VIO_PARSE_NUM_H
#define VIO_PARSE_NUM_H

#include <stddef.h>
#include <stdint.h>

/* 0, -EINVAL (not a COUNT) or -ERANGE (outside [min, max]). */
int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* 0, -EINVAL (not a SIZE) or -ERANGE (outside [min, max] or past 64 bits). */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * Both with one message for the user on failure, naming what and the
 * value: "--iodepth '0': expected a number from 1 to 1024". prog prefixes it.
 */
int parse_count_arg(const char *prog, const char *what, const char *s, uint64_t min,
		    uint64_t max, uint64_t *out);
int parse_size_arg(const char *prog, const char *what, const char *s, uint64_t min,
		   uint64_t max, uint64_t *out);

/* Same, into an unsigned (max must fit). */
int parse_uint_arg(const char *prog, const char *what, const char *s, unsigned min, unsigned max,
		   unsigned *out);

/*
 * A device description's rate keys (blk's iops=, net's pps=, ...): when key
 * is names[i] (of n), val is a SIZE above 0 for *fields[i]. 1: key is none
 * of them; 0: set; -EINVAL: given twice or not a rate, with a message naming
 * key and val in err (example shows the form, like "5000 or 100M").
 */
int parse_rate_key(const char *key, const char *val, const char *const *names,
		   uint64_t *const *fields, unsigned n, const char *example, char *err,
		   size_t errlen);

/* "512 bytes", "4 KiB", "1.5 GiB": a size for messages. */
void format_size(uint64_t bytes, char *buf, size_t len);

#endif
