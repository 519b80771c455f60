// vessel cp and vessel export: files in and out of a running container as
// tar streams, made and extracted by vessel-init inside the guest (CopyOut,
// CopyIn; docs/protocol.md). Host-side archives are written with libarchive
// and extracted with rootfs::apply_layer's hardened code.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "containers/copy.h"
#include "monitor/client.h"
#include "rootfs/layer.h"
#include "runtime/paths.h"
#include "sys/fs.h"

namespace vessel::cli {
namespace {

using containers::ContainerRecord;
using containers::Containers;
using containers::GuestCopy;

/// One side of `cp`: CONTAINER:PATH, a host path, or "-".
struct Endpoint {
  bool container = false;
  bool stream = false;  // "-": a tar on stdin or stdout
  std::string ref;      // the container, when `container`
  std::string path;
};

/// Docker's rule (cli/command/container/cp.go, splitCpArg): NAME:PATH is a
/// container path unless the part before the colon holds a '/' or the
/// argument starts with '/' or '.', which makes it a local path.
Endpoint parse_endpoint(const std::string& arg) {
  Endpoint e;
  if (arg == "-") {
    e.stream = true;
    return e;
  }
  e.path = arg;
  if (arg.empty() || arg[0] == '/' || arg[0] == '.') return e;
  size_t colon = arg.find(':');
  if (colon == std::string::npos || colon == 0 ||
      arg.substr(0, colon).find('/') != std::string::npos)
    return e;
  e.container = true;
  e.ref = arg.substr(0, colon);
  e.path = arg.substr(colon + 1);
  // Container paths are relative to its root; the leading slash is optional.
  if (e.path.empty() || e.path[0] != '/') e.path = "/" + e.path;
  return e;
}

bool ends_with_slash(const std::string& p) {
  return !p.empty() && p.back() == '/';
}
/// "dir/." copies the contents of dir (Docker's rule).
bool names_contents(const std::string& p) {
  return p == "." || p.ends_with("/.");
}
std::string strip_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}
std::string base_name(const std::string& p) {
  std::string s = strip_slashes(p);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}
std::string dir_name(const std::string& p) {
  std::string s = strip_slashes(p);
  size_t slash = s.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : s.substr(0, slash);
}

/// Reads `ref`'s record and connects to its guest.
struct Target {
  std::unique_ptr<Containers> cs;
  ContainerRecord record;
  std::optional<monitor::Channel> ch;
};

Result<Target> connect_to(const GlobalOptions& g, const std::string& ref, const std::string& verb) {
  Target t;
  VESSEL_ASSIGN_OR_RETURN(t.cs, Containers::open(runtime::resolve_root(g.root)));
  VESSEL_ASSIGN_OR_RETURN(t.record, t.cs->find(ref));
  // A stopped container's files: its VM boots for the copy.
  auto ch = t.cs->open_files(t.record);
  if (!ch.ok()) return ch.error().wrap(verb + " " + ref);
  t.ch.emplace(std::move(*ch));
  return t;
}

// ---- container -> host ----------------------------------------------------------

/// Writes the archive of a CopyOut to `fd` as it arrives.
Status stream_to_fd(GuestCopy& copy, int fd) {
  std::vector<uint8_t> chunk;
  while (true) {
    VESSEL_ASSIGN_OR_RETURN(bool more, copy.next(chunk));
    if (!more) break;
    VESSEL_TRY(sys::write_all(fd, chunk.data(), chunk.size()));
  }
  return copy.finish(false);
}

Status copy_out(monitor::Channel& ch, const std::string& src, const Endpoint& dst, bool follow,
                bool archive_mode) {
  if (dst.stream) {
    if (::isatty(STDOUT_FILENO))
      return Error(ErrorCode::kInvalidArgument,
                   "refusing to write a tar archive to a terminal; redirect stdout");
    GuestCopy copy(ch, 2);
    VESSEL_TRY(
        copy.start(protocol::CopyOut{src, "", follow ? protocol::CopyOut::kFollowLink : 0u}));
    return stream_to_fd(copy, STDOUT_FILENO);
  }
  VESSEL_ASSIGN_OR_RETURN(containers::PathStat what, containers::stat_path(ch, 2, src, follow));
  if (!what.exists) return Error(ErrorCode::kNotFound, "no such file or directory: " + src);
  // Docker's destination rules (pkg/archive/copy.go, CopyInfoDestinationPath).
  std::string into, name;
  struct stat st;
  if (::stat(dst.path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      into = dst.path;
      name = names_contents(src) ? "." : "";
    } else if (what.is_dir()) {
      return Error(ErrorCode::kInvalidArgument,
                   "cannot copy a directory to a file: '" + dst.path + "'");
    } else {
      into = dir_name(dst.path);
      name = base_name(dst.path);
    }
  } else if (errno != ENOENT) {
    return Error::from_errno(errno, "stat '" + dst.path + "'");
  } else {
    if (ends_with_slash(dst.path) && !what.is_dir())
      return Error(ErrorCode::kNotFound, "no such directory: '" + dst.path + "'");
    into = dir_name(dst.path);
    name = base_name(dst.path);
    struct stat parent;
    if (::stat(into.c_str(), &parent) != 0 || !S_ISDIR(parent.st_mode))
      return Error(ErrorCode::kNotFound, "no such directory: '" + into + "'");
  }
  GuestCopy copy(ch, 3);
  VESSEL_TRY(
      copy.start(protocol::CopyOut{src, name, follow ? protocol::CopyOut::kFollowLink : 0u}));
  // The archive flows through a pipe into apply_layer, in a thread of its own.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  rootfs::ApplyOptions options;
  options.display_name = "copy of '" + src + "'";
  options.whiteouts = false;
  options.preserve_ownership = archive_mode;
  options.max_entries = UINT64_MAX;
  Result<rootfs::LayerStats> applied = rootfs::LayerStats{};
  std::thread extractor([&] { applied = rootfs::apply_layer(read_end.get(), into, options); });
  Status streamed = stream_to_fd(copy, write_end.get());
  write_end.reset();  // EOF for the extractor
  extractor.join();
  if (!applied.ok()) return applied.error();
  return streamed;
}

// ---- host -> container ----------------------------------------------------------

la_ssize_t archive_to_guest(archive*, void* ctx, const void* data, size_t size) {
  auto* copy = static_cast<GuestCopy*>(ctx);
  if (!copy->send(static_cast<const uint8_t*>(data), size).ok()) return -1;
  return static_cast<la_ssize_t>(size);
}

/// Writes a pax tar of the host path `src` to `copy`, its top entry named
/// `name` ("." : no top entry, its contents by their relative paths).
Status send_tree(GuestCopy& copy, const std::string& src, const std::string& name, bool follow) {
  using ReadPtr = std::unique_ptr<archive, decltype(&archive_read_free)>;
  using WritePtr = std::unique_ptr<archive, decltype(&archive_write_free)>;
  ReadPtr disk(archive_read_disk_new(), archive_read_free);
  WritePtr out(archive_write_new(), archive_write_free);
  if (!disk || !out) return Error(ErrorCode::kInternal, "libarchive: out of memory");
  if (follow)
    archive_read_disk_set_symlink_hybrid(disk.get());  // the top only
  else
    archive_read_disk_set_symlink_physical(disk.get());
  archive_read_disk_set_behavior(disk.get(), ARCHIVE_READDISK_NO_XATTR);
  archive_write_set_format_pax_restricted(out.get());
  archive_write_set_bytes_in_last_block(out.get(), 1);
  if (archive_write_open(out.get(), &copy, nullptr, archive_to_guest, nullptr) != ARCHIVE_OK)
    return Error(ErrorCode::kInternal, std::string("tar: ") + archive_error_string(out.get()));
  if (archive_read_disk_open(disk.get(), src.c_str()) != ARCHIVE_OK)
    return Error(ErrorCode::kNotFound,
                 std::string("read '") + src + "': " + archive_error_string(disk.get()));
  std::unique_ptr<archive_entry_linkresolver, decltype(&archive_entry_linkresolver_free)> links(
      archive_entry_linkresolver_new(), archive_entry_linkresolver_free);
  archive_entry_linkresolver_set_strategy(links.get(), archive_format(out.get()));
  std::vector<char> buf(1 << 16);
  auto write_entry = [&](archive_entry* e) -> Status {
    if (archive_write_header(out.get(), e) < ARCHIVE_WARN) {
      if (copy.ended()) return copy.finish(false);
      return Error(ErrorCode::kInternal, std::string("tar: ") + archive_error_string(out.get()));
    }
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) == 0) return ok_status();
    const char* source = archive_entry_sourcepath(e);
    UniqueFd fd(
        ::open(source ? source : archive_entry_pathname(e), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return Error::from_errno(errno, std::string("open '") + (source ? source : "") + "'");
    int64_t left = archive_entry_size(e);
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf.data(), std::min<int64_t>(left, buf.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno(errno, std::string("read '") + source + "'");
      if (n == 0) std::fill(buf.begin(), buf.end(), 0);  // shrank: pad, as tar(1) does
      size_t chunk = n == 0 ? static_cast<size_t>(std::min<int64_t>(left, buf.size())) : n;
      if (archive_write_data(out.get(), buf.data(), chunk) < 0) {
        if (copy.ended()) return copy.finish(false);
        return Error(ErrorCode::kInternal, std::string("tar: ") + archive_error_string(out.get()));
      }
      left -= static_cast<int64_t>(chunk);
    }
    return ok_status();
  };
  std::string prefix = src;
  while (true) {
    archive_entry* entry = archive_entry_new();
    int r = archive_read_next_header2(disk.get(), entry);
    if (r == ARCHIVE_EOF) {
      archive_entry_free(entry);
      break;
    }
    if (r < ARCHIVE_WARN) {
      archive_entry_free(entry);
      return Error(ErrorCode::kInternal,
                   std::string("read '") + src + "': " + archive_error_string(disk.get()));
    }
    archive_read_disk_descend(disk.get());
    std::string path = archive_entry_pathname(entry);
    std::string rel = path.compare(0, prefix.size(), prefix) == 0 ? path.substr(prefix.size()) : "";
    while (rel.starts_with("/"))
      rel.erase(0, 1);
    std::string renamed = name == "." ? rel : (rel.empty() ? name : name + "/" + rel);
    if (renamed.empty()) {  // the top directory of a contents-only copy
      archive_entry_free(entry);
      continue;
    }
    archive_entry_copy_sourcepath(entry, path.c_str());
    archive_entry_set_pathname(entry, renamed.c_str());
    archive_entry_set_uname(entry, nullptr);
    archive_entry_set_gname(entry, nullptr);
    archive_entry* sparse = nullptr;
    archive_entry_linkify(links.get(), &entry, &sparse);
    Status s = entry ? write_entry(entry) : ok_status();
    if (entry) archive_entry_free(entry);
    if (!s.ok()) return s;
  }
  // Entries the resolver held back (hardlinks whose other names never came).
  archive_entry* entry = nullptr;
  archive_entry* sparse = nullptr;
  while (archive_entry_linkify(links.get(), &entry, &sparse), entry != nullptr) {
    Status s = write_entry(entry);
    archive_entry_free(entry);
    entry = nullptr;
    if (!s.ok()) return s;
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    if (copy.ended()) return copy.finish(false);
    return Error(ErrorCode::kInternal, std::string("tar: ") + archive_error_string(out.get()));
  }
  return ok_status();
}

Status copy_in(monitor::Channel& ch, const Endpoint& src, const std::string& dst, bool follow,
               bool archive_mode) {
  uint32_t flags = archive_mode ? protocol::CopyIn::kKeepOwner : 0u;
  VESSEL_ASSIGN_OR_RETURN(containers::PathStat what,
                          containers::stat_path(ch, 2, dst, /*follow=*/true));
  if (src.stream) {
    // Docker: a tar on stdin is extracted into DST, which must be a directory.
    if (!what.exists || !what.is_dir())
      return Error(ErrorCode::kInvalidArgument, "destination '" + dst + "' must be a directory");
    GuestCopy copy(ch, 3);
    VESSEL_TRY(copy.start(protocol::CopyIn{dst, flags}));
    std::vector<uint8_t> buf(protocol::kMaxDataChunk);
    while (!copy.ended()) {
      ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno(errno, "read stdin");
      if (n == 0) break;
      if (auto s = copy.send(buf.data(), static_cast<size_t>(n)); !s.ok()) break;
    }
    return copy.finish(true);
  }
  struct stat st;
  int r = follow ? ::stat(src.path.c_str(), &st) : ::lstat(src.path.c_str(), &st);
  if (r != 0) return Error::from_errno(errno, "'" + src.path + "'");
  bool src_dir = S_ISDIR(st.st_mode);
  std::string into, name;
  if (what.exists && what.is_dir()) {
    into = dst;
    name = src_dir && names_contents(src.path) ? "." : base_name(src.path);
  } else if (what.exists) {
    if (src_dir)
      return Error(ErrorCode::kInvalidArgument, "cannot copy a directory to a file: '" + dst + "'");
    into = dir_name(dst);
    name = base_name(dst);
  } else {
    if (ends_with_slash(dst) && !src_dir)
      return Error(ErrorCode::kNotFound, "no such directory: '" + dst + "'");
    into = dir_name(dst);
    name = base_name(dst);
  }
  if (name == "/" || name.empty()) name = ".";
  GuestCopy copy(ch, 3);
  VESSEL_TRY(copy.start(protocol::CopyIn{into, flags}));
  std::string top = strip_slashes(src.path);
  Status sent = send_tree(copy, top, name, follow);
  if (!sent.ok() && !copy.ended()) return sent;
  return copy.finish(true);
}

// ---- verbs ----------------------------------------------------------------------

struct CopyFlags {
  bool archive = false, follow = false;
  std::string src, dst;
  std::string output, container;
};

int cp(const CopyFlags& f, const GlobalOptions& g) {
  Endpoint src = parse_endpoint(f.src), dst = parse_endpoint(f.dst);
  if (src.container == dst.container) {
    print_error(src.container ? "cp: copying between containers is not supported"
                              : "cp: one of SRC and DST must be CONTAINER:PATH");
    return kExitFailure;
  }
  if (src.stream && dst.stream) {
    print_error("cp: SRC and DST cannot both be '-'");
    return kExitFailure;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an error value, not a death
  const Endpoint& side = src.container ? src : dst;
  auto t = connect_to(g, side.ref, "cp");
  if (!t.ok()) {
    print_error("cp: " + t.error().to_string());
    return kExitFailure;
  }
  Status s = src.container ? copy_out(*t->ch, src.path, dst, f.follow, f.archive)
                           : copy_in(*t->ch, src, dst.path, f.follow, f.archive);
  if (!s.ok()) {
    print_error("cp: " + s.error().to_string());
    return kExitFailure;
  }
  return kExitOk;
}

int export_container(const CopyFlags& f, const GlobalOptions& g) {
  if (f.output.empty() && ::isatty(STDOUT_FILENO)) {
    print_error("export: refusing to write a tar archive to a terminal; use -o FILE or redirect");
    return kExitFailure;
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto t = connect_to(g, f.container, "export");
  if (!t.ok()) {
    print_error("export: " + t.error().to_string());
    return kExitFailure;
  }
  // Written beside FILE and renamed into place when complete.
  std::string tmp = f.output.empty() ? "" : f.output + ".tmp";
  UniqueFd file;
  if (!tmp.empty()) {
    file.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file) {
      print_error("export: " + Error::from_errno(errno, "create '" + tmp + "'").to_string());
      return kExitFailure;
    }
  }
  GuestCopy copy(*t->ch, 2);
  Status s = copy.start(protocol::CopyOut{"/", ".", protocol::CopyOut::kOneFileSystem});
  if (s.ok()) s = stream_to_fd(copy, file ? file.get() : STDOUT_FILENO);
  if (s.ok() && file && ::fsync(file.get()) != 0)
    s = Error::from_errno(errno, "write '" + tmp + "'");
  if (s.ok() && file && ::rename(tmp.c_str(), f.output.c_str()) != 0)
    s = Error::from_errno(errno, "rename '" + tmp + "'");
  if (!s.ok()) {
    if (file) ::unlink(tmp.c_str());
    print_error("export: " + s.error().to_string());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

Runner add_copy(CLI::App& app, const GlobalOptions& global) {
  auto f = std::make_shared<CopyFlags>();
  auto* cp_cmd = app.add_subcommand("cp", "Copy files between a container and the host");
  cp_cmd->add_flag("-a,--archive", f->archive, "Keep uid/gid from the source");
  cp_cmd->add_flag("-L,--follow-link", f->follow, "Follow a symlink in SRC");
  cp_cmd->add_option("src", f->src, "CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)")
      ->required();
  cp_cmd->add_option("dst", f->dst, "CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)")
      ->required();
  cp_cmd->footer(
      "Usage: vessel cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-\n"
      "       vessel cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH");
  auto* export_cmd = app.add_subcommand("export", "Write a container's filesystem as a tar");
  export_cmd->add_option("-o,--output", f->output, "Write to this file (default: stdout)");
  export_cmd->add_option("container", f->container, "Container")->required();
  return [f, cp_cmd, export_cmd, &global]() -> int {
    if (cp_cmd->parsed()) return cp(*f, global);
    if (export_cmd->parsed()) return export_container(*f, global);
    return -1;
  };
}

}  // namespace vessel::cli
