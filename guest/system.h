// Small system helpers for vessel-init: errors as values, console logging,
// files, mounts and power-off. vessel-init is PID 1 and is built with
// -fno-exceptions, so nothing here throws: every fallible call returns a
// Status or a Result.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/unique_fd.h"

namespace vessel::guest {

/// The outcome of a fallible step: errnum 0 is success, otherwise the errno
/// (reported to the host as is) and a message naming what failed, e.g.
/// "mount proc on '/proc': Read-only file system".
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(int errnum, std::string message) : errnum_(errnum), message_(std::move(message)) {}

  /// A failure for `errnum` (non-zero): "<what>: <strerror(errnum)>".
  static Status from_errno(int errnum, std::string_view what);
  /// A failure for the current errno.
  static Status from_errno(std::string_view what);

  bool ok() const { return errnum_ == 0; }
  int errnum() const { return errnum_; }
  const std::string& message() const { return message_; }

 private:
  int errnum_ = 0;
  std::string message_;
};

/// Either a T or a failed Status. T must be default-constructible and
/// movable; that keeps this a dozen lines instead of a std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  /// `status` must be a failure.
  Result(Status status) : status_(std::move(status)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return value_; }
  /// Moves the value out.
  T take() { return std::move(value_); }

 private:
  T value_{};
  Status status_;
};

/// Writes "vessel-init: <message>\n" to the console (fd 2) in one write.
/// For errors only: console output is slow under emulation.
void log_error(const char* format, ...) __attribute__((format(printf, 1, 2)));

/// strerror(errnum) with its first letter lowered, for messages in the style
/// the host shows users ("permission denied").
std::string lower_strerror(int errnum);

/// Creates directory `path` with `mode` unless a directory is already there.
/// Fails with ENOTDIR if something else is there.
Status ensure_dir(const std::string& path, mode_t mode);
/// ensure_dir() for `path` and every missing parent.
Status ensure_dirs(const std::string& path, mode_t mode);
/// True if `path` is absolute and canonical and names an existing file
/// through no symlink: resolving it stays where it says.
bool resolves_to_itself(const std::string& path);
/// Replaces the contents of `path` (created with `mode` if missing).
Status write_file(const std::string& path, std::string_view data, mode_t mode);
/// Reads up to `limit` bytes of `path` (sysfs and procfs files).
Result<std::string> read_file(const std::string& path, size_t limit = 4096);
/// Writes all of `data` to `fd`, retrying short writes and EINTR. For
/// blocking fds only.
bool write_all(int fd, const void* data, size_t size);

/// mount(2) whose failure message is "<what>: <strerror>".
Status mount_fs(const char* source, const std::string& target, const char* type,
                unsigned long flags, const char* data, std::string_view what);

/// Milliseconds on CLOCK_MONOTONIC.
int64_t monotonic_ms();
/// Sleeps `ms` milliseconds (signals are blocked, so no EINTR to handle).
void sleep_ms(int ms);

/// Sets CLOCK_REALTIME to the host's `ns` since the epoch, plus what the
/// Setup took on its way (unknown: nothing). A failure is logged.
void set_clock_from_host(uint64_t ns);
/// Mixes `bytes` from the host into the kernel's random pool, crediting
/// them, and reseeds the kernel's generator from it at once (RNDADDENTROPY,
/// RNDRESEEDCRNG). A failure is logged.
void add_host_entropy(std::string_view bytes);
/// Drops what the kernel cached of every virtio disk (BLKFLSBUF on each
/// /dev/vd*): for a VM restored from a template, whose disks are not the
/// ones the template's kernel probed (it read their first sectors).
void drop_disk_caches();

/// Binds the driver to every virtio-mmio transport that has none. A VM
/// restored from a template with shares has them: the template named their
/// transports on its kernel command line while they were empty (the kernel
/// found no device there), and the restored VM has its shares' devices
/// there (VmConfig::shares_late). Before anything mounts a share.
void bind_late_devices();

/// Syncs filesystems and ends the VM. Never returns: PID 1 must not exit,
/// as the kernel panics when it does.
[[noreturn]] void power_off();

/// Step timings of a start (docs/performance.md, "Where the time goes"):
/// mark() notes CLOCK_MONOTONIC (time since the guest kernel started) under
/// a static label, at most 64 marks, nothing else (PID 1's children mark
/// into the same list until they exec); write_marks() prints them in time
/// order, one "vessel-init: mark <ms since boot> <ms since the previous>
/// <label>" line each, when the kernel command line has `vessel.timings`
/// (VESSEL_GUEST_TIMINGS=1 on the host), at the guest's power-off.
void mark(const char* label);
void write_marks(int fd);

}  // namespace vessel::guest
