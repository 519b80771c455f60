// CopyOut and CopyIn: tar archives of container paths, made and extracted by
// a child of vessel-init inside the container (see Task in process.h).
#pragma once

#include <sys/stat.h>

#include "guest/process.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Archives CopyOut.path to stdout. prepare() fails with the errno of
/// stat(2) ("no such file or directory: /x"); run() exits 1, the reasons on
/// stderr, if a file could not be archived.
class CopyOutTask : public Task {
 public:
  explicit CopyOutTask(const protocol::CopyOut& request) : request_(request) {}
  bool reads_stdin() const override { return false; }
  Status prepare() override;
  int run() override;

 private:
  protocol::CopyOut request_;
  struct stat top_ {};
};

/// Extracts the archive read from stdin under CopyIn.path. prepare() fails
/// unless that is an existing directory; run() exits 1, the reason on
/// stderr, when the archive is bad or unsafe.
class CopyInTask : public Task {
 public:
  explicit CopyInTask(const protocol::CopyIn& request) : request_(request) {}
  bool reads_stdin() const override { return true; }
  Status prepare() override;
  int run() override;

 private:
  protocol::CopyIn request_;
  UniqueFd dest_;
};

}  // namespace vessel::guest
