// Run inside a machine (systemd as PID 1, cgroup v2) by machine_test: the
// host side's HostCgroup on a host whose cgroups systemd manages (issue
// 13). It enters the cgroup NAME as a monitor does, reports what systemd
// made and leaves. Output: key=value lines.
//
//   host_cgroup_probe NAME
#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/strings.h"
#include "sys/fs.h"
#include "sys/host_cgroup.h"

using namespace vessel;

namespace {

std::string first_line(const std::string& file) {
  auto text = sys::read_file(file, 4096);
  return text.ok() ? std::string(trim(*text)) : "(" + text.error().to_string() + ")";
}

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buf[512];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, f)) > 0)
      out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: host_cgroup_probe NAME\n");
    return 2;
  }
  std::string name = argv[1];
  sys::HostLimits limits;
  limits.memory_max = 300u << 20;
  limits.pids_max = 100;
  limits.cpu_weight = 50;
  auto cg = sys::HostCgroup::enter(name, limits);
  if (!cg.ok()) {
    std::printf("error=%s\n", cg.error().to_string().c_str());
    return 1;
  }
  std::string dir = cg->dirs().empty() ? "" : cg->dirs().front();
  std::printf("unit=%s\n", cg->systemd_unit().c_str());
  std::printf("dir=%s\n", dir.c_str());
  std::printf("memory.max=%s\n", first_line(dir + "/memory.max").c_str());
  std::printf("pids.max=%s\n", first_line(dir + "/pids.max").c_str());
  std::printf("cpu.weight=%s\n", first_line(dir + "/cpu.weight").c_str());
  // Delegated: a child cgroup of ours may be made below it.
  bool made = sys::make_dirs(dir + "/probe-child", 0755).ok();
  std::printf("child=%d\n", made ? 1 : 0);
  if (made) ::rmdir((dir + "/probe-child").c_str());
  std::string show = command_output("systemctl show -p Slice -p Delegate -p ActiveState vessel-" +
                                    name + ".scope");
  for (std::string_view line : split(show, '\n'))
    if (!line.empty()) std::printf("show.%s\n", std::string(line).c_str());
  std::fflush(stdout);

  // The agent runs this in a cgroup namespace of its own, so where it came
  // from is unknown: it stays in the scope, which systemd collects once
  // this process has exited (the test checks).
  auto left = cg->leave();
  std::printf("leave=%s\n", left.ok() ? "ok" : left.error().to_string().c_str());
  return 0;
}
