// The host<->guest protocol: framing and messages. Shared, unchanged, by the
// host library and by vessel-init, so it is written without exceptions and
// without any host-only dependency. docs/protocol.md is its specification.
//
// Frame: a 12-byte little-endian header followed by `length` payload bytes.
//   u32 length   payload bytes, at most kMaxPayload
//   u16 type     MsgType
//   u16 flags    0 in version 1; receivers ignore bits they do not know
//   u32 stream   the process a message concerns (0 = the VM itself)
//
// Payload: the message's fields in a fixed order. Integers are little-endian,
// a string is a u32 byte count then the bytes, a list is a u32 count then the
// items. Decoders check every length against the bytes left and against the
// per-field limits below, and tolerate trailing bytes (fields a newer peer
// appended), which is how minor versions stay compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vessel::protocol {

/// Bumped when a message changes incompatibly. Peers must agree exactly.
/// 2: Stats and StatsResult; resource limits in Setup and Spawn; Exit.oom_killed;
/// CopyOut and CopyIn.
/// 3: network interfaces, the default gateway and /etc/hostname in Setup.
/// 4: Setup.machine (a persistent machine: writable root disk, its own init
/// as PID 1, a user).
/// 5: Setup.memory_reclaim (the agent returns an idle container's page cache);
/// Stats.host_vm_rss.
/// 6: Spawn.capabilities and Spawn.no_new_privileges; Update and UpdateResult;
/// Setup.addresses6 and Setup.routes.
/// 7: pods: Setup.container and Setup.rootfs_subpath (a second Setup adds a
/// container to the VM), Spawn.container, Update.container, a Stats payload
/// naming the container, RemoveContainer.
inline constexpr uint32_t kVersion = 9;
/// Name of the virtio-serial port the guest serves on.
inline constexpr std::string_view kPortName = "vessel.agent";

inline constexpr size_t kHeaderSize = 12;
inline constexpr uint32_t kMaxPayload = 1u << 20;        // 1 MiB
inline constexpr uint32_t kMaxDataChunk = 64u << 10;     // stdio bytes per frame
inline constexpr uint32_t kMaxListItems = 4096;          // argv, env, groups
inline constexpr uint32_t kMaxStringBytes = 256u << 10;  // any one string
/// Bytes of stdin the host may send beyond what the guest acknowledged.
inline constexpr uint32_t kStdinWindow = 1u << 20;
/// Entries in Spawn.rlimits.
inline constexpr uint32_t kMaxRlimits = 64;
/// cpu.max bounds (kernel/sched/core.c: min_cfs_quota_period 1 ms,
/// max_cfs_quota_period 1 s, quota at least 1 ms).
inline constexpr uint32_t kMinCpuPeriodUsec = 1000;
inline constexpr uint32_t kMaxCpuPeriodUsec = 1000000;
inline constexpr uint32_t kDefaultCpuPeriodUsec = 100000;

enum class MsgType : uint16_t {
  kHello = 1,             // guest->host, stream 0: Hello. The guest is ready.
  kSetup = 2,             // host->guest, stream 0: Setup. Prepare the container root.
  kSetupResult = 3,       // guest->host, the Setup's stream: Reply.
  kSpawn = 4,             // host->guest, stream N: Spawn. Start process N.
  kSpawnResult = 5,       // guest->host, stream N: Reply (pid on success).
  kStdin = 6,             // host->guest, stream N: raw bytes; empty payload = EOF.
  kStdinAck = 7,          // guest->host, stream N: Ack. Bytes written to the process.
  kStdout = 8,            // guest->host, stream N: raw bytes.
  kStderr = 9,            // guest->host, stream N: raw bytes.
  kSignal = 10,           // host->guest, stream N: Signal.
  kResize = 11,           // host->guest, stream N: Resize.
  kExit = 12,             // guest->host, stream N: Exit. Last message of stream N.
  kPoweroff = 13,         // host->guest, stream 0: empty. Sync and power off; the
                          // guest answers with the same (empty) once synced.
  kStats = 14,            // host->guest, stream 0: StatsRequest. Sample usage.
  kStatsResult = 15,      // guest->host, stream 0: Stats, in answer to each kStats.
  kCopyOut = 16,          // host->guest, stream N: CopyOut. A tar of a path as Stdout.
  kCopyIn = 17,           // host->guest, stream N: CopyIn. Extract the tar sent as Stdin.
  kUpdate = 18,           // host->guest, stream 0: Update. Change the container's limits.
  kUpdateResult = 19,     // guest->host, stream 0: Reply, in answer to each kUpdate.
  kRemoveContainer = 20,  // host->guest, stream 0: RemoveContainer. No answer.
};

/// Containers of one VM (a pod): 0 is the first, set up with the VM;
/// Setup with another number adds one.
inline constexpr uint32_t kMaxContainers = 64;

/// True for the types above.
bool is_known_type(uint16_t type);
const char* type_name(uint16_t type);

struct FrameHeader {
  uint32_t length = 0;
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t stream = 0;
};

/// Serializes a header into exactly kHeaderSize bytes at `out`.
void encode_header(const FrameHeader& h, uint8_t* out);
/// Parses a header; nullopt if `length` exceeds kMaxPayload.
std::optional<FrameHeader> decode_header(const uint8_t* in);

/// A whole frame (header + payload) ready to write.
std::vector<uint8_t> make_frame(MsgType type, uint32_t stream, std::span<const uint8_t> payload);

// ---- messages --------------------------------------------------------------

struct Hello {
  uint32_t version = kVersion;
  std::string guest;  // free text: init name and kernel release, for logs
};

/// The container's root is either a virtio-fs share (rootfs_tag) or an
/// ext4 image on a virtio-blk disk (lower_serial), optionally with a
/// writable ext4 disk (upper_serial) joined to it by overlayfs. Disks are
/// named by their virtio-blk serial (at most 20 bytes), not by probe order.
/// A mount in the container besides its root: a virtio-fs share (a bind
/// mount or a volume on the host) or a tmpfs.
struct Mount {
  static constexpr uint8_t kVirtiofs = 1;
  static constexpr uint8_t kTmpfs = 2;
  uint8_t kind = kVirtiofs;
  std::string tag;      // kVirtiofs: the share's virtio-fs tag
  std::string subpath;  // kVirtiofs: relative path inside the share ("" = all of it)
  std::string target;   // absolute path in the container
  uint8_t read_only = 0;
  std::string options;  // kTmpfs: "size=N[kmg],mode=OCTAL" (either, both or none)
};
inline constexpr uint32_t kMaxMounts = 64;

/// A network interface of the VM (a virtio-net device), found by its MAC,
/// renamed to `name`, given `address`/`prefix_len` and `mtu`, and brought up
/// by vessel-init over netlink before any process runs (no DHCP).
struct Interface {
  std::string name;        // "eth0", ...: 1 to 15 bytes, no '/', no NUL
  std::string mac;         // exactly 6 raw bytes
  uint32_t address = 0;    // IPv4, host byte order; 0: no address
  uint8_t prefix_len = 0;  // 1 to 32 when address is set
  uint32_t mtu = 0;        // 0: leave the device's
};
inline constexpr uint32_t kMaxInterfaces = 8;

/// An IPv6 address of Setup.interfaces[interface], added without duplicate
/// address detection (the namespace it comes from already holds it).
struct Address6 {
  uint8_t interface = 0;   // index into Setup.interfaces
  std::string address;     // exactly 16 raw bytes, not link-local or multicast
  uint8_t prefix_len = 0;  // 1 to 128
};
inline constexpr uint32_t kMaxAddresses6 = 16;

/// A route out of Setup.interfaces[interface]: `destination`/`prefix_len`
/// (4 raw bytes for IPv4, 16 for IPv6; prefix 0 is a default route) via
/// `gateway` (the same family), or on the link when `gateway` is empty.
struct Route {
  uint8_t interface = 0;
  std::string destination;
  uint8_t prefix_len = 0;
  std::string gateway;
};
inline constexpr uint32_t kMaxRoutes = 32;

/// The user a machine is set up for (machine only): an /etc/passwd entry
/// with this name, uid, gid, home and shell, a group with its gid, and
/// passwordless sudo when the image has sudo.
struct MachineUser {
  std::string name;  // a valid user name ("" = no user)
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;         // absolute path
  std::string shell;        // absolute path; used when it exists in the root, else a fallback
  uint8_t create_home = 0;  // make `home` on the root disk (not shared from the host)
};

struct Setup {
  std::string hostname;
  std::string rootfs_tag;    // virtio-fs tag of the container's root, or ""
  std::string hosts;         // contents for /etc/hosts
  std::string resolv_conf;   // contents for /etc/resolv.conf
  uint8_t read_only = 0;     // mount the root read-only (no upper layer)
  std::string lower_serial;  // ext4 root image disk, read-only; or ""
  std::string upper_serial;  // writable ext4 disk for the overlay upper; or ""
  // Limits of the container's cgroup (every spawned process is in it; init
  // is not, so the OOM killer picks a container process, never the agent).
  uint64_t memory_limit_bytes = 0;  // memory.max; 0: no limit
  uint64_t pids_limit = 0;          // pids.max; 0: no limit
  uint32_t cpu_quota_usec = 0;      // cpu.max quota per period; 0: no limit
  uint32_t cpu_period_usec = 0;     // cpu.max period; 0: kDefaultCpuPeriodUsec
  /// Mounted in this order after the root is ready, before any process runs.
  std::vector<Mount> mounts;
  /// Configured before the root is mounted; `lo` is always up.
  std::vector<Interface> interfaces;
  /// IPv4 default route via this address (host byte order), which must be in
  /// one interface's subnet; 0: no default route.
  uint32_t gateway = 0;
  /// A machine rather than a container: lower_serial is the machine's own
  /// root disk, mounted read-write (and grown to the disk's size), /etc/hosts,
  /// resolv.conf and hostname are written on it, `user` is made to exist,
  /// and after SetupResult PID 1 executes `init` in the root while the
  /// agent goes on in a process of its own.
  uint8_t machine = 0;
  MachineUser user;  // machine only; name "" = none
  std::string init;  // machine only: absolute path in the root ("/sbin/init")
  /// 1 (auto): while the container is idle the agent reclaims its page cache
  /// (memory.reclaim), and free page reporting returns it to the host;
  /// 0 (off): the cache stays until the guest needs the memory.
  uint8_t memory_reclaim = 1;
  /// IPv6 addresses, added once the interfaces are up.
  std::vector<Address6> addresses6;
  /// Routes, added in order after the addresses and before the default
  /// route via `gateway`: an on-link route first lets a later one (or the
  /// default route) use a gateway outside the interface's subnet.
  std::vector<Route> routes;
  /// Which container of the VM this sets up (below kMaxContainers). 0: the
  /// first, with the VM's network, hostname and idle reclaim; another adds
  /// a container to a VM whose container 0 is set up (a pod): its own root,
  /// mount namespace, cgroup and limits, no interfaces, routes, gateway or
  /// machine, and the VM's hostname.
  uint32_t container = 0;
  /// With rootfs_tag: the root is this directory of the share (relative,
  /// no ".."), not the whole share. "" = the share itself.
  std::string rootfs_subpath;
  /// The executable the first Spawn will name (its argv[0]) and the PATH of
  /// its environment ("": the default): the guest reads the file it
  /// resolves to ahead, in a child, while it sets up the rest (version 8).
  /// "" = nothing to read ahead. At most 4096 bytes each.
  std::string main_command;
  std::string main_path;
  /// The host's CLOCK_REALTIME when it sent the Setup, in ns since the epoch
  /// (0: none): the guest sets its clock from it. A booted guest has only
  /// its RTC's whole seconds; a guest restored from a template (below) has
  /// the template's time (version 9).
  uint64_t realtime_ns = 0;
  /// Random bytes from the host (at most kMaxSetupEntropy) that the guest
  /// mixes into its random pool and reseeds from, so that VMs restored from
  /// one template do not share their random state (version 9).
  std::string entropy;
  /// 1: the VM was restored from a template (a saved VM that booted and
  /// waited for its Setup, on a placeholder disk): the guest drops what it
  /// cached of its disks before it mounts them (version 9).
  uint8_t restored = 0;
};

/// At most this many bytes of Setup.entropy.
inline constexpr size_t kMaxSetupEntropy = 512;

/// The MAC (6 raw bytes) that network device `i` of a VM template has,
/// 02:76:74:70:00:<i> (locally administered; "vtp"): a restored guest finds
/// device i by it and gives it Setup.interfaces[i].mac before anything else
/// (architecture.md, "VM templates").
std::string template_mac(uint8_t i);

/// The root a Setup will ask for, named on the kernel command line
/// (`vessel.root=<spec>`) so that vessel-init mounts it, and the API
/// filesystems under it, while it boots and waits for the Setup, on the
/// VM's other vCPU: "fs:<tag>" for the virtio-fs share `tag`, "disk:<serial>"
/// for the container's own disk, both read-write; "" for a root that is not
/// mounted early (read-only, a share's subdirectory, overlay layers, a
/// machine's, a pod's second container). The guest checks the Setup against
/// it, and mounts the root itself when they differ.
inline constexpr std::string_view kEarlyRootArg = "vessel.root=";
std::string early_root(const Setup& setup);

/// One setrlimit(2) for a spawned process. `resource` is Linux's generic
/// RLIMIT_* number (RLIMIT_NOFILE = 7); kRlimInfinity means unlimited.
struct Rlimit {
  uint32_t resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};
inline constexpr uint64_t kRlimInfinity = ~uint64_t{0};
/// Resource numbers are 0 to kRlimitResources - 1 (RLIMIT_NLIMITS).
inline constexpr uint32_t kRlimitResources = 16;
/// The --ulimit name of a resource ("nofile" for 7), or nullptr if unknown.
const char* rlimit_name(uint32_t resource);
/// The resource named `name` as --ulimit spells it, or nullopt.
std::optional<uint32_t> rlimit_resource(std::string_view name);

/// Capability sets of a spawned process: bit N is capability N of
/// linux/capability.h (CAP_CHOWN = 0, ..., CAP_CHECKPOINT_RESTORE = 40).
struct Capabilities {
  uint64_t bounding = 0;
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
  uint64_t ambient = 0;
};
/// The highest capability number named here (CAP_CHECKPOINT_RESTORE, Linux
/// 5.9); a guest kernel may know fewer (/proc/sys/kernel/cap_last_cap).
inline constexpr uint32_t kCapLast = 40;
/// Every capability up to kCapLast.
inline constexpr uint64_t kAllCapabilities = (uint64_t{1} << (kCapLast + 1)) - 1;
/// "CAP_CHOWN" for 0, ..., or nullptr above kCapLast.
const char* capability_name(uint32_t cap);
/// The number of a capability named as linux/capability.h does
/// ("CAP_NET_ADMIN"; exact case), or nullopt.
std::optional<uint32_t> capability_number(std::string_view name);

struct Spawn {
  std::vector<std::string> argv;  // at least one item
  std::vector<std::string> env;   // "KEY=VALUE"
  std::string cwd;                // absolute path in the container
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  uint8_t tty = 0;               // stdin/stdout/stderr on a new pty
  uint8_t stdin_open = 0;        // 0: stdin is /dev/null
  uint16_t rows = 0, cols = 0;   // initial window size when tty
  /// If not empty, "user[:group]" (names or numbers) resolved in the
  /// container's /etc/passwd and /etc/group, replacing uid, gid and groups
  /// (supplementary groups: those listing the user), as Docker does.
  std::string user;
  /// Applied in order before exec (the guest checks them and reports a bad
  /// one in SpawnResult); unlisted resources keep the guest's defaults.
  std::vector<Rlimit> rlimits;
  /// If set, the process's capability sets, applied as runc does (bounding
  /// dropped and PR_SET_KEEPCAPS before setuid, then capset and ambient
  /// raises; effective, permitted and ambient must be within bounding and
  /// ambient within permitted and inheritable, or SpawnResult says which
  /// capability could not be set). Unset: root keeps every capability and
  /// another user has none, as before version 6.
  std::optional<Capabilities> capabilities;
  /// 1: PR_SET_NO_NEW_PRIVS before exec (setuid bits and file capabilities
  /// give nothing). 0 or 1.
  uint8_t no_new_privileges = 0;
  /// The container of the VM the process runs in (Setup.container).
  uint32_t container = 0;
};

/// Longest path in CopyOut and CopyIn (PATH_MAX), and longest archive name.
inline constexpr uint32_t kMaxCopyPath = 4096;
inline constexpr uint32_t kMaxCopyName = 255;

/// Asks for a tar archive of `path` in the container. The stream then runs
/// like a spawned process's: SpawnResult (ENOENT and the like when `path`
/// cannot be copied), the archive as Stdout chunks, Exit (code 0, or 1 with
/// the reasons on Stderr).
struct CopyOut {
  /// Follow `path` itself if it is a symlink (docker cp -L); links below it
  /// are always archived as links.
  static constexpr uint32_t kFollowLink = 1u << 0;
  /// Do not descend into other mounts (export): a directory on another
  /// filesystem is archived empty, anything else on one is left out.
  static constexpr uint32_t kOneFileSystem = 1u << 1;
  /// Only the entry of `path` itself: a stat, used to learn whether and
  /// what `path` is. A regular file's header says its size but no data
  /// follows: only that header is to be read.
  static constexpr uint32_t kTopOnly = 1u << 2;
  static constexpr uint32_t kKnownFlags = kFollowLink | kOneFileSystem | kTopOnly;

  std::string path;  // absolute, no NUL, at most kMaxCopyPath bytes
  /// The archive name of `path`'s entry: everything else is named
  /// "<name>/<relative path>". Empty: the last component of `path`. ".":
  /// `path` (a directory) has no entry and its contents are named by their
  /// relative paths ("dir/." in docker cp, and export). No '/', no NUL, not
  /// "..", at most kMaxCopyName bytes.
  std::string name;
  uint32_t flags = 0;
};

/// Asks the guest to read a tar archive from Stdin (flow-controlled like a
/// process's stdin; the empty Stdin is the end) and extract it under `path`,
/// an existing directory. Answered by SpawnResult, then Exit.
struct CopyIn {
  /// Keep the archive's uid/gid (docker cp -a); otherwise entries belong to
  /// root.
  static constexpr uint32_t kKeepOwner = 1u << 0;
  /// Refuse to replace a directory with a non-directory or the other way
  /// round (Docker's noOverwriteDirNonDir, which docker cp always sets).
  static constexpr uint32_t kNoOverwriteDirNonDir = 1u << 1;
  static constexpr uint32_t kKnownFlags = kKeepOwner | kNoOverwriteDirNonDir;

  std::string path;  // absolute, no NUL, at most kMaxCopyPath bytes
  uint32_t flags = 0;
};

/// New limits for the container's cgroup (vessel-runtime update), written
/// as Setup writes them: every field, 0 meaning "max".
struct Update {
  uint64_t memory_limit_bytes = 0;  // memory.max
  uint64_t pids_limit = 0;          // pids.max
  uint32_t cpu_quota_usec = 0;      // cpu.max quota; 0 or at least kMinCpuPeriodUsec
  uint32_t cpu_period_usec = 0;     // cpu.max period; 0: kDefaultCpuPeriodUsec
  uint32_t container = 0;           // whose cgroup (Setup.container)
};

/// The payload of Stats (host->guest): whose cgroup to sample. Container 0
/// is an empty payload.
struct StatsRequest {
  uint32_t container = 0;
};

/// Ends a container added by Setup (not 0): its processes are killed, its
/// root and mount namespace released, its cgroup removed once empty.
struct RemoveContainer {
  uint32_t container = 0;
};

/// Reply to Setup, Spawn and Update. errnum 0 is success.
struct Reply {
  int32_t errnum = 0;
  std::string message;
  uint32_t pid = 0;  // guest pid of the spawned process
};

struct Ack {
  uint32_t bytes = 0;
};

struct Signal {
  int32_t signo = 0;
};

struct Resize {
  uint16_t rows = 0, cols = 0;
};

struct Exit {
  int32_t code = 0;    // exit status when signal == 0
  int32_t signal = 0;  // terminating signal, or 0
  /// The container's cgroup counted an OOM kill while the process ran (it,
  /// or another container process, was killed for memory): Docker's OOMKilled.
  uint8_t oom_killed = 0;
};

/// Resource usage, sampled by the guest in answer to Stats. The cgroup
/// fields are the container's cgroup (every spawned process, not init);
/// a value the guest cannot read is 0. The guest is untrusted: these are
/// only numbers, and a consumer computing differences must not assume they
/// grow (see cpu_percent() in src/agent/stats.h).
struct Stats {
  uint64_t timestamp_ns = 0;          // CLOCK_MONOTONIC in the guest
  uint64_t cpu_usage_usec = 0;        // cpu.stat usage_usec
  uint64_t cpu_user_usec = 0;         // cpu.stat user_usec
  uint64_t cpu_system_usec = 0;       // cpu.stat system_usec
  uint64_t memory_current = 0;        // memory.current, bytes
  uint64_t memory_limit = 0;          // memory.max, or MemTotal when "max"
  uint64_t memory_anon = 0;           // memory.stat anon
  uint64_t memory_file = 0;           // memory.stat file (page cache)
  uint64_t memory_inactive_file = 0;  // memory.stat inactive_file (reclaimable)
  uint64_t oom_kills = 0;             // memory.events oom_kill
  uint64_t pids_current = 0;          // pids.current
  uint64_t pids_limit = 0;            // pids.max; 0 when "max"
  uint64_t io_read_bytes = 0;         // io.stat rbytes, summed over devices
  uint64_t io_write_bytes = 0;        // io.stat wbytes, summed over devices
  uint64_t net_rx_bytes = 0;          // /proc/net/dev, every interface but lo
  uint64_t net_tx_bytes = 0;
  uint64_t guest_mem_total = 0;      // /proc/meminfo MemTotal, bytes
  uint64_t guest_mem_available = 0;  // /proc/meminfo MemAvailable, bytes
  uint32_t cpus = 0;                 // online CPUs in the guest
  /// Not from the guest: the host memory the VM holds (QEMU's private
  /// anonymous pages and the pages of its memfd guest RAM: guest RAM touched
  /// and not given back, TCG's code, QEMU's heap), which the monitor sets
  /// before passing the answer on (the guest sends 0; whatever it puts there
  /// is replaced).
  uint64_t host_vm_rss = 0;
};

std::vector<uint8_t> encode(const Hello& m);
std::vector<uint8_t> encode(const Setup& m);
std::vector<uint8_t> encode(const Spawn& m);
std::vector<uint8_t> encode(const Reply& m);
std::vector<uint8_t> encode(const Ack& m);
std::vector<uint8_t> encode(const Signal& m);
std::vector<uint8_t> encode(const Resize& m);
std::vector<uint8_t> encode(const Exit& m);
std::vector<uint8_t> encode(const Stats& m);
std::vector<uint8_t> encode(const CopyOut& m);
std::vector<uint8_t> encode(const CopyIn& m);
std::vector<uint8_t> encode(const Update& m);
std::vector<uint8_t> encode(const StatsRequest& m);
std::vector<uint8_t> encode(const RemoveContainer& m);

/// Each returns false (leaving `out` unspecified) if the payload is short, a
/// length or count exceeds its limit, or a field is invalid (Spawn with no
/// argv, a cpu.max outside the kernel's bounds). Trailing bytes are allowed.
bool decode(std::span<const uint8_t> p, Hello& out);
bool decode(std::span<const uint8_t> p, Setup& out);
bool decode(std::span<const uint8_t> p, Spawn& out);
bool decode(std::span<const uint8_t> p, Reply& out);
bool decode(std::span<const uint8_t> p, Ack& out);
bool decode(std::span<const uint8_t> p, Signal& out);
bool decode(std::span<const uint8_t> p, Resize& out);
bool decode(std::span<const uint8_t> p, Exit& out);
bool decode(std::span<const uint8_t> p, Stats& out);
bool decode(std::span<const uint8_t> p, CopyOut& out);
bool decode(std::span<const uint8_t> p, CopyIn& out);
bool decode(std::span<const uint8_t> p, Update& out);
/// An empty payload is container 0.
bool decode(std::span<const uint8_t> p, StatsRequest& out);
/// False for container 0 or one not below kMaxContainers.
bool decode(std::span<const uint8_t> p, RemoveContainer& out);

/// Reassembles frames from a byte stream. Feed it what arrives; take frames
/// out with next(). A header announcing more than kMaxPayload puts it in the
/// error state for good (the stream cannot be resynchronised).
class FrameReader {
 public:
  struct Frame {
    FrameHeader header;
    std::vector<uint8_t> payload;
  };
  enum class Status { kFrame, kNeedMore, kError };

  void feed(const uint8_t* data, size_t n);
  /// kFrame fills `out`; kNeedMore when no whole frame is buffered.
  Status next(Frame& out);
  bool failed() const { return failed_; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace vessel::protocol
