// /containers/{id}/archive (docker cp: HEAD stats a path, GET reads a tar of
// it, PUT extracts a tar into a directory) and /containers/{id}/export: tar
// streams that vessel-init makes and extracts inside the guest, the same
// CopyOut and CopyIn as `vessel cp` and `vessel export` (containers/copy.h).
// The guest does the work: a stopped container's VM boots for the copy
// (Containers::open_files).
#include <sys/stat.h>

#include "api/context.h"
#include "api/handlers.h"
#include "containers/copy.h"
#include "registry/auth.h"
#include "runtime/config.h"
#include "runtime/log_file.h"

namespace vessel::api {

namespace {

using containers::GuestCopy;
using containers::PathStat;
using nlohmann::json;

// Each request has its own monitor connection: a stat, then the copy.
constexpr uint32_t kStatStream = 2;
constexpr uint32_t kCopyStream = 3;

// Go's os.FileMode of an st_mode: Docker's stat header carries it, and its
// clients test ModeDir and ModeSymlink in it.
uint32_t go_file_mode(uint32_t m) {
  uint32_t out = m & 0777;
  switch (m & S_IFMT) {
    case S_IFDIR:
      out |= 1u << 31;
      break;
    case S_IFLNK:
      out |= 1u << 27;
      break;
    case S_IFBLK:
      out |= 1u << 26;
      break;
    case S_IFCHR:
      out |= (1u << 26) | (1u << 21);
      break;
    case S_IFIFO:
      out |= 1u << 25;
      break;
    case S_IFSOCK:
      out |= 1u << 24;
      break;
    default:
      break;
  }
  if (m & S_ISUID) out |= 1u << 23;
  if (m & S_ISGID) out |= 1u << 22;
  if (m & S_ISVTX) out |= 1u << 20;
  return out;
}

// X-Docker-Container-Path-Stat: base64 of {name, size, mode, mtime,
// linkTarget}.
std::string stat_header(const PathStat& st) {
  json j{{"name", st.name},
         {"size", st.size},
         {"mode", go_file_mode(st.mode)},
         {"mtime", runtime::format_timestamp(st.mtime * 1'000'000'000)},
         {"linkTarget", st.link_target}};
  return registry::base64_encode(dump_json(j));
}

// The container of {id} and a connection to its guest, which makes and
// reads the archives.
struct Target {
  FoundContainer f;
  std::optional<monitor::Channel> ch;
};
Result<Target> connect(Context& ctx, const Request& req, const std::string& what) {
  VESSEL_ASSIGN_OR_RETURN(FoundContainer f, find_container(ctx, req));
  // A frozen guest would never answer.
  if (f.cs->paused(f.r))
    return Error(ErrorCode::kFailedPrecondition,
                 "container " + f.r.name + " is paused: unpause it before " + what);
  // A stopped container's files: its VM boots for the copy.
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, f.cs->open_files(f.r));
  Target t{std::move(f), std::nullopt};
  t.ch.emplace(std::move(ch));
  return t;
}

Result<std::string> path_arg(const Request& req) {
  std::string path = req.arg("path");
  if (path.empty())
    return Error(ErrorCode::kInvalidArgument, "bad parameter: path cannot be empty");
  if (path.size() > protocol::kMaxCopyPath || path.find('\0') != std::string::npos)
    return Error(ErrorCode::kInvalidArgument, "bad parameter: invalid path");
  // Container paths are relative to its root, as Docker's.
  if (path[0] != '/') path = "/" + path;
  return path;
}

// Writes the archive of a started CopyOut to the client as it comes. A
// failure after the headers can only be told by cutting the stream; a
// client that goes away ends the copy with the monitor connection.
void forward(GuestCopy& copy, Exchange& ex) {
  std::vector<uint8_t> chunk;
  while (true) {
    auto more = copy.next(chunk);
    if (!more.ok() || !*more) return;
    if (!ex.write(std::string_view(reinterpret_cast<const char*>(chunk.data()), chunk.size())).ok())
      return;
  }
}

Reply not_found(const std::string& path, const FoundContainer& f) {
  return error_reply(404, "Could not find the file " + path + " in container " + f.r.name);
}

// HEAD (a stat in the header) and GET (the stat and a tar of the path,
// its top entry named by the path's last component; "dir/." names the
// contents of dir only).
Reply get_archive(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(std::string path, path_arg(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(Target t, connect(ctx, req, "docker cp"));
  VESSEL_ASSIGN_OR_RETURN_REPLY(PathStat st,
                                containers::stat_path(*t.ch, kStatStream, path, false));
  if (!st.exists) return not_found(path, t.f);
  std::string header = stat_header(st);
  if (req.method == "HEAD") {
    Reply r;
    r.headers["X-Docker-Container-Path-Stat"] = header;
    return r;
  }
  bool contents = path == "/" || path.ends_with("/.");
  GuestCopy copy(*t.ch, kCopyStream);
  if (auto s = copy.start(protocol::CopyOut{path, contents ? "." : "", 0}); !s.ok())
    return error_reply(s.error());
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/x-tar", {{"X-Docker-Container-Path-Stat", header}}).ok())
    return taken;
  forward(copy, ex);
  return taken;
}

// PUT: the body is an uncompressed tar, extracted under `path`, an
// existing directory. copyUIDGID keeps the archive's owners (else root's).
Reply put_archive(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(std::string path, path_arg(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(Target t, connect(ctx, req, "docker cp"));
  auto cfg = runtime::config_from_json(t.f.r.config);
  if (!cfg.ok()) return error_reply(cfg.error());
  if (cfg->read_only) {
    bool in_mount = false;
    for (const auto& m : cfg->mounts)
      in_mount =
          in_mount || (!m.read_only && (path == m.target || path.starts_with(m.target + "/")));
    if (!in_mount) return error_reply(403, "container rootfs is marked read-only");
  }
  VESSEL_ASSIGN_OR_RETURN_REPLY(PathStat st, containers::stat_path(*t.ch, kStatStream, path, true));
  if (!st.exists) return not_found(path, t.f);
  if (!st.is_dir()) return error_reply(400, "extraction point is not a directory");
  GuestCopy copy(*t.ch, kCopyStream);
  uint32_t flags = req.flag("copyUIDGID") ? protocol::CopyIn::kKeepOwner : 0u;
  // docker cp always asks for it.
  if (req.flag("noOverwriteDirNonDir")) flags |= protocol::CopyIn::kNoOverwriteDirNonDir;
  if (auto s = copy.start(protocol::CopyIn{path, flags}); !s.ok()) return error_reply(s.error());
  std::string chunk;
  while (!copy.ended()) {
    auto more = ex.read_body(chunk);
    if (!more.ok()) {
      (void)copy.finish(true);  // what came is extracted; the guest says the tar was cut
      return error_reply(more.error());
    }
    if (!*more) break;
    if (!copy.send(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()).ok()) break;
  }
  if (auto s = copy.finish(true); !s.ok())
    return error_reply(400, "extract into '" + path + "': " + s.error().message());
  return Reply{200, "application/json", "", {}, false};
}

// The container's whole filesystem as a tar (its root's mounts left out,
// as Docker's export leaves volumes out).
Reply export_container(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Target t, connect(ctx, req, "docker export"));
  GuestCopy copy(*t.ch, kCopyStream);
  if (auto s = copy.start(protocol::CopyOut{"/", ".", protocol::CopyOut::kOneFileSystem}); !s.ok())
    return error_reply(s.error());
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/x-tar").ok()) return taken;
  forward(copy, ex);
  return taken;
}

}  // namespace

void add_archive_routes(Router& r) {
  r.add("GET", "/containers/{id}/archive", get_archive);
  r.add("HEAD", "/containers/{id}/archive", get_archive);
  r.add("PUT", "/containers/{id}/archive", put_archive, /*streams_body=*/true);
  r.add("GET", "/containers/{id}/export", export_container);
}

}  // namespace vessel::api
