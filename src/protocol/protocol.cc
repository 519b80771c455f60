#include "protocol/protocol.h"

#include <cstring>

namespace vessel::protocol {
namespace {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    for (int i = 0; i < 2; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void strs(const std::vector<std::string>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& s : v)
      str(s);
  }
  void u32s(const std::vector<uint32_t>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (uint32_t x : v)
      u32(x);
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

// Every read checks the bytes left; once a read fails, all later reads fail,
// so a decoder checks ok() once at the end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> p) : p_(p) {}
  bool ok() const { return ok_; }

  uint8_t u8() {
    if (!need(1)) return 0;
    return p_[pos_++];
  }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = static_cast<uint16_t>(p_[pos_] | (p_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
      v = (v << 8) | p_[pos_ + i];
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
      v = (v << 8) | p_[pos_ + i];
    pos_ += 8;
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  std::string str() {
    uint32_t n = u32();
    if (n > kMaxStringBytes || !need(n)) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v;
    uint32_t n = u32();
    // Each item takes at least 4 bytes, so a count beyond that is a lie.
    if (n > kMaxListItems || !need(static_cast<size_t>(n) * 4)) {
      ok_ = false;
      return v;
    }
    v.reserve(n);
    for (uint32_t i = 0; i < n && ok_; ++i)
      v.push_back(str());
    return v;
  }
  /// A list of fixed-size items of `item_bytes` each, at most `max` of them:
  /// the count is checked against both before anything is allocated.
  bool list_count(uint32_t max, size_t item_bytes, uint32_t& n) {
    n = u32();
    if (n > max || !need(static_cast<size_t>(n) * item_bytes)) ok_ = false;
    return ok_;
  }
  std::vector<uint32_t> u32s() {
    std::vector<uint32_t> v;
    uint32_t n = u32();
    if (n > kMaxListItems || !need(static_cast<size_t>(n) * 4)) {
      ok_ = false;
      return v;
    }
    v.reserve(n);
    for (uint32_t i = 0; i < n; ++i)
      v.push_back(u32());
    return v;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || p_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::span<const uint8_t> p_;
  size_t pos_ = 0;
  bool ok_ = true;
};

/// A path that goes to mount(2): bounded, no NUL, no ".." component.
bool clean_path(const std::string& path) {
  if (path.size() > 4096 || path.find('\0') != std::string::npos) return false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (path.compare(pos, next - pos, "..") == 0 && next - pos == 2) return false;
    pos = next + 1;
  }
  return true;
}

}  // namespace

bool is_known_type(uint16_t type) {
  return type >= static_cast<uint16_t>(MsgType::kHello) &&
         type <= static_cast<uint16_t>(MsgType::kRemoveContainer);
}

const char* type_name(uint16_t type) {
  static const char* const kNames[] = {
      "?",      "hello",         "setup",           "setup-result", "spawn",    "spawn-result",
      "stdin",  "stdin-ack",     "stdout",          "stderr",       "signal",   "resize",
      "exit",   "poweroff",      "stats",           "stats-result", "copy-out", "copy-in",
      "update", "update-result", "remove-container"};
  return is_known_type(type) ? kNames[type] : "unknown";
}

namespace {
// Linux's generic RLIMIT_* numbers (include/uapi/asm-generic/resource.h), as
// x86_64 and arm64 use them, named as Docker's --ulimit names them (plus
// "as", which Docker lacks).
constexpr const char* kRlimitNames[kRlimitResources] = {
    "cpu",     "fsize", "data",  "stack",      "core",     "rss",  "nproc",  "nofile",
    "memlock", "as",    "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
};
// cpu.max: a quota of at least 1 ms, a period of 1 ms to 1 s (0: default).
bool cpu_max_ok(uint32_t quota, uint32_t period) {
  bool period_ok = period == 0 || (period >= kMinCpuPeriodUsec && period <= kMaxCpuPeriodUsec);
  return period_ok && (quota == 0 || quota >= kMinCpuPeriodUsec);
}

// linux/capability.h, in number order.
constexpr const char* kCapNames[kCapLast + 1] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
}  // namespace

const char* capability_name(uint32_t cap) {
  return cap <= kCapLast ? kCapNames[cap] : nullptr;
}

std::optional<uint32_t> capability_number(std::string_view name) {
  for (uint32_t i = 0; i <= kCapLast; ++i) {
    if (name == kCapNames[i]) return i;
  }
  return std::nullopt;
}

const char* rlimit_name(uint32_t resource) {
  return resource < kRlimitResources ? kRlimitNames[resource] : nullptr;
}

std::optional<uint32_t> rlimit_resource(std::string_view name) {
  for (uint32_t i = 0; i < kRlimitResources; ++i) {
    if (name == kRlimitNames[i]) return i;
  }
  return std::nullopt;
}

void encode_header(const FrameHeader& h, uint8_t* out) {
  auto put32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(0, h.length);
  out[4] = static_cast<uint8_t>(h.type);
  out[5] = static_cast<uint8_t>(h.type >> 8);
  out[6] = static_cast<uint8_t>(h.flags);
  out[7] = static_cast<uint8_t>(h.flags >> 8);
  put32(8, h.stream);
}

std::optional<FrameHeader> decode_header(const uint8_t* in) {
  auto get32 = [&](size_t off) {
    return static_cast<uint32_t>(in[off]) | static_cast<uint32_t>(in[off + 1]) << 8 |
           static_cast<uint32_t>(in[off + 2]) << 16 | static_cast<uint32_t>(in[off + 3]) << 24;
  };
  FrameHeader h;
  h.length = get32(0);
  h.type = static_cast<uint16_t>(in[4] | (in[5] << 8));
  h.flags = static_cast<uint16_t>(in[6] | (in[7] << 8));
  h.stream = get32(8);
  if (h.length > kMaxPayload) return std::nullopt;
  return h;
}

std::vector<uint8_t> make_frame(MsgType type, uint32_t stream, std::span<const uint8_t> payload) {
  std::vector<uint8_t> frame(kHeaderSize + payload.size());
  FrameHeader h{static_cast<uint32_t>(payload.size()), static_cast<uint16_t>(type), 0, stream};
  encode_header(h, frame.data());
  if (!payload.empty()) std::memcpy(frame.data() + kHeaderSize, payload.data(), payload.size());
  return frame;
}

std::vector<uint8_t> encode(const Hello& m) {
  Writer w;
  w.u32(m.version);
  w.str(m.guest);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Hello& out) {
  Reader r(p);
  out.version = r.u32();
  out.guest = r.str();
  return r.ok();
}

std::vector<uint8_t> encode(const Setup& m) {
  Writer w;
  w.str(m.hostname);
  w.str(m.rootfs_tag);
  w.str(m.hosts);
  w.str(m.resolv_conf);
  w.u8(m.read_only);
  w.str(m.lower_serial);
  w.str(m.upper_serial);
  w.u64(m.memory_limit_bytes);
  w.u64(m.pids_limit);
  w.u32(m.cpu_quota_usec);
  w.u32(m.cpu_period_usec);
  w.u32(static_cast<uint32_t>(m.mounts.size()));
  for (const Mount& mt : m.mounts) {
    w.u8(mt.kind);
    w.str(mt.tag);
    w.str(mt.subpath);
    w.str(mt.target);
    w.u8(mt.read_only);
    w.str(mt.options);
  }
  w.u32(static_cast<uint32_t>(m.interfaces.size()));
  for (const Interface& i : m.interfaces) {
    w.str(i.name);
    w.str(i.mac);
    w.u32(i.address);
    w.u8(i.prefix_len);
    w.u32(i.mtu);
  }
  w.u32(m.gateway);
  w.u8(m.machine);
  w.str(m.user.name);
  w.u32(m.user.uid);
  w.u32(m.user.gid);
  w.str(m.user.home);
  w.str(m.user.shell);
  w.u8(m.user.create_home);
  w.str(m.init);
  w.u8(m.memory_reclaim);
  w.u32(static_cast<uint32_t>(m.addresses6.size()));
  for (const Address6& a : m.addresses6) {
    w.u8(a.interface);
    w.str(a.address);
    w.u8(a.prefix_len);
  }
  w.u32(static_cast<uint32_t>(m.routes.size()));
  for (const Route& rt : m.routes) {
    w.u8(rt.interface);
    w.str(rt.destination);
    w.u8(rt.prefix_len);
    w.str(rt.gateway);
  }
  w.u32(m.container);
  w.str(m.rootfs_subpath);
  w.str(m.main_command);
  w.str(m.main_path);
  w.u64(m.realtime_ns);
  w.str(m.entropy);
  w.u8(m.restored);
  return w.take();
}

namespace {

/// A user name useradd(8) would take (Debian's relaxed rule): 1 to 32
/// bytes, not starting with '-' or a digit-only name, letters, digits and
/// ._- (and a trailing $ for machine accounts).
bool valid_user_name(const std::string& name) {
  if (name.empty() || name.size() > 32 || name[0] == '-' || name == "." || name == "..")
    return false;
  bool all_digits = true;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || (c == '$' && i + 1 == name.size());
    if (!ok) return false;
    all_digits = all_digits && c >= '0' && c <= '9';
  }
  return !all_digits;
}

/// A name the kernel takes for a network device (dev_valid_name() in
/// net/core/dev.c): 1 to IFNAMSIZ - 1 bytes, not "." or "..", and no '/',
/// ':', NUL or whitespace.
bool valid_interface_name(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c == '\0' || c == ' ' || (c >= '\t' && c <= '\r')) return false;
  }
  return true;
}

/// The netmask of a prefix of 1 to 32 bits, host byte order.
uint32_t prefix_mask(uint8_t prefix_len) {
  return ~uint32_t{0} << (32 - prefix_len);
}

/// Interfaces with distinct names and MACs, each address with a prefix of
/// 1 to 32, and a gateway (if any) inside the subnet of an interface that
/// has an address.
bool valid_network(const std::vector<Interface>& interfaces, uint32_t gateway) {
  bool gateway_reachable = gateway == 0;
  for (size_t i = 0; i < interfaces.size(); ++i) {
    const Interface& a = interfaces[i];
    if (!valid_interface_name(a.name) || a.mac.size() != 6) return false;
    if (a.address != 0 && (a.prefix_len < 1 || a.prefix_len > 32)) return false;
    for (size_t j = 0; j < i; ++j) {
      if (interfaces[j].name == a.name || interfaces[j].mac == a.mac) return false;
    }
    if (a.address != 0) {
      uint32_t mask = prefix_mask(a.prefix_len);  // prefix_len is 1 to 32 here
      if ((gateway & mask) == (a.address & mask)) gateway_reachable = true;
    }
  }
  return gateway_reachable;
}

}  // namespace

bool decode(std::span<const uint8_t> p, Setup& out) {
  Reader r(p);
  out.hostname = r.str();
  out.rootfs_tag = r.str();
  out.hosts = r.str();
  out.resolv_conf = r.str();
  out.read_only = r.u8();
  out.lower_serial = r.str();
  out.upper_serial = r.str();
  out.memory_limit_bytes = r.u64();
  out.pids_limit = r.u64();
  out.cpu_quota_usec = r.u32();
  out.cpu_period_usec = r.u32();
  out.mounts.clear();
  uint32_t n_mounts = 0;
  bool mounts_ok = true;
  // Each mount takes at least 18 bytes (two u8 and four string lengths).
  if (r.list_count(kMaxMounts, 18, n_mounts)) {
    out.mounts.resize(n_mounts);
    for (Mount& mt : out.mounts) {
      mt.kind = r.u8();
      mt.tag = r.str();
      mt.subpath = r.str();
      mt.target = r.str();
      mt.read_only = r.u8();
      mt.options = r.str();
      // Paths go to mount(2): absolute target, relative subpath, no NUL,
      // no "..", bounded; a share needs its tag, a tmpfs has none.
      bool kind_ok = (mt.kind == Mount::kVirtiofs && !mt.tag.empty() && mt.tag.size() <= 36) ||
                     (mt.kind == Mount::kTmpfs && mt.tag.empty() && mt.subpath.empty());
      mounts_ok = mounts_ok && kind_ok && clean_path(mt.target) && !mt.target.empty() &&
                  mt.target[0] == '/' && clean_path(mt.subpath) &&
                  (mt.subpath.empty() || mt.subpath[0] != '/') && mt.options.size() <= 256 &&
                  mt.options.find('\0') == std::string::npos;
    }
  }
  out.interfaces.clear();
  uint32_t n_interfaces = 0;
  // Each interface takes at least 17 bytes (two string lengths, two u32, a u8).
  if (r.list_count(kMaxInterfaces, 17, n_interfaces)) {
    out.interfaces.resize(n_interfaces);
    for (Interface& i : out.interfaces) {
      i.name = r.str();
      i.mac = r.str();
      i.address = r.u32();
      i.prefix_len = r.u8();
      i.mtu = r.u32();
    }
  }
  out.gateway = r.u32();
  bool virtiofs = !out.rootfs_tag.empty(), image = !out.lower_serial.empty();
  out.machine = r.u8();
  out.user.name = r.str();
  out.user.uid = r.u32();
  out.user.gid = r.u32();
  out.user.home = r.str();
  out.user.shell = r.str();
  out.user.create_home = r.u8();
  out.init = r.str();
  out.memory_reclaim = r.u8();
  bool network_ok = valid_network(out.interfaces, out.gateway);
  // Each address takes at least 6 bytes (two u8, a string length), each
  // route 10; every interface index names one of `interfaces`.
  out.addresses6.clear();
  uint32_t n_addresses = 0;
  if (r.list_count(kMaxAddresses6, 6, n_addresses)) {
    out.addresses6.resize(n_addresses);
    for (Address6& a : out.addresses6) {
      a.interface = r.u8();
      a.address = r.str();
      a.prefix_len = r.u8();
      const auto* b = reinterpret_cast<const uint8_t*>(a.address.data());
      bool unicast =
          a.address.size() == 16 && b[0] != 0xff && !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
      network_ok = network_ok && a.interface < out.interfaces.size() && unicast &&
                   a.prefix_len >= 1 && a.prefix_len <= 128;
    }
  }
  out.routes.clear();
  uint32_t n_routes = 0;
  if (r.list_count(kMaxRoutes, 10, n_routes)) {
    out.routes.resize(n_routes);
    for (Route& rt : out.routes) {
      rt.interface = r.u8();
      rt.destination = r.str();
      rt.prefix_len = r.u8();
      rt.gateway = r.str();
      size_t size = rt.destination.size();
      network_ok = network_ok && rt.interface < out.interfaces.size() &&
                   (size == 4 || size == 16) && rt.prefix_len <= size * 8 &&
                   (rt.gateway.empty() || rt.gateway.size() == size);
    }
  }
  // A machine boots from its own disk; its user and init are plain paths
  // and a name that goes into /etc/passwd (no ':' or newline can split it).
  auto abs_path = [](const std::string& p) {
    return !p.empty() && p[0] == '/' && p.size() <= 4096 &&
           p.find_first_of(std::string("\0\n:", 3)) == std::string::npos;
  };
  bool machine_ok = out.machine == 0
                        ? out.user.name.empty() && out.init.empty()
                        : out.machine == 1 && image && out.upper_serial.empty() &&
                              abs_path(out.init) &&
                              (out.user.name.empty() ||
                               (valid_user_name(out.user.name) && abs_path(out.user.home) &&
                                abs_path(out.user.shell) && out.user.uid != 0));
  bool cpu_ok = cpu_max_ok(out.cpu_quota_usec, out.cpu_period_usec);
  out.container = r.u32();
  out.rootfs_subpath = r.str();
  out.main_command = r.str();
  out.main_path = r.str();
  out.realtime_ns = r.u64();
  out.entropy = r.str();
  out.restored = r.u8();
  bool clock_ok = out.entropy.size() <= kMaxSetupEntropy && out.restored <= 1 &&
                  (out.restored == 0 || (out.container == 0 && out.machine == 0));
  bool main_ok = out.main_command.size() <= 4096 && out.main_path.size() <= 4096 &&
                 out.main_command.find('\0') == std::string::npos &&
                 out.main_path.find('\0') == std::string::npos;
  // A container added to a pod's VM has its root and mounts only: the
  // network and a machine are the VM's, set up with container 0.
  bool container_ok =
      out.container < kMaxContainers &&
      (out.container == 0 || (out.interfaces.empty() && out.addresses6.empty() &&
                              out.routes.empty() && out.gateway == 0 && out.machine == 0));
  bool subpath_ok = out.rootfs_subpath.empty() ||
                    (virtiofs && clean_path(out.rootfs_subpath) && out.rootfs_subpath[0] != '/');
  // A hostname is at most 64 bytes (HOST_NAME_MAX), a tag at most 36 and a
  // virtio-blk serial 20. Exactly one kind of root; an upper needs a lower.
  return r.ok() && container_ok && subpath_ok && main_ok && machine_ok && clock_ok &&
         out.hostname.size() <= 64 && virtiofs != image && out.rootfs_tag.size() <= 36 &&
         out.lower_serial.size() <= 20 && out.upper_serial.size() <= 20 &&
         (out.upper_serial.empty() || image) && cpu_ok && mounts_ok && network_ok &&
         out.memory_reclaim <= 1;
}

std::vector<uint8_t> encode(const Spawn& m) {
  Writer w;
  w.strs(m.argv);
  w.strs(m.env);
  w.str(m.cwd);
  w.u32(m.uid);
  w.u32(m.gid);
  w.u32s(m.groups);
  w.u8(m.tty);
  w.u8(m.stdin_open);
  w.u16(m.rows);
  w.u16(m.cols);
  w.str(m.user);
  w.u32(static_cast<uint32_t>(m.rlimits.size()));
  for (const Rlimit& l : m.rlimits) {
    w.u32(l.resource);
    w.u64(l.soft);
    w.u64(l.hard);
  }
  const Capabilities caps = m.capabilities.value_or(Capabilities{});
  w.u8(m.capabilities ? 1 : 0);
  for (uint64_t set :
       {caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient})
    w.u64(set);
  w.u8(m.no_new_privileges);
  w.u32(m.container);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Spawn& out) {
  Reader r(p);
  out.argv = r.strs();
  out.env = r.strs();
  out.cwd = r.str();
  out.uid = r.u32();
  out.gid = r.u32();
  out.groups = r.u32s();
  out.tty = r.u8();
  out.stdin_open = r.u8();
  out.rows = r.u16();
  out.cols = r.u16();
  out.user = r.str();
  // Structure only: the guest checks resource numbers and soft <= hard and
  // says which entry is wrong in SpawnResult.
  out.rlimits.clear();
  uint32_t n_rlimits = 0;
  if (r.list_count(kMaxRlimits, 20, n_rlimits)) {
    out.rlimits.resize(n_rlimits);
    for (Rlimit& l : out.rlimits) {
      l.resource = r.u32();
      l.soft = r.u64();
      l.hard = r.u64();
    }
  }
  // Structure only here too: the guest checks the sets against its kernel
  // and against each other.
  uint8_t has_caps = r.u8();
  Capabilities caps;
  for (uint64_t* set :
       {&caps.bounding, &caps.effective, &caps.permitted, &caps.inheritable, &caps.ambient})
    *set = r.u64();
  out.capabilities.reset();
  if (has_caps == 1) out.capabilities = caps;
  bool caps_ok =
      has_caps == 1 || (has_caps == 0 && caps.bounding == 0 && caps.effective == 0 &&
                        caps.permitted == 0 && caps.inheritable == 0 && caps.ambient == 0);
  out.no_new_privileges = r.u8();
  out.container = r.u32();
  if (out.container >= kMaxContainers) return false;
  if (!caps_ok || out.no_new_privileges > 1) return false;
  if (!r.ok() || out.argv.empty() || out.argv[0].empty() || out.user.size() > 256) return false;
  // Strings handed to execve() and chdir() must not hold NUL bytes.
  auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  for (const auto& s : out.argv)
    if (has_nul(s)) return false;
  for (const auto& s : out.env)
    if (has_nul(s)) return false;
  return !has_nul(out.cwd) && !has_nul(out.user);
}

std::vector<uint8_t> encode(const Reply& m) {
  Writer w;
  w.i32(m.errnum);
  w.str(m.message);
  w.u32(m.pid);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Reply& out) {
  Reader r(p);
  out.errnum = r.i32();
  out.message = r.str();
  out.pid = r.u32();
  return r.ok() && out.errnum >= 0;
}

std::vector<uint8_t> encode(const Ack& m) {
  Writer w;
  w.u32(m.bytes);
  return w.take();
}

std::vector<uint8_t> encode(const Update& m) {
  Writer w;
  w.u64(m.memory_limit_bytes);
  w.u64(m.pids_limit);
  w.u32(m.cpu_quota_usec);
  w.u32(m.cpu_period_usec);
  w.u32(m.container);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Update& out) {
  Reader r(p);
  out.memory_limit_bytes = r.u64();
  out.pids_limit = r.u64();
  out.cpu_quota_usec = r.u32();
  out.cpu_period_usec = r.u32();
  out.container = r.u32();
  return r.ok() && cpu_max_ok(out.cpu_quota_usec, out.cpu_period_usec) &&
         out.container < kMaxContainers;
}

std::vector<uint8_t> encode(const StatsRequest& m) {
  Writer w;
  if (m.container == 0) return w.take();  // as before version 7
  w.u32(m.container);
  return w.take();
}

bool decode(std::span<const uint8_t> p, StatsRequest& out) {
  out.container = 0;
  if (p.empty()) return true;
  Reader r(p);
  out.container = r.u32();
  return r.ok() && out.container < kMaxContainers;
}

std::vector<uint8_t> encode(const RemoveContainer& m) {
  Writer w;
  w.u32(m.container);
  return w.take();
}

bool decode(std::span<const uint8_t> p, RemoveContainer& out) {
  Reader r(p);
  out.container = r.u32();
  return r.ok() && out.container > 0 && out.container < kMaxContainers;
}

bool decode(std::span<const uint8_t> p, Ack& out) {
  Reader r(p);
  out.bytes = r.u32();
  return r.ok() && out.bytes <= kStdinWindow;
}

std::vector<uint8_t> encode(const Signal& m) {
  Writer w;
  w.i32(m.signo);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Signal& out) {
  Reader r(p);
  out.signo = r.i32();
  return r.ok() && out.signo > 0 && out.signo < 65;
}

std::vector<uint8_t> encode(const Resize& m) {
  Writer w;
  w.u16(m.rows);
  w.u16(m.cols);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Resize& out) {
  Reader r(p);
  out.rows = r.u16();
  out.cols = r.u16();
  return r.ok();
}

std::vector<uint8_t> encode(const Exit& m) {
  Writer w;
  w.i32(m.code);
  w.i32(m.signal);
  w.u8(m.oom_killed);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Exit& out) {
  Reader r(p);
  out.code = r.i32();
  out.signal = r.i32();
  out.oom_killed = r.u8();
  return r.ok() && out.code >= 0 && out.code <= 255 && out.signal >= 0 && out.signal < 65;
}

std::vector<uint8_t> encode(const Stats& m) {
  Writer w;
  w.u64(m.timestamp_ns);
  w.u64(m.cpu_usage_usec);
  w.u64(m.cpu_user_usec);
  w.u64(m.cpu_system_usec);
  w.u64(m.memory_current);
  w.u64(m.memory_limit);
  w.u64(m.memory_anon);
  w.u64(m.memory_file);
  w.u64(m.memory_inactive_file);
  w.u64(m.oom_kills);
  w.u64(m.pids_current);
  w.u64(m.pids_limit);
  w.u64(m.io_read_bytes);
  w.u64(m.io_write_bytes);
  w.u64(m.net_rx_bytes);
  w.u64(m.net_tx_bytes);
  w.u64(m.guest_mem_total);
  w.u64(m.guest_mem_available);
  w.u32(m.cpus);
  w.u64(m.host_vm_rss);
  return w.take();
}

bool decode(std::span<const uint8_t> p, Stats& out) {
  // Fixed size; any value is representable, so the length is all there is
  // to check. Consumers treat the numbers as claims (stats.h).
  Reader r(p);
  out.timestamp_ns = r.u64();
  out.cpu_usage_usec = r.u64();
  out.cpu_user_usec = r.u64();
  out.cpu_system_usec = r.u64();
  out.memory_current = r.u64();
  out.memory_limit = r.u64();
  out.memory_anon = r.u64();
  out.memory_file = r.u64();
  out.memory_inactive_file = r.u64();
  out.oom_kills = r.u64();
  out.pids_current = r.u64();
  out.pids_limit = r.u64();
  out.io_read_bytes = r.u64();
  out.io_write_bytes = r.u64();
  out.net_rx_bytes = r.u64();
  out.net_tx_bytes = r.u64();
  out.guest_mem_total = r.u64();
  out.guest_mem_available = r.u64();
  out.cpus = r.u32();
  out.host_vm_rss = r.u64();
  return r.ok();
}

namespace {
// A path the guest resolves in the container: absolute, bounded, no NUL.
bool copy_path_ok(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.size() <= kMaxCopyPath &&
         path.find('\0') == std::string::npos;
}
}  // namespace

std::vector<uint8_t> encode(const CopyOut& m) {
  Writer w;
  w.str(m.path);
  w.str(m.name);
  w.u32(m.flags);
  return w.take();
}

bool decode(std::span<const uint8_t> p, CopyOut& out) {
  Reader r(p);
  out.path = r.str();
  out.name = r.str();
  out.flags = r.u32();
  // The name becomes the first component of archive entries: one component.
  bool name_ok = out.name.size() <= kMaxCopyName && out.name.find('/') == std::string::npos &&
                 out.name.find('\0') == std::string::npos && out.name != "..";
  return r.ok() && copy_path_ok(out.path) && name_ok && (out.flags & ~CopyOut::kKnownFlags) == 0;
}

std::vector<uint8_t> encode(const CopyIn& m) {
  Writer w;
  w.str(m.path);
  w.u32(m.flags);
  return w.take();
}

bool decode(std::span<const uint8_t> p, CopyIn& out) {
  Reader r(p);
  out.path = r.str();
  out.flags = r.u32();
  return r.ok() && copy_path_ok(out.path) && (out.flags & ~CopyIn::kKnownFlags) == 0;
}

void FrameReader::feed(const uint8_t* data, size_t n) {
  // Compact once the consumed prefix dominates, keeping appends amortised O(1).
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data, data + n);
}

FrameReader::Status FrameReader::next(Frame& out) {
  if (failed_) return Status::kError;
  if (buffered() < kHeaderSize) return Status::kNeedMore;
  auto h = decode_header(buf_.data() + pos_);
  if (!h) {
    failed_ = true;
    return Status::kError;
  }
  if (buffered() < kHeaderSize + h->length) return Status::kNeedMore;
  out.header = *h;
  const uint8_t* start = buf_.data() + pos_ + kHeaderSize;
  out.payload.assign(start, start + h->length);
  pos_ += kHeaderSize + h->length;
  return Status::kFrame;
}

std::string template_mac(uint8_t i) {
  return std::string{'\x02', '\x76', '\x74', '\x70', '\x00', static_cast<char>(i)};
}

std::string early_root(const Setup& setup) {
  if (setup.container != 0 || setup.machine || setup.read_only || !setup.rootfs_subpath.empty() ||
      !setup.upper_serial.empty())
    return "";
  // A value with a blank would end the kernel argument early.
  auto plain = [](const std::string& v) {
    return !v.empty() && v.size() <= 64 && v.find_first_of(" \t\n\"") == std::string::npos;
  };
  if (!setup.lower_serial.empty())
    return plain(setup.lower_serial) ? "disk:" + setup.lower_serial : "";
  if (!setup.rootfs_tag.empty()) return plain(setup.rootfs_tag) ? "fs:" + setup.rootfs_tag : "";
  return "";
}

}  // namespace vessel::protocol
