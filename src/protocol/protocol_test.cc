#include "protocol/protocol.h"

#include <gtest/gtest.h>

#include <functional>

#include <array>
#include <cstring>
#include <string>
#include <vector>

namespace vessel::protocol {
namespace {

using Bytes = std::vector<uint8_t>;
// Inside a TEST body, `Setup` finds gtest's private Test::Setup() trap first.
using SetupMsg = protocol::Setup;

// Little-endian helpers to hand-build payloads that lie about their lengths.
void put_u32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_str(Bytes& b, std::string_view s) {
  put_u32(b, static_cast<uint32_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

Spawn sample_spawn() {
  Spawn s;
  s.argv = {"/bin/sh", "-c", "echo hi"};
  s.env = {"PATH=/usr/bin:/bin", "TERM=xterm", "EMPTY="};
  s.cwd = "/work";
  s.uid = 1000;
  s.gid = 100;
  s.groups = {4, 27, 0xFFFFFFFEu};
  s.tty = 1;
  s.stdin_open = 1;
  s.rows = 24;
  s.cols = 80;
  s.user = "nobody:tty";
  s.rlimits = {{7, 1024, 2048}, {4, 0, kRlimInfinity}};
  // Each set distinct, one above 32 bits, so a swapped or narrowed set shows.
  s.capabilities = Capabilities{kAllCapabilities, 1u << 5, (1u << 5) | 1, 1ull << 40, 0};
  s.no_new_privileges = 1;
  return s;
}

Stats sample_stats() {
  // Every field distinct, and some above 32 bits, so a swapped or narrowed
  // field shows.
  Stats s;
  s.timestamp_ns = 0x0102030405060708ull;
  s.cpu_usage_usec = 2;
  s.cpu_user_usec = 3;
  s.cpu_system_usec = 4;
  s.memory_current = 5ull << 32;
  s.memory_limit = 6;
  s.memory_anon = 7;
  s.memory_file = 8;
  s.memory_inactive_file = 9;
  s.oom_kills = 10;
  s.pids_current = 11;
  s.pids_limit = 12;
  s.io_read_bytes = 13;
  s.io_write_bytes = 14;
  s.net_rx_bytes = 15;
  s.net_tx_bytes = 16;
  s.guest_mem_total = 17;
  s.guest_mem_available = ~0ull;
  s.cpus = 19;
  s.host_vm_rss = 20ull << 33;
  return s;
}

bool same_stats(const Stats& a, const Stats& b) {
  return a.timestamp_ns == b.timestamp_ns && a.cpu_usage_usec == b.cpu_usage_usec &&
         a.cpu_user_usec == b.cpu_user_usec && a.cpu_system_usec == b.cpu_system_usec &&
         a.memory_current == b.memory_current && a.memory_limit == b.memory_limit &&
         a.memory_anon == b.memory_anon && a.memory_file == b.memory_file &&
         a.memory_inactive_file == b.memory_inactive_file && a.oom_kills == b.oom_kills &&
         a.pids_current == b.pids_current && a.pids_limit == b.pids_limit &&
         a.io_read_bytes == b.io_read_bytes && a.io_write_bytes == b.io_write_bytes &&
         a.net_rx_bytes == b.net_rx_bytes && a.net_tx_bytes == b.net_tx_bytes &&
         a.guest_mem_total == b.guest_mem_total && a.guest_mem_available == b.guest_mem_available &&
         a.cpus == b.cpus && a.host_vm_rss == b.host_vm_rss;
}

// ---- header ----------------------------------------------------------------

TEST(ProtocolHeader, EncodesLittleEndianLayout) {
  FrameHeader h{0x00010203u, 0x0405, 0x0607, 0x08090A0Bu};
  std::array<uint8_t, kHeaderSize> out{};
  encode_header(h, out.data());
  const std::array<uint8_t, kHeaderSize> want = {0x03, 0x02, 0x01, 0x00, 0x05, 0x04,
                                                 0x07, 0x06, 0x0B, 0x0A, 0x09, 0x08};
  EXPECT_EQ(out, want);
}

TEST(ProtocolHeader, RoundTrips) {
  FrameHeader h{kMaxPayload, static_cast<uint16_t>(MsgType::kStdout), 0xFFFF, 0xFFFFFFFFu};
  std::array<uint8_t, kHeaderSize> buf{};
  encode_header(h, buf.data());
  auto got = decode_header(buf.data());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->length, h.length);
  EXPECT_EQ(got->type, h.type);
  EXPECT_EQ(got->flags, h.flags);
  EXPECT_EQ(got->stream, h.stream);
}

TEST(ProtocolHeader, RejectsLengthOverMax) {
  std::array<uint8_t, kHeaderSize> buf{};
  encode_header(FrameHeader{kMaxPayload + 1, 1, 0, 0}, buf.data());
  EXPECT_FALSE(decode_header(buf.data()));
  encode_header(FrameHeader{0xFFFFFFFFu, 1, 0, 0}, buf.data());
  EXPECT_FALSE(decode_header(buf.data()));
}

TEST(ProtocolHeader, MakeFrameWritesHeaderThenPayload) {
  const Bytes payload = {0xAA, 0xBB, 0xCC};
  Bytes f = make_frame(MsgType::kStdin, 7, payload);
  const Bytes want = {3, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0xAA, 0xBB, 0xCC};
  EXPECT_EQ(f, want);

  Bytes empty = make_frame(MsgType::kPoweroff, 0, {});
  ASSERT_EQ(empty.size(), kHeaderSize);
  auto h = decode_header(empty.data());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->length, 0u);
  EXPECT_EQ(h->type, static_cast<uint16_t>(MsgType::kPoweroff));
}

TEST(ProtocolTypes, KnownTypesAndNames) {
  EXPECT_FALSE(is_known_type(0));
  for (uint16_t t = 1; t <= 20; ++t)
    EXPECT_TRUE(is_known_type(t)) << t;
  EXPECT_FALSE(is_known_type(21));
  EXPECT_FALSE(is_known_type(0xFFFF));

  EXPECT_STREQ(type_name(1), "hello");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kSetupResult)), "setup-result");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kSpawn)), "spawn");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kStdinAck)), "stdin-ack");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kExit)), "exit");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kPoweroff)), "poweroff");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kStats)), "stats");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kStatsResult)), "stats-result");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kCopyOut)), "copy-out");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kCopyIn)), "copy-in");
  EXPECT_STREQ(type_name(0), "unknown");
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kUpdate)), "update");
  EXPECT_STREQ(type_name(20), "remove-container");
  EXPECT_STREQ(type_name(21), "unknown");
  EXPECT_STREQ(type_name(0xFFFF), "unknown");
}

// ---- message round trips ---------------------------------------------------

TEST(ProtocolMessages, HelloRoundTrip) {
  Hello in{kVersion, "vessel-init 0.1 / linux 6.1.0"};
  Bytes p = encode(in);
  // u32 version, then a length-prefixed string.
  ASSERT_GE(p.size(), 8u);
  EXPECT_EQ(p[0], kVersion);
  Hello out;
  ASSERT_TRUE(decode(p, out));
  EXPECT_EQ(out.version, in.version);
  EXPECT_EQ(out.guest, in.guest);
}

TEST(ProtocolMessages, HelloExactBytes) {
  Bytes p = encode(Hello{1, "ab"});
  const Bytes want = {1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b'};
  EXPECT_EQ(p, want);
}

TEST(ProtocolMessages, SetupRoundTrip) {
  SetupMsg in;
  in.hostname = std::string(64, 'h');
  in.rootfs_tag = "rootfs";
  in.hosts = "127.0.0.1 localhost\n";
  in.resolv_conf = "nameserver 10.0.2.3\n";
  in.read_only = 1;
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.hostname, in.hostname);
  EXPECT_EQ(out.rootfs_tag, in.rootfs_tag);
  EXPECT_EQ(out.hosts, in.hosts);
  EXPECT_EQ(out.resolv_conf, in.resolv_conf);
  EXPECT_EQ(out.read_only, 1);
  // No limits unless asked for.
  EXPECT_EQ(out.memory_limit_bytes, 0u);
  EXPECT_EQ(out.pids_limit, 0u);
  EXPECT_EQ(out.cpu_quota_usec, 0u);
  EXPECT_EQ(out.cpu_period_usec, 0u);
  // Idle page cache reclaim is on unless turned off.
  EXPECT_EQ(out.memory_reclaim, 1);
  in.memory_reclaim = 0;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.memory_reclaim, 0);
  in.memory_reclaim = 2;
  EXPECT_FALSE(decode(encode(in), out));
}

// The bytes a Setup that is not a machine ends with: machine 0, an empty
// user (name, uid, gid, home, shell, create_home), an empty init and
// memory_reclaim.
constexpr size_t kMachineTail = 1 + 4 + 4 + 4 + 4 + 4 + 1 + 4 + 1;
// Then two empty lists (version 6): addresses6 and routes; container 0
// with an empty rootfs_subpath (version 7); no main command to read ahead
// (version 8: main_command and main_path empty); no clock, no entropy,
// not restored (version 9: realtime_ns 0, entropy empty, restored 0).
constexpr size_t kV6Tail = 4 + 4 + 4 + 4 + 4 + 4 + 8 + 4 + 1;

TEST(ProtocolMessages, SetupLimitsRoundTrip) {
  SetupMsg in;
  in.rootfs_tag = "rootfs";
  in.memory_limit_bytes = 5ull << 32;
  in.pids_limit = 100;
  in.cpu_quota_usec = 150000;
  in.cpu_period_usec = 100000;
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.memory_limit_bytes, 5ull << 32);
  EXPECT_EQ(out.pids_limit, 100u);
  EXPECT_EQ(out.cpu_quota_usec, 150000u);
  EXPECT_EQ(out.cpu_period_usec, 100000u);
  // The limits follow the earlier fields, in this order and width (then
  // the mount count, the interface count and the gateway, 0 here).
  Bytes p = encode(in);
  const size_t after = kMachineTail + kV6Tail;
  ASSERT_GE(p.size(), 36u + after);
  const Bytes tail(p.end() - 36 - after, p.end() - 12 - after);
  Bytes want;
  put_u64(want, 5ull << 32);
  put_u64(want, 100);
  put_u32(want, 150000);
  put_u32(want, 100000);
  EXPECT_EQ(tail, want);
}

TEST(ProtocolMessages, SetupMountsRoundTrip) {
  SetupMsg in;
  in.rootfs_tag = "rootfs";
  in.mounts = {{Mount::kVirtiofs, "m0", "", "/data", 0, ""},
               {Mount::kVirtiofs, "m1", "hosts", "/etc/extra-hosts", 1, ""},
               {Mount::kTmpfs, "", "", "/run", 0, "size=8m,mode=755"}};
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  ASSERT_EQ(out.mounts.size(), 3u);
  EXPECT_EQ(out.mounts[1].tag, "m1");
  EXPECT_EQ(out.mounts[1].subpath, "hosts");
  EXPECT_EQ(out.mounts[1].target, "/etc/extra-hosts");
  EXPECT_EQ(out.mounts[1].read_only, 1);
  EXPECT_EQ(out.mounts[2].kind, Mount::kTmpfs);
  EXPECT_EQ(out.mounts[2].options, "size=8m,mode=755");
  Bytes p = encode(in);
  for (size_t n = 0; n < p.size(); ++n)
    EXPECT_FALSE(decode(std::span<const uint8_t>(p.data(), n), out)) << n;
}

TEST(ProtocolMalformed, SetupBadMountsRejected) {
  SetupMsg out;
  auto with = [](Mount m) {
    SetupMsg in;
    in.rootfs_tag = "rootfs";
    in.mounts = {std::move(m)};
    return encode(in);
  };
  EXPECT_TRUE(decode(with({Mount::kVirtiofs, "m0", "", "/data", 0, ""}), out));
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "", "", "/data", 0, ""}), out));      // no tag
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "m0", "", "data", 0, ""}), out));     // relative
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "m0", "", "/a/../b", 0, ""}), out));  // ..
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "m0", "../x", "/a", 0, ""}), out));   // escapes
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "m0", "/etc", "/a", 0, ""}), out));   // absolute
  EXPECT_FALSE(decode(with({Mount::kTmpfs, "m0", "", "/a", 0, ""}), out));          // tag on tmpfs
  EXPECT_FALSE(decode(with({7, "m0", "", "/a", 0, ""}), out));                      // kind
  EXPECT_FALSE(decode(with({Mount::kVirtiofs, "m0", "", std::string("/a\0b", 4), 0, ""}), out));
  EXPECT_TRUE(decode(with({Mount::kVirtiofs, "m0", "a..b/c", "/x..y", 0, ""}), out));  // not ..
  // A count that claims more mounts than bytes follow.
  SetupMsg in;
  in.rootfs_tag = "rootfs";
  Bytes p = encode(in);
  p.resize(p.size() - 12 - kMachineTail - kV6Tail);  // the mount count, no interfaces, no gateway
  put_u32(p, kMaxMounts + 1);
  put_u32(p, 0);
  put_u32(p, 0);
  p.resize(p.size() + kMachineTail + kV6Tail);  // no machine, no IPv6
  EXPECT_FALSE(decode(p, out));
}

// 10.0.0.2/24 on eth0 and 192.168.7.9/16 on eth1; each a MAC of its own.
SetupMsg setup_with_interfaces() {
  SetupMsg in;
  in.rootfs_tag = "rootfs";
  in.interfaces = {{"eth0", std::string("\x02\x00\x0a\x00\x00\x02", 6), 0x0A000002, 24, 1500},
                   {"eth1", std::string("\x02\x00\xc0\xa8\x07\x09", 6), 0xC0A80709, 16, 0}};
  in.gateway = 0x0A000001;
  return in;
}

TEST(ProtocolMessages, SetupIpv6AndRoutesRoundTrip) {
  SetupMsg in = setup_with_interfaces();
  const std::string v6("\xfd\x00\x00\x51\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
  std::string gw6 = v6;
  gw6[15] = 1;
  in.addresses6 = {{1, v6, 64}};
  in.routes = {{0, std::string("\xa9\xfe\x01\x01", 4), 32, ""}, {1, std::string(16, '\0'), 0, gw6}};
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  ASSERT_EQ(out.addresses6.size(), 1u);
  EXPECT_EQ(out.addresses6[0].interface, 1);
  EXPECT_EQ(out.addresses6[0].address, v6);
  EXPECT_EQ(out.addresses6[0].prefix_len, 64);
  ASSERT_EQ(out.routes.size(), 2u);
  EXPECT_EQ(out.routes[0].destination, std::string("\xa9\xfe\x01\x01", 4));
  EXPECT_EQ(out.routes[0].prefix_len, 32);
  EXPECT_TRUE(out.routes[0].gateway.empty());
  EXPECT_EQ(out.routes[1].interface, 1);
  EXPECT_EQ(out.routes[1].gateway, gw6);

  auto refused = [&](auto change) {
    SetupMsg bad = in;
    change(bad);
    SetupMsg o;
    return !decode(encode(bad), o);
  };
  EXPECT_TRUE(refused([](SetupMsg& m) { m.addresses6[0].interface = 2; }));  // no eth2
  EXPECT_TRUE(refused([](SetupMsg& m) { m.addresses6[0].address.pop_back(); }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.addresses6[0].prefix_len = 129; }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.addresses6[0].prefix_len = 0; }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.addresses6[0].address[0] = '\xff'; }));  // multicast
  EXPECT_TRUE(refused([](SetupMsg& m) {  // fe80::/10, the guest's own
    m.addresses6[0].address[0] = '\xfe';
    m.addresses6[0].address[1] = '\x80';
  }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.routes[0].prefix_len = 33; }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.routes[0].destination = "abc"; }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.routes[1].gateway.resize(4); }));  // family mix
  EXPECT_TRUE(refused([](SetupMsg& m) { m.routes[1].interface = 9; }));
  EXPECT_TRUE(refused([](SetupMsg& m) { m.routes.assign(kMaxRoutes + 1, m.routes[0]); }));
}

TEST(ProtocolMessages, SetupInterfacesRoundTrip) {
  SetupMsg in = setup_with_interfaces();
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  ASSERT_EQ(out.interfaces.size(), 2u);
  EXPECT_EQ(out.interfaces[0].name, "eth0");
  EXPECT_EQ(out.interfaces[0].mac, in.interfaces[0].mac);
  EXPECT_EQ(out.interfaces[0].address, 0x0A000002u);
  EXPECT_EQ(out.interfaces[0].prefix_len, 24);
  EXPECT_EQ(out.interfaces[0].mtu, 1500u);
  EXPECT_EQ(out.interfaces[1].name, "eth1");
  EXPECT_EQ(out.interfaces[1].mac, in.interfaces[1].mac);
  EXPECT_EQ(out.interfaces[1].address, 0xC0A80709u);
  EXPECT_EQ(out.interfaces[1].prefix_len, 16);
  EXPECT_EQ(out.interfaces[1].mtu, 0u);
  EXPECT_EQ(out.gateway, 0x0A000001u);

  // After the mounts (none): the count, each interface as name, mac,
  // address, prefix_len, mtu, then the gateway; all little-endian.
  SetupMsg one;
  one.rootfs_tag = "rootfs";
  one.interfaces = {in.interfaces[0]};
  one.gateway = 0x0A000001;
  Bytes p = encode(one);
  Bytes want;
  put_u32(want, 0);  // mounts
  put_u32(want, 1);
  put_str(want, "eth0");
  put_str(want, one.interfaces[0].mac);
  put_u32(want, 0x0A000002);
  want.push_back(24);
  put_u32(want, 1500);
  put_u32(want, 0x0A000001);
  want.resize(want.size() + kMachineTail);  // not a machine
  want.back() = 1;                          // memory_reclaim: auto
  want.resize(want.size() + kV6Tail);       // no IPv6 addresses, no routes
  ASSERT_GE(p.size(), want.size());
  EXPECT_EQ(Bytes(p.end() - static_cast<std::ptrdiff_t>(want.size()), p.end()), want);

  // No interfaces and no gateway: only lo.
  SetupMsg none;
  none.rootfs_tag = "rootfs";
  ASSERT_TRUE(decode(encode(none), out));
  EXPECT_TRUE(out.interfaces.empty());
  EXPECT_EQ(out.gateway, 0u);

  // The most there may be.
  SetupMsg full;
  full.rootfs_tag = "rootfs";
  for (uint32_t i = 0; i < kMaxInterfaces; ++i) {
    full.interfaces.push_back({"eth" + std::to_string(i),
                               std::string(5, '\x02') + static_cast<char>(i), 0x0A000002 + (i << 8),
                               24, 0});
  }
  ASSERT_TRUE(decode(encode(full), out));
  EXPECT_EQ(out.interfaces.size(), kMaxInterfaces);
}

TEST(ProtocolMalformed, SetupBadInterfacesRejected) {
  SetupMsg out;
  auto accepts = [&](const SetupMsg& in) { return decode(encode(in), out); };
  auto with_name = [](std::string name) {
    SetupMsg in = setup_with_interfaces();
    in.interfaces[0].name = std::move(name);
    return in;
  };
  EXPECT_TRUE(accepts(setup_with_interfaces()));
  EXPECT_TRUE(accepts(with_name(std::string(15, 'n'))));
  EXPECT_TRUE(accepts(with_name("veth-a.b_c")));
  EXPECT_FALSE(accepts(with_name("")));
  EXPECT_FALSE(accepts(with_name(std::string(16, 'n'))));  // IFNAMSIZ counts the NUL
  EXPECT_FALSE(accepts(with_name("a/b")));
  EXPECT_FALSE(accepts(with_name(std::string("a\0b", 3))));
  EXPECT_FALSE(accepts(with_name("a b")));
  EXPECT_FALSE(accepts(with_name("a\tb")));
  EXPECT_FALSE(accepts(with_name("eth0\n")));
  EXPECT_FALSE(accepts(with_name("eth0:1")));  // an alias label, not a device
  EXPECT_FALSE(accepts(with_name(".")));
  EXPECT_FALSE(accepts(with_name("..")));
  EXPECT_FALSE(accepts(with_name("eth1")));  // the other interface's name

  SetupMsg in = setup_with_interfaces();
  in.interfaces[0].mac.pop_back();
  EXPECT_FALSE(accepts(in));  // 5 bytes
  in.interfaces[0].mac = std::string(7, '\x02');
  EXPECT_FALSE(accepts(in));
  in.interfaces[0].mac = "";
  EXPECT_FALSE(accepts(in));
  in.interfaces[0].mac = in.interfaces[1].mac;
  EXPECT_FALSE(accepts(in));  // two interfaces, one MAC

  in = setup_with_interfaces();
  in.interfaces[0].prefix_len = 0;
  EXPECT_FALSE(accepts(in));
  in.interfaces[0].prefix_len = 33;
  EXPECT_FALSE(accepts(in));
  in.interfaces[0].prefix_len = 32;
  in.gateway = 0x0A000002;  // /32: only the address itself is on link
  EXPECT_TRUE(accepts(in));
  in.interfaces[0].prefix_len = 1;
  in.gateway = 0x7F000001;  // 10/1 is 0.0.0.0-127.255.255.255
  EXPECT_TRUE(accepts(in));

  // Without an address the prefix means nothing: 0 is fine, and so is the
  // interface (it is only brought up).
  in = setup_with_interfaces();
  in.interfaces[1].address = 0;
  in.interfaces[1].prefix_len = 0;
  EXPECT_TRUE(accepts(in));

  // The gateway must be on one interface's subnet.
  in = setup_with_interfaces();
  in.gateway = 0x0A000101;  // 10.0.1.1, outside 10.0.0.0/24
  EXPECT_FALSE(accepts(in));
  in.gateway = 0xC0A8FFFE;  // 192.168.255.254, on eth1's /16
  EXPECT_TRUE(accepts(in));
  in.interfaces[1].address = 0;  // ... which has no address now
  EXPECT_FALSE(accepts(in));
  in.interfaces.clear();
  EXPECT_FALSE(accepts(in));  // a gateway with no interface at all
  in.gateway = 0;
  EXPECT_TRUE(accepts(in));

  // More than kMaxInterfaces, and a count that claims more than follows.
  in = setup_with_interfaces();
  in.gateway = 0;
  for (uint32_t i = 0; in.interfaces.size() <= kMaxInterfaces; ++i)
    in.interfaces.push_back(
        {"x" + std::to_string(i), std::string(5, '\x04') + static_cast<char>(i), 0, 0, 0});
  EXPECT_FALSE(accepts(in));
  SetupMsg base;
  base.rootfs_tag = "rootfs";
  Bytes p = encode(base);
  p.resize(p.size() - 8 - kMachineTail - kV6Tail);  // the interface count, the gateway, no machine
  put_u32(p, 3);
  put_u32(p, 0);
  p.resize(p.size() + kMachineTail + kV6Tail);
  EXPECT_FALSE(decode(p, out));
  p.resize(p.size() - 8 - kMachineTail - kV6Tail);
  put_u32(p, 0xFFFFFFFFu);
  put_u32(p, 0);
  p.resize(p.size() + kMachineTail + kV6Tail);
  EXPECT_FALSE(decode(p, out));
}

TEST(ProtocolMalformed, SetupCpuLimitOutOfKernelBoundsRejected) {
  SetupMsg in;
  in.rootfs_tag = "rootfs";
  SetupMsg out;
  in.cpu_quota_usec = kMinCpuPeriodUsec - 1;
  EXPECT_FALSE(decode(encode(in), out));
  in.cpu_quota_usec = kMinCpuPeriodUsec;
  EXPECT_TRUE(decode(encode(in), out));
  in.cpu_period_usec = kMinCpuPeriodUsec - 1;
  EXPECT_FALSE(decode(encode(in), out));
  in.cpu_period_usec = kMaxCpuPeriodUsec + 1;
  EXPECT_FALSE(decode(encode(in), out));
  in.cpu_period_usec = kMaxCpuPeriodUsec;
  EXPECT_TRUE(decode(encode(in), out));
}

TEST(ProtocolMessages, SpawnRoundTrip) {
  Spawn in = sample_spawn();
  Spawn out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.argv, in.argv);
  EXPECT_EQ(out.env, in.env);
  EXPECT_EQ(out.cwd, in.cwd);
  EXPECT_EQ(out.uid, in.uid);
  EXPECT_EQ(out.gid, in.gid);
  EXPECT_EQ(out.groups, in.groups);
  EXPECT_EQ(out.tty, 1);
  EXPECT_EQ(out.stdin_open, 1);
  EXPECT_EQ(out.rows, 24);
  EXPECT_EQ(out.cols, 80);
  EXPECT_EQ(out.user, "nobody:tty");
  ASSERT_EQ(out.rlimits.size(), 2u);
  EXPECT_EQ(out.rlimits[0].resource, 7u);
  EXPECT_EQ(out.rlimits[0].soft, 1024u);
  EXPECT_EQ(out.rlimits[0].hard, 2048u);
  EXPECT_EQ(out.rlimits[1].resource, 4u);
  EXPECT_EQ(out.rlimits[1].soft, 0u);
  EXPECT_EQ(out.rlimits[1].hard, kRlimInfinity);
  ASSERT_TRUE(out.capabilities.has_value());
  EXPECT_EQ(out.capabilities->bounding, kAllCapabilities);
  EXPECT_EQ(out.capabilities->effective, 1u << 5);
  EXPECT_EQ(out.capabilities->permitted, (1u << 5) | 1);
  EXPECT_EQ(out.capabilities->inheritable, 1ull << 40);
  EXPECT_EQ(out.capabilities->ambient, 0u);
  EXPECT_EQ(out.no_new_privileges, 1);
}

TEST(ProtocolMessages, SpawnCapabilityFlagsAreChecked) {
  Spawn in;
  in.argv = {"true"};
  std::vector<uint8_t> p = encode(in);
  Spawn out;
  ASSERT_TRUE(decode(p, out));
  EXPECT_FALSE(out.capabilities.has_value());
  // The payload ends with u8 has_caps, five u64 sets, u8 no_new_privileges
  // and u32 container.
  const size_t has_caps = p.size() - 46, nnp = p.size() - 5;
  std::vector<uint8_t> bad = p;
  bad[has_caps] = 2;
  EXPECT_FALSE(decode(bad, out));
  bad = p;
  bad[nnp] = 2;
  EXPECT_FALSE(decode(bad, out));
  bad = p;
  bad[has_caps + 1] = 1;  // a bounding set without has_caps
  EXPECT_FALSE(decode(bad, out));
  bad[has_caps] = 1;
  ASSERT_TRUE(decode(bad, out));
  ASSERT_TRUE(out.capabilities.has_value());
  EXPECT_EQ(out.capabilities->bounding, 1u);
  // A peer before version 6 sends neither field: short.
  bad = p;
  bad.resize(has_caps);
  EXPECT_FALSE(decode(bad, out));
}

TEST(ProtocolMessages, UpdateRoundTripAndBounds) {
  Update in{5ull << 32, 77, 150000, 100000};
  Update out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.memory_limit_bytes, 5ull << 32);
  EXPECT_EQ(out.pids_limit, 77u);
  EXPECT_EQ(out.cpu_quota_usec, 150000u);
  EXPECT_EQ(out.cpu_period_usec, 100000u);
  EXPECT_TRUE(decode(encode(Update{}), out));  // every limit "max"
  EXPECT_FALSE(decode(encode(Update{0, 0, kMinCpuPeriodUsec - 1, 0}), out));
  EXPECT_FALSE(decode(encode(Update{0, 0, 0, kMaxCpuPeriodUsec + 1}), out));
  std::vector<uint8_t> short_payload = encode(in);
  short_payload.pop_back();
  EXPECT_FALSE(decode(short_payload, out));
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kUpdateResult)), "update-result");
  EXPECT_TRUE(is_known_type(19));
  EXPECT_TRUE(is_known_type(20));
  EXPECT_FALSE(is_known_type(21));
  Update of_two{1 << 30, 0, 0, 0, 2};
  ASSERT_TRUE(decode(encode(of_two), out));
  EXPECT_EQ(out.container, 2u);
  EXPECT_FALSE(decode(encode(Update{0, 0, 0, 0, kMaxContainers}), out));
}

// The main command read ahead while the guest sets up (version 8).
TEST(ProtocolMessages, SetupCarriesTheMainCommandToReadAhead) {
  protocol::Setup in;
  in.rootfs_tag = "rootfs";
  in.main_command = "nginx";
  in.main_path = "/usr/local/sbin:/usr/sbin";
  protocol::Setup out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.main_command, "nginx");
  EXPECT_EQ(out.main_path, "/usr/local/sbin:/usr/sbin");
  protocol::Setup bad = in;
  bad.main_command = std::string(4097, 'a');
  EXPECT_FALSE(decode(encode(bad), out));
  bad = in;
  bad.main_path = std::string("/bin\0x", 6);
  EXPECT_FALSE(decode(encode(bad), out));
}

// The host's clock and entropy, and a restore from a template (version 9).
TEST(ProtocolMessages, SetupCarriesClockEntropyAndRestore) {
  protocol::Setup in;
  in.lower_serial = "vessel-root";
  in.realtime_ns = 1764547200123456789ull;
  in.entropy = std::string(64, '\x5a');
  in.restored = 1;
  protocol::Setup out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.realtime_ns, in.realtime_ns);
  EXPECT_EQ(out.entropy, in.entropy);
  EXPECT_EQ(out.restored, 1);
  protocol::Setup bad = in;
  bad.entropy = std::string(kMaxSetupEntropy + 1, 'x');
  EXPECT_FALSE(decode(encode(bad), out));
  bad = in;
  bad.restored = 2;
  EXPECT_FALSE(decode(encode(bad), out));
  // A template holds a VM waiting for its first Setup: never a pod's
  // second container, never a machine.
  bad = in;
  bad.container = 1;
  EXPECT_FALSE(decode(encode(bad), out));
  // Cut before the last field: rejected (every field is required).
  Bytes p = encode(in);
  p.pop_back();
  EXPECT_FALSE(decode(p, out));
}

TEST(ProtocolMessages, PodContainersRoundTrip) {
  protocol::Setup in;
  in.rootfs_tag = "rootfs";
  in.container = 3;
  in.rootfs_subpath = "web/rootfs";
  protocol::Setup out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.container, 3u);
  EXPECT_EQ(out.rootfs_subpath, "web/rootfs");
  // An added container has no network of its own, and its root stays in
  // the share.
  protocol::Setup bad = in;
  bad.interfaces.push_back({"eth0", std::string(6, '\1'), 0x0a000002, 24, 0});
  EXPECT_FALSE(decode(encode(bad), out));
  bad = in;
  bad.gateway = 0x0a000001;
  EXPECT_FALSE(decode(encode(bad), out));
  for (const char* subpath : {"../etc", "/abs", "a/../b"}) {
    bad = in;
    bad.rootfs_subpath = subpath;
    EXPECT_FALSE(decode(encode(bad), out)) << subpath;
  }
  bad = in;
  bad.container = kMaxContainers;
  EXPECT_FALSE(decode(encode(bad), out));
  bad = in;
  bad.rootfs_tag.clear();
  bad.lower_serial = "lower";  // a subpath is of a share, not a disk
  EXPECT_FALSE(decode(encode(bad), out));

  Spawn spawn;
  spawn.argv = {"true"};
  spawn.container = 3;
  Spawn spawn_out;
  ASSERT_TRUE(decode(encode(spawn), spawn_out));
  EXPECT_EQ(spawn_out.container, 3u);
  spawn.container = kMaxContainers;
  EXPECT_FALSE(decode(encode(spawn), spawn_out));

  StatsRequest stats;
  ASSERT_TRUE(decode(std::span<const uint8_t>(), stats));  // empty: container 0
  EXPECT_EQ(stats.container, 0u);
  ASSERT_TRUE(decode(encode(StatsRequest{5}), stats));
  EXPECT_EQ(stats.container, 5u);
  EXPECT_FALSE(decode(encode(StatsRequest{kMaxContainers}), stats));

  RemoveContainer remove;
  ASSERT_TRUE(decode(encode(RemoveContainer{4}), remove));
  EXPECT_EQ(remove.container, 4u);
  EXPECT_FALSE(decode(encode(RemoveContainer{0}), remove));  // the VM's own: power off instead
  EXPECT_FALSE(decode(std::span<const uint8_t>(), remove));
  EXPECT_STREQ(type_name(static_cast<uint16_t>(MsgType::kRemoveContainer)), "remove-container");
}

TEST(ProtocolMessages, CapabilityNames) {
  EXPECT_STREQ(capability_name(0), "CAP_CHOWN");
  EXPECT_STREQ(capability_name(21), "CAP_SYS_ADMIN");
  EXPECT_STREQ(capability_name(kCapLast), "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(capability_name(kCapLast + 1), nullptr);
  for (uint32_t i = 0; i <= kCapLast; ++i)
    EXPECT_EQ(capability_number(capability_name(i)), i);
  EXPECT_EQ(capability_number("NET_ADMIN"), std::nullopt);
  EXPECT_EQ(capability_number("cap_net_admin"), std::nullopt);
}

TEST(ProtocolMessages, SpawnMinimalRoundTrip) {
  Spawn in;
  in.argv = {"true"};
  Spawn out = sample_spawn();  // decode must overwrite every field
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.argv, in.argv);
  EXPECT_TRUE(out.env.empty());
  EXPECT_TRUE(out.cwd.empty());
  EXPECT_TRUE(out.groups.empty());
  EXPECT_EQ(out.uid, 0u);
  EXPECT_EQ(out.tty, 0);
  EXPECT_EQ(out.stdin_open, 0);
  EXPECT_EQ(out.rows, 0);
  EXPECT_EQ(out.cols, 0);
  EXPECT_TRUE(out.user.empty());
  EXPECT_TRUE(out.rlimits.empty());
  EXPECT_FALSE(out.capabilities.has_value());
  EXPECT_EQ(out.no_new_privileges, 0);
}

TEST(ProtocolMessages, ReplyRoundTrip) {
  Reply ok{0, "", 4242};
  Reply out;
  ASSERT_TRUE(decode(encode(ok), out));
  EXPECT_EQ(out.errnum, 0);
  EXPECT_EQ(out.message, "");
  EXPECT_EQ(out.pid, 4242u);

  Reply err{2, "exec '/nope': No such file or directory", 0};
  ASSERT_TRUE(decode(encode(err), out));
  EXPECT_EQ(out.errnum, 2);
  EXPECT_EQ(out.message, err.message);
  EXPECT_EQ(out.pid, 0u);
}

TEST(ProtocolMessages, ReplyNegativeErrnoRejected) {
  Reply out;
  EXPECT_FALSE(decode(encode(Reply{-1, "x", 0}), out));
}

TEST(ProtocolMessages, AckRoundTrip) {
  Ack out;
  ASSERT_TRUE(decode(encode(Ack{12345}), out));
  EXPECT_EQ(out.bytes, 12345u);
  ASSERT_TRUE(decode(encode(Ack{kStdinWindow}), out));
  EXPECT_EQ(out.bytes, kStdinWindow);
  EXPECT_FALSE(decode(encode(Ack{kStdinWindow + 1}), out));
}

TEST(ProtocolMessages, SignalRoundTrip) {
  Signal out;
  ASSERT_TRUE(decode(encode(Signal{15}), out));
  EXPECT_EQ(out.signo, 15);
  ASSERT_TRUE(decode(encode(Signal{64}), out));
  EXPECT_EQ(out.signo, 64);
}

TEST(ProtocolMessages, SignalOutOfRangeRejected) {
  Signal out;
  EXPECT_FALSE(decode(encode(Signal{0}), out));
  EXPECT_FALSE(decode(encode(Signal{-9}), out));
  EXPECT_FALSE(decode(encode(Signal{65}), out));
}

TEST(ProtocolMessages, ResizeRoundTrip) {
  Resize out;
  ASSERT_TRUE(decode(encode(Resize{50, 0xFFFF}), out));
  EXPECT_EQ(out.rows, 50);
  EXPECT_EQ(out.cols, 0xFFFF);
  const Bytes want = {50, 0, 0xFF, 0xFF};
  EXPECT_EQ(encode(Resize{50, 0xFFFF}), want);
}

TEST(ProtocolMessages, ExitRoundTrip) {
  Exit out;
  ASSERT_TRUE(decode(encode(Exit{3, 0}), out));
  EXPECT_EQ(out.code, 3);
  EXPECT_EQ(out.signal, 0);
  ASSERT_TRUE(decode(encode(Exit{255, 0}), out));
  EXPECT_EQ(out.code, 255);
  ASSERT_TRUE(decode(encode(Exit{0, 9}), out));
  EXPECT_EQ(out.signal, 9);
  EXPECT_EQ(out.oom_killed, 0);
  ASSERT_TRUE(decode(encode(Exit{0, 9, 1}), out));
  EXPECT_EQ(out.oom_killed, 1);
  const Bytes want = {0, 0, 0, 0, 9, 0, 0, 0, 1};
  EXPECT_EQ(encode(Exit{0, 9, 1}), want);
}

TEST(ProtocolMessages, StatsRoundTrip) {
  Stats in = sample_stats();
  Bytes p = encode(in);
  // 18 u64 fields, a u32 and the host's u64, no padding.
  EXPECT_EQ(p.size(), 18u * 8 + 4 + 8);
  const Bytes first = {8, 7, 6, 5, 4, 3, 2, 1};
  EXPECT_EQ(Bytes(p.begin(), p.begin() + 8), first);
  Stats out;
  ASSERT_TRUE(decode(p, out));
  EXPECT_TRUE(same_stats(in, out));
  Stats zero;
  ASSERT_TRUE(decode(encode(zero), out));
  EXPECT_TRUE(same_stats(zero, out));
}

TEST(ProtocolMessages, ExitOutOfRangeRejected) {
  Exit out;
  EXPECT_FALSE(decode(encode(Exit{256, 0}), out));
  EXPECT_FALSE(decode(encode(Exit{-1, 0}), out));
  EXPECT_FALSE(decode(encode(Exit{0, -1}), out));
  EXPECT_FALSE(decode(encode(Exit{0, 65}), out));
}

// ---- compatibility and malformed input -------------------------------------

TEST(ProtocolMalformed, TrailingBytesTolerated) {
  auto with_tail = [](Bytes p) {
    p.insert(p.end(), {0xDE, 0xAD, 0xBE, 0xEF, 0x00});
    return p;
  };
  Hello hello;
  EXPECT_TRUE(decode(with_tail(encode(Hello{1, "g"})), hello));
  EXPECT_EQ(hello.guest, "g");
  SetupMsg setup;
  SetupMsg setup_in;
  setup_in.rootfs_tag = "root";
  EXPECT_TRUE(decode(with_tail(encode(setup_in)), setup));
  Spawn spawn;
  EXPECT_TRUE(decode(with_tail(encode(sample_spawn())), spawn));
  EXPECT_EQ(spawn.argv, sample_spawn().argv);
  EXPECT_EQ(spawn.cols, 80);
  Reply reply;
  EXPECT_TRUE(decode(with_tail(encode(Reply{0, "m", 9})), reply));
  EXPECT_EQ(reply.pid, 9u);
  Ack ack;
  EXPECT_TRUE(decode(with_tail(encode(Ack{1})), ack));
  Signal sig;
  EXPECT_TRUE(decode(with_tail(encode(Signal{2})), sig));
  Resize resize;
  EXPECT_TRUE(decode(with_tail(encode(Resize{1, 2})), resize));
  EXPECT_EQ(resize.cols, 2);
  Exit exit;
  EXPECT_TRUE(decode(with_tail(encode(Exit{1, 0})), exit));
  EXPECT_EQ(exit.code, 1);
  Stats stats;
  EXPECT_TRUE(decode(with_tail(encode(sample_stats())), stats));
  EXPECT_TRUE(same_stats(stats, sample_stats()));
}

// Every proper prefix of a valid payload must fail to decode as message M.
template <typename M>
void expect_truncations_fail(const Bytes& full) {
  for (size_t n = 0; n < full.size(); ++n) {
    // A fresh heap copy of exactly n bytes, so ASan catches any read past it.
    Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    M out;
    EXPECT_FALSE(decode(prefix, out)) << "prefix of " << n << " of " << full.size() << " bytes";
  }
  M out;
  EXPECT_TRUE(decode(full, out));
}

TEST(ProtocolMalformed, EveryTruncatedSpawnFails) {
  expect_truncations_fail<Spawn>(encode(sample_spawn()));
}

TEST(ProtocolMalformed, EveryTruncatedMessageFails) {
  SetupMsg setup_in;
  setup_in.hostname = "h";
  setup_in.rootfs_tag = "root";
  expect_truncations_fail<Hello>(encode(Hello{1, "abc"}));
  expect_truncations_fail<SetupMsg>(encode(setup_in));
  expect_truncations_fail<Reply>(encode(Reply{0, "m", 1}));
  expect_truncations_fail<Ack>(encode(Ack{1}));
  expect_truncations_fail<Signal>(encode(Signal{1}));
  expect_truncations_fail<Resize>(encode(Resize{1, 1}));
  expect_truncations_fail<Exit>(encode(Exit{0, 0}));
  expect_truncations_fail<Stats>(encode(sample_stats()));
  SetupMsg limits = setup_in;
  limits.memory_limit_bytes = 1;
  limits.pids_limit = 2;
  limits.cpu_quota_usec = 50000;
  limits.cpu_period_usec = 100000;
  expect_truncations_fail<SetupMsg>(encode(limits));
  expect_truncations_fail<SetupMsg>(encode(setup_with_interfaces()));
  expect_truncations_fail<CopyOut>(encode(CopyOut{"/etc/passwd", "pw", CopyOut::kFollowLink}));
  expect_truncations_fail<CopyOut>(encode(CopyOut{"/", "", 0}));
  expect_truncations_fail<CopyIn>(encode(CopyIn{"/tmp", CopyIn::kKeepOwner}));
}

TEST(ProtocolMessages, CopyOutRoundTrip) {
  CopyOut in{"/var/lib/x y", ".", CopyOut::kOneFileSystem | CopyOut::kTopOnly};
  Bytes p = encode(in);
  // path (4 + 12), name (4 + 1), flags (4).
  EXPECT_EQ(p.size(), 25u);
  CopyOut out;
  ASSERT_TRUE(decode(p, out));
  EXPECT_EQ(out.path, in.path);
  EXPECT_EQ(out.name, ".");
  EXPECT_EQ(out.flags, in.flags);
}

TEST(ProtocolMessages, CopyInRoundTrip) {
  CopyIn in{"/dst", CopyIn::kKeepOwner};
  CopyIn out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.path, "/dst");
  EXPECT_EQ(out.flags, CopyIn::kKeepOwner);
}

TEST(ProtocolMalformed, CopyBadFieldsRejected) {
  CopyOut out;
  EXPECT_FALSE(decode(encode(CopyOut{"", "", 0}), out));                       // no path
  EXPECT_FALSE(decode(encode(CopyOut{"etc", "", 0}), out));                    // relative
  EXPECT_FALSE(decode(encode(CopyOut{std::string("/e\0c", 4), "", 0}), out));  // NUL
  EXPECT_FALSE(decode(encode(CopyOut{"/etc", "a/b", 0}), out));                // two components
  EXPECT_FALSE(decode(encode(CopyOut{"/etc", "..", 0}), out));                 // parent
  EXPECT_FALSE(decode(encode(CopyOut{"/etc", "", 1u << 7}), out));             // unknown flag
  EXPECT_FALSE(decode(encode(CopyOut{"/" + std::string(kMaxCopyPath, 'a'), "", 0}), out));
  EXPECT_FALSE(decode(encode(CopyOut{"/etc", std::string(kMaxCopyName + 1, 'a'), 0}), out));
  EXPECT_TRUE(decode(encode(CopyOut{"/etc", std::string(kMaxCopyName, 'a'), 0}), out));
  CopyIn in;
  EXPECT_FALSE(decode(encode(CopyIn{"", 0}), in));
  EXPECT_FALSE(decode(encode(CopyIn{"dst", 0}), in));
  EXPECT_FALSE(decode(encode(CopyIn{std::string("/d\0", 3), 0}), in));
  EXPECT_FALSE(decode(encode(CopyIn{"/dst", 4}), in));
  EXPECT_TRUE(decode(encode(CopyIn{"/dst", CopyIn::kNoOverwriteDirNonDir}), in));
}

TEST(ProtocolMalformed, StringLongerThanRemainingRejected) {
  Bytes p;
  put_u32(p, kVersion);
  put_u32(p, 10);  // claims 10 bytes, carries 3
  p.insert(p.end(), {'a', 'b', 'c'});
  Hello out;
  EXPECT_FALSE(decode(p, out));
}

TEST(ProtocolMalformed, StringOverLimitRejected) {
  // The bytes are really there; the limit alone must reject it.
  Bytes p;
  put_u32(p, kVersion);
  put_str(p, std::string(kMaxStringBytes + 1, 'x'));
  Hello out;
  EXPECT_FALSE(decode(p, out));

  Bytes at_limit;
  put_u32(at_limit, kVersion);
  put_str(at_limit, std::string(kMaxStringBytes, 'x'));
  EXPECT_TRUE(decode(at_limit, out));
  EXPECT_EQ(out.guest.size(), kMaxStringBytes);
}

TEST(ProtocolMalformed, ListCountLiesRejected) {
  // argv count 0xFFFFFFFF with almost nothing behind it.
  Bytes p;
  put_u32(p, 0xFFFFFFFFu);
  put_str(p, "sh");
  Spawn out;
  EXPECT_FALSE(decode(p, out));

  // A count within kMaxListItems but beyond the bytes left.
  Bytes q;
  put_u32(q, 100);
  put_str(q, "sh");
  EXPECT_FALSE(decode(q, out));

  // kMaxListItems + 1 real items: rejected by the limit.
  Bytes r;
  put_u32(r, kMaxListItems + 1);
  for (uint32_t i = 0; i <= kMaxListItems; ++i)
    put_str(r, "a");
  EXPECT_FALSE(decode(r, out));
}

TEST(ProtocolMalformed, GroupsCountLiesRejected) {
  Bytes p;
  put_u32(p, 1);
  put_str(p, "id");
  put_u32(p, 0);            // env
  put_str(p, "/");          // cwd
  put_u32(p, 0);            // uid
  put_u32(p, 0);            // gid
  put_u32(p, 0xFFFFFFFFu);  // groups count
  p.insert(p.end(), {0, 0, 0, 0, 0, 0});
  Spawn out;
  EXPECT_FALSE(decode(p, out));
}

TEST(ProtocolMalformed, RlimitCountLiesRejected) {
  Spawn in;
  in.argv = {"true"};
  Bytes base = encode(in);
  // Drop the empty rlimits list and what follows it (has_caps, five sets,
  // no_new_privileges, container), which with_items puts back.
  base.resize(base.size() - 4 - 46);

  // A count beyond the bytes left: one item claimed, 19 of its 20 bytes.
  Bytes short_item = base;
  put_u32(short_item, 1);
  short_item.insert(short_item.end(), 19, 0);
  Spawn out;
  EXPECT_FALSE(decode(short_item, out));

  // kMaxRlimits + 1 real items: rejected by the limit; kMaxRlimits pass.
  auto with_items = [&](uint32_t n) {
    Bytes p = base;
    put_u32(p, n);
    for (uint32_t i = 0; i < n; ++i) {
      put_u32(p, 7);
      put_u64(p, 1);
      put_u64(p, 2);
    }
    p.insert(p.end(), 46, 0);
    return p;
  };
  EXPECT_FALSE(decode(with_items(kMaxRlimits + 1), out));
  ASSERT_TRUE(decode(with_items(kMaxRlimits), out));
  EXPECT_EQ(out.rlimits.size(), kMaxRlimits);

  // A huge count with nothing behind it allocates nothing (ASan would see).
  Bytes liar = base;
  put_u32(liar, 0xFFFFFFFFu);
  EXPECT_FALSE(decode(liar, out));
}

TEST(ProtocolMalformed, SpawnEmptyArgvRejected) {
  Spawn in = sample_spawn();
  in.argv.clear();
  Spawn out;
  EXPECT_FALSE(decode(encode(in), out));
  in.argv = {""};
  EXPECT_FALSE(decode(encode(in), out));
}

TEST(ProtocolMalformed, SpawnNulBytesRejected) {
  Spawn out;
  Spawn a = sample_spawn();
  a.argv[1] = std::string("-c\0x", 4);
  EXPECT_FALSE(decode(encode(a), out));
  Spawn e = sample_spawn();
  e.env.push_back(std::string("A=\0B", 4));
  EXPECT_FALSE(decode(encode(e), out));
  Spawn c = sample_spawn();
  c.cwd = std::string("/tmp\0/etc", 9);
  EXPECT_FALSE(decode(encode(c), out));
}

TEST(ProtocolMalformed, SetupInvalidFieldsRejected) {
  SetupMsg out;
  SetupMsg empty_tag;
  EXPECT_FALSE(decode(encode(empty_tag), out));

  SetupMsg long_host;
  long_host.rootfs_tag = "root";
  long_host.hostname = std::string(65, 'h');
  EXPECT_FALSE(decode(encode(long_host), out));

  SetupMsg long_tag;
  long_tag.rootfs_tag = std::string(37, 't');
  EXPECT_FALSE(decode(encode(long_tag), out));

  // Exactly one kind of root, and an upper layer only over an image.
  SetupMsg both;
  both.rootfs_tag = "root";
  both.lower_serial = "lower";
  EXPECT_FALSE(decode(encode(both), out));
  SetupMsg upper_over_share;
  upper_over_share.rootfs_tag = "root";
  upper_over_share.upper_serial = "upper";
  EXPECT_FALSE(decode(encode(upper_over_share), out));
  SetupMsg long_serial;
  long_serial.lower_serial = std::string(21, 's');
  EXPECT_FALSE(decode(encode(long_serial), out));
}

TEST(ProtocolMessages, SetupWithImageRootRoundTrip) {
  SetupMsg in;
  in.lower_serial = "vessel-lower";
  in.upper_serial = "vessel-upper";
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.rootfs_tag, "");
  EXPECT_EQ(out.lower_serial, "vessel-lower");
  EXPECT_EQ(out.upper_serial, "vessel-upper");
}

TEST(ProtocolMessages, SetupMachineRoundTrip) {
  SetupMsg in;
  in.lower_serial = "vessel-root";
  in.machine = 1;
  in.init = "/sbin/init";
  in.user.name = "tester";
  in.user.uid = 4242;
  in.user.gid = 4243;
  in.user.home = "/home/tester";
  in.user.shell = "/bin/bash";
  in.user.create_home = 1;
  SetupMsg out;
  ASSERT_TRUE(decode(encode(in), out));
  EXPECT_EQ(out.machine, 1);
  EXPECT_EQ(out.init, "/sbin/init");
  EXPECT_EQ(out.user.name, "tester");
  EXPECT_EQ(out.user.uid, 4242u);
  EXPECT_EQ(out.user.gid, 4243u);
  EXPECT_EQ(out.user.home, "/home/tester");
  EXPECT_EQ(out.user.shell, "/bin/bash");
  EXPECT_EQ(out.user.create_home, 1);
}

TEST(ProtocolMalformed, SetupBadMachineRejected) {
  auto base = [] {
    SetupMsg m;
    m.lower_serial = "vessel-root";
    m.machine = 1;
    m.init = "/sbin/init";
    m.user.name = "tester";
    m.user.uid = 1000;
    m.user.home = "/home/tester";
    m.user.shell = "/bin/sh";
    return m;
  };
  SetupMsg out;
  ASSERT_TRUE(decode(encode(base()), out));
  std::vector<std::function<void(SetupMsg&)>> bad = {
      [](SetupMsg& m) { m.init = "sbin/init"; },             // relative
      [](SetupMsg& m) { m.init.clear(); },                   // none
      [](SetupMsg& m) { m.user.name = "a:b"; },              // splits a passwd line
      [](SetupMsg& m) { m.user.name = "x\nroot"; },          // a second line
      [](SetupMsg& m) { m.user.home = "/home/a:0:0"; },      // a field in a path
      [](SetupMsg& m) { m.user.uid = 0; },                   // root is root
      [](SetupMsg& m) { m.upper_serial = "vessel-upper"; },  // a machine has one disk
      [](SetupMsg& m) { m.lower_serial.clear(), m.rootfs_tag = "rootfs"; },
      [](SetupMsg& m) { m.machine = 2; },
      [](SetupMsg& m) { m.machine = 0; },  // a container with a user
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SetupMsg m = base();
    bad[i](m);
    EXPECT_FALSE(decode(encode(m), out)) << "case " << i;
  }
}

// ---- FrameReader -----------------------------------------------------------

Bytes three_frames() {
  Bytes s;
  auto add = [&](const Bytes& f) { s.insert(s.end(), f.begin(), f.end()); };
  add(make_frame(MsgType::kHello, 0, encode(Hello{kVersion, "init"})));
  add(make_frame(MsgType::kStdin, 3, {}));  // empty payload: EOF
  add(make_frame(MsgType::kSpawn, 3, encode(sample_spawn())));
  return s;
}

void expect_three_frames(const std::vector<FrameReader::Frame>& frames) {
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].header.type, static_cast<uint16_t>(MsgType::kHello));
  EXPECT_EQ(frames[0].header.stream, 0u);
  Hello h;
  ASSERT_TRUE(decode(frames[0].payload, h));
  EXPECT_EQ(h.guest, "init");
  EXPECT_EQ(frames[1].header.type, static_cast<uint16_t>(MsgType::kStdin));
  EXPECT_EQ(frames[1].header.stream, 3u);
  EXPECT_TRUE(frames[1].payload.empty());
  EXPECT_EQ(frames[2].header.type, static_cast<uint16_t>(MsgType::kSpawn));
  Spawn s;
  ASSERT_TRUE(decode(frames[2].payload, s));
  EXPECT_EQ(s.argv, sample_spawn().argv);
}

TEST(FrameReader, SeveralFramesInOneFeed) {
  const Bytes stream = three_frames();
  FrameReader r;
  r.feed(stream.data(), stream.size());
  std::vector<FrameReader::Frame> frames;
  FrameReader::Frame f;
  while (r.next(f) == FrameReader::Status::kFrame)
    frames.push_back(f);
  expect_three_frames(frames);
  EXPECT_EQ(r.next(f), FrameReader::Status::kNeedMore);
  EXPECT_EQ(r.buffered(), 0u);
  EXPECT_FALSE(r.failed());
}

TEST(FrameReader, SplitAtEveryByteBoundary) {
  const Bytes stream = three_frames();
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameReader r;
    std::vector<FrameReader::Frame> frames;
    FrameReader::Frame f;
    r.feed(stream.data(), cut);
    while (r.next(f) == FrameReader::Status::kFrame)
      frames.push_back(f);
    r.feed(stream.data() + cut, stream.size() - cut);
    while (r.next(f) == FrameReader::Status::kFrame)
      frames.push_back(f);
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_three_frames(frames);
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(FrameReader, OneByteAtATime) {
  const Bytes stream = three_frames();
  FrameReader r;
  std::vector<FrameReader::Frame> frames;
  FrameReader::Frame f;
  for (uint8_t byte : stream) {
    r.feed(&byte, 1);
    FrameReader::Status st;
    while ((st = r.next(f)) == FrameReader::Status::kFrame)
      frames.push_back(f);
    ASSERT_EQ(st, FrameReader::Status::kNeedMore);
  }
  expect_three_frames(frames);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(FrameReader, OversizedHeaderIsStickyError) {
  FrameReader r;
  FrameReader::Frame f;
  // A good frame first: it is still delivered.
  Bytes good = make_frame(MsgType::kStdinAck, 1, encode(Ack{5}));
  r.feed(good.data(), good.size());
  std::array<uint8_t, kHeaderSize> bad{};
  encode_header(FrameHeader{kMaxPayload + 1, 8, 0, 1}, bad.data());
  r.feed(bad.data(), bad.size());
  ASSERT_EQ(r.next(f), FrameReader::Status::kFrame);
  EXPECT_EQ(f.header.type, static_cast<uint16_t>(MsgType::kStdinAck));
  EXPECT_EQ(r.next(f), FrameReader::Status::kError);
  EXPECT_TRUE(r.failed());
  // More valid data cannot resynchronise it.
  r.feed(good.data(), good.size());
  EXPECT_EQ(r.next(f), FrameReader::Status::kError);
  EXPECT_EQ(r.next(f), FrameReader::Status::kError);
  EXPECT_TRUE(r.failed());
}

TEST(FrameReader, MaxPayloadFrameAccepted) {
  Bytes payload(kMaxPayload, 0x5A);
  Bytes frame = make_frame(MsgType::kStdout, 2, payload);
  FrameReader r;
  FrameReader::Frame f;
  r.feed(frame.data(), frame.size() - 1);
  EXPECT_EQ(r.next(f), FrameReader::Status::kNeedMore);
  r.feed(frame.data() + frame.size() - 1, 1);
  ASSERT_EQ(r.next(f), FrameReader::Status::kFrame);
  EXPECT_EQ(f.payload.size(), kMaxPayload);
  EXPECT_EQ(f.header.stream, 2u);
}

TEST(FrameReader, PartialHeaderNeedsMore) {
  FrameReader r;
  FrameReader::Frame f;
  EXPECT_EQ(r.next(f), FrameReader::Status::kNeedMore);
  const uint8_t some[5] = {1, 0, 0, 0, 6};
  r.feed(some, sizeof some);
  EXPECT_EQ(r.next(f), FrameReader::Status::kNeedMore);
  EXPECT_EQ(r.buffered(), 5u);
  EXPECT_FALSE(r.failed());
}

}  // namespace
}  // namespace vessel::protocol

namespace vessel {
namespace {

TEST(EarlyRoot, NamesAWritableShareOrTheContainersDisk) {
  protocol::Setup fs;
  fs.rootfs_tag = "rootfs";
  EXPECT_EQ(protocol::early_root(fs), "fs:rootfs");
  protocol::Setup disk;
  disk.lower_serial = "vessel-root";
  EXPECT_EQ(protocol::early_root(disk), "disk:vessel-root");
}

TEST(EarlyRoot, NothingForRootsMountedOnlyAtSetup) {
  protocol::Setup s;
  EXPECT_EQ(protocol::early_root(s), "");  // no root at all
  s.rootfs_tag = "rootfs";
  protocol::Setup read_only = s;
  read_only.read_only = 1;
  EXPECT_EQ(protocol::early_root(read_only), "");
  protocol::Setup sub = s;
  sub.rootfs_subpath = "pod/rootfs";
  EXPECT_EQ(protocol::early_root(sub), "");
  protocol::Setup member = s;
  member.container = 1;
  EXPECT_EQ(protocol::early_root(member), "");
  protocol::Setup machine;
  machine.lower_serial = "vessel-root";
  machine.machine = 1;
  EXPECT_EQ(protocol::early_root(machine), "");
  protocol::Setup overlay;
  overlay.lower_serial = "vessel-lower";
  overlay.upper_serial = "vessel-upper";
  EXPECT_EQ(protocol::early_root(overlay), "");
  // A value that would not survive the kernel command line whole.
  protocol::Setup blank;
  blank.rootfs_tag = "a tag";
  EXPECT_EQ(protocol::early_root(blank), "");
}

}  // namespace
}  // namespace vessel
