// libFuzzer target for rtnetlink link messages: parse_link() reads every
// RTM_NEWLINK of a dump (list_links) and the reply to find_link, so the input
// is one netlink message as the kernel would send it, nlmsghdr included.
//
// Beyond "no crash, no sanitizer report" it checks what callers rely on and
// aborts when one fails: a parsed link has a positive index and a name of 1
// to 15 bytes without NUL, and parsing is a function of the nlmsg_len bytes
// alone (bytes after them never change the result).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "net/netlink.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const vessel::net::LinkInfo& a, const vessel::net::LinkInfo& b) {
  return a.index == b.index && a.name == b.name && a.kind == b.kind && a.master == b.master &&
         a.up == b.up && a.mtu == b.mtu;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vessel::net::parse_link;
  std::span<const uint8_t> input(data, size);
  auto link = parse_link(input);
  if (!link) return 0;
  check(link->index > 0);
  check(!link->name.empty() && link->name.size() <= 15);
  check(link->name.find('\0') == std::string::npos);
  check(link->kind.find('\0') == std::string::npos);

  // The message claims nlmsg_len bytes; parsing exactly those, in a buffer
  // of their own (so ASan sees a read past them), gives the same link.
  uint32_t length;
  std::memcpy(&length, data, sizeof length);
  check(length <= size);
  std::vector<uint8_t> exact(data, data + length);
  exact.shrink_to_fit();
  auto again = parse_link(exact);
  check(again && same(*link, *again));
  return 0;
}
