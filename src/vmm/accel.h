// Choosing between hardware virtualization (KVM) and software emulation (TCG).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace vessel::vmm {

enum class Accel { kKvm, kTcg };

const char* accel_name(Accel a);
/// Parses "kvm", "tcg" or "auto" (nullopt for auto); error names the value.
Result<std::optional<Accel>> parse_accel(std::string_view s);

struct AccelChoice {
  Accel accel = Accel::kTcg;
  std::string reason;  // why, for `system status` and the TCG notice
};

/// The facts the choice depends on, separated from reading them so the rule
/// can be unit-tested.
struct HostFacts {
  bool kvm_device_usable = false;  // /dev/kvm opens read-write
  std::string cpuinfo;             // /proc/cpuinfo
  std::string machine;             // uname -m
};

HostFacts read_host_facts();

/// The host CPU's clock in kHz from /proc/cpuinfo's first "cpu MHz" line,
/// or 0 if there is none (arm64) or it does not parse.
uint64_t cpu_khz(const std::string& cpuinfo);

/// KVM when /dev/kvm opens read-write and the CPU advertises hardware
/// virtualization (vmx/svm; always on arm64), otherwise TCG. A paravirtual
/// /dev/kvm without vmx/svm cannot boot an ordinary guest (it hangs in early
/// boot), hence the CPU flag check.
AccelChoice choose_accel(const HostFacts& facts);

/// `requested` (from --accel or VESSEL_ACCEL) wins; kvm requested where it
/// cannot work is an error naming why.
Result<AccelChoice> resolve_accel(std::optional<Accel> requested, const HostFacts& facts);

}  // namespace vessel::vmm
