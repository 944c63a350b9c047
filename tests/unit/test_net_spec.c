/* SPDX-License-Identifier: MIT */
/* viod's --net and --tap parsers: every key, defaults, and each rejection naming its part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/net_spec.h"

static void test_net_ok(void **state)
{
	struct net_spec s;
	char err[256];
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0xab, 0xcd, 0xef };

	assert_int_equal(net_spec_parse("sock=/tmp/a.sock", &s, err, sizeof(err)), 0);
	assert_string_equal(s.sock, "/tmp/a.sock");
	assert_int_equal(s.queues, 1);
	assert_false(s.has_mac);
	assert_false(s.client);
	assert_int_equal(s.mtu, 0);
	assert_int_equal(net_spec_parse("sock=/x,queues=4,mac=52:54:00:AB:cd:ef,mtu=9000,client",
					&s, err, sizeof(err)), 0);
	assert_int_equal(s.queues, 4);
	assert_true(s.has_mac);
	assert_memory_equal(s.mac, mac, 6);
	assert_int_equal(s.mtu, 9000);
	assert_true(s.client);
	assert_int_equal(s.pps, 0);
	assert_int_equal(s.bitrate, 0);
	assert_int_equal(net_spec_parse("sock=/x,pps=10000,pps_burst=500,bitrate=100M,bitrate_burst=1M",
					&s, err, sizeof(err)), 0);
	assert_int_equal(s.pps, 10000);
	assert_int_equal(s.pps_burst, 500);
	assert_int_equal(s.bitrate, 100u << 20);
	assert_int_equal(s.bitrate_burst, 1u << 20);
}

static void rejects(const char *text, const char *needle)
{
	struct net_spec s;
	char err[256] = "";

	assert_int_equal(net_spec_parse(text, &s, err, sizeof(err)), -22);
	if (!strstr(err, needle))
		fail_msg("'%s': message '%s' does not name '%s'", text, err, needle);
}

static void test_net_rejects(void **state)
{
	rejects("queues=2", "sock");
	rejects("sock=/a,queues=0", "queues");
	rejects("sock=/a,queues=17", "queues");
	rejects("sock=/a,queues=2x", "queues");
	rejects("sock=/a,mac=01:00:5e:00:00:01", "multicast");
	rejects("sock=/a,mac=52:54:00:00:00", "mac");
	rejects("sock=/a,pps=0", "pps=0");
	rejects("sock=/a,pps=fast", "pps=fast");
	rejects("sock=/a,bitrate", "bitrate");
	rejects("sock=/a,pps=1,pps=2", "'pps' given twice");
	rejects("sock=/a,iops=5", "unknown key 'iops'");
	rejects("sock=/a,mac=52:54:00:00:00:1g", "mac");
	rejects("sock=/a,mtu=67", "mtu");
	rejects("sock=/a,mtu=65536", "mtu");
	rejects("sock=/a,client=1", "client");
	rejects("sock=/a,sock=/b", "twice");
	rejects("sock=/a,color=red", "color");
}

static void test_tap(void **state)
{
	struct tap_spec t;
	char err[256] = "";

	assert_int_equal(tap_spec_parse("ifname=viot0", &t, err, sizeof(err)), 0);
	assert_string_equal(t.ifname, "viot0");
	assert_int_equal(tap_spec_parse("name=viot0", &t, err, sizeof(err)), -22);
	assert_int_equal(tap_spec_parse("ifname=", &t, err, sizeof(err)), -22);
	assert_int_equal(tap_spec_parse("ifname=abcdefghijklmnop", &t, err, sizeof(err)), -22);
	assert_int_equal(tap_spec_parse("ifname=a/b", &t, err, sizeof(err)), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_ok),
		cmocka_unit_test(test_net_rejects),
		cmocka_unit_test(test_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
