/* SPDX-License-Identifier: MIT */
/* The isolation test's entry point (isolate.c): vio-hostile isolate ... */
#ifndef VIO_HOSTILE_ISOLATE_H
#define VIO_HOSTILE_ISOLATE_H

int isolate_main(int argc, char **argv);

#endif
