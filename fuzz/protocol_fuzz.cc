// libFuzzer target for the host<->guest protocol: everything a guest can send
// reaches the host through FrameReader and decode(), so the input is treated
// as the raw byte stream from the virtio-serial port.
//
// Beyond "no crash, no sanitizer report" it checks three properties and
// aborts when one fails:
//   - a FrameReader fed in small chunks yields the same frames as one fed the
//     whole input at once;
//   - a payload that decodes re-encodes into one that decodes to the same
//     fields (the encoder and decoder agree);
//   - decode_header agrees with encode_header on the first 12 bytes.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "protocol/protocol.h"

namespace vessel::protocol {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const Hello& a, const Hello& b) {
  return a.version == b.version && a.guest == b.guest;
}
bool same(const Setup& a, const Setup& b) {
  return a.hostname == b.hostname && a.rootfs_tag == b.rootfs_tag && a.hosts == b.hosts &&
         a.resolv_conf == b.resolv_conf && a.read_only == b.read_only &&
         a.lower_serial == b.lower_serial && a.upper_serial == b.upper_serial &&
         a.memory_limit_bytes == b.memory_limit_bytes && a.pids_limit == b.pids_limit &&
         a.cpu_quota_usec == b.cpu_quota_usec && a.cpu_period_usec == b.cpu_period_usec &&
         a.mounts.size() == b.mounts.size() && a.gateway == b.gateway &&
         a.memory_reclaim == b.memory_reclaim && a.container == b.container &&
         a.rootfs_subpath == b.rootfs_subpath && a.main_command == b.main_command &&
         a.main_path == b.main_path && a.realtime_ns == b.realtime_ns && a.entropy == b.entropy &&
         a.restored == b.restored &&
         std::equal(a.addresses6.begin(), a.addresses6.end(), b.addresses6.begin(),
                    b.addresses6.end(),
                    [](const Address6& x, const Address6& y) {
                      return x.interface == y.interface && x.address == y.address &&
                             x.prefix_len == y.prefix_len;
                    }) &&
         std::equal(a.routes.begin(), a.routes.end(), b.routes.begin(), b.routes.end(),
                    [](const Route& x, const Route& y) {
                      return x.interface == y.interface && x.destination == y.destination &&
                             x.prefix_len == y.prefix_len && x.gateway == y.gateway;
                    }) &&
         std::equal(a.interfaces.begin(), a.interfaces.end(), b.interfaces.begin(),
                    b.interfaces.end(), [](const Interface& x, const Interface& y) {
                      return x.name == y.name && x.mac == y.mac && x.address == y.address &&
                             x.prefix_len == y.prefix_len && x.mtu == y.mtu;
                    });
}
bool same(const Rlimit& a, const Rlimit& b) {
  return a.resource == b.resource && a.soft == b.soft && a.hard == b.hard;
}
bool same(const std::optional<Capabilities>& a, const std::optional<Capabilities>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->bounding == b->bounding && a->effective == b->effective &&
                a->permitted == b->permitted && a->inheritable == b->inheritable &&
                a->ambient == b->ambient);
}
bool same(const Spawn& a, const Spawn& b) {
  return same(a.capabilities, b.capabilities) && a.no_new_privileges == b.no_new_privileges &&
         a.argv == b.argv && a.env == b.env && a.cwd == b.cwd && a.uid == b.uid && a.gid == b.gid &&
         a.groups == b.groups && a.tty == b.tty && a.stdin_open == b.stdin_open &&
         a.rows == b.rows && a.cols == b.cols && a.user == b.user && a.container == b.container &&
         std::equal(a.rlimits.begin(), a.rlimits.end(), b.rlimits.begin(), b.rlimits.end(),
                    [](const Rlimit& x, const Rlimit& y) { return same(x, y); });
}
bool same(const Reply& a, const Reply& b) {
  return a.errnum == b.errnum && a.message == b.message && a.pid == b.pid;
}
bool same(const Ack& a, const Ack& b) {
  return a.bytes == b.bytes;
}
bool same(const Signal& a, const Signal& b) {
  return a.signo == b.signo;
}
bool same(const Resize& a, const Resize& b) {
  return a.rows == b.rows && a.cols == b.cols;
}
bool same(const Exit& a, const Exit& b) {
  return a.code == b.code && a.signal == b.signal && a.oom_killed == b.oom_killed;
}
bool same(const Stats& a, const Stats& b) {
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
bool same(const CopyOut& a, const CopyOut& b) {
  return a.path == b.path && a.name == b.name && a.flags == b.flags;
}
bool same(const CopyIn& a, const CopyIn& b) {
  return a.path == b.path && a.flags == b.flags;
}
bool same(const Update& a, const Update& b) {
  return a.memory_limit_bytes == b.memory_limit_bytes && a.pids_limit == b.pids_limit &&
         a.cpu_quota_usec == b.cpu_quota_usec && a.cpu_period_usec == b.cpu_period_usec &&
         a.container == b.container;
}
bool same(const StatsRequest& a, const StatsRequest& b) {
  return a.container == b.container;
}
bool same(const RemoveContainer& a, const RemoveContainer& b) {
  return a.container == b.container;
}

template <typename M>
void try_decode(std::span<const uint8_t> payload) {
  M first;
  if (!decode(payload, first)) return;
  std::vector<uint8_t> again = encode(first);
  check(again.size() <= payload.size());  // trailing bytes are dropped, never added
  M second;
  check(decode(again, second));
  check(same(first, second));
}

void decode_all(std::span<const uint8_t> payload) {
  try_decode<Hello>(payload);
  try_decode<Setup>(payload);
  try_decode<Spawn>(payload);
  try_decode<Reply>(payload);
  try_decode<Ack>(payload);
  try_decode<Signal>(payload);
  try_decode<Resize>(payload);
  try_decode<Exit>(payload);
  try_decode<Stats>(payload);
  try_decode<CopyOut>(payload);
  try_decode<CopyIn>(payload);
  try_decode<Update>(payload);
  try_decode<StatsRequest>(payload);
  try_decode<RemoveContainer>(payload);
}

bool same_frame(const FrameReader::Frame& a, const FrameReader::Frame& b) {
  return a.header.length == b.header.length && a.header.type == b.header.type &&
         a.header.flags == b.header.flags && a.header.stream == b.header.stream &&
         a.payload == b.payload;
}

}  // namespace
}  // namespace vessel::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::protocol;

  if (size >= kHeaderSize) {
    auto h = decode_header(data);
    if (h) {
      uint8_t out[kHeaderSize];
      encode_header(*h, out);
      check(std::memcmp(out, data, kHeaderSize) == 0);
    }
  }

  // The whole input at once.
  FrameReader whole;
  whole.feed(data, size);
  std::vector<FrameReader::Frame> frames;
  FrameReader::Frame f;
  FrameReader::Status st;
  while ((st = whole.next(f)) == FrameReader::Status::kFrame) {
    check(f.payload.size() == f.header.length && f.header.length <= kMaxPayload);
    (void)is_known_type(f.header.type);
    check(type_name(f.header.type) != nullptr);
    decode_all(f.payload);
    frames.push_back(std::move(f));
  }
  const bool whole_failed = st == FrameReader::Status::kError;
  check(whole_failed == whole.failed());

  // The same bytes in chunks of 1..16, the size taken from the input so the
  // fuzzer explores different splits; frames must come out identical.
  const size_t chunk = size > 0 ? (data[size - 1] & 15u) + 1 : 1;
  FrameReader pieces;
  size_t n = 0;
  for (size_t off = 0; off < size; off += chunk) {
    pieces.feed(data + off, std::min(chunk, size - off));
    while ((st = pieces.next(f)) == FrameReader::Status::kFrame) {
      check(n < frames.size() && same_frame(f, frames[n]));
      ++n;
    }
  }
  check(n == frames.size());
  check(pieces.failed() == whole_failed);
  return 0;
}
