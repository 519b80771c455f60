#include "containers/containers.h"

#include <poll.h>

#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/log.h"
#include "net/address.h"
#include "runtime/container_vm.h"
#include "runtime/etc_files.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"

namespace vessel::containers {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using state::RunState;

// Names as Docker makes them: adjective_noun.
std::string generate_name(uint32_t r) {
  static const char* const kAdjectives[] = {
      "brave", "calm",   "clever", "eager", "fancy", "gentle", "happy",  "jolly", "keen", "lucid",
      "merry", "nimble", "proud",  "quiet", "rapid", "sharp",  "steady", "swift", "tidy", "witty"};
  static const char* const kNouns[] = {"anchor",   "barge",  "beacon", "brig",   "canoe",
                                       "cutter",   "dinghy", "ferry",  "galley", "hull",
                                       "junk",     "keel",   "ketch",  "mast",   "raft",
                                       "schooner", "skiff",  "sloop",  "tender", "yawl"};
  return std::string(kAdjectives[r % 20]) + "_" + kNouns[(r / 20) % 20];
}

/// Makes `path` a fresh writable layer of `bytes`: a sparse copy of an empty
/// ext4 of that size, made once per state root under <root>/cache. mkfs.ext4
/// is a process that writes and syncs ~4 MiB of metadata (17-50 ms on the
/// test machine, in every image-root create); copying what it wrote takes
/// 5-14 ms. The copies share the template's UUID and hash seed, which only
/// each container's own VM ever sees. The template is made under a unique
/// name and renamed into place, so concurrent creates never copy half of
/// one.
Status make_writable_layer(const std::string& root, const std::string& path, uint64_t bytes) {
  std::string cache = root + "/cache";
  VESSEL_TRY(sys::make_dirs(cache, 0700));
  std::string layer = cache + "/writable-" + std::to_string(bytes) + ".ext4";
  if (::access(layer.c_str(), F_OK) != 0) {
    VESSEL_ASSIGN_OR_RETURN(std::string suffix, sys::random_hex(8));
    std::string made = layer + ".tmp-" + suffix;
    Status s = runtime::make_writable_disk(made, bytes);
    if (s.ok() && ::rename(made.c_str(), layer.c_str()) != 0)
      s = Error::from_errno(errno, "rename '" + made + "' to '" + layer + "'");
    if (!s.ok()) {
      ::unlink(made.c_str());
      return s;
    }
  }
  return sys::copy_sparse(layer, path);
}

bool active(RunState s) {
  return s == RunState::kRunning || s == RunState::kRestarting;
}

std::string display_name(const ContainerRecord& r) {
  return r.name.empty() ? r.id.substr(0, 12) : r.name;
}

}  // namespace

std::string describe_age(int64_t then_ns, int64_t now_ns) {
  int64_t s = (now_ns - then_ns) / 1'000'000'000;
  if (s < 1) return "Less than a second";
  if (s < 60) return std::to_string(s) + " second" + (s == 1 ? "" : "s");
  if (s < 3600) return std::to_string(s / 60) + " minute" + (s / 60 == 1 ? "" : "s");
  if (s < 86400) return std::to_string(s / 3600) + " hour" + (s / 3600 == 1 ? "" : "s");
  return std::to_string(s / 86400) + " day" + (s / 86400 == 1 ? "" : "s");
}

Status validate_name(const std::string& name) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool valid = !name.empty() && name.size() <= 128 && ok_char(name[0]);
  for (char c : name)
    valid = valid && (ok_char(c) || c == '_' || c == '.' || c == '-');
  if (!valid)
    return Error(ErrorCode::kInvalidArgument, "invalid container name '" + name +
                                                  "': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  return ok_status();
}

std::string describe_status(const ContainerRecord& r, int64_t now) {
  switch (r.state.status) {
    case RunState::kCreated:
      return "Created";
    case RunState::kRunning:
      return "Up " + describe_age(r.state.started, now);
    case RunState::kRestarting:
      return "Restarting (" + std::to_string(r.state.exit_code) + ") " +
             describe_age(r.state.finished, now) + " ago";
    case RunState::kExited:
      return "Exited (" + std::to_string(r.state.exit_code) + ") " +
             describe_age(r.state.finished, now) + " ago";
    case RunState::kRemoving:
      return "Removal In Progress";
  }
  return "Unknown";
}

Containers::Containers(std::string root, std::unique_ptr<state::Store> store)
    : root_(std::move(root)), store_(std::move(store)) {
  std::string r = root_;
  networks_ = std::make_unique<networks::Networks>(
      root_, *store_, [r](const std::string& id) { return runtime::owner_alive(r, id); });
}

Result<std::unique_ptr<Containers>> Containers::open(const std::string& root) {
  VESSEL_TRY(sys::make_dirs(root, 0700));
  VESSEL_TRY(sys::make_dirs(runtime::containers_dir(root), 0700));
  VESSEL_ASSIGN_OR_RETURN(auto store, state::Store::open(runtime::state_db(root)));
  return std::unique_ptr<Containers>(new Containers(root, std::move(store)));
}

Result<ContainerRecord> Containers::create(runtime::ContainerConfig config, const std::string& name,
                                           const std::vector<networks::Attachment>& attachments) {
  if (!name.empty()) VESSEL_TRY(validate_name(name));
  if (config.auto_remove && config.restart.kind != runtime::RestartPolicy::Kind::kNo)
    return Error(ErrorCode::kInvalidArgument,
                 "conflicting options: --restart and --rm (a restarting container is never "
                 "removed)");
  VESSEL_ASSIGN_OR_RETURN(std::string id, sys::random_hex(32));
  VESSEL_TRY(runtime::prepare_config(config, id));
  VESSEL_TRY(runtime::check_mounts(config.mounts));
  for (const auto& h : config.extra_hosts)
    VESSEL_TRY(runtime::validate_extra_host(h));
  for (const auto& d : config.dns)
    if (auto a = net::Ipv4::parse(d); !a.ok()) return a.error().wrap("invalid --dns");
  // Addresses held by monitors that died are free again before --ip is
  // checked against the ones in use.
  if (auto stale = networks_->release_stale(); !stale.ok())
    log::warn("release stale addresses: " + stale.error().to_string());
  VESSEL_ASSIGN_OR_RETURN(auto endpoints, networks_->plan(id, attachments));
  config.network_mode =
      endpoints.empty() ? std::string(networks::kNoNetwork) : endpoints.front().network;
  if (endpoints.empty() && !config.ports.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "published ports (-p, -P) need a network: not with --network none");
  remove_orphans();

  // Mount sources: bind paths must exist (-v makes a missing directory, as
  // Docker does); volumes are made when absent, anonymous ones get a name.
  std::vector<std::string> made_anonymous;
  auto drop_anonymous = [&] {
    for (const auto& v : made_anonymous)
      (void)remove_volume(v);
  };
  for (auto& m : config.mounts) {
    Status s = ok_status();
    if (m.type == runtime::MountSpec::Type::kBind) {
      struct stat st;
      if (::stat(m.source.c_str(), &st) != 0) {
        if (errno == ENOENT && m.create_source)
          s = sys::make_dirs(m.source, 0755);
        else
          s = Error::from_errno(errno, "bind source path '" + m.source + "'");
      }
    } else if (m.type == runtime::MountSpec::Type::kVolume) {
      if (m.source.empty()) {
        auto v = create_volume("", {}, true);
        if (v.ok()) {
          m.source = v->name;
          made_anonymous.push_back(v->name);
        } else {
          s = v.error();
        }
      } else {
        auto v = ensure_volume(m.source);
        if (!v.ok()) s = v.error();
      }
    }
    if (!s.ok()) {
      drop_anonymous();
      return s.error();
    }
  }

  // Files first, then the record: a crash in between leaves a directory
  // without a record, which remove_orphans() collects.
  std::string dir = runtime::container_dir(root_, id);
  if (::mkdir(dir.c_str(), 0700) != 0) return Error::from_errno(errno, "mkdir '" + dir + "'");
  auto cleanup = [&](Error e) -> Result<ContainerRecord> {
    (void)sys::remove_tree(dir);
    drop_anonymous();
    return e;
  };
  if (config.machine.enabled) {
    std::string disk = dir + "/disk.img";
    if (auto s = runtime::make_machine_disk(config.root_image, disk, config.machine.disk_bytes);
        !s.ok())
      return cleanup(s.error().wrap("make the machine's disk"));
    config.root_image = disk;
  } else if (config.root_disk) {
    if (auto s = runtime::make_root_overlay(root_ + "/cache", config.root_image,
                                            dir + "/" + runtime::kRootOverlayName);
        !s.ok())
      return cleanup(s.error());
  } else if (!config.root_image.empty() && !config.read_only) {
    if (auto s = make_writable_layer(root_, dir + "/upper.img", config.writable_bytes); !s.ok())
      return cleanup(s.error());
  }
  ContainerRecord r;
  r.kind = config.machine.enabled ? kMachine : kContainer;
  r.id = id;
  r.image = config.image;
  r.image_id = config.image_id;
  r.config = runtime::to_json(config);
  r.created = state::now_ns();
  for (int attempt = 0;; ++attempt) {
    if (!name.empty()) {
      r.name = name;
    } else {
      uint32_t rnd = 0;
      (void)::getrandom(&rnd, sizeof rnd, 0);
      r.name = generate_name(rnd);
      if (attempt >= 3) r.name += "_" + id.substr(0, 6);
    }
    auto added = store_->add_container(r, endpoints);
    if (added.ok()) {
      for (const auto& m : config.mounts)
        if (m.type == runtime::MountSpec::Type::kVolume)
          if (auto u = store_->add_volume_use(r.id, m.source); !u.ok()) {
            (void)store_->remove_container(r.id);
            return cleanup(u.error());
          }
      return r;
    }
    if (added.error().code() != ErrorCode::kAlreadyExists || !name.empty() || attempt >= 5)
      return cleanup(added.error());
  }
}

Result<ContainerRecord> Containers::reconcile(ContainerRecord r) {
  if (r.state.status == RunState::kRemoving) return r;
  if (runtime::owner_alive(root_, r.id)) return r;
  if (active(r.state.status)) {
    auto updated = store_->update_container(r.id, [&](ContainerRecord& cur) {
      // Decided again under the write lock: a monitor may have just started.
      if (!active(cur.state.status) || runtime::owner_alive(root_, cur.id)) return ok_status();
      cur.state.status = RunState::kExited;
      cur.state.exit_code = 255;
      cur.state.error = "the container's monitor died";
      cur.state.finished = state::now_ns();
      cur.state.monitor_pid = 0;
      return ok_status();
    });
    if (updated.ok()) r = std::move(*updated);
  }
  // A dead monitor's addresses and names go (its taps went with its QEMU).
  if (auto s = networks_->release(r.id); !s.ok())
    log::warn("release the addresses of " + display_name(r) + ": " + s.error().to_string());
  runtime::remove_if_stale(root_, r.id);
  return r;
}

Result<ContainerRecord> Containers::find(const std::string& ref, const std::string& kind) {
  auto found = store_->find_container(ref);
  if (!found.ok() && found.error().code() == ErrorCode::kNotFound && kind == kMachine)
    return Error(ErrorCode::kNotFound, "No such machine: " + ref);
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, std::move(found));
  if (r.kind != kind) {
    if (kind == kMachine)
      return Error(ErrorCode::kNotFound,
                   "No such machine: " + ref + " (" + r.name + " is a container)");
    return Error(ErrorCode::kNotFound, "No such container: " + ref + " (" + r.name +
                                           " is a machine: use `vessel machine`)");
  }
  return reconcile(std::move(r));
}

Result<std::vector<ContainerRecord>> Containers::list(const std::string& kind) {
  VESSEL_ASSIGN_OR_RETURN(auto all, store_->containers());
  std::vector<ContainerRecord> out;
  for (auto& r : all) {
    if (!kind.empty() && r.kind != kind) continue;
    VESSEL_ASSIGN_OR_RETURN(r, reconcile(std::move(r)));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<monitor::Launch>> Containers::start(const ContainerRecord& record,
                                                         bool wait_attach, bool debug) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  if (r.state.status == RunState::kRemoving)
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + display_name(r) + " is being removed");
  // A copy's boot of the stopped VM ends first (it is short).
  if (runtime::in_maintenance(root_, r.id))
    if (!wait_gone(r, 60s).ok())
      return Error(ErrorCode::kFailedPrecondition,
                   "container " + display_name(r) +
                       " is busy: a copy of its files (cp or export) is still running");
  settle(r);
  if (runtime::owner_alive(root_, r.id)) return std::optional<monitor::Launch>();
  VESSEL_ASSIGN_OR_RETURN(monitor::Launch l, monitor::launch(root_, r.id, wait_attach, debug));
  return std::optional<monitor::Launch>(std::move(l));
}

Result<monitor::Channel> Containers::connect(const ContainerRecord& r) {
  auto ch = runtime::running_owner(root_, r.id)
                ? monitor::connect(runtime::monitor_socket_of(root_, r.id))
                : Result<monitor::Channel>(Error(ErrorCode::kFailedPrecondition, "not running"));
  if (!ch.ok())
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + display_name(r) + " is not running");
  return ch;
}

void Containers::settle(const ContainerRecord& r) {
  if (r.state.status == RunState::kExited && runtime::running_owner(root_, r.id))
    (void)wait_gone(r, 10s);
}

Status Containers::end_maintenance(const ContainerRecord& r) {
  if (!runtime::in_maintenance(root_, r.id)) return ok_status();
  if (auto ch = monitor::connect(runtime::monitor_socket_of(root_, r.id)); ch.ok())
    (void)monitor::request(*ch, monitor::ApiType::kStop, monitor::encode(monitor::Stop{SIGKILL, 0}),
                           30s);
  return wait_gone(r, 30s);
}

Result<monitor::Channel> Containers::open_files(const ContainerRecord& record) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig config, runtime::config_from_json(r.config));
  if (r.kind != kContainer || !config.netns_path.empty() || !config.pod_role.empty())
    return connect(r);  // a machine's or an OCI runtime's: only while it runs
  if (r.state.status == RunState::kRemoving)
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + display_name(r) + " is being removed");
  std::string socket = runtime::monitor_socket_of(root_, r.id);
  settle(r);  // a monitor tidying after the exit serves no copy
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (runtime::running_owner(root_, r.id)) return connect(r);
    if (runtime::in_maintenance(root_, r.id)) {
      if (auto ch = monitor::connect(socket); ch.ok()) return ch;
      (void)wait_gone(r, 30s);  // it is going: the next boot is ours
      continue;
    }
    auto launched = monitor::launch_maintenance(root_, r.id, false);
    if (!launched.ok()) {
      // Another copy (or a start) got there first.
      if (runtime::owner_alive(root_, r.id)) continue;
      return launched.error().wrap("boot the VM of stopped container " + display_name(r) +
                                   " for its files");
    }
    if (auto s = monitor::wait_held(*launched, 5min); !s.ok())
      return s.error().wrap("boot the VM of stopped container " + display_name(r) +
                            " for its files");
    if (auto ch = monitor::connect(socket); ch.ok()) return ch;
  }
  return Error(ErrorCode::kUnavailable, "container " + display_name(r) +
                                            ": its files could not be reached (the VM " +
                                            "kept stopping or starting); try again");
}

Result<protocol::Stats> Containers::stats(const ContainerRecord& r) {
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, connect(r));
  VESSEL_TRY(ch.send(monitor::type_code(protocol::MsgType::kStats), 0));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (true) {
    protocol::FrameReader::Frame fr;
    while (ch.next(fr)) {
      if (fr.header.type == monitor::type_code(protocol::MsgType::kStatsResult)) {
        protocol::Stats st;
        if (!protocol::decode(fr.payload, st))
          return Error(ErrorCode::kProtocol, "malformed statistics from the guest");
        return st;
      }
      if (fr.header.type == monitor::type_code(monitor::ApiType::kResult)) {
        protocol::Reply reply;
        (void)protocol::decode(fr.payload, reply);
        return Error(ErrorCode::kFailedPrecondition, reply.message);
      }
    }
    if (Clock::now() > deadline)
      return Error(ErrorCode::kTimeout, "no statistics from the guest in time");
    pollfd p{ch.fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    VESSEL_TRY(ch.read_available());
  }
}

Status Containers::wait_gone(const ContainerRecord& r, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (runtime::owner_alive(root_, r.id)) {
    if (Clock::now() >= deadline)
      return Error(ErrorCode::kTimeout,
                   "container " + display_name(r) + "'s monitor did not exit in time");
    std::this_thread::sleep_for(10ms);
  }
  return ok_status();
}

namespace {

std::string paused_marker(const std::string& root, const std::string& id) {
  return runtime::runtime_dir_of(root, id) + "/paused";
}

}  // namespace

bool Containers::paused(const ContainerRecord& r) const {
  return r.state.status == RunState::kRunning &&
         ::access(paused_marker(root_, r.id).c_str(), F_OK) == 0;
}

Status Containers::pause(const ContainerRecord& record, bool pause) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  if (r.state.status != RunState::kRunning || !runtime::owner_alive(root_, r.id))
    return Error(ErrorCode::kFailedPrecondition,
                 "Container " + display_name(r) + " is not running");
  if (paused(r) == pause)
    return Error(
        ErrorCode::kFailedPrecondition,
        "Container " + display_name(r) + (pause ? " is already paused" : " is not paused"));
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, connect(r));
  uint8_t payload = pause ? 1 : 0;
  VESSEL_TRY(monitor::request(ch, monitor::ApiType::kPause, std::span<const uint8_t>(&payload, 1),
                              std::chrono::seconds(30)));
  std::string marker = paused_marker(root_, r.id);
  if (pause) return sys::write_file_atomic(marker, "");
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "unlink '" + marker + "'");
  return ok_status();
}

Status Containers::update_limits(const ContainerRecord& record, const monitor::Limits& change) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  if (r.state.status != RunState::kRunning || !runtime::owner_alive(root_, r.id))
    return Error(ErrorCode::kFailedPrecondition,
                 "Container " + display_name(r) + " is not running");
  if (paused(r))
    return Error(ErrorCode::kFailedPrecondition,
                 "Container " + display_name(r) + " is paused, unpause it first");
  // Checked before asking the monitor, which checks the same against the
  // VM it booted: the record's memory_bytes and cpus are that VM's (only a
  // stopped container's update changes them).
  VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig c, runtime::config_from_json(r.config));
  VESSEL_TRY(monitor::merge_limits(runtime::container_limits(c), change, c.memory_bytes, c.cpus));
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, connect(r));
  VESSEL_TRY(monitor::request(ch, monitor::ApiType::kUpdate, monitor::encode(change),
                              std::chrono::seconds(30)));
  auto kept = store_->update_container(r.id, [&](ContainerRecord& cur) -> Status {
    VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig now, runtime::config_from_json(cur.config));
    VESSEL_ASSIGN_OR_RETURN(
        protocol::Update merged,
        monitor::merge_limits(runtime::container_limits(now), change, now.memory_bytes, now.cpus));
    runtime::keep_limits(now, merged);
    cur.config = runtime::to_json(now);
    return ok_status();
  });
  if (!kept.ok()) return kept.error();
  return ok_status();
}

namespace {

// What an endpoint record asked for, to plan it again.
networks::Attachment attachment_of(const state::EndpointRecord& e) {
  networks::Attachment a{e.network, e.fixed_ip ? net::Ipv4{e.fixed_ip}.to_string() : "", e.mac, {}};
  auto aliases = nlohmann::json::parse(e.aliases, nullptr, false);
  if (aliases.is_array())
    for (const auto& x : aliases)
      if (x.is_string()) a.aliases.push_back(x.get<std::string>());
  return a;
}

}  // namespace

Status Containers::connect_network(const ContainerRecord& record,
                                   const networks::Attachment& attachment) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  VESSEL_ASSIGN_OR_RETURN(
      networks::Network n,
      networks_->get(attachment.network == "bridge" ? std::string(networks::kDefaultNetwork)
                                                    : attachment.network));
  if (runtime::running_owner(root_, r.id))
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot connect running container " + display_name(r) + " to network " + n.name +
                     ": a VM's network interfaces are fixed when it boots (stop it, connect, "
                     "start it)");
  VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig config, runtime::config_from_json(r.config));
  if (config.network_mode == networks::kNoNetwork)
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + display_name(r) + " has --network none: it joins no network");
  VESSEL_ASSIGN_OR_RETURN(auto current, store_->endpoints_of(r.id));
  std::vector<networks::Attachment> wanted;
  for (const auto& e : current) {
    if (e.network == n.name)
      return Error(ErrorCode::kFailedPrecondition,
                   "container " + display_name(r) + " is already connected to network " + n.name);
    wanted.push_back(attachment_of(e));
  }
  networks::Attachment a = attachment;
  a.network = n.name;
  wanted.push_back(a);
  VESSEL_ASSIGN_OR_RETURN(auto endpoints, networks_->plan(r.id, wanted));
  for (auto& e : endpoints)  // keep the addresses they held last
    for (const auto& old : current)
      if (old.network == e.network) e.last_ip = old.last_ip;
  return store_->set_endpoints(r.id, endpoints);
}

Status Containers::disconnect_network(const ContainerRecord& record, const std::string& network) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  std::string name = network == "bridge" ? std::string(networks::kDefaultNetwork) : network;
  VESSEL_ASSIGN_OR_RETURN(networks::Network n, networks_->get(name));
  if (runtime::running_owner(root_, r.id))
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot disconnect running container " + display_name(r) + " from network " +
                     n.name +
                     ": a VM's network interfaces are fixed when it boots (stop it, "
                     "disconnect, start it)");
  VESSEL_ASSIGN_OR_RETURN(auto current, store_->endpoints_of(r.id));
  std::vector<state::EndpointRecord> kept;
  for (const auto& e : current)
    if (e.network != n.name) kept.push_back(e);
  if (kept.size() == current.size())
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + display_name(r) + " is not connected to network " + n.name);
  for (size_t i = 0; i < kept.size(); ++i)
    kept[i].position = static_cast<int>(i);
  return store_->set_endpoints(r.id, kept);
}

Status Containers::stop(const ContainerRecord& record, int signal, int timeout) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  if (!runtime::running_owner(root_, r.id)) return ok_status();
  // A frozen guest cannot take the signal (Docker thaws too).
  if (paused(r)) VESSEL_TRY(pause(r, false));
  auto ch = connect(r);
  if (!ch.ok()) return ok_status();  // it ended meanwhile
  VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig config, runtime::config_from_json(r.config));
  int secs = timeout >= 0 ? timeout : config.stop_timeout;
  auto payload = monitor::encode(monitor::Stop{signal, timeout});
  auto s =
      monitor::request(*ch, monitor::ApiType::kStop, payload, std::chrono::seconds(secs) + 60s);
  if (!s.ok() && s.error().code() != ErrorCode::kUnavailable) return s;
  return wait_gone(r, 30s);
}

Status Containers::kill(const ContainerRecord& record, int signal) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  auto not_running = Error(ErrorCode::kFailedPrecondition,
                           "cannot kill container " + display_name(r) + ": it is not running");
  if (!runtime::running_owner(root_, r.id)) return not_running;
  if (paused(r)) VESSEL_TRY(pause(r, false));
  auto ch = connect(r);
  if (!ch.ok()) return not_running;
  auto payload = protocol::encode(protocol::Signal{signal});
  auto s = monitor::request(*ch, monitor::ApiType::kKill, payload, 30s);
  if (!s.ok() && s.error().code() == ErrorCode::kFailedPrecondition) return not_running;
  return s;
}

Status Containers::remove(const ContainerRecord& record, bool force, bool volumes) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, reconcile(record));
  // Not running: a copy's boot, which ends (and its copy fails) first.
  VESSEL_TRY(end_maintenance(r));
  settle(r);
  if (runtime::owner_alive(root_, r.id)) {
    if (!force)
      return Error(ErrorCode::kFailedPrecondition,
                   "cannot remove container " + display_name(r) +
                       ": it is running (stop it first, or use rm -f)");
    if (paused(r)) (void)pause(r, false);
    // Ask the monitor to kill it; if the monitor does not answer, kill the
    // monitor, which takes its QEMU and virtiofsd with it.
    bool stopped = false;
    if (auto ch = connect(r); ch.ok()) {
      auto payload = monitor::encode(monitor::Stop{SIGKILL, 0});
      stopped = monitor::request(*ch, monitor::ApiType::kStop, payload, 30s).ok() &&
                wait_gone(r, 10s).ok();
    }
    if (!stopped) {
      VESSEL_ASSIGN_OR_RETURN(ContainerRecord cur, store_->container(r.id));
      if (cur.state.monitor_pid > 0 && runtime::owner_alive(root_, r.id))
        ::kill(cur.state.monitor_pid, SIGKILL);
      VESSEL_TRY(wait_gone(r, 10s));
    }
    VESSEL_ASSIGN_OR_RETURN(r, reconcile(r));
  }
  // Marked first: a crash while deleting files leaves a record that says so
  // and that the next rm finishes.
  auto marked = store_->update_container(r.id, [](ContainerRecord& cur) {
    cur.state.status = RunState::kRemoving;
    return ok_status();
  });
  if (!marked.ok()) {
    // --rm: the monitor removed it as it ended.
    if (marked.error().code() == ErrorCode::kNotFound) return ok_status();
    return marked.error();
  }
  // A copy's boot that began before the mark ends before the files go (and
  // one being launched as they go may write its log there again: once more).
  for (int attempt = 0;; ++attempt) {
    VESSEL_TRY(end_maintenance(r));
    runtime::remove_if_stale(root_, r.id);
    Status removed = sys::remove_tree(runtime::container_dir(root_, r.id));
    if (removed.ok()) break;
    if (attempt == 2) return removed;
    std::this_thread::sleep_for(100ms);
  }
  auto removed = store_->remove_container(r.id);
  if (!removed.ok() && removed.error().code() != ErrorCode::kNotFound) return removed;
  if (volumes) {
    // rm -v: the anonymous volumes it used (unless another container uses
    // them too); named volumes stay, as in Docker.
    auto config = runtime::config_from_json(r.config);
    if (config.ok())
      for (const auto& m : config->mounts) {
        if (m.type != runtime::MountSpec::Type::kVolume) continue;
        auto v = store_->volume(m.source);
        if (!v.ok() || !v->anonymous) continue;
        if (auto s = remove_volume(m.source);
            !s.ok() && s.error().code() != ErrorCode::kFailedPrecondition)
          return s;
      }
  }
  return ok_status();
}

void Containers::remove_orphans() {
  auto names = sys::list_dir(runtime::containers_dir(root_));
  if (!names.ok()) return;
  for (const auto& name : *names) {
    if (name.size() != 64) continue;
    if (store_->container(name).ok()) continue;
    std::string dir = runtime::container_dir(root_, name);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || ::time(nullptr) - st.st_mtime < 60) continue;
    log::debug("removing the files of a container that was never recorded: " + dir);
    (void)sys::remove_tree(dir);
  }
}

}  // namespace vessel::containers
