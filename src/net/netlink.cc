#include "net/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>

#include "sys/fs.h"

namespace vessel::net {
namespace {

// Big enough for any one rtnetlink dump datagram: the kernel sizes dump skbs
// by the reader's buffer, up to 32 KiB (libmnl's MNL_SOCKET_DUMP_SIZE).
constexpr size_t kReceiveBuffer = 32768;
// Requests carry a header, an ifinfomsg/ifaddrmsg and a few short attributes.
constexpr size_t kRequestBuffer = 512;
// A dump that raced with a change of the table is retried this many times.
constexpr int kDumpAttempts = 5;

// The kernel answers ENODEV, not ENOENT, for a link that does not exist.
Error link_error(int errnum, std::string what) {
  if (errnum == ENODEV) return Error(ErrorCode::kNotFound, std::move(what), errnum);
  return Error::from_errno(errnum, std::move(what));
}

Status check_name(const std::string& name) {
  if (name.empty()) return Error(ErrorCode::kInvalidArgument, "link name is empty");
  if (name.size() >= IFNAMSIZ)
    return Error(ErrorCode::kInvalidArgument,
                 "link name '" + name + "' is too long (at most 15 bytes)");
  return ok_status();
}

// ---- Parsing: every length is checked against the bytes actually present.

// An aligned copy of one netlink message, so that reading nlmsghdr, nlattr
// and the family headers through pointers is defined behaviour whatever the
// alignment of the caller's bytes (the fuzzer's are arbitrary). It is sized
// in whole words; the bytes past nlmsg_len are zero and never parsed.
struct Message {
  std::vector<uint32_t> words;
  const nlmsghdr* header() const { return reinterpret_cast<const nlmsghdr*>(words.data()); }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(words.data()); }
};

// Checks that `message` holds a whole nlmsghdr of `type` whose nlmsg_len fits
// in the bytes given and covers `fixed` bytes of family header, and copies it.
std::optional<Message> copy_message(std::span<const uint8_t> message, uint16_t type, size_t fixed) {
  nlmsghdr header;
  if (message.size() < sizeof header) return std::nullopt;
  std::memcpy(&header, message.data(), sizeof header);
  if (header.nlmsg_type != type) return std::nullopt;
  if (header.nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(fixed)) return std::nullopt;
  if (header.nlmsg_len > message.size()) return std::nullopt;
  Message copy;
  copy.words.assign(MNL_ALIGN(header.nlmsg_len) / sizeof(uint32_t), 0);
  std::memcpy(copy.words.data(), message.data(), header.nlmsg_len);
  return copy;
}

// Calls `visit` on each attribute in the `length` bytes at `begin` (4-aligned,
// owned by a Message; `length` need not be a multiple of 4). mnl_attr_ok()
// checks that the remaining length holds an attribute header and that nla_len
// is at least the header and at most the remaining length, so no attribute
// reaches past `length`, not even into the Message's zero padding. Only the
// last attribute's own padding may be missing. False when bytes are left
// over that do not form an attribute (a truncated or lying nla_len), or when
// `visit` refuses an attribute.
template <typename Visit>
bool walk_attributes(const uint8_t* begin, size_t length, Visit&& visit) {
  int remaining = static_cast<int>(length);
  const auto* attr = reinterpret_cast<const nlattr*>(begin);
  while (mnl_attr_ok(attr, remaining)) {
    if (!visit(attr)) return false;
    remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
  return remaining <= 0 && remaining > -static_cast<int>(MNL_ALIGNTO);
}

template <typename Visit>
bool walk_nested(const nlattr* nest, Visit&& visit) {
  return walk_attributes(static_cast<const uint8_t*>(mnl_attr_get_payload(nest)),
                         mnl_attr_get_payload_len(nest), visit);
}

// A NUL-terminated string attribute: the terminator must lie inside the
// payload, and the string before it must be shorter than `limit`.
std::optional<std::string> attr_string(const nlattr* attr, size_t limit) {
  const auto* data = static_cast<const char*>(mnl_attr_get_payload(attr));
  const size_t size = mnl_attr_get_payload_len(attr);
  const size_t length = strnlen(data, size);
  if (length == size || length >= limit) return std::nullopt;
  return std::string(data, length);
}

// A u32 attribute: exactly four bytes of payload.
std::optional<uint32_t> attr_u32(const nlattr* attr) {
  if (mnl_attr_get_payload_len(attr) != sizeof(uint32_t)) return std::nullopt;
  return mnl_attr_get_u32(attr);
}

struct AddressEntry {
  int index = 0;
  Ipv4Net net;
};

// One RTM_NEWADDR of family AF_INET, with the same bounds checks as
// parse_link(). nullopt for other families and malformed messages.
std::optional<AddressEntry> parse_address(std::span<const uint8_t> bytes) {
  auto message = copy_message(bytes, RTM_NEWADDR, sizeof(ifaddrmsg));
  if (!message) return std::nullopt;
  ifaddrmsg ifa;
  std::memcpy(&ifa, message->bytes() + MNL_NLMSG_HDRLEN, sizeof ifa);
  if (ifa.ifa_family != AF_INET || ifa.ifa_prefixlen > 32) return std::nullopt;
  std::optional<uint32_t> local, address;
  auto visit = [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case IFA_LOCAL:
        local = attr_u32(attr);
        return local.has_value();
      case IFA_ADDRESS:
        address = attr_u32(attr);
        return address.has_value();
      default:
        return true;
    }
  };
  const size_t offset = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof ifa);
  const bool ok =
      walk_attributes(message->bytes() + offset, message->header()->nlmsg_len - offset, visit);
  // IFA_ADDRESS is the peer's address on point-to-point links; IFA_LOCAL is
  // ours whenever it is present (rtnetlink(7)).
  const std::optional<uint32_t> own = local ? local : address;
  if (!ok || !own) return std::nullopt;
  return AddressEntry{static_cast<int>(ifa.ifa_index),
                      Ipv4Net{Ipv4{ntohl(*own)}, ifa.ifa_prefixlen}};
}

// One attribute of an RTM_NEWLINK into `link`; false when an attribute we
// read has the wrong size or an unterminated string.
bool read_link_attribute(const nlattr* attr, LinkInfo& link, bool& named) {
  switch (mnl_attr_get_type(attr)) {
    case IFLA_IFNAME: {
      auto name = attr_string(attr, IFNAMSIZ);
      if (!name || name->empty()) return false;
      link.name = std::move(*name);
      named = true;
      return true;
    }
    case IFLA_MTU: {
      auto mtu = attr_u32(attr);
      if (!mtu) return false;
      link.mtu = *mtu;
      return true;
    }
    case IFLA_MASTER: {
      auto master = attr_u32(attr);
      if (!master) return false;
      link.master = static_cast<int>(*master);
      return true;
    }
    case IFLA_LINKINFO:
      return walk_nested(attr, [&](const nlattr* inner) {
        if (mnl_attr_get_type(inner) != IFLA_INFO_KIND) return true;
        // Kinds are short names ("bridge", "tun", "veth"); 64 is generous.
        auto kind = attr_string(inner, 64);
        if (!kind) return false;
        link.kind = std::move(*kind);
        return true;
      });
    default:
      return true;  // everything else is not ours to read
  }
}

// ---- Requests.

// State of one request while its replies are read.
struct Exchange {
  std::function<void(const nlmsghdr*)> on_data;
  std::string extack;  // the kernel's NLMSGERR_ATTR_MSG, if it sent one
};

int on_data_message(const nlmsghdr* nlh, void* data) {
  auto* exchange = static_cast<Exchange*>(data);
  if (exchange->on_data) exchange->on_data(nlh);
  return MNL_CB_OK;
}

// NLMSG_ERROR: an ACK (error 0) ends the exchange; an error sets errno and
// keeps the kernel's extended-ACK text. libmnl's own handler ignores the
// text, hence this one. The message's length was bounded by mnl_cb_run2.
int on_error_message(const nlmsghdr* nlh, void* data) {
  auto* exchange = static_cast<Exchange*>(data);
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) return MNL_CB_STOP;
  // With NETLINK_CAP_ACK the request is not echoed (NLM_F_CAPPED) and the
  // extended-ACK attributes follow struct nlmsgerr directly.
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) && (nlh->nlmsg_flags & NLM_F_CAPPED)) {
    mnl_attr_parse(
        nlh, sizeof(nlmsgerr),
        [](const nlattr* attr, void* out) {
          if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG) {
            auto text = attr_string(attr, 512);
            if (text) *static_cast<std::string*>(out) = *text;
          }
          return MNL_CB_OK;
        },
        &exchange->extack);
  }
  errno = err->error < 0 ? -err->error : err->error;
  return MNL_CB_ERROR;
}

// A NETLINK_ROUTE socket for one request (a fresh socket per request means a
// failed or interrupted dump never leaves replies queued for the next one).
class RouteSocket {
 public:
  static Result<RouteSocket> open() {
    UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return Error::from_errno(errno, "open rtnetlink socket");
    // Errors carry the kernel's explanation ("Unknown device type") and do
    // not echo the request. Both are best effort: old kernels lack them.
    const int one = 1;
    ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    sockaddr_nl address{};
    address.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks our port id
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      return Error::from_errno(errno, "bind rtnetlink socket");
    socklen_t length = sizeof address;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
      return Error::from_errno(errno, "get rtnetlink port id");
    return RouteSocket(std::move(fd), address.nl_pid);
  }

  /// Sends `request` (with NLM_F_ACK, or NLM_F_DUMP) and reads replies until
  /// its ACK, error or NLMSG_DONE; data messages go to `on_data`. Errors are
  /// named by `what`.
  Status transact(nlmsghdr* request, const std::string& what,
                  std::function<void(const nlmsghdr*)> on_data = {}) {
    request->nlmsg_seq = ++seq_;
    if (::send(fd_.get(), request, request->nlmsg_len, 0) < 0) return link_error(errno, what);
    std::vector<uint32_t> buffer(kReceiveBuffer / sizeof(uint32_t));
    Exchange exchange{std::move(on_data), {}};
    mnl_cb_t control[NLMSG_ERROR + 1] = {};
    control[NLMSG_ERROR] = on_error_message;  // NLMSG_DONE/OVERRUN: libmnl's
    for (;;) {
      iovec iov{buffer.data(), kReceiveBuffer};
      sockaddr_nl from{};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return link_error(errno, what);
      }
      if (msg.msg_flags & MSG_TRUNC)
        return Error(ErrorCode::kProtocol, what + ": netlink reply truncated");
      if (from.nl_pid != 0) continue;  // not from the kernel
      // mnl_cb_run2 checks each nlmsg_len against the bytes received, our
      // port id and sequence number, and NLM_F_DUMP_INTR (as EINTR).
      const int ret = mnl_cb_run2(buffer.data(), static_cast<size_t>(n), seq_, portid_,
                                  on_data_message, &exchange, control, NLMSG_ERROR + 1);
      if (ret == MNL_CB_ERROR) {
        const int errnum = errno;
        if (exchange.extack.empty()) return link_error(errnum, what);
        return link_error(errnum, what + ": " + exchange.extack);
      }
      if (ret == MNL_CB_STOP) return ok_status();
    }
  }

 private:
  RouteSocket(UniqueFd fd, uint32_t portid)
      : fd_(std::move(fd)), portid_(portid), seq_(static_cast<uint32_t>(::time(nullptr))) {}

  UniqueFd fd_;
  uint32_t portid_;
  uint32_t seq_;
};

// A request being built in an aligned buffer. The header is found from the
// buffer each time (not kept as a pointer) so a Request can be returned by
// value.
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    nlmsghdr* header = mnl_nlmsg_put_header(buffer_.data());
    header->nlmsg_type = type;
    header->nlmsg_flags = NLM_F_REQUEST | flags;
  }
  nlmsghdr* nlh() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }

  ifinfomsg* put_link(int index = 0) {
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh(), sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    return ifi;
  }
  // Names were checked by check_name(), so every attribute fits the buffer.
  void put_string(uint16_t type, const std::string& value) {
    mnl_attr_put_strz(nlh(), type, value.c_str());
  }
  void put_u32(uint16_t type, uint32_t value) { mnl_attr_put_u32(nlh(), type, value); }
  void put_bytes(uint16_t type, const void* data, size_t size) {
    mnl_attr_put(nlh(), type, size, data);
  }

 private:
  alignas(nlmsghdr) std::array<uint8_t, kRequestBuffer> buffer_{};
};

Status run(Request& request, const std::string& what,
           std::function<void(const nlmsghdr*)> on_data = {}) {
  VESSEL_ASSIGN_OR_RETURN(RouteSocket socket, RouteSocket::open());
  return socket.transact(request.nlh(), what, std::move(on_data));
}

// Runs a dump, retrying when the kernel flags it as interrupted by a
// concurrent change (NLM_F_DUMP_INTR, reported by libmnl as EINTR).
Status run_dump(const std::function<Request()>& make, const std::string& what,
                const std::function<void()>& reset,
                const std::function<void(const nlmsghdr*)>& on_data) {
  for (int attempt = 1;; ++attempt) {
    reset();
    Request request = make();
    Status status = run(request, what, on_data);
    if (status.ok() || status.error().errnum() != EINTR || attempt == kDumpAttempts) return status;
  }
}

std::span<const uint8_t> message_bytes(const nlmsghdr* nlh) {
  return {reinterpret_cast<const uint8_t*>(nlh), nlh->nlmsg_len};
}

}  // namespace

std::optional<LinkInfo> parse_link(std::span<const uint8_t> bytes) {
  auto message = copy_message(bytes, RTM_NEWLINK, sizeof(ifinfomsg));
  if (!message) return std::nullopt;
  ifinfomsg ifi;
  std::memcpy(&ifi, message->bytes() + MNL_NLMSG_HDRLEN, sizeof ifi);
  if (ifi.ifi_index <= 0) return std::nullopt;

  LinkInfo link;
  link.index = ifi.ifi_index;
  link.up = (ifi.ifi_flags & IFF_UP) != 0;
  bool named = false;
  auto visit = [&](const nlattr* attr) { return read_link_attribute(attr, link, named); };
  const size_t offset = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof ifi);
  if (!walk_attributes(message->bytes() + offset, message->header()->nlmsg_len - offset, visit))
    return std::nullopt;
  if (!named) return std::nullopt;
  return link;
}

Result<std::vector<LinkInfo>> list_links() {
  std::vector<LinkInfo> links;
  VESSEL_TRY(run_dump(
      [] {
        Request request(RTM_GETLINK, NLM_F_DUMP);
        request.put_link();
        // Counters are not needed and make each message several times bigger.
        request.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        return request;
      },
      "list links", [&] { links.clear(); },
      [&](const nlmsghdr* nlh) {
        // A message the parser refuses is skipped rather than failing the
        // whole listing; it cannot name a link anyway.
        if (auto link = parse_link(message_bytes(nlh))) links.push_back(std::move(*link));
      }));
  return links;
}

Result<LinkInfo> find_link(const std::string& name) {
  VESSEL_TRY(check_name(name));
  Request request(RTM_GETLINK, NLM_F_ACK);
  request.put_link();
  request.put_string(IFLA_IFNAME, name);
  request.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> found;
  bool malformed = false;
  const std::string what = "find link '" + name + "'";
  VESSEL_TRY(run(request, what, [&](const nlmsghdr* nlh) {
    found = parse_link(message_bytes(nlh));
    malformed = !found;
  }));
  if (malformed) return Error(ErrorCode::kProtocol, what + ": malformed reply");
  if (!found) return Error(ErrorCode::kProtocol, what + ": acknowledged without a reply");
  return *found;
}

Status create_bridge(const std::string& name) {
  VESSEL_TRY(check_name(name));
  Request request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  request.put_link();
  request.put_string(IFLA_IFNAME, name);
  nlattr* info = mnl_attr_nest_start(request.nlh(), IFLA_LINKINFO);
  request.put_string(IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(request.nlh(), info);
  return run(request, "create bridge '" + name + "'");
}

Status delete_link(const std::string& name) {
  VESSEL_TRY(check_name(name));
  Request request(RTM_DELLINK, NLM_F_ACK);
  request.put_link();
  request.put_string(IFLA_IFNAME, name);
  return run(request, "delete link '" + name + "'");
}

Status set_link_up(const std::string& name, bool up) {
  VESSEL_TRY(check_name(name));
  // RTM_SETLINK (not RTM_NEWLINK) so that a missing link is ENODEV and is
  // never created; the kernel looks the link up by IFLA_IFNAME.
  Request request(RTM_SETLINK, NLM_F_ACK);
  ifinfomsg* ifi = request.put_link();
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  request.put_string(IFLA_IFNAME, name);
  return run(request, "set link '" + name + (up ? "' up" : "' down"));
}

Status set_mtu(const std::string& name, uint32_t mtu) {
  VESSEL_TRY(check_name(name));
  Request request(RTM_SETLINK, NLM_F_ACK);
  request.put_link();
  request.put_string(IFLA_IFNAME, name);
  request.put_u32(IFLA_MTU, mtu);
  return run(request, "set mtu of '" + name + "' to " + std::to_string(mtu));
}

Status set_mac(const std::string& name, const Mac& mac) {
  VESSEL_TRY(check_name(name));
  Request request(RTM_SETLINK, NLM_F_ACK);
  request.put_link();
  request.put_string(IFLA_IFNAME, name);
  request.put_bytes(IFLA_ADDRESS, mac.bytes.data(), mac.bytes.size());
  return run(request, "set MAC of '" + name + "' to " + mac.to_string());
}

Status set_master(const std::string& link, const std::string& bridge) {
  VESSEL_TRY(check_name(link));
  const std::string what = "attach '" + link + "' to bridge '" + bridge + "'";
  auto master = find_link(bridge);
  if (!master.ok()) return master.error().wrap(what);
  Request request(RTM_SETLINK, NLM_F_ACK);
  request.put_link();
  request.put_string(IFLA_IFNAME, link);
  request.put_u32(IFLA_MASTER, static_cast<uint32_t>(master->index));
  return run(request, what);
}

Status add_address(const std::string& link, Ipv4 address, uint8_t prefix) {
  const std::string what =
      "add address " + address.to_string() + "/" + std::to_string(prefix) + " to '" + link + "'";
  if (prefix > 32) return Error(ErrorCode::kInvalidArgument, what + ": prefix longer than 32 bits");
  auto found = find_link(link);
  if (!found.ok()) return found.error().wrap(what);
  // NLM_F_REPLACE: an address that is already there (same address and
  // prefix) is success, not EEXIST (inet_rtm_newaddr).
  Request request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(request.nlh(), sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(found->index);
  request.put_u32(IFA_LOCAL, htonl(address.value));
  request.put_u32(IFA_ADDRESS, htonl(address.value));
  if (prefix < 31) {
    // What `ip address add ... brd +` sets: the subnet's broadcast address.
    const uint32_t host_mask = prefix == 0 ? ~0u : (1u << (32 - prefix)) - 1;
    request.put_u32(IFA_BROADCAST, htonl(address.value | host_mask));
  }
  return run(request, what);
}

Result<std::vector<std::pair<std::string, Ipv4Net>>> list_addresses() {
  // Addresses first, then links: a link that appears in between has no
  // address in the first dump, and an address whose link vanished in
  // between is dropped below (it went with its link).
  std::vector<AddressEntry> entries;
  VESSEL_TRY(run_dump(
      [] {
        Request request(RTM_GETADDR, NLM_F_DUMP);
        auto* ifa =
            static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(request.nlh(), sizeof(ifaddrmsg)));
        ifa->ifa_family = AF_INET;
        return request;
      },
      "list addresses", [&] { entries.clear(); },
      [&](const nlmsghdr* nlh) {
        if (auto entry = parse_address(message_bytes(nlh))) entries.push_back(*entry);
      }));
  VESSEL_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, list_links());
  std::map<int, std::string> names;
  for (const LinkInfo& link : links)
    names[link.index] = link.name;
  std::vector<std::pair<std::string, Ipv4Net>> out;
  for (const AddressEntry& entry : entries) {
    auto name = names.find(entry.index);
    if (name != names.end()) out.emplace_back(name->second, entry.net);
  }
  return out;
}

Status enable_ip_forwarding() {
  // /proc/sys/net is the caller's network namespace's view.
  const std::string path = "/proc/sys/net/ipv4/ip_forward";
  auto fd = sys::open_fd(path, O_WRONLY);
  if (!fd.ok()) return fd.error().wrap("enable ip forwarding");
  auto written = sys::write_all(fd->get(), "1\n", 2);
  if (!written.ok()) return written.error().wrap("enable ip forwarding: write '" + path + "'");
  return ok_status();
}

}  // namespace vessel::net
