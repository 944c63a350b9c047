/* SPDX-License-Identifier: MIT */
/*
 * The port descriptions viod takes on its command line:
 *   --net sock=PATH[,name=NAME][,queues=N][,mac=MAC][,client][,mtu=N]
 *         [,pps=N][,pps_burst=N][,bitrate=N][,bitrate_burst=N]
 *   --tap ifname=NAME
 */
#ifndef VIO_NET_SPEC_H
#define VIO_NET_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_spec {
	char name[128]; /* name=: how the operator and the logs call it (default: the socket) */
	char sock[108];
	unsigned queues; /* queue pairs */
	bool has_mac;
	uint8_t mac[6];
	uint16_t mtu;    /* 0: the device's default */
	bool client;
	/* Rate limits into the switch at creation (0: none): frames/s, bits/s, their bursts. */
	uint64_t pps, pps_burst, bitrate, bitrate_burst;
};

struct tap_spec {
	char ifname[16];
};

/* Parse one description; -EINVAL with a message naming the bad part in err. */
int net_spec_parse(const char *text, struct net_spec *spec, char *err, size_t errlen);
int tap_spec_parse(const char *text, struct tap_spec *spec, char *err, size_t errlen);

/* "02:00:00:00:00:01" -> 6 bytes; -EINVAL for anything else. */
int parse_mac(const char *s, uint8_t mac[6]);

#endif
