#include "content/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <unistd.h>
#include <ctime>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "sys/fs.h"

namespace vessel::content {

using image::Digest;

Ingest::Ingest(Ingest&& other) noexcept
    : fd_(std::move(other.fd_)),
      path_(std::exchange(other.path_, {})),
      hasher_(std::move(other.hasher_)),
      digest_(std::move(other.digest_)),
      size_(other.size_),
      done_(other.done_) {}

Ingest& Ingest::operator=(Ingest&& other) noexcept {
  if (this != &other) {
    discard();
    fd_ = std::move(other.fd_);
    path_ = std::exchange(other.path_, {});
    hasher_ = std::move(other.hasher_);
    digest_ = std::move(other.digest_);
    size_ = other.size_;
    done_ = other.done_;
  }
  return *this;
}

Ingest::~Ingest() {
  discard();
}

const Digest& Ingest::content_digest() {
  if (!digest_) {
    size_ = hasher_.bytes();
    digest_ = hasher_.finish();
  }
  return *digest_;
}

void Ingest::discard() {
  if (!done_ && !path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

Status Ingest::write(const void* data, size_t size) {
  if (digest_) return Error(ErrorCode::kInternal, "write to a verified ingest");
  VESSEL_TRY(sys::write_all(fd_.get(), data, size));
  hasher_.update(data, size);
  return ok_status();
}

Result<Store> Store::open(const std::string& root) {
  VESSEL_TRY(sys::make_dirs(root + "/blobs/sha256", 0700));
  VESSEL_TRY(sys::make_dirs(root + "/ingest", 0700));
  Store s(root);
  s.remove_abandoned_ingests();
  return s;
}

std::string Store::blob_path(const Digest& d) const {
  return root_ + "/blobs/" + d.algorithm() + "/" + d.hex();
}

bool Store::has(const Digest& d) const {
  return ::access(blob_path(d).c_str(), F_OK) == 0;
}

Result<uint64_t> Store::size(const Digest& d) const {
  struct stat st;
  if (::stat(blob_path(d).c_str(), &st) != 0) return Error::from_errno(errno, "blob " + d.str());
  return static_cast<uint64_t>(st.st_size);
}

Result<Ingest> Store::begin() {
  // Made under a name the sweep of abandoned ingests skips, locked, then
  // renamed: another process must never see an ingest unlocked (it would
  // take it for abandoned and delete it under us).
  std::string templ = root_ + "/ingest/.new-XXXXXX";
  int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, "create file in '" + root_ + "/ingest'");
  UniqueFd owned(fd);
  // Held until the file is committed or this process dies: a free lock marks
  // an abandoned ingest.
  ::flock(fd, LOCK_EX);
  // The pid keeps the name unique: the suffix alone is free again for other
  // processes once the temporary name is gone.
  std::string path =
      root_ + "/ingest/blob-" + std::to_string(::getpid()) + "-" + templ.substr(templ.size() - 6);
  if (::rename(templ.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(templ.c_str());
    return Error::from_errno(e, "create file in '" + root_ + "/ingest'");
  }
  return Ingest(std::move(owned), path);
}

// Size first: a short blob's digest mismatch says less than its size does.
static Status check_blob(const Digest& actual, uint64_t size, const Digest& expected,
                         std::optional<uint64_t> expected_size) {
  if (expected_size && size != *expected_size) {
    return Error(ErrorCode::kProtocol, "blob " + expected.str() + ": size mismatch (expected " +
                                           std::to_string(*expected_size) + " bytes, got " +
                                           std::to_string(size) + ")");
  }
  if (actual != expected) {
    return Error(ErrorCode::kProtocol, "blob " + expected.str() + ": digest mismatch (expected " +
                                           expected.str() + ", got " + actual.str() + ")");
  }
  return ok_status();
}

Status Store::publish(Ingest& ingest, const Digest& actual, const Digest& expected,
                      std::optional<uint64_t> expected_size) {
  VESSEL_TRY(check_blob(actual, ingest.bytes(), expected, expected_size));
  if (::fsync(ingest.fd_.get()) != 0)
    return Error::from_errno(errno, "fsync '" + ingest.path_ + "'");
  ::fchmod(ingest.fd_.get(), 0444);
  std::string dest = blob_path(expected);
  if (::rename(ingest.path_.c_str(), dest.c_str()) != 0)
    return Error::from_errno(errno, "publish blob " + expected.str());
  ingest.done_ = true;
  ingest.fd_.reset();
  // Make the rename durable before anyone records that the blob exists.
  if (int dir = ::open((root_ + "/blobs/sha256").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return ok_status();
}

Status Store::commit(Ingest& ingest, const Digest& expected,
                     std::optional<uint64_t> expected_size) {
  Digest actual = ingest.content_digest();
  return publish(ingest, actual, expected, expected_size);
}

Status Store::verify(Ingest& ingest, const Digest& expected,
                     std::optional<uint64_t> expected_size) {
  return check_blob(ingest.content_digest(), ingest.bytes(), expected, expected_size);
}

Status Store::adopt_verified(Ingest& ingest, const Digest& digest, uint64_t size) {
  struct stat st;
  if (::stat(ingest.path_.c_str(), &st) != 0)
    return Error::from_errno(errno, "stat '" + ingest.path_ + "'");
  if (static_cast<uint64_t>(st.st_size) != size)
    return Error(ErrorCode::kProtocol, "blob " + digest.str() + ": size mismatch (expected " +
                                           std::to_string(size) + " bytes, got " +
                                           std::to_string(st.st_size) + ")");
  ingest.digest_ = digest;
  ingest.size_ = size;
  return ok_status();
}

Status Store::commit_file(Ingest& ingest, const Digest& expected,
                          std::optional<uint64_t> expected_size) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(ingest.path_, O_RDONLY));
  image::Sha256 h;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(errno, "read '" + ingest.path_ + "'");
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  ingest.hasher_ = std::move(h);
  ingest.digest_.reset();
  return commit(ingest, expected, expected_size);
}

Result<Digest> Store::put(std::string_view bytes) {
  Digest d = Digest::of(bytes);
  if (has(d)) return d;
  VESSEL_ASSIGN_OR_RETURN(Ingest in, begin());
  VESSEL_TRY(in.write(bytes.data(), bytes.size()));
  VESSEL_TRY(commit(in, d, bytes.size()));
  return d;
}

Result<std::string> Store::read(const Digest& d, size_t limit) const {
  auto r = sys::read_file(blob_path(d), limit);
  if (!r.ok()) return r.error().wrap("read blob " + d.str());
  // Blobs are trusted once committed, but a disk can rot: a cheap check.
  if (Digest::of(*r) != d) return Error(ErrorCode::kProtocol, "blob " + d.str() + " is corrupt");
  return r;
}

Status Store::remove(const Digest& d) {
  if (::unlink(blob_path(d).c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove blob " + d.str());
  return ok_status();
}

Result<std::vector<Digest>> Store::list() const {
  std::vector<Digest> out;
  std::string dir = root_ + "/blobs/sha256";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error::from_errno(errno, "open '" + dir + "'");
  while (dirent* e = ::readdir(d)) {
    auto digest = Digest::parse(std::string("sha256:") + e->d_name);
    if (digest.ok()) out.push_back(*digest);
  }
  ::closedir(d);
  return out;
}

void Store::remove_abandoned_ingests() {
  std::string dir = root_ + "/ingest";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    if (name.rfind(".new-", 0) == 0) {
      // Between mkostemp and rename: only one a crash left behind is old.
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime > 60)
        ::unlink(path.c_str());
      continue;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
    ::close(fd);
  }
  ::closedir(d);
}

}  // namespace vessel::content
