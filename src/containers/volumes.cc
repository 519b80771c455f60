// Volumes: named host directories that containers mount over virtio-fs.
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "containers/containers.h"
#include "runtime/mounts.h"
#include "sys/fs.h"

namespace vessel::containers {
namespace {

uint64_t tree_bytes(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  uint64_t total = static_cast<uint64_t>(st.st_blocks) * 512;
  if (S_ISDIR(st.st_mode)) {
    auto names = sys::list_dir(path);
    if (names.ok())
      for (const auto& n : *names)
        total += tree_bytes(path + "/" + n);
  }
  return total;
}

}  // namespace

std::string Containers::volume_data(const std::string& name) const {
  return root_ + "/volumes/" + name + "/_data";
}

Result<state::VolumeRecord> Containers::create_volume(
    const std::string& given, const std::map<std::string, std::string>& labels, bool anonymous) {
  std::string name = given;
  if (name.empty()) {
    VESSEL_ASSIGN_OR_RETURN(name, sys::random_hex(32));
    anonymous = true;
  }
  VESSEL_TRY(runtime::validate_volume_name(name));
  if (store_->volume(name).ok())
    return Error(ErrorCode::kAlreadyExists, "volume \"" + name + "\" already exists");
  std::string base = root_ + "/volumes";
  VESSEL_TRY(sys::make_dirs(base, 0700));
  // A directory without a record is what a crashed create or remove left:
  // its data must not resurface in the new volume.
  std::string dir = base + "/" + name;
  VESSEL_TRY(sys::remove_tree(dir));
  std::string tmp = base + "/.new-" + name + "-" + std::to_string(::getpid());
  (void)sys::remove_tree(tmp);
  if (::mkdir(tmp.c_str(), 0700) != 0) return Error::from_errno(errno, "mkdir '" + tmp + "'");
  // The data directory is what the container sees as the mount point: world
  // traversable like a fresh directory in an image.
  if (::mkdir((tmp + "/_data").c_str(), 0755) != 0 || ::rename(tmp.c_str(), dir.c_str()) != 0) {
    int e = errno;
    (void)sys::remove_tree(tmp);
    return Error::from_errno(e, "create volume directory '" + dir + "'");
  }
  state::VolumeRecord r{name, state::now_ns(), nlohmann::json(labels).dump(), anonymous};
  if (auto s = store_->add_volume(r); !s.ok()) {
    // Lost a race for the name: the winner's directory is the one above
    // only if its record exists; ours goes.
    if (!store_->volume(name).ok()) (void)sys::remove_tree(dir);
    return s.error();
  }
  return r;
}

Result<state::VolumeRecord> Containers::ensure_volume(const std::string& name) {
  if (auto v = store_->volume(name); v.ok()) return v;
  auto created = create_volume(name, {});
  if (!created.ok() && created.error().code() == ErrorCode::kAlreadyExists)
    return store_->volume(name);
  return created;
}

Result<state::VolumeRecord> Containers::volume(const std::string& name) {
  return store_->volume(name);
}

Result<std::vector<state::VolumeRecord>> Containers::volumes() {
  return store_->volumes();
}

Status Containers::remove_volume(const std::string& name) {
  VESSEL_TRY(store_->remove_volume(name));  // refuses a volume in use
  std::string dir = root_ + "/volumes/" + name;
  std::string trash = root_ + "/volumes/.rm-" + name + "-" + std::to_string(::getpid());
  if (::rename(dir.c_str(), trash.c_str()) == 0) return sys::remove_tree(trash);
  return sys::remove_tree(dir);
}

Result<std::pair<std::vector<std::string>, uint64_t>> Containers::prune_volumes(bool all) {
  std::pair<std::vector<std::string>, uint64_t> out{{}, 0};
  VESSEL_ASSIGN_OR_RETURN(auto vols, store_->volumes());
  for (const auto& v : vols) {
    if (!all && !v.anonymous) continue;
    VESSEL_ASSIGN_OR_RETURN(auto users, store_->volume_users(v.name));
    if (!users.empty()) continue;
    uint64_t bytes = tree_bytes(root_ + "/volumes/" + v.name);
    auto s = remove_volume(v.name);
    if (!s.ok()) {
      if (s.error().code() == ErrorCode::kFailedPrecondition) continue;  // taken meanwhile
      return s.error();
    }
    out.first.push_back(v.name);
    out.second += bytes;
  }
  return out;
}

}  // namespace vessel::containers
