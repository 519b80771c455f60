// A Debian docker-registry (distribution 2.8) on 127.0.0.1 for the image
// tests: plain HTTP, filesystem storage, its access log kept so that a test
// can count what a client fetched.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "sys/process.h"

namespace vessel::test {

/// Where the registry binary is expected (Debian's docker-registry package).
inline constexpr const char* kDockerRegistryBin = "/usr/bin/docker-registry";

/// The HTTP status of `GET http://127.0.0.1:<port><path>`, or 0 if no answer
/// came within two seconds.
int http_get_status(int port, const std::string& path);

/// A docker-registry process listening on 127.0.0.1 at a port that was free.
/// Owns the process: destruction (or `stop()`) kills and reaps it.
class LocalRegistry {
 public:
  /// Writes a config under `dir` (storage in <dir>/data, the log in
  /// <dir>/registry.log), starts the registry and waits until /v2/ answers
  /// 200. Fails with the registry's log if it exits or does not answer.
  static Result<LocalRegistry> start(const std::string& dir);

  LocalRegistry(LocalRegistry&&) = default;
  LocalRegistry& operator=(LocalRegistry&&) = default;
  ~LocalRegistry() { stop(); }

  /// Kills (SIGKILL) and reaps the registry; idempotent.
  void stop();

  /// "127.0.0.1:<port>".
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  /// The access log and any errors, as written so far.
  std::string log() const;
  /// How many requests the access log shows whose request line starts with
  /// `request_prefix` (e.g. "GET /v2/test/busybox/blobs/").
  size_t count_requests(std::string_view request_prefix) const;

 private:
  LocalRegistry() = default;

  int port_ = 0;
  std::string log_path_;
  std::optional<sys::Process> process_;
};

}  // namespace vessel::test
