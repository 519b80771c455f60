#include "guest/copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "guest/tar.h"

namespace vessel::guest {
namespace {

/// "no such file or directory: /x", as the host shows it.
Status path_error(int errnum, const std::string& path) {
  return Status(errnum, lower_strerror(errnum) + ": " + path);
}

void say(const std::string& message) {
  std::string line = message + "\n";
  write_all(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

Status CopyOutTask::prepare() {
  // The child is in the container's mount namespace: "/" is its root, and
  // symlinks in the path resolve inside it.
  bool follow = request_.flags & protocol::CopyOut::kFollowLink;
  int r = follow ? stat(request_.path.c_str(), &top_) : lstat(request_.path.c_str(), &top_);
  if (r < 0) return path_error(errno, request_.path);
  // "dir/." and "dir/" name a directory's contents, so they must be one.
  bool wants_dir = request_.path.ends_with("/.") || request_.path.ends_with("/");
  if (wants_dir && !S_ISDIR(top_.st_mode) && request_.path != "/") {
    return path_error(ENOTDIR, request_.path);
  }
  return {};
}

int CopyOutTask::run() {
  tar::WriteOptions options;
  options.name = request_.name;
  options.one_file_system = request_.flags & protocol::CopyOut::kOneFileSystem;
  options.top_only = request_.flags & protocol::CopyOut::kTopOnly;
  bool follow = request_.flags & protocol::CopyOut::kFollowLink;
  Result<uint64_t> problems =
      tar::write_archive(request_.path, top_, follow, options, STDOUT_FILENO, STDERR_FILENO);
  if (!problems.ok()) {
    say(problems.status().message());
    return 1;
  }
  if (problems.value() > 0) {
    say(std::to_string(problems.value()) + " file(s) of '" + request_.path +
        "' could not be copied");
    return 1;
  }
  return 0;
}

Status CopyInTask::prepare() {
  dest_.reset(open(request_.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dest_) return path_error(errno, request_.path);
  return {};
}

int CopyInTask::run() {
  tar::ExtractOptions options;
  options.keep_owner = request_.flags & protocol::CopyIn::kKeepOwner;
  options.no_overwrite_dir_non_dir = request_.flags & protocol::CopyIn::kNoOverwriteDirNonDir;
  Status s = tar::extract_archive(STDIN_FILENO, dest_.get(), options);
  if (!s.ok()) {
    say("extract into '" + request_.path + "': " + s.message());
    return 1;
  }
  return 0;
}

}  // namespace vessel::guest
