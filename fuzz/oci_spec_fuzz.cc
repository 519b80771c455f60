// libFuzzer target for the OCI runtime's parsers of config.json, exec
// process files and update's resources (oci::parse_spec_text,
// oci::parse_process, oci::parse_resources), which
// vessel-runtime runs on what containerd, Podman or CRI-O hand it (built
// largely from an image's config).
//
// Beyond "no crash, no sanitizer report" it checks and aborts when one fails:
//   - every failure is kInvalidArgument with a non-empty message;
//   - a parsed spec has a command, an absolute working directory and root,
//     no more than the documented number of items, mounts with absolute
//     targets (bind mounts with absolute sources), and rlimits whose soft
//     limit is not above the hard one;
//   - capability sets name only known capabilities, ambient ones are
//     permitted and inheritable (the guest refuses anything else);
//   - update's resources are -1 or more, and a period at most 1 s.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "oci/spec.h"

namespace vessel::oci {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_failure(const Error& e) {
  check(e.code() == ErrorCode::kInvalidArgument);
  check(!e.message().empty());
}

void check_process(const Process& p) {
  check(!p.args.empty() && !p.args[0].empty() && p.args.size() <= 4096);
  check(!p.cwd.empty() && p.cwd[0] == '/');
  check(p.env.size() <= 4096);
  for (const auto& e : p.env)
    check(e.find('=') != std::string::npos && e[0] != '=');
  check(p.rlimits.size() == p.ulimits.size());
  for (const auto& r : p.rlimits)
    check(r.soft <= r.hard && r.resource < protocol::kRlimitResources);
  const protocol::Capabilities c = process_capabilities(p);
  for (uint64_t set : {c.bounding, c.effective, c.permitted, c.inheritable, c.ambient})
    check((set & ~protocol::kAllCapabilities) == 0);
  check((c.ambient & ~(c.permitted & c.inheritable)) == 0);
}

}  // namespace
}  // namespace vessel::oci

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::oci;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = parse_spec_text(text, "/bundle");
  if (spec.ok()) {
    check_process(spec->process);
    const auto& c = spec->config;
    check(!c.rootfs.empty() && c.rootfs[0] == '/');
    check(c.argv == spec->process.args);
    check(c.mounts.size() <= 4096);
    for (const auto& m : c.mounts) {
      check(!m.target.empty() && m.target[0] == '/');
      if (m.type == vessel::runtime::MountSpec::Type::kBind)
        check(!m.source.empty() && m.source[0] == '/');
    }
    check(c.memory_bytes >= (32u << 20));
    check(c.cpus >= 1 && c.cpus <= 255);
  } else {
    check_failure(spec.error());
  }
  auto process = parse_process(text);
  if (process.ok())
    check_process(*process);
  else
    check_failure(process.error());
  std::vector<std::string> ignored;
  auto resources = parse_resources(text, ignored);
  if (resources.ok()) {
    for (const auto& v : {resources->memory_bytes, resources->cpu_quota_usec,
                          resources->cpu_period_usec, resources->pids})
      check(!v || *v >= -1);
    check(!resources->cpu_period_usec || *resources->cpu_period_usec <= 1000000);
  } else {
    check_failure(resources.error());
  }
  return 0;
}
