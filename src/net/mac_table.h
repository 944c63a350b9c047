/* SPDX-License-Identifier: MIT */
/*
 * The switch's learning table: MAC address -> (port, port generation, last
 * seen second). Open addressing with linear probing, fixed size, no
 * allocation after init. Owned by the switch thread.
 */
#ifndef VIO_NET_MAC_TABLE_H
#define VIO_NET_MAC_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define NET_MAC_SLOTS 4096u              /* power of two */
#define NET_MAC_MAX (NET_MAC_SLOTS / 2u) /* entries kept at most: probes stay short */

struct net_mac_entry {
	uint64_t key;  /* the address in the low 48 bits, bit 48 set; 0: empty */
	uint32_t seen; /* second it was last seen */
	uint32_t gen;  /* its port's generation then */
	uint16_t port;
};

struct net_mac_table {
	unsigned count;
	uint32_t aging_s;
	struct net_mac_entry e[NET_MAC_SLOTS];
};

void net_mac_init(struct net_mac_table *t, uint32_t aging_s);

/*
 * mac was seen at port (of generation gen) at second now. An entry for it
 * moves; a new one may reuse a slot whose entry aged out. When the table is
 * full of live entries the address is not learned (it gets flooded).
 */
void net_mac_learn(struct net_mac_table *t, const uint8_t mac[6], uint16_t port, uint32_t gen,
		   uint32_t now);

/* Where mac lives: true with port and gen, or false (unknown or aged out: then removed). */
bool net_mac_lookup(struct net_mac_table *t, const uint8_t mac[6], uint32_t now, uint16_t *port,
		    uint32_t *gen);

/* Forget mac (its port is gone). */
void net_mac_remove(struct net_mac_table *t, const uint8_t mac[6]);

#endif
