#include "guest/machine.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/unique_fd.h"

namespace vessel::guest {
namespace {

// EXT4_IOC_RESIZE_FS (fs/ext4/ext4.h): the new block count, a __u64.
constexpr unsigned long kExt4ResizeFs = _IOW('f', 16, uint64_t);
constexpr size_t kMaxEtcFile = 16u << 20;

/// Opens `rel` (relative) beneath the root `root_fd`: every lookup, symlinks
/// included, stays inside the machine's root (RESOLVE_IN_ROOT).
int open_in_root(int root_fd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
}

/// The contents of `name` in directory `dir`, or "" when it does not exist.
Result<std::string> read_entry(int dir, const char* name) {
  UniqueFd fd(openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::string();
    return Status::from_errno(std::string("open '/etc/") + name + "'");
  }
  std::string out;
  char buffer[16 << 10];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(std::string("read '/etc/") + name + "'");
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > kMaxEtcFile)
      return Status(EFBIG, std::string("'/etc/") + name + "' is too large");
  }
}

/// Replaces `name` in directory `dir` with `data` (mode, owner): a temporary
/// file, fsync, rename; a crash leaves the old file or the new one.
Status replace_entry(int dir, const char* name, std::string_view data, mode_t mode, uid_t uid,
                     gid_t gid) {
  std::string tmp = std::string(".") + name + ".vessel-tmp";
  unlinkat(dir, tmp.c_str(), 0);
  UniqueFd fd(openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  std::string what = std::string("write '/etc/") + name + "'";
  if (!fd) return Status::from_errno(what);
  if (!write_all(fd.get(), data.data(), data.size()) || fchmod(fd.get(), mode) < 0 ||
      fchown(fd.get(), uid, gid) < 0 || fsync(fd.get()) < 0) {
    Status s = Status::from_errno(what);
    unlinkat(dir, tmp.c_str(), 0);
    return s;
  }
  if (renameat(dir, tmp.c_str(), dir, name) < 0) {
    Status s = Status::from_errno(what);
    unlinkat(dir, tmp.c_str(), 0);
    return s;
  }
  return {};
}

/// `name` in `dir` is a symlink (left alone: another program manages it).
bool is_symlink(int dir, const char* name) {
  struct stat st;
  return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/// Mode, owner and group of `name` in `dir`, or the defaults given.
void existing_owner(int dir, const char* name, mode_t& mode, uid_t& uid, gid_t& gid) {
  struct stat st;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
    mode = st.st_mode & 07777;
    uid = st.st_uid;
    gid = st.st_gid;
  }
}

/// An executable regular file at `path` (absolute, in the root).
bool executable_in_root(int root_fd, const std::string& path) {
  UniqueFd fd(open_in_root(root_fd, path.substr(1), O_PATH));
  struct stat st;
  return fd && fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

/// Field `index` (0-based) of a colon-separated line, or "".
std::string_view field(std::string_view line, size_t index) {
  for (size_t i = 0; i < index; ++i) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return {};
    line.remove_prefix(colon + 1);
  }
  return line.substr(0, line.find(':'));
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += l + "\n";
  return out;
}

/// Creates the directories of `path` (absolute) under the root, each lookup
/// beneath it; the last one is given to `uid`:`gid` when made here.
Status make_home(int root_fd, const std::string& path, uid_t uid, gid_t gid) {
  std::string rel;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string part = path.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty() || part == ".") continue;
    bool last = pos > path.size();
    std::string parent = rel.empty() ? "." : rel;
    rel += (rel.empty() ? "" : "/") + part;
    UniqueFd dir(open_in_root(root_fd, parent, O_DIRECTORY | O_RDONLY));
    if (!dir) return Status::from_errno("open '/" + parent + "'");
    if (mkdirat(dir.get(), part.c_str(), last ? 0750 : 0755) == 0) {
      if (last && fchownat(dir.get(), part.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return Status::from_errno("chown '" + path + "'");
    } else if (errno != EEXIST) {
      return Status::from_errno("create '" + path + "'");
    }
  }
  return {};
}

}  // namespace

Status grow_filesystem(const std::string& root, const std::string& device) {
  UniqueFd dev(open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!dev) return Status::from_errno("open '" + device + "'");
  uint64_t bytes = 0;
  if (ioctl(dev.get(), BLKGETSIZE64, &bytes) < 0)
    return Status::from_errno("size of '" + device + "'");
  UniqueFd dir(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Status::from_errno("open the machine root");
  struct statfs fs;
  if (fstatfs(dir.get(), &fs) < 0 || fs.f_bsize <= 0) return Status::from_errno("statfs root");
  uint64_t blocks = bytes / static_cast<uint64_t>(fs.f_bsize);
  // f_blocks leaves out the filesystem's overhead, so it is below the block
  // count even when there is nothing to grow; the kernel then does nothing.
  if (blocks <= static_cast<uint64_t>(fs.f_blocks)) return {};
  if (ioctl(dir.get(), kExt4ResizeFs, &blocks) < 0)
    return Status::from_errno("grow the root filesystem to " + std::to_string(bytes >> 20) +
                              " MiB");
  return {};
}

UserFiles make_user_files(const UserFiles& in, const protocol::MachineUser& user,
                          const std::string& shell) {
  UserFiles out;
  std::string uid = std::to_string(user.uid), gid = std::to_string(user.gid);
  std::string entry =
      user.name + ":x:" + uid + ":" + gid + ":" + user.name + ":" + user.home + ":" + shell;
  // passwd: the user's entry replaces one by its name, else goes before the
  // first entry with its uid (getpwuid finds the first), else at the end.
  std::vector<std::string> lines;
  bool placed = false;
  for (std::string_view line : split_lines(in.passwd)) {
    if (field(line, 0) == user.name) {
      if (!placed) lines.push_back(entry);
      placed = true;
      continue;
    }
    if (!placed && field(line, 2) == uid) {
      lines.push_back(entry);
      placed = true;
    }
    lines.emplace_back(line);
  }
  if (!placed) lines.push_back(entry);
  out.passwd = join_lines(lines);

  // group: one for the gid, named after the user (unless that name is taken).
  lines.clear();
  bool gid_exists = false, name_taken = false;
  for (std::string_view line : split_lines(in.group)) {
    gid_exists = gid_exists || field(line, 2) == gid;
    name_taken = name_taken || field(line, 0) == user.name;
    lines.emplace_back(line);
  }
  if (!gid_exists) lines.push_back((name_taken ? "vessel" + gid : user.name) + ":x:" + gid + ":");
  out.group = join_lines(lines);

  // shadow: a locked password ('*'): sudo is passwordless and the machine
  // is entered through `machine shell`, not a login prompt.
  if (!in.shadow.empty()) {
    lines.clear();
    bool has = false;
    for (std::string_view line : split_lines(in.shadow)) {
      has = has || field(line, 0) == user.name;
      lines.emplace_back(line);
    }
    if (!has) lines.push_back(user.name + ":*:19000:0:99999:7:::");
    out.shadow = join_lines(lines);
  }
  return out;
}

Status prepare_machine_root(const protocol::Setup& setup, const std::string& root) {
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return Status::from_errno("open the machine root");
  if (!executable_in_root(root_fd.get(), setup.init))
    return Status(ENOENT, "the image has no init at '" + setup.init +
                              "': a machine boots the image's own init system (such as systemd)");
  Status s = ensure_dirs(root + "/etc", 0755);
  if (!s.ok()) return s;
  UniqueFd etc(open_in_root(root_fd.get(), "etc", O_DIRECTORY | O_RDONLY));
  if (!etc) return Status::from_errno("open '/etc'");
  struct EtcFile {
    const char* name;
    std::string contents;
  };
  const EtcFile files[] = {{"hostname", setup.hostname.empty() ? "" : setup.hostname + "\n"},
                           {"hosts", setup.hosts},
                           {"resolv.conf", setup.resolv_conf}};
  for (const EtcFile& f : files) {
    if (f.contents.empty() || is_symlink(etc.get(), f.name)) continue;
    s = replace_entry(etc.get(), f.name, f.contents, 0644, 0, 0);
    if (!s.ok()) return s;
  }
  const protocol::MachineUser& user = setup.user;
  if (user.name.empty()) return {};
  std::string shell = user.shell;
  for (const char* candidate : {user.shell.c_str(), "/bin/bash", "/bin/sh"}) {
    if (executable_in_root(root_fd.get(), candidate)) {
      shell = candidate;
      break;
    }
  }
  UserFiles in;
  Result<std::string> text = read_entry(etc.get(), "passwd");
  if (!text.ok()) return text.status();
  in.passwd = text.take();
  text = read_entry(etc.get(), "group");
  if (!text.ok()) return text.status();
  in.group = text.take();
  text = read_entry(etc.get(), "shadow");
  if (!text.ok()) return text.status();
  in.shadow = text.take();
  UserFiles out = make_user_files(in, user, shell);
  struct Out {
    const char* name;
    const std::string& before;
    const std::string& after;
    mode_t mode;
  };
  const Out writes[] = {{"passwd", in.passwd, out.passwd, 0644},
                        {"group", in.group, out.group, 0644},
                        {"shadow", in.shadow, out.shadow, 0640}};
  for (const Out& w : writes) {
    if (w.after == w.before || w.after.empty()) continue;  // unchanged: no write
    mode_t mode = w.mode;
    uid_t uid = 0;
    gid_t gid = 0;
    existing_owner(etc.get(), w.name, mode, uid, gid);
    s = replace_entry(etc.get(), w.name, w.after, mode, uid, gid);
    if (!s.ok()) return s;
  }
  if (executable_in_root(root_fd.get(), "/usr/bin/sudo")) {
    s = ensure_dir(root + "/etc/sudoers.d", 0750);
    UniqueFd sudoers(open_in_root(root_fd.get(), "etc/sudoers.d", O_DIRECTORY | O_RDONLY));
    if (!sudoers) return Status::from_errno("open '/etc/sudoers.d'");
    // sudoers.d ignores names with a '.' (sudoers(5), "#includedir").
    std::string name = "vessel-user";
    s = replace_entry(sudoers.get(), name.c_str(), user.name + " ALL=(ALL:ALL) NOPASSWD: ALL\n",
                      0440, 0, 0);
    if (!s.ok()) return s;
  }
  if (user.create_home) return make_home(root_fd.get(), user.home, user.uid, user.gid);
  return {};
}

Status exec_machine_init(int mount_ns, const std::string& init) {
  // The kernel starts PID 1 sharing its filesystem context (root, cwd,
  // umask) with the kernel's idle task (CLONE_FS in rest_init()), and
  // setns(2) refuses a mount namespace to a process that shares it (EINVAL):
  // a copy of its own first.
  if (unshare(CLONE_FS) < 0) return Status::from_errno("unshare the filesystem context");
  // Entering the namespace also moves root and cwd to its root (setns(2)).
  if (setns(mount_ns, CLONE_NEWNS) < 0) return Status::from_errno("enter the machine's namespace");
  if (chdir("/") < 0) return Status::from_errno("chdir '/'");
  // vessel-init blocks every signal and ignores SIGPIPE; both survive
  // execve(2), and an init must start with neither.
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::string path = init;
  char home[] = "HOME=/";
  char term[] = "TERM=linux";
  char* envp[] = {home, term, nullptr};
  char* argv[] = {path.data(), nullptr};
  execve(path.c_str(), argv, envp);
  Status s = Status::from_errno("execute '" + init + "'");
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return s;
}

}  // namespace vessel::guest
