// A minimal QMP (QEMU Machine Protocol) client over a connected socket.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::vmm {

class QmpClient {
 public:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}

  /// Runs `command` (with `arguments` if not null) and returns its "return"
  /// value. Reads the greeting and negotiates capabilities on first use.
  /// QEMU's replies are checked for shape: it is a peer, not trusted code.
  Result<nlohmann::json> execute(const std::string& command,
                                 const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// execute() with `fd` passed along (SCM_RIGHTS), as `getfd` and
  /// `add-fd` take it.
  Result<nlohmann::json> execute_with_fd(
      const std::string& command, const nlohmann::json& arguments, int fd,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  Result<nlohmann::json> read_message(std::chrono::steady_clock::time_point deadline);
  Status handshake(std::chrono::steady_clock::time_point deadline);
  Result<nlohmann::json> run(const std::string& command, const nlohmann::json& arguments, int fd,
                             std::chrono::milliseconds timeout);

  UniqueFd fd_;
  std::string buffer_;
  bool ready_ = false;
};

}  // namespace vessel::vmm
