#include "oci/spec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vessel::oci {
namespace {

using Json = nlohmann::json;

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(VESSEL_OCI_TESTDATA) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has(const std::vector<std::string>& v, const std::string& prefix) {
  return std::any_of(v.begin(), v.end(),
                     [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

// The message of the error parsing `spec` (as JSON) gives, or "" if it parses.
std::string error_of(const Json& spec) {
  auto r = parse_spec_text(spec.dump(), "/bundle");
  return r.ok() ? "" : r.error().to_string();
}

Json minimal() {
  return Json::parse(R"({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
    "process": {"args": ["true"], "cwd": "/"}})");
}

TEST(Spec, RuncDefault) {
  // What `runc spec` (runc 1.1.5) writes.
  auto s = parse_spec_text(testdata("runc_spec.json"), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->config.rootfs, "/b/rootfs");
  EXPECT_TRUE(s->config.read_only);
  EXPECT_EQ(s->config.argv, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s->config.tty);
  EXPECT_EQ(s->config.hostname, "runc");
  EXPECT_EQ(s->config.workdir, "/");
  EXPECT_EQ(s->config.ulimits, std::vector<std::string>{"nofile=1024:1024"});
  ASSERT_EQ(s->process.rlimits.size(), 1u);
  EXPECT_EQ(s->process.rlimits[0].resource, 7u);  // RLIMIT_NOFILE
  // proc, /dev, devpts, shm, mqueue, sysfs and cgroup are the guest's own.
  EXPECT_TRUE(s->config.mounts.empty());
  EXPECT_EQ(s->netns_path, "");
  EXPECT_EQ(s->config.network_mode, "none");
  // AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10) in bounding,
  // effective and permitted; ambient lists them too but, with no
  // inheritable set, runc does not raise them, and neither do we (logged).
  const uint64_t three = (1ull << 29) | (1ull << 5) | (1ull << 10);
  ASSERT_TRUE(s->config.capabilities.has_value());
  EXPECT_EQ(s->config.capabilities->bounding, three);
  EXPECT_EQ(s->config.capabilities->effective, three);
  EXPECT_EQ(s->config.capabilities->permitted, three);
  EXPECT_EQ(s->config.capabilities->inheritable, 0u);
  EXPECT_EQ(s->config.capabilities->ambient, 0u);
  EXPECT_TRUE(has(s->ignored,
                  "process.capabilities.ambient: CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE "
                  "not both permitted and inheritable"));
  EXPECT_TRUE(s->config.no_new_privileges);
  EXPECT_FALSE(has(s->ignored, "process.noNewPrivileges"));
  EXPECT_TRUE(has(s->ignored, "linux.maskedPaths"));
}

TEST(Spec, ContainerdRun) {
  // The shape of what `ctr run` (containerd 1.6) writes, with limits and a
  // bind mount.
  auto s = parse_spec_text(testdata("containerd_spec.json"), "/run/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const auto& c = s->config;
  EXPECT_EQ(c.rootfs, "/run/b/rootfs");
  EXPECT_FALSE(c.read_only);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"sh", "-c", "exit 3"}));
  EXPECT_EQ(c.groups, std::vector<uint32_t>{10});
  EXPECT_EQ(c.memory_bytes, 256ull << 20);
  EXPECT_EQ(c.cpu_millis, 1500u);
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.pids_limit, 100u);
  ASSERT_EQ(c.mounts.size(), 2u);
  EXPECT_EQ(c.mounts[0].type, runtime::MountSpec::Type::kTmpfs);
  EXPECT_EQ(c.mounts[0].target, "/run");
  EXPECT_EQ(c.mounts[0].options, "mode=755,size=65536k");
  EXPECT_EQ(c.mounts[1].type, runtime::MountSpec::Type::kBind);
  EXPECT_EQ(c.mounts[1].source, "/srv/data");
  EXPECT_EQ(c.mounts[1].target, "/data");
  EXPECT_TRUE(c.mounts[1].read_only);
  EXPECT_EQ(s->annotations.at("io.containerd.image.name"), "docker.io/vessel/busybox:latest");
  EXPECT_EQ(c.labels.at("io.containerd.image.name"), "docker.io/vessel/busybox:latest");
  EXPECT_TRUE(has(s->ignored, "linux.cgroupsPath"));
  EXPECT_TRUE(has(s->ignored, "linux.resources.devices"));
  ASSERT_TRUE(c.capabilities.has_value());
  EXPECT_EQ(c.capabilities->bounding, (1ull << 0) | (1ull << 5) | (1ull << 10));
  EXPECT_EQ(c.capabilities->inheritable, 0u);
  EXPECT_TRUE(c.no_new_privileges);
}

TEST(Spec, Capabilities) {
  Json j = minimal();
  // No capabilities: runc leaves root's alone.
  auto s = parse_spec_text(j.dump(), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_TRUE(s->config.capabilities.has_value());
  EXPECT_EQ(s->config.capabilities->bounding, protocol::kAllCapabilities);
  EXPECT_EQ(s->config.capabilities->effective, protocol::kAllCapabilities);
  EXPECT_FALSE(s->config.no_new_privileges);
  // Ambient within permitted and inheritable is kept; a missing set is empty.
  j["process"]["capabilities"] = {{"bounding", {"CAP_NET_ADMIN", "CAP_BPF"}},
                                  {"permitted", {"CAP_NET_ADMIN"}},
                                  {"inheritable", {"CAP_NET_ADMIN"}},
                                  {"ambient", {"CAP_NET_ADMIN"}}};
  j["process"]["noNewPrivileges"] = true;
  s = parse_spec_text(j.dump(), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->config.capabilities->bounding, (1ull << 12) | (1ull << 39));
  EXPECT_EQ(s->config.capabilities->effective, 0u);
  EXPECT_EQ(s->config.capabilities->permitted, 1ull << 12);
  EXPECT_EQ(s->config.capabilities->ambient, 1ull << 12);
  EXPECT_TRUE(s->config.no_new_privileges);
  EXPECT_FALSE(has(s->ignored, "process.capabilities"));
  // An exec process file maps the same way.
  auto p = parse_process(j["process"].dump());
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(process_capabilities(*p).ambient, 1ull << 12);
  EXPECT_TRUE(p->no_new_privileges);
}

TEST(Spec, NetworkNamespacePath) {
  Json j = minimal();
  j["linux"]["namespaces"] =
      Json::parse(R"([{"type": "network", "path": "/var/run/netns/cni-1"}])");
  auto s = parse_spec_text(j.dump(), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->netns_path, "/var/run/netns/cni-1");
}

TEST(Spec, AbsoluteRootAndUser) {
  Json j = minimal();
  j["root"]["path"] = "/var/lib/x/rootfs";
  j["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"umask", 18}};
  j["process"]["env"] = {"A=1", "B="};
  j["process"]["terminal"] = false;
  auto s = parse_spec_text(j.dump(), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->config.rootfs, "/var/lib/x/rootfs");
  EXPECT_EQ(s->config.uid, 1000u);
  EXPECT_EQ(s->config.gid, 1001u);
  EXPECT_EQ(s->config.env, (std::vector<std::string>{"A=1", "B="}));
  EXPECT_FALSE(s->config.tty);
}

TEST(Spec, UpdateResources) {
  // What Podman 4.3 writes for `podman update --memory 100m --cpu-quota
  // 50000 --cpu-period 100000` (the shape of runtime-spec LinuxResources).
  std::vector<std::string> ignored;
  auto r = parse_resources(R"({"memory": {"limit": 104857600, "swap": 209715200},
      "cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": -1},
      "devices": []})",
                           ignored);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->memory_bytes, 104857600);
  EXPECT_EQ(r->cpu_quota_usec, 50000);
  EXPECT_EQ(r->cpu_period_usec, 100000);
  EXPECT_EQ(r->pids, -1);
  EXPECT_TRUE(has(ignored, "resources.memory.swap"));
  EXPECT_TRUE(has(ignored, "resources.cpu.shares"));
  // Only what is given.
  r = parse_resources(R"({"pids": {"limit": 50}})", ignored);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->memory_bytes.has_value());
  EXPECT_FALSE(r->cpu_quota_usec.has_value());
  EXPECT_EQ(r->pids, 50);
  auto bad = parse_resources(R"({"cpu": {"period": 5000000}})", ignored);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().to_string().find("resources.cpu.period"), std::string::npos);
  EXPECT_FALSE(parse_resources("[]", ignored).ok());
  EXPECT_FALSE(
      parse_resources(R"({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})", ignored).ok());
}

TEST(Spec, ErrorsNameTheField) {
  {
    Json j = minimal();
    j["process"]["capabilities"] = {{"effective", {"CAP_CHOWN", "CAP_FLY"}}};
    EXPECT_EQ(error_of(j), "process.capabilities.effective[1]: unknown capability 'CAP_FLY'");
    j["process"]["capabilities"] = {{"bounding", "CAP_CHOWN"}};
    EXPECT_NE(error_of(j).find("process.capabilities.bounding"), std::string::npos);
    j["process"]["capabilities"] = {{"bounding", {"chown"}}};
    EXPECT_NE(error_of(j).find("unknown capability 'chown'"), std::string::npos);
  }
  EXPECT_EQ(error_of(Json::array()), "config.json: not a JSON object");
  {
    auto r = parse_spec_text("{\"ociVersion\": ", "/b");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().to_string(), "config.json: not valid JSON");
  }
  Json j = minimal();
  j.erase("ociVersion");
  EXPECT_EQ(error_of(j), "ociVersion: missing");
  j = minimal();
  j["ociVersion"] = "2.0.0";
  EXPECT_EQ(error_of(j), "ociVersion: '2.0.0' is not 1.x");
  j = minimal();
  j.erase("root");
  EXPECT_EQ(error_of(j), "root: missing");
  j = minimal();
  j.erase("process");
  EXPECT_EQ(error_of(j), "process: missing (create needs a process)");
  j = minimal();
  j["process"]["args"] = Json::array();
  EXPECT_EQ(error_of(j), "process.args: no command given");
  j = minimal();
  j["process"]["args"] = {"sh", 3};
  EXPECT_EQ(error_of(j), "process.args[1]: not a string");
  j = minimal();
  j["process"]["cwd"] = "tmp";
  EXPECT_EQ(error_of(j), "process.cwd: 'tmp' is not an absolute path");
  j = minimal();
  j["process"]["env"] = {"NOEQUALS"};
  EXPECT_EQ(error_of(j), "process.env[0]: 'NOEQUALS' is not KEY=VALUE");
  j = minimal();
  j["process"]["user"] = {{"uid", -1}};
  EXPECT_EQ(error_of(j), "process.user.uid: out of range (0 to 4294967294)");
  j = minimal();
  j["process"]["user"] = {{"uid", 0}, {"umask", 63}};
  EXPECT_EQ(error_of(j), "process.user.umask: only 0022 is supported");
  j = minimal();
  j["process"]["rlimits"] = Json::parse(R"([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])");
  EXPECT_EQ(error_of(j), "process.rlimits[0]: unknown type 'RLIMIT_BOGUS'");
  j = minimal();
  j["process"]["rlimits"] = Json::parse(R"([{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}])");
  EXPECT_EQ(error_of(j), "process.rlimits[0]: soft limit above the hard one");
  j = minimal();
  j["linux"]["namespaces"] = Json::parse(R"([{"type": "user"}])");
  EXPECT_EQ(error_of(j), "linux.namespaces[0]: user namespaces are not supported");
  j = minimal();
  j["linux"]["namespaces"] = Json::parse(R"([{"type": "ipc", "path": "/proc/1/ns/ipc"}])");
  EXPECT_EQ(error_of(j),
            "linux.namespaces[0]: joining an existing ipc namespace ('/proc/1/ns/ipc') is not "
            "supported: each container has its own VM (or its pod's)");
  // A pod's container joins its sandbox's pid, ipc and uts (Podman passes
  // the infra container's), but no mount namespace.
  j["annotations"] = Json::parse(
      R"({"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "infra"})");
  EXPECT_EQ(error_of(j), "");
  j["linux"]["namespaces"] = Json::parse(R"([{"type": "mount", "path": "/proc/1/ns/mnt"}])");
  EXPECT_EQ(error_of(j),
            "linux.namespaces[0]: joining an existing mount namespace ('/proc/1/ns/mnt') is not "
            "supported: each container has its own VM");
  j = minimal();
  j["linux"]["uidMappings"] = Json::parse(R"([{"containerID": 0, "hostID": 1000, "size": 1}])");
  EXPECT_EQ(error_of(j), "linux.uidMappings: user namespaces are not supported");
  j = minimal();
  j["mounts"] = Json::parse(R"([{"destination": "/mnt", "type": "nfs", "source": "srv:/x"}])");
  EXPECT_EQ(error_of(j),
            "mounts[0] (/mnt).type: 'nfs' is not supported here (Vessel makes proc, sysfs, "
            "devpts, mqueue and cgroup at their usual places, tmpfs anywhere, and bind mounts)");
  j = minimal();
  j["mounts"] = Json::parse(R"([{"destination": "/mnt", "type": "bind", "source": "rel"}])");
  EXPECT_EQ(error_of(j),
            "mounts[0] (/mnt).source: a bind mount needs an absolute host path (got 'rel')");
  j = minimal();
  j["mounts"] = Json::parse(
      R"([{"destination": "/mnt", "type": "bind", "source": "/x", "options": ["rbind", "idmap"]}])");
  EXPECT_EQ(error_of(j), "mounts[0] (/mnt).options: bind mount option 'idmap' is not supported");
  j = minimal();
  j["linux"]["resources"]["memory"]["limit"] = 1024;
  EXPECT_EQ(error_of(j),
            "linux.resources.memory.limit: at least 32 MiB is needed (got 1024 bytes)");
  j = minimal();
  j["linux"]["devices"] =
      Json::parse(R"([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])");
  EXPECT_EQ(error_of(j), "linux.devices: host device nodes cannot be passed into the VM");
  j = minimal();
  j["hooks"]["prestart"] = Json::parse(R"([{"path": "/bin/true"}])");
  EXPECT_EQ(error_of(j), "hooks.prestart: hooks are not supported");
  j = minimal();
  j["annotations"] = {{"a", 1}};
  EXPECT_EQ(error_of(j), "annotations.a: not a string");
}

TEST(Spec, RootMustExist) {
  char tmpl[] = "/tmp/oci-spec-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string bundle = tmpl;
  auto missing = parse_spec(minimal().dump(), bundle);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().to_string(), "root.path: '" + bundle + "/rootfs' does not exist");
  ASSERT_EQ(::mkdir((bundle + "/rootfs").c_str(), 0755), 0);
  EXPECT_TRUE(parse_spec(minimal().dump(), bundle).ok());
  ::rmdir((bundle + "/rootfs").c_str());
  ::rmdir(bundle.c_str());
}

TEST(Spec, ExecProcessFile) {
  // What containerd's shim writes for `ctr task exec --exec-id x ID sh -c 'echo hi'`.
  auto p = parse_process(
      R"({"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin"],
          "cwd": "/", "terminal": true, "consoleSize": {"height": 24, "width": 80}})");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->args.size(), 3u);
  EXPECT_TRUE(p->terminal);
  EXPECT_EQ(p->rows, 24);
  EXPECT_EQ(p->cols, 80);
  auto bad = parse_process(R"({"args": ["x"]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(), "process.cwd: missing");
}

TEST(Spec, DefaultSpecParses) {
  auto s = parse_spec_text(default_spec(), "/b");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->config.argv, std::vector<std::string>{"sh"});
}

TEST(PodAnnotations, TheVmsMemory) {
  EXPECT_EQ(*pod_memory({}), kPodMemoryDefault);
  EXPECT_EQ(*pod_memory({{"io.kubernetes.cri.sandbox-memory", "0"}}), kPodMemoryDefault);
  EXPECT_EQ(*pod_memory({{"io.kubernetes.cri.sandbox-memory", "268435456"}}), 256ull << 20);
  // The operator's annotation wins over the CRI's sum.
  EXPECT_EQ(*pod_memory({{"io.kubernetes.cri.sandbox-memory", "268435456"},
                         {"io.vessel.pod-memory", "2147483648"}}),
            2ull << 30);
  auto bad = pod_memory({{"io.vessel.pod-memory", "2g"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(),
            "annotations.io.vessel.pod-memory: '2g' is not a number of bytes");
  auto small = pod_memory({{"io.kubernetes.cri.sandbox-memory", "1048576"}});
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().to_string().find("at least 64 MiB"), std::string::npos);
}

TEST(PodAnnotations, SandboxAndMembers) {
  EXPECT_TRUE(pod_annotations({{"io.kubernetes.cri.container-type", "sandbox"},
                               {"io.kubernetes.cri.sandbox-id", "self"}})
                  .sandbox);
  EXPECT_EQ(pod_annotations({{"io.kubernetes.cri.container-type", "sandbox"},
                             {"io.kubernetes.cri.sandbox-id", "self"}})
                .sandbox_id,
            "");
  auto member = pod_annotations(
      {{"io.kubernetes.cri.container-type", "container"}, {"io.kubernetes.cri.sandbox-id", "sb"}});
  EXPECT_FALSE(member.sandbox);
  EXPECT_EQ(member.sandbox_id, "sb");
  // CRI-O's names, as Podman gives a pod's containers.
  EXPECT_EQ(pod_annotations({{"io.kubernetes.cri-o.ContainerType", "container"},
                             {"io.kubernetes.cri-o.SandboxID", "infra"}})
                .sandbox_id,
            "infra");
  EXPECT_FALSE(pod_annotations({}).sandbox);
  EXPECT_EQ(pod_annotations({}).sandbox_id, "");
}

}  // namespace
}  // namespace vessel::oci
