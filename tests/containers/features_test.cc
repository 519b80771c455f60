// Acceptance tests of issue 4 written before their features: bind mounts,
// tmpfs, named volumes, stats, prune and the --memory cgroup limit (cp and
// export are in cp_test.cc). The flags and output formats are Docker's,
// which the issue asks for.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <vector>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kIdle = "echo ready; while true; do sleep 0.1; done";

std::string read_host_file(const std::string& path) {
  auto s = sys::read_file(path, 1 << 20);
  return s.ok() ? *s : "<unreadable: " + s.error().to_string() + ">";
}

// "12.5MiB", "100MB", "512KiB", "0B" -> bytes; nullopt if unparsable.
std::optional<double> parse_human_size(std::string_view s) {
  s = trim(s);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'))
    ++i;
  if (i == 0) return std::nullopt;
  double v = std::stod(std::string(s.substr(0, i)));
  std::string unit(trim(s.substr(i)));
  const std::pair<const char*, double> units[] = {
      {"B", 1},    {"kB", 1e3},      {"KB", 1e3},      {"MB", 1e6},
      {"GB", 1e9}, {"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", double(1 << 30)}};
  for (const auto& [name, factor] : units)
    if (unit == name) return v * factor;
  return std::nullopt;
}

using FeaturesTest = ContainerTest;

// --- Bind mounts and tmpfs ------------------------------------------------------

TEST_F(FeaturesTest, BindMountIsSharedBothWays) {
  std::string dir = scratch_dir() + "/shared";
  ASSERT_TRUE(sys::make_dirs(dir, 0755).ok());
  std::ofstream(dir + "/from-host") << "host\n";
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "-v", dir + ":/mnt/shared", kImage, "sh",
                        "-c", "cat /mnt/shared/from-host; echo ctr > /mnt/shared/from-ctr"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "host\n");
  EXPECT_EQ(read_host_file(dir + "/from-ctr"), "ctr\n");
}

TEST_F(FeaturesTest, ReadOnlyBindMountRefusesWrites) {
  std::string dir = scratch_dir() + "/ro";
  ASSERT_TRUE(sys::make_dirs(dir, 0755).ok());
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "-v", dir + ":/mnt/ro:ro", kImage, "sh", "-c",
                        "echo x > /mnt/ro/file"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r.err;
  EXPECT_NE(::access((dir + "/file").c_str(), F_OK), 0);
}

TEST_F(FeaturesTest, SingleFileBindMount) {
  std::string file = scratch_dir() + "/config.txt";
  std::ofstream(file) << "setting=1\n";
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "-v", file + ":/etc/app.conf", kImage, "sh",
                        "-c", "cat /etc/app.conf; echo setting=2 > /etc/app.conf"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "setting=1\n");
  EXPECT_EQ(read_host_file(file), "setting=2\n");
}

TEST_F(FeaturesTest, MountFlagTypeBind) {
  std::string dir = scratch_dir() + "/m";
  ASSERT_TRUE(sys::make_dirs(dir, 0755).ok());
  std::ofstream(dir + "/f") << "via --mount\n";
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "--mount",
                        "type=bind,source=" + dir + ",target=/data,readonly", kImage, "sh", "-c",
                        "cat /data/f; touch /data/g"});
  EXPECT_EQ(r.out, "via --mount\n");
  EXPECT_NE(r.exit_code, 0) << "readonly was ignored";
  EXPECT_NE(::access((dir + "/g").c_str(), F_OK), 0);
}

TEST_F(FeaturesTest, BindMountOfAMissingHostPathFailsWith125) {
  std::string missing = scratch_dir() + "/missing";
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "--mount",
                        "type=bind,source=" + missing + ",target=/data", kImage, "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, missing)) << r.err;
}

TEST_F(FeaturesTest, TmpfsMountWithASize) {
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "--tmpfs", "/scratch:size=16m", kImage, "sh",
                        "-c", "grep ' /scratch ' /proc/mounts; df -k /scratch | tail -1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "tmpfs /scratch tmpfs")) << r.out;
  EXPECT_TRUE(contains(r.out, "16384")) << "size=16m not applied:\n" << r.out;
}

TEST_F(FeaturesTest, InspectShowsTheMounts) {
  std::string dir = scratch_dir() + "/shown";
  ASSERT_TRUE(sys::make_dirs(dir, 0755).ok());
  std::string id = run_detached({"-v", dir + ":/mnt/shown:ro", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  json mounts = inspect(id)["Mounts"];
  ASSERT_EQ(mounts.size(), 1u) << mounts.dump();
  EXPECT_EQ(mounts[0]["Type"], "bind");
  EXPECT_EQ(mounts[0]["Source"], dir);
  EXPECT_EQ(mounts[0]["Destination"], "/mnt/shown");
  EXPECT_EQ(mounts[0]["RW"], false);
}

// --- Named volumes ---------------------------------------------------------------

TEST_F(FeaturesTest, VolumeCreateLsInspectRm) {
  CliResult create = vessel({"volume", "create", "data"});
  EXPECT_EQ(create.exit_code, 0) << create.err;
  EXPECT_EQ(create.out, "data\n");
  CliResult ls = vessel({"volume", "ls", "-q"});
  EXPECT_EQ(ls.out, "data\n");
  CliResult insp = vessel({"volume", "inspect", "data"});
  EXPECT_EQ(insp.exit_code, 0) << insp.err;
  json j = json::parse(insp.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << insp.out;
  EXPECT_EQ(j[0]["Name"], "data");
  EXPECT_TRUE(j[0]["Mountpoint"].is_string());
  CliResult dup = vessel({"volume", "create", "data"});
  EXPECT_EQ(dup.exit_code, 0) << "docker volume create is idempotent: " << dup.err;
  CliResult rm = vessel({"volume", "rm", "data"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(vessel({"volume", "ls", "-q"}).out, "");
  CliResult missing = vessel({"volume", "rm", "data"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "No such volume: data")) << missing.err;
}

TEST_F(FeaturesTest, RunCreatesAMissingNamedVolumeAndItOutlivesTheContainer) {
  CliResult first = vessel({"run", "--rm", "-m", kMemory, "-v", "keep:/data", kImage, "sh", "-c",
                            "echo kept > /data/file"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(vessel({"volume", "ls", "-q"}).out, "keep\n");
  CliResult second =
      vessel({"run", "--rm", "-m", kMemory, "-v", "keep:/data", kImage, "cat", "/data/file"});
  EXPECT_EQ(second.out, "kept\n") << second.err;
}

TEST_F(FeaturesTest, TwoRunningContainersShareANamedVolume) {
  ASSERT_EQ(vessel({"volume", "create", "shared"}).exit_code, 0);
  std::string writer = run_detached({"--name", "writer", "-v", "shared:/data", kImage, "sh", "-c",
                                     "echo ready; while true; do date +%s%N > /data/now; "
                                     "sleep 0.2; done"});
  std::string reader =
      run_detached({"--name", "reader", "-v", "shared:/data", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(writer.empty());
  ASSERT_FALSE(reader.empty());
  ASSERT_TRUE(wait_for_log("writer", "ready"));
  ASSERT_TRUE(wait_for_log("reader", "ready"));
  // Both run at once: a value the writer writes while the reader runs is seen.
  CliResult w = vessel({"exec", "writer", "sh", "-c", "echo from-writer > /data/note"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  CliResult r = vessel({"exec", "reader", "cat", "/data/note"});
  EXPECT_EQ(r.out, "from-writer\n") << r.err;
  CliResult back = vessel({"exec", "reader", "sh", "-c", "echo from-reader > /data/reply"});
  EXPECT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(vessel({"exec", "writer", "cat", "/data/reply"}).out, "from-reader\n");
  // In use: refused.
  CliResult rm = vessel({"volume", "rm", "shared"});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_TRUE(contains(rm.err, "in use")) << rm.err;
}

TEST_F(FeaturesTest, ANonRootUserCanWriteToADirectoryItOwnsInAVolume) {
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "-v", "owned:/data", kImage, "sh", "-c",
                        "mkdir /data/home && chown 1000:1000 /data/home"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CliResult user = vessel({"run", "--rm", "-m", kMemory, "-u", "1000:1000", "-v", "owned:/data",
                           kImage, "sh", "-c",
                           "echo mine > /data/home/f && stat -c '%u:%g %a' /data/home/f; "
                           "echo no > /data/f 2>/dev/null || echo refused"});
  EXPECT_EQ(user.exit_code, 0) << user.err;
  EXPECT_EQ(user.out, "1000:1000 644\nrefused\n");
}

TEST_F(FeaturesTest, VolumePruneRemovesOnlyUnusedVolumes) {
  ASSERT_EQ(vessel({"volume", "create", "unused"}).exit_code, 0);
  std::string id = run_detached({"-v", "used:/data", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  // As Docker 23+: prune alone takes anonymous volumes only, -a named ones too.
  CliResult prune = vessel({"volume", "prune", "-a", "-f"});
  EXPECT_EQ(prune.exit_code, 0) << prune.err;
  EXPECT_TRUE(contains(prune.out, "unused")) << prune.out;
  EXPECT_EQ(vessel({"volume", "ls", "-q"}).out, "used\n");
}

TEST_F(FeaturesTest, RmVolumesRemovesTheContainersAnonymousVolumes) {
  // An anonymous volume: -v with a container path only (as an image's VOLUME).
  std::string id = run_detached({"--name", "anon", "-v", "/cache", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  std::vector<std::string> volumes = lines(vessel({"volume", "ls", "-q"}).out);
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_EQ(volumes[0].size(), 64u) << "anonymous volumes are named by a 64-hex id";
  CliResult rm = vessel({"rm", "-f", "-v", "anon"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(vessel({"volume", "ls", "-q"}).out, "");
}

// --- The device budget ------------------------------------------------------------
// microvm has 8 virtio-mmio transports. The agent's port takes one, an image
// root two and each NIC one; as root all of a container's bind mounts and
// volumes take one between them (one virtiofsd serving them all).

// The distinct `source=` of the virtiofsd processes of container `id`
// (virtiofsd forks into its sandbox: two processes per instance).
std::set<std::string> virtiofsd_sources(const std::vector<std::string>& processes) {
  std::set<std::string> sources;
  for (const auto& p : processes) {
    if (p.find("virtiofsd") == std::string::npos) continue;
    size_t at = p.find("source=");
    if (at != std::string::npos) sources.insert(p.substr(at, p.find(' ', at) - at));
  }
  return sources;
}

TEST_F(FeaturesTest, FourMountsAndTwoNetworksFitInOneVm) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: networks make bridges and taps";
  std::string rw = scratch_dir() + "/rw", ro = scratch_dir() + "/ro";
  std::string conf = scratch_dir() + "/conf/app.conf";
  for (const auto& d : {rw, ro, scratch_dir() + "/conf"})
    ASSERT_TRUE(sys::make_dirs(d, 0755).ok());
  ASSERT_EQ(::chmod(rw.c_str(), 0777), 0);  // for the user below
  std::ofstream(rw + "/from-host") << "rw-host\n";
  std::ofstream(ro + "/from-host") << "ro-host\n";
  std::ofstream(conf) << "setting=1\n";
  ASSERT_EQ(vessel({"network", "create", "n1"}).exit_code, 0);
  ASSERT_EQ(vessel({"network", "create", "n2"}).exit_code, 0);
  // An image root (2 disks) + 2 NICs + 4 shared directories was 9 devices.
  std::string id = run_detached({"--network", "n1", "--network", "n2", "-v", rw + ":/mnt/rw", "-v",
                                 ro + ":/mnt/ro:ro", "-v", conf + ":/etc/app.conf", "-v",
                                 "vol:/data", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log(id, "ready"));
  std::set<std::string> sources = virtiofsd_sources(processes_of(id));
  ASSERT_EQ(sources.size(), 1u) << "one virtiofsd for all the mounts";
  EXPECT_TRUE(sources.begin()->ends_with("/shares")) << *sources.begin();

  CliResult links = vessel({"exec", id, "ls", "/sys/class/net"});
  EXPECT_EQ(links.exit_code, 0) << links.err;
  EXPECT_TRUE(contains(links.out, "eth0") && contains(links.out, "eth1")) << links.out;

  CliResult r = vessel({"exec", id, "sh", "-c",
                        "cat /mnt/rw/from-host && echo ctr > /mnt/rw/from-ctr && "
                        "cat /mnt/ro/from-host && cat /etc/app.conf && "
                        "echo setting=2 > /etc/app.conf && echo vol > /data/v && cat /data/v"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rw-host\nro-host\nsetting=1\nvol\n");
  CliResult refused = vessel({"exec", id, "sh", "-c", "echo x > /mnt/ro/new"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(contains(refused.err, "Read-only file system")) << refused.err;
  // The host's side of each mount.
  EXPECT_EQ(read_host_file(rw + "/from-ctr"), "ctr\n");
  EXPECT_NE(::access((ro + "/new").c_str(), F_OK), 0);
  EXPECT_EQ(read_host_file(conf), "setting=2\n");
  EXPECT_EQ(read_host_file(state_root() + "/volumes/vol/_data/v"), "vol\n");
  // Files the container creates belong to the user that made them.
  CliResult owned = vessel({"exec", "-u", "1000:1000", id, "sh", "-c", "echo u > /mnt/rw/by-user"});
  EXPECT_EQ(owned.exit_code, 0) << owned.err;
  struct stat st;
  ASSERT_EQ(::stat((rw + "/by-user").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);

  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
  expect_gone(id);
  EXPECT_EQ(vessel({"network", "rm", "n1", "n2"}).exit_code, 0);
}

// One virtiofsd serves directories of several host filesystems, whose inode
// numbers may be equal: each must still look like a filesystem of its own
// (st_dev) in the container, or cp takes two files for one.
TEST_F(FeaturesTest, MountsOfTwoHostFilesystemsStayApart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: mounts two tmpfs";
  // In a mount namespace of this test process (ctest runs one test per
  // process): the tmpfs mounts go with it; the monitor inherits them.
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
  std::string a = scratch_dir() + "/a", b = scratch_dir() + "/b";
  struct Unmount {
    std::vector<std::string> paths;
    ~Unmount() {
      for (const auto& p : paths)
        ::umount2(p.c_str(), MNT_DETACH);
    }
  } unmount;
  for (const auto& d : {a, b}) {
    ASSERT_TRUE(sys::make_dirs(d, 0755).ok());
    ASSERT_EQ(::mount("tmpfs", d.c_str(), "tmpfs", 0, "size=1m"), 0) << d;
    unmount.paths.push_back(d);
  }
  std::ofstream(a + "/f") << "from-a\n";
  std::ofstream(b + "/f") << "from-b\n";
  struct stat sa, sb;
  ASSERT_EQ(::stat((a + "/f").c_str(), &sa), 0);
  ASSERT_EQ(::stat((b + "/f").c_str(), &sb), 0);
  if (sa.st_ino != sb.st_ino)
    GTEST_SKIP() << "the two tmpfs gave their files different inode numbers (" << sa.st_ino << ", "
                 << sb.st_ino << "): not the case this test is for";
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "-v", a + ":/a", "-v", b + ":/b", kImage,
                        "sh", "-c", "cp /a/f /b/f && cat /b/f"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from-a\n");
  EXPECT_EQ(read_host_file(b + "/f"), "from-a\n");
}

TEST_F(FeaturesTest, TooManyNetworksWithMountsFailsNamingWhatToReduce) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: networks make bridges and taps";
  std::string dir = scratch_dir() + "/d";
  ASSERT_TRUE(sys::make_dirs(dir, 0755).ok());
  std::vector<std::string> args = {"run", "--rm", "-m", kMemory};
  for (int i = 1; i <= 5; ++i) {
    std::string name = "n" + std::to_string(i);
    ASSERT_EQ(vessel({"network", "create", name}).exit_code, 0);
    args.insert(args.end(), {"--network", name});
  }
  // The agent, the balloon, an image root (one disk) and 5 NICs fit (8
  // devices); one mount more does not.
  args.insert(args.end(), {"-v", dir + ":/d", kImage, "true"});
  CliResult r = vessel(args);
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, "use at most 4 networks, or no bind mounts or volumes")) << r.err;
  EXPECT_EQ(vessel({"network", "rm", "n1", "n2", "n3", "n4", "n5"}).exit_code, 0);
}

// --- stats --------------------------------------------------------------------------

// Assumes Docker's table: CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT, ...
TEST_F(FeaturesTest, StatsNoStreamShowsMemoryThatRisesWhenTheContainerAllocates) {
  std::string id = run_detached(
      {"--name", "hog", "-m", "512m", "--tmpfs", "/fill:size=256m", kImage, "sh", "-c",
       "echo ready; until [ -e /tmp/go ]; do sleep 0.1; done; "
       "head -c 104857600 /dev/zero | tr '\\0' x > /fill/data && echo filled; sleep 1000"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("hog", "ready"));
  auto memory_use = [&]() -> std::optional<double> {
    CliResult s = vessel({"stats", "--no-stream", "hog"});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    std::vector<std::string> rows = lines(s.out);
    if (rows.size() != 2 || !contains(rows[0], "MEM USAGE / LIMIT")) {
      ADD_FAILURE() << "unexpected stats output:\n" << s.out;
      return std::nullopt;
    }
    size_t col = rows[0].find("MEM USAGE");
    std::string_view usage = std::string_view(rows[1]).substr(col);
    return parse_human_size(usage.substr(0, usage.find('/')));
  };
  auto before = memory_use();
  ASSERT_TRUE(before.has_value());
  ASSERT_EQ(vessel({"exec", "hog", "touch", "/tmp/go"}).exit_code, 0);
  ASSERT_TRUE(wait_for_log("hog", "filled", 120s));
  auto after = memory_use();
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(*after - *before, 90.0 * (1 << 20))
      << "memory use went from " << *before << " to " << *after << " bytes";
}

TEST_F(FeaturesTest, StatsOfAStoppedContainerFails) {
  CliResult created = vessel({"create", "--name", "cold", kImage, "true"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CliResult s = vessel({"stats", "--no-stream", "cold"});
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_TRUE(contains(s.err, "is not running")) << s.err;
}

// --- prune ------------------------------------------------------------------------------

TEST_F(FeaturesTest, PruneRemovesStoppedContainersOnly) {
  std::string running = run_detached({"--name", "keep", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(running.empty());
  ASSERT_EQ(vessel({"run", "-m", kMemory, "--name", "old", kImage, "true"}).exit_code, 0);
  ASSERT_EQ(vessel({"create", "--name", "fresh", kImage, "true"}).exit_code, 0);
  CliResult p = vessel({"prune", "-f"});
  EXPECT_EQ(p.exit_code, 0) << p.err;
  std::vector<std::string> names;
  for (const auto& c : list_all())
    names.push_back(c["Names"]);
  EXPECT_EQ(names, std::vector<std::string>{"keep"});
}

// --- --memory as a cgroup limit ---------------------------------------------------------

TEST_F(FeaturesTest, MemoryLimitOomKillsTheProcessNotTheAgent) {
  // More than the VM has: the container's cgroup limit must kill the
  // process (137, OOMKilled) while the guest and its agent carry on.
  // (/dev/shm holds only 64 MiB, as in Docker: a tmpfs of 1 GiB instead.)
  // One process writes (exec dd): with a pipeline the OOM killer could pick
  // the producer, the consumer then saw EOF and the container exited 0.
  std::string id = run_detached({"--name", "greedy", "-m", "256m", "--tmpfs", "/fill:size=1g",
                                 kImage, "sh", "-c",
                                 "echo ready; until [ -e /tmp/go ]; do sleep 0.1; done; "
                                 "exec dd if=/dev/zero of=/fill/data bs=1M count=512"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("greedy", "ready"));
  ASSERT_EQ(vessel({"exec", "greedy", "touch", "/tmp/go"}).exit_code, 0);
  CliResult w = vessel({"wait", "greedy"}, {.timeout = 180s});
  EXPECT_EQ(w.out, "137\n") << w.err;
  json j = inspect("greedy");
  EXPECT_EQ(j["State"]["OOMKilled"], true) << j.dump(2);
}

}  // namespace
}  // namespace vessel::test
