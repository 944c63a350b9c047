/* SPDX-License-Identifier: MIT */
/*
 * The learning table: linear probing over a fixed array, deletion by
 * shifting the cluster back (no tombstones), aging checked on every
 * lookup. Never allocates, never probes more than the table size.
 */
#include <string.h>

#include "mac_table.h"

#define KEY_BIT (1ull << 48)

static inline uint64_t mac_key(const uint8_t m[6])
{
	return ((uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
		(uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5]) | KEY_BIT;
}

static inline unsigned home_slot(uint64_t key)
{
	/* Fibonacci hashing: the top bits of a multiply spread consecutive addresses. */
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 52) & (NET_MAC_SLOTS - 1);
}

static inline bool aged(const struct net_mac_table *t, const struct net_mac_entry *e,
			uint32_t now)
{
	return now - e->seen > t->aging_s;
}

void net_mac_init(struct net_mac_table *t, uint32_t aging_s)
{
	memset(t, 0, sizeof(*t));
	t->aging_s = aging_s;
}

/* Empty slot i and move later members of its cluster back so every key stays reachable. */
static void remove_at(struct net_mac_table *t, unsigned i)
{
	unsigned j = i;

	for (;;) {
		unsigned h;

		j = (j + 1) & (NET_MAC_SLOTS - 1);
		if (!t->e[j].key)
			break;
		h = home_slot(t->e[j].key);
		/* The entry at j may move to i only if i lies on its probe path [h, j). */
		if (((j - h) & (NET_MAC_SLOTS - 1)) >= ((j - i) & (NET_MAC_SLOTS - 1))) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].key = 0;
	t->count--;
}

void net_mac_learn(struct net_mac_table *t, const uint8_t mac[6], uint16_t port, uint32_t gen,
		   uint32_t now)
{
	uint64_t key = mac_key(mac);
	unsigned i = home_slot(key), reuse = NET_MAC_SLOTS;

	for (unsigned n = 0; n < NET_MAC_SLOTS; n++, i = (i + 1) & (NET_MAC_SLOTS - 1)) {
		struct net_mac_entry *e = &t->e[i];

		if (e->key == key) {
			e->port = port;
			e->gen = gen;
			e->seen = now;
			return;
		}
		if (!e->key)
			break;
		if (reuse == NET_MAC_SLOTS && aged(t, e, now))
			reuse = i;
	}
	if (reuse != NET_MAC_SLOTS) {
		/* Overwriting an occupied slot keeps the cluster intact for other keys. */
		i = reuse;
	} else {
		if (t->count >= NET_MAC_MAX || t->e[i].key)
			return;
		t->count++;
	}
	t->e[i] = (struct net_mac_entry){ .key = key, .seen = now, .gen = gen, .port = port };
}

static int find(const struct net_mac_table *t, uint64_t key)
{
	unsigned i = home_slot(key);

	for (unsigned n = 0; n < NET_MAC_SLOTS; n++, i = (i + 1) & (NET_MAC_SLOTS - 1)) {
		if (t->e[i].key == key)
			return (int)i;
		if (!t->e[i].key)
			break;
	}
	return -1;
}

bool net_mac_lookup(struct net_mac_table *t, const uint8_t mac[6], uint32_t now, uint16_t *port,
		    uint32_t *gen)
{
	int i = find(t, mac_key(mac));

	if (i < 0)
		return false;
	if (aged(t, &t->e[i], now)) {
		remove_at(t, (unsigned)i);
		return false;
	}
	*port = t->e[i].port;
	*gen = t->e[i].gen;
	return true;
}

void net_mac_remove(struct net_mac_table *t, const uint8_t mac[6])
{
	int i = find(t, mac_key(mac));

	if (i >= 0)
		remove_at(t, (unsigned)i);
}
