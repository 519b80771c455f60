#include "images/staging.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/fs.h"

namespace vessel::images::detail {

bool StagedBlobs::has(const image::Digest& d) const {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (staged_.count(d.str())) return true;
  }
  return store_.has(d);
}

std::string StagedBlobs::path(const image::Digest& d) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = staged_.find(d.str());
  return it != staged_.end() ? it->second.path() : store_.blob_path(d);
}

void StagedBlobs::add(const image::Digest& d, content::Ingest ingest) {
  std::lock_guard<std::mutex> g(mu_);
  staged_.emplace(d.str(), std::move(ingest));  // a duplicate is destroyed: removed
}

Status StagedBlobs::add_bytes(std::string_view bytes, const image::Digest& d) {
  if (has(d)) return ok_status();
  VESSEL_ASSIGN_OR_RETURN(content::Ingest in, store_.begin());
  VESSEL_TRY(in.write(bytes.data(), bytes.size()));
  VESSEL_TRY(store_.verify(in, d, bytes.size()));
  add(d, std::move(in));
  return ok_status();
}

Result<std::string> StagedBlobs::read(const image::Digest& d, size_t limit) const {
  std::string p = path(d);
  auto r = sys::read_file(p, limit);
  if (!r.ok()) return r.error().wrap("read blob " + d.str());
  if (image::Digest::of(*r) != d)
    return Error(ErrorCode::kProtocol, "blob " + d.str() + " is corrupt");
  return r;
}

Status StagedBlobs::commit_all() {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& [name, in] : staged_) {
    auto d = image::Digest::parse(name);
    if (!d.ok()) return d.error();
    VESSEL_TRY(store_.commit(in, *d));
  }
  staged_.clear();
  return ok_status();
}

Result<UniqueFd> open_beneath(int dir_fd, const std::string& rel) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  while (true) {
    long fd = ::syscall(SYS_openat2, dir_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EAGAIN || errno == EINTR) continue;  // openat2(2): a rename raced; retry
    if (errno == ELOOP || errno == EXDEV)
      return Error(ErrorCode::kInvalidArgument, "'" + rel + "' is a symlink or leaves the archive");
    return Error::from_errno(errno, "open '" + rel + "'");
  }
}

Result<content::Ingest> copy_into_ingest(content::Store& store, int dir_fd, const std::string& rel,
                                         uint64_t limit) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_beneath(dir_fd, rel));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat '" + rel + "'");
  if (!S_ISREG(st.st_mode))
    return Error(ErrorCode::kInvalidArgument, "'" + rel + "' is not a file");
  VESSEL_ASSIGN_OR_RETURN(content::Ingest in, store.begin());
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(errno, "read '" + rel + "'");
    if (n == 0) break;
    if (in.bytes() + static_cast<uint64_t>(n) > limit)
      return Error(ErrorCode::kProtocol,
                   "'" + rel + "': larger than " + std::to_string(limit) + " bytes");
    VESSEL_TRY(in.write(buf, static_cast<size_t>(n)));
  }
  return in;
}

}  // namespace vessel::images::detail
