// Image archives and hand-made images end to end: `vessel image save|load`
// (OCI layout tars, `docker save` tars), zstd and uncompressed layers, a
// multi-platform index, special files (setuid, xattr, hardlink, fifo),
// malicious or broken images through a pull, and a pull killed midway.
//
// The fixture, built once per suite: Debian's docker-registry on 127.0.0.1
// and images made here by hand (layer tars written with libarchive or tar,
// configs and manifests written as JSON) and pushed with Vessel's registry
// client, so each test controls every byte a pull sees:
//   test/plain:latest   busybox rootfs + a "special" layer, both plain tars
//   test/zstd:latest    the same two layers compressed with zstd
//   test/multi:latest   an index: linux/amd64 (the busybox layer) and
//                       linux/arm64 (a one-file layer)
//   test/evil:<case>    one layer each: "../" entry, absolute entry,
//                       symlink-then-write, hardlink to outside
//   test/unknown:latest a layer of an unknown media type
//   test/corrupt:digest, test/corrupt:short  whose layer blob the test
//                       alters in the registry's storage (same size with
//                       other bytes; cut short)
//   test/big:latest     a 96 MiB layer of random bytes (for the kill test)
// An invalid-JSON manifest comes from a one-reply HTTP server, since the
// registry refuses to store one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/strings.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "images/local_registry.h"
#include "registry/client.h"
#include "rootfs/test_tar.h"
#include "support/cli_runner.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using image::Digest;
using nlohmann::json;
namespace tar = rootfs::testing;
namespace mt = image::media_types;

constexpr auto kPullTimeout = 120s;
constexpr auto kRunTimeout = 120s;
constexpr size_t kBigLayerBytes = 96u << 20;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string show(const CliResult& r) {
  auto tail = [](const std::string& s) {
    return s.size() <= 8192 ? s : "[...]" + s.substr(s.size() - 8192);
  };
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout:\n" + tail(r.out) + "\n--- stderr:\n" + tail(r.err);
}

std::string run_tool(const std::vector<std::string>& argv) {
  RunOptions o;
  o.timeout = 300s;
  CliResult r = run_process(argv, o);
  return r.exit_code == 0 ? "" : shell_quote(argv) + ": " + show(r);
}

// A file's digest and size, hashed in chunks (layers can be large).
struct Blob {
  std::string path;
  Digest digest = Digest::of(std::string_view());
  int64_t size = 0;
};
Result<Blob> blob_of(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_RDONLY));
  image::Sha256 h;
  std::vector<char> buf(1 << 20);
  int64_t size = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return Error::from_errno(errno, "read '" + path + "'");
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    size += n;
  }
  return Blob{path, h.finish(), size};
}
Result<Blob> bytes_blob(const std::string& path, std::string_view bytes) {
  VESSEL_TRY(sys::write_file_atomic(path, bytes));
  return blob_of(path);
}

json descriptor(std::string_view media_type, const Blob& b) {
  return {{"mediaType", std::string(media_type)}, {"digest", b.digest.str()}, {"size", b.size}};
}

std::string config_json(const std::string& arch, const std::vector<Digest>& diff_ids) {
  json ids = json::array();
  for (const auto& d : diff_ids)
    ids.push_back(d.str());
  return json{{"architecture", arch},
              {"os", "linux"},
              {"config", {{"Env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}, {"Cmd", {"/bin/sh"}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}}
      .dump();
}

struct Layer {
  Blob blob;       // as pushed (maybe compressed)
  Digest diff_id;  // of the uncompressed tar
  std::string media_type;
};

struct Fixture {
  std::string dir;
  std::optional<LocalRegistry> registry;
  std::map<std::string, std::string> digests;  // "repo:tag" -> manifest digest
  std::string amd64_digest, arm64_digest;
  Blob base_tar;  // the busybox rootfs as a plain tar (for the docker-save test)
  Blob special_tar;
  std::string special_tar_digest;
  std::string corrupt_digest_layer, corrupt_short_layer;  // hex of the layer blobs
};

class Builder {
 public:
  Builder(Fixture& f, registry::RegistryClient& c) : f_(f), c_(c) {}

  Result<Layer> tar_layer(const std::string& name, const std::vector<tar::TarEntry>& entries,
                          tar::Compression compression = tar::Compression::kNone) {
    std::string plain = f_.dir + "/" + name + ".tar", err;
    if (!tar::write_tar(plain, entries, tar::Compression::kNone, &err))
      return Error(ErrorCode::kInternal, "write " + plain + ": " + err);
    VESSEL_ASSIGN_OR_RETURN(Blob uncompressed, blob_of(plain));
    if (compression == tar::Compression::kNone)
      return Layer{uncompressed, uncompressed.digest, std::string(mt::kOciLayerTar)};
    std::string packed = plain + (compression == tar::Compression::kZstd ? ".zst" : ".gz");
    if (!tar::write_tar(packed, entries, compression, &err))
      return Error(ErrorCode::kInternal, "write " + packed + ": " + err);
    VESSEL_ASSIGN_OR_RETURN(Blob b, blob_of(packed));
    return Layer{b, uncompressed.digest,
                 std::string(compression == tar::Compression::kZstd ? mt::kOciLayerTarZstd
                                                                    : mt::kOciLayerTarGzip)};
  }

  /// Pushes config + layers + manifest; returns the manifest's digest.
  Result<std::string> push(const std::string& repo, const std::string& tag,
                           const std::vector<Layer>& layers, const std::string& arch = "amd64",
                           std::optional<std::string> raw_config = std::nullopt) {
    std::vector<Digest> ids;
    json descs = json::array();
    for (const auto& l : layers) {
      ids.push_back(l.diff_id);
      VESSEL_TRY(c_.push_blob(repo, l.blob.digest, l.blob.path));
      descs.push_back(descriptor(l.media_type, l.blob));
    }
    std::string cfg = raw_config ? *raw_config : config_json(arch, ids);
    VESSEL_ASSIGN_OR_RETURN(Blob config, bytes_blob(f_.dir + "/cfg-" + std::to_string(n_++), cfg));
    VESSEL_TRY(c_.push_blob(repo, config.digest, config.path));
    std::string manifest = json{
        {"schemaVersion", 2},
        {"mediaType", std::string(mt::kOciManifest)},
        {"config", descriptor(mt::kOciConfig, config)},
        {"layers", descs}}.dump();
    VESSEL_TRY(c_.put_manifest(repo, tag, manifest, std::string(mt::kOciManifest)));
    std::string digest = Digest::of(manifest).str();
    f_.digests[repo + ":" + tag] = digest;
    return digest;
  }

 private:
  Fixture& f_;
  registry::RegistryClient& c_;
  int n_ = 0;
};

std::vector<tar::TarEntry> special_entries() {
  auto suid = tar::file("special/suid", "#!/bin/sh\necho suid\n", 04755);
  auto xattr = tar::file("special/xattr", "with an xattr\n");
  xattr.xattrs = {{"user.vessel", "hello"}};
  tar::TarEntry fifo;
  fifo.name = "special/fifo";
  fifo.type = AE_IFIFO;
  return {tar::dir("special"),
          suid,
          xattr,
          tar::file("special/a", "hardlinked\n"),
          tar::hardlink("special/b", "special/a"),
          fifo};
}

std::string build(Fixture& f) {
  auto reg = LocalRegistry::start(f.dir + "/registry");
  if (!reg.ok()) return reg.error().to_string();
  f.registry.emplace(std::move(*reg));
  registry::RegistryOptions ro;
  ro.host = f.registry->host();
  ro.scheme = registry::Scheme::kHttp;
  auto client = registry::RegistryClient::create(ro);
  if (!client.ok()) return client.error().to_string();
  Builder b(f, *client);
  auto fail = [](const Error& e) { return e.to_string(); };

  // The busybox rootfs as a layer, plain and zstd (tar(1) and zstd(1)).
  const std::string base = f.dir + "/base.tar";
  if (auto err =
          run_tool({"/usr/bin/tar", "--numeric-owner", "-C", paths().rootfs, "-cf", base, "."});
      !err.empty())
    return err;
  if (auto err = run_tool({"/usr/bin/zstd", "-q", "-f", base, "-o", base + ".zst"}); !err.empty())
    return err;
  auto base_plain = blob_of(base);
  auto base_zstd = blob_of(base + ".zst");
  if (!base_plain.ok() || !base_zstd.ok()) return "hash the base layer";
  f.base_tar = *base_plain;
  Layer plain{*base_plain, base_plain->digest, std::string(mt::kOciLayerTar)};
  Layer zstd{*base_zstd, base_plain->digest, std::string(mt::kOciLayerTarZstd)};

  auto special = b.tar_layer("special", special_entries());
  auto special_zstd = b.tar_layer("special-z", special_entries(), tar::Compression::kZstd);
  if (!special.ok()) return fail(special.error());
  if (!special_zstd.ok()) return fail(special_zstd.error());
  f.special_tar = special->blob;
  if (auto r = b.push("test/plain", "latest", {plain, *special}); !r.ok()) return fail(r.error());
  if (auto r = b.push("test/zstd", "latest", {zstd, *special_zstd}); !r.ok())
    return fail(r.error());

  // Multi-platform: amd64 runs busybox; arm64 is one file (never run).
  auto arm = b.tar_layer("arm", {tar::file("arch", "arm64\n")}, tar::Compression::kGzip);
  if (!arm.ok()) return fail(arm.error());
  auto amd64 = b.push("test/multi", "amd64", {plain});
  auto arm64 = b.push("test/multi", "arm64", {*arm}, "arm64");
  if (!amd64.ok()) return fail(amd64.error());
  if (!arm64.ok()) return fail(arm64.error());
  f.amd64_digest = *amd64;
  f.arm64_digest = *arm64;
  json entries = json::array();
  for (const auto& [digest, arch] : {std::pair{*amd64, "amd64"}, std::pair{*arm64, "arm64"}}) {
    auto m = client->get_manifest("test/multi", digest, {std::string(mt::kOciManifest)});
    if (!m.ok()) return fail(m.error());
    entries.push_back({{"mediaType", std::string(mt::kOciManifest)},
                       {"digest", digest},
                       {"size", m->bytes.size()},
                       {"platform", {{"architecture", arch}, {"os", "linux"}}}});
  }
  std::string index =
      json{{"schemaVersion", 2}, {"mediaType", std::string(mt::kOciIndex)}, {"manifests", entries}}
          .dump();
  if (auto s = client->put_manifest("test/multi", "latest", index, std::string(mt::kOciIndex));
      !s.ok())
    return fail(s.error());

  // Malicious layers: each is rejected when applied, after a verified download.
  std::map<std::string, std::vector<tar::TarEntry>> evil = {
      {"dotdot", {tar::file("../escape-dotdot", "x")}},
      {"absolute", {tar::file("/escape-absolute", "x")}},
      {"symlink", {tar::symlink("link", "/tmp"), tar::file("link/escape-symlink", "x")}},
      {"hardlink", {tar::hardlink("escape-hardlink", "../../../../etc/passwd")}},
  };
  for (const auto& [name, layer_entries] : evil) {
    auto l = b.tar_layer("evil-" + name, layer_entries);
    if (!l.ok()) return fail(l.error());
    if (auto r = b.push("test/evil", name, {*l}); !r.ok()) return fail(r.error());
  }
  // Unknown layer media type (the registry stores it; a puller must refuse it).
  auto odd = b.tar_layer("odd", {tar::file("odd", "x")});
  if (!odd.ok()) return fail(odd.error());
  odd->media_type = "application/vnd.example.unknown.v1";
  if (auto r = b.push("test/unknown", "latest", {*odd}); !r.ok()) return fail(r.error());

  // Two images whose layer blob the registry will serve altered.
  for (const char* which : {"digest", "short"}) {
    auto l = b.tar_layer(std::string("corrupt-") + which,
                         {tar::file(std::string("file-") + which, std::string(4096, 'c'))});
    if (!l.ok()) return fail(l.error());
    if (auto r = b.push("test/corrupt", which, {*l}); !r.ok()) return fail(r.error());
    std::string data = f.dir + "/registry/data/docker/registry/v2/blobs/sha256/" +
                       l->blob.digest.hex().substr(0, 2) + "/" + l->blob.digest.hex() + "/data";
    if (::access(data.c_str(), F_OK) != 0) return "no registry blob file at " + data;
    if (std::string(which) == "digest") {
      // Same size, one byte changed.
      auto bytes = sys::read_file(data);
      if (!bytes.ok()) return fail(bytes.error());
      (*bytes)[bytes->size() / 2] ^= 0x55;
      ::unlink(data.c_str());
      if (auto s = sys::write_file_atomic(data, *bytes); !s.ok()) return fail(s.error());
    } else if (::truncate(data.c_str(), l->blob.size / 2) != 0) {
      return "truncate " + data + ": " + std::strerror(errno);
    }
  }

  // A large image for the kill test: 96 MiB that do not compress.
  std::string random(kBigLayerBytes, '\0');
  {
    auto fd = sys::open_fd("/dev/urandom", O_RDONLY);
    if (!fd.ok()) return fail(fd.error());
    size_t got = 0;
    while (got < random.size()) {
      ssize_t n = ::read(fd->get(), random.data() + got, random.size() - got);
      if (n <= 0) return "read /dev/urandom";
      got += static_cast<size_t>(n);
    }
  }
  auto big = b.tar_layer("big", {tar::file("big", std::move(random))});
  if (!big.ok()) return fail(big.error());
  if (auto r = b.push("test/big", "latest", {*big}); !r.ok()) return fail(r.error());
  return "";
}

// A server on 127.0.0.1 that answers every request with one canned reply.
class CannedServer {
 public:
  explicit CannedServer(std::string reply) : reply_(std::move(reply)) {
    listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_.get(), 16) != 0)
      return;
    socklen_t len = sizeof a;
    ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{listen_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) continue;
        std::string req;
        char buf[4096];
        while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
          pollfd cp{conn.get(), POLLIN, 0};
          if (::poll(&cp, 1, 2000) <= 0) break;
          ssize_t n = ::read(conn.get(), buf, sizeof buf);
          if (n <= 0) break;
          req.append(buf, static_cast<size_t>(n));
        }
        (void)sys::write_all(conn.get(), reply_.data(), reply_.size());
      }
    });
  }
  ~CannedServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  std::string reply_;
  UniqueFd listen_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Every entry under the store's directories, with type and size (except
// the image index's two lock files): what "the store did not change" is
// checked against. Snapshot lock files and temporary files do count.
std::string store_listing(const std::string& root) {
  namespace fs = std::filesystem;
  std::string out;
  for (const char* sub : {"images", "content", "snapshots", "tmp"}) {
    std::error_code ec;
    fs::path base = fs::path(root) / sub;
    if (!fs::exists(base, ec)) {
      out += std::string(sub) + " (absent)\n";
      continue;
    }
    std::vector<std::string> rows;
    for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      auto st = it->symlink_status(ec);
      std::string row = fs::relative(it->path(), root, ec).string();
      // The index's lock files are created on first use and then stay.
      if (row == "images/lock" || row == "images/gc.lock") continue;
      if (fs::is_regular_file(st)) row += " " + std::to_string(it->file_size(ec));
      if (fs::is_directory(st)) row += "/";
      rows.push_back(row);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& r : rows)
      out += r + "\n";
  }
  return out;
}

class ArchiveTest : public VmTest {
 public:
  static void SetUpTestSuite() {
    skip_.clear();
    error_.clear();
    if (::access(kDockerRegistryBin, X_OK) != 0) {
      skip_ = std::string(kDockerRegistryBin) + " is not installed (docker-registry)";
      return;
    }
    for (const char* tool : {"/usr/bin/tar", "/usr/bin/zstd"})
      if (::access(tool, X_OK) != 0) {
        skip_ = std::string(tool) + " is missing";
        return;
      }
    if (::access((paths().rootfs + "/bin/busybox").c_str(), X_OK) != 0) {
      skip_ = "no busybox rootfs at '" + paths().rootfs + "'";
      return;
    }
    const char* tmp = ::getenv("TMPDIR");
    auto dir = sys::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "vessel-archive-test-");
    if (!dir.ok()) {
      error_ = dir.error().to_string();
      return;
    }
    f_ = new Fixture;
    f_->dir = *dir;
    auto start = std::chrono::steady_clock::now();
    error_ = build(*f_);
    std::fprintf(stderr, "archive fixture: %s in %.1f s\n", error_.empty() ? "built" : "FAILED",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  static void TearDownTestSuite() {
    if (!f_) return;
    if (f_->registry) f_->registry->stop();
    (void)sys::remove_tree(f_->dir);
    delete f_;
    f_ = nullptr;
  }

 protected:
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "archive tests cannot run: " << skip_;
    ASSERT_TRUE(error_.empty()) << "building the fixture failed: " << error_;
    VmTest::SetUp();
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& [command, r] : calls_)
        std::fprintf(stderr, "--- %s\n    %s\n", command.c_str(), show(r).c_str());
    }
    VmTest::TearDown();
  }

  std::string ref(const std::string& repo_tag) const {
    return f_->registry->host() + "/" + repo_tag;
  }

  CliResult vessel(const std::vector<std::string>& args, RunOptions o = {}) {
    std::vector<std::string> argv{"--root", state_root()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (o.timeout == RunOptions{}.timeout) o.timeout = kPullTimeout;
    CliResult r = run_cli(argv, o);
    calls_.push_back({"vessel " + shell_quote(argv), r});
    EXPECT_FALSE(r.timed_out) << shell_quote(argv) << " timed out";
    return r;
  }
  void pull(const std::string& reference, const std::vector<std::string>& flags = {}) {
    std::vector<std::string> args{"image", "pull", "--progress", "none"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(reference);
    CliResult r = vessel(args);
    ASSERT_EQ(r.exit_code, 0) << show(r);
  }
  CliResult run_image(const std::string& image, const std::string& script) {
    RunOptions o;
    o.timeout = kRunTimeout;
    return run({"--rm", "--pull", "never", image, "sh", "-c", script}, o);
  }
  json inspect(const std::string& image) {
    CliResult r = vessel({"image", "inspect", image});
    EXPECT_EQ(r.exit_code, 0) << show(r);
    auto j = json::parse(r.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : json();
  }
  std::string snapshot_of(const std::string& image) {
    json j = inspect(image);
    std::string digest = j.value("Digest", "");
    return state_root() + "/snapshots/" + digest.substr(digest.find(':') + 1) + ".ext4";
  }

  inline static Fixture* f_ = nullptr;
  inline static std::string skip_, error_;
  std::vector<std::pair<std::string, CliResult>> calls_;
};

class ArchivePullTest : public ArchiveTest {
 protected:
  bool needs_vm() const override { return false; }
};

// What the special layer must look like in a container (busybox sh + stat).
constexpr const char* kSpecialCheck =
    "cd /special || exit 9; "
    "stat -c '%a' suid; test -u suid && echo setuid; ./suid; "
    "test -p fifo && echo fifo; "
    "test \"$(stat -c %i a)\" = \"$(stat -c %i b)\" && echo hardlinked; stat -c %h a; cat b";
constexpr const char* kSpecialExpected = "4755\nsetuid\nsuid\nfifo\nhardlinked\n2\nhardlinked\n";

// The xattr, read from the image's ext4 snapshot with debugfs(8): the
// guest's busybox has no getfattr.
std::string snapshot_xattrs(const std::string& snapshot, const std::string& path) {
  RunOptions o;
  o.timeout = 60s;
  CliResult r = run_process({"/usr/sbin/debugfs", "-R", "ea_list " + path, snapshot}, o);
  return r.out + r.err;
}

// --- Layer formats and special files -------------------------------------------

TEST_F(ArchiveTest, UncompressedLayersPullAndSpecialFilesSurviveInAContainer) {
  pull(ref("test/plain:latest"));
  CliResult r = run_image(ref("test/plain:latest"), kSpecialCheck);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, kSpecialExpected) << show(r);
  if (::access("/usr/sbin/debugfs", X_OK) == 0) {
    std::string ea = snapshot_xattrs(snapshot_of(ref("test/plain:latest")), "/special/xattr");
    EXPECT_TRUE(contains(ea, "user.vessel") && contains(ea, "hello"))
        << "the snapshot lost the xattr user.vessel=hello: " << ea;
  }
}

TEST_F(ArchiveTest, ZstdLayersPullAndRun) {
  pull(ref("test/zstd:latest"));
  json j = inspect(ref("test/zstd:latest"));
  EXPECT_TRUE(contains(j.dump(), "tar+zstd")) << j.dump(2);
  CliResult r = run_image(ref("test/zstd:latest"), kSpecialCheck);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, kSpecialExpected) << show(r);
  if (::access("/usr/sbin/debugfs", X_OK) == 0) {
    std::string ea = snapshot_xattrs(snapshot_of(ref("test/zstd:latest")), "/special/xattr");
    EXPECT_TRUE(contains(ea, "user.vessel") && contains(ea, "hello")) << ea;
  }
}

// --- Multi-platform index ---------------------------------------------------------

TEST_F(ArchivePullTest, IndexResolvesToTheHostPlatformOrTheOneAskedFor) {
  CliResult host = vessel({"image", "pull", ref("test/multi:latest")});
  ASSERT_EQ(host.exit_code, 0) << show(host);
  EXPECT_TRUE(contains(host.out, "Digest: " + f_->amd64_digest)) << show(host);
  EXPECT_EQ(inspect(ref("test/multi:latest")).value("Platform", ""), "linux/amd64");

  CliResult arm = vessel({"image", "pull", "--platform", "linux/arm64", ref("test/multi:latest")});
  ASSERT_EQ(arm.exit_code, 0) << show(arm);
  EXPECT_TRUE(contains(arm.out, "Digest: " + f_->arm64_digest)) << show(arm);
  EXPECT_EQ(inspect(ref("test/multi:latest")).value("Platform", ""), "linux/arm64");

  std::string before = store_listing(state_root());
  CliResult none = vessel({"image", "pull", "--platform", "linux/s390x", ref("test/multi:latest")});
  EXPECT_EQ(none.exit_code, 1) << show(none);
  EXPECT_TRUE(contains(none.err, "linux/s390x")) << show(none);
  EXPECT_TRUE(contains(none.err, "linux/amd64") && contains(none.err, "linux/arm64"))
      << "the error should list the platforms there are: " << show(none);
  EXPECT_EQ(store_listing(state_root()), before);
}

// --- Malicious and broken images -----------------------------------------------------

TEST_F(ArchivePullTest, MaliciousOrBrokenImagesFailClearlyAndLeaveTheStoreUnchanged) {
  // Something in the store first, so "unchanged" is not about an empty one.
  pull(ref("test/multi:arm64"));
  struct Case {
    std::string reference;
    std::vector<std::string> says;  // each must be in stderr
  };
  CannedServer invalid_json(
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: " + std::string(mt::kOciManifest) +
      "\r\nContent-Length: 15\r\n\r\n{\"schemaVersion");
  ASSERT_GT(invalid_json.port(), 0);
  const std::vector<Case> cases = {
      {ref("test/evil:dotdot"), {"../escape-dotdot", "layer sha256:"}},
      {ref("test/evil:absolute"), {"escape-absolute", "layer sha256:"}},
      {ref("test/evil:symlink"), {"link/escape-symlink", "layer sha256:"}},
      {ref("test/evil:hardlink"), {"escape-hardlink", "layer sha256:"}},
      {ref("test/corrupt:digest"), {"digest mismatch"}},
      {ref("test/corrupt:short"), {"size mismatch"}},
      {ref("test/unknown:latest"), {"application/vnd.example.unknown.v1"}},
      {"127.0.0.1:" + std::to_string(invalid_json.port()) + "/test/json:latest",
       {"not valid JSON"}},
  };
  for (const auto& c : cases) {
    std::string before = store_listing(state_root());
    CliResult r = vessel({"image", "pull", "--progress", "none", c.reference});
    EXPECT_EQ(r.exit_code, 1) << c.reference << ": " << show(r);
    EXPECT_TRUE(contains(r.err, c.reference)) << "the error should name the image: " << show(r);
    for (const auto& s : c.says)
      EXPECT_TRUE(contains(r.err, s))
          << c.reference << ": stderr should say '" << s << "': " << show(r);
    EXPECT_EQ(store_listing(state_root()), before) << c.reference << " changed the store";
  }
  // Nothing escaped onto the host.
  for (const char* p : {"/escape-absolute", "/tmp/escape-symlink"})
    EXPECT_NE(::access(p, F_OK), 0) << p << " was created on the host";
  CliResult ls = vessel({"image", "ls", "-q"});
  EXPECT_EQ(ls.out.size(), 13u) << "only the first image should be listed: " << show(ls);
}

// --- Kill mid-pull --------------------------------------------------------------------------

TEST_F(ArchivePullTest, PullKilledMidwayThenPulledAgainCompletesConsistently) {
  const std::string image = ref("test/big:latest");
  sys::SpawnOptions so;
  so.argv = {paths().vessel, "--root", state_root(), "image", "pull", "--progress", "none", image};
  auto p = sys::Process::spawn(so);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  // Kill it once part of the big layer has arrived.
  const std::string ingest = state_root() + "/content/ingest";
  bool partial = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!partial && p->running() && std::chrono::steady_clock::now() < deadline) {
    auto names = sys::list_dir(ingest);
    for (const auto& n : names.ok() ? *names : std::vector<std::string>{}) {
      struct stat st;
      if (::stat((ingest + "/" + n).c_str(), &st) == 0 && st.st_size > (1 << 20) &&
          st.st_size < static_cast<off_t>(kBigLayerBytes))
        partial = true;
    }
    if (!partial) std::this_thread::sleep_for(2ms);
    (void)p->wait(0ms);
  }
  ASSERT_TRUE(partial) << "never saw a partial download to kill";
  ASSERT_TRUE(p->kill(SIGKILL).ok());
  auto st = p->wait(10s);
  ASSERT_TRUE(st.ok());

  CliResult ls = vessel({"image", "ls", "-q"});
  EXPECT_EQ(ls.exit_code, 0) << show(ls);
  EXPECT_EQ(ls.out, "") << "a killed pull must not list an image";

  CliResult again = vessel({"image", "pull", "--progress", "none", image});
  ASSERT_EQ(again.exit_code, 0) << show(again);
  EXPECT_TRUE(contains(again.out, f_->digests["test/big:latest"])) << show(again);
  json list = json::parse(vessel({"image", "ls", "--format", "json"}).out, nullptr, false);
  ASSERT_TRUE(list.is_array() && list.size() == 1) << list.dump(2);
  EXPECT_EQ(list[0].value("digest", ""), f_->digests["test/big:latest"]);

  CliResult prune = vessel({"image", "prune"});
  EXPECT_EQ(prune.exit_code, 0) << show(prune);
  for (const char* dir : {"/content/ingest", "/tmp"}) {
    auto names = sys::list_dir(state_root() + dir);
    ASSERT_TRUE(names.ok());
    EXPECT_TRUE(names->empty()) << dir << " still holds " << names->size() << " entries, e.g. "
                                << (names->empty() ? "" : names->front());
  }
  auto snaps = sys::list_dir(state_root() + "/snapshots");
  ASSERT_TRUE(snaps.ok());
  EXPECT_EQ(snaps->size(), 1u) << "one snapshot and no lock or temporary file";
  CliResult run_again = vessel({"image", "pull", "--progress", "none", image});
  EXPECT_EQ(run_again.exit_code, 0) << show(run_again);
}

// --- save and load ----------------------------------------------------------------------------

TEST_F(ArchiveTest, SaveRmLoadRunAndSkopeoReadsTheArchive) {
  const std::string image = ref("test/plain:latest");
  pull(image);
  const std::string archive = scratch_dir() + "/plain.tar";
  CliResult save = vessel({"image", "save", "-o", archive, image});
  ASSERT_EQ(save.exit_code, 0) << show(save);

  ASSERT_EQ(vessel({"image", "rm", image}).exit_code, 0);
  ASSERT_EQ(vessel({"image", "prune"}).exit_code, 0);
  auto blobs = sys::list_dir(state_root() + "/content/blobs/sha256");
  ASSERT_TRUE(blobs.ok());
  ASSERT_TRUE(blobs->empty()) << "prune should have emptied the store";

  CliResult load = vessel({"image", "load", "-i", archive});
  ASSERT_EQ(load.exit_code, 0) << show(load);
  EXPECT_TRUE(contains(load.out, "Loaded image: " + image)) << show(load);
  EXPECT_EQ(inspect(image).value("Digest", ""), f_->digests["test/plain:latest"])
      << "save -> load must keep the manifest digest";
  CliResult r = run_image(image, kSpecialCheck);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, kSpecialExpected) << show(r);

  // skopeo reads it as an oci-archive.
  if (auto skopeo = sys::find_program("skopeo")) {
    RunOptions o;
    o.timeout = 60s;
    CliResult si =
        run_process({*skopeo, "inspect", "--format", "{{.Digest}}", "oci-archive:" + archive}, o);
    EXPECT_EQ(si.exit_code, 0) << show(si);
    EXPECT_EQ(std::string(trim(si.out)), f_->digests["test/plain:latest"]) << show(si);
  }
}

TEST_F(ArchivePullTest, SaveToStdoutLoadsFromStdinAndRefusesATerminal) {
  pull(ref("test/multi:arm64"));
  CliResult out = vessel({"image", "save", ref("test/multi:arm64")});
  ASSERT_EQ(out.exit_code, 0) << show(out);
  ASSERT_GT(out.out.size(), 1024u) << show(out);

  std::string other = scratch_dir() + "/other-root";
  RunOptions in;
  in.stdin_data = out.out;
  in.timeout = kPullTimeout;
  CliResult load = run_cli({"--root", other, "image", "load"}, in);
  EXPECT_EQ(load.exit_code, 0) << show(load);
  EXPECT_TRUE(contains(load.out, "Loaded image: " + ref("test/multi:arm64"))) << show(load);

  RunOptions tty;
  tty.pty = true;
  tty.timeout = 30s;
  CliResult refused =
      run_cli({"--root", state_root(), "image", "save", ref("test/multi:arm64")}, tty);
  EXPECT_EQ(refused.exit_code, 1) << show(refused);
  EXPECT_TRUE(contains(refused.out, "refusing to write an image archive to a terminal"))
      << show(refused);
  EXPECT_LT(refused.out.size(), 1024u) << "no archive bytes on the terminal";
}

TEST_F(ArchiveTest, DockerSaveArchiveLoadsAndRuns) {
  // The layout of `docker save` before Docker 25: <id>/layer.tar, <hex>.json
  // and manifest.json, layers uncompressed.
  const std::string dir = scratch_dir() + "/docker-save";
  ASSERT_TRUE(sys::make_dirs(dir + "/1111/").ok());
  ASSERT_TRUE(sys::make_dirs(dir + "/2222/").ok());
  std::string config = config_json("amd64", {f_->base_tar.digest, f_->special_tar.digest});
  Digest config_digest = Digest::of(config);
  ASSERT_TRUE(sys::write_file_atomic(dir + "/" + config_digest.hex() + ".json", config).ok());
  for (const auto& [from, to] : {std::pair{f_->base_tar.path, dir + "/1111/layer.tar"},
                                 std::pair{f_->special_tar.path, dir + "/2222/layer.tar"}})
    ASSERT_TRUE(std::filesystem::copy_file(from, to)) << from;
  json manifest = json::array({{{"Config", config_digest.hex() + ".json"},
                                {"RepoTags", {"handmade/docker:v1"}},
                                {"Layers", {"1111/layer.tar", "2222/layer.tar"}}}});
  ASSERT_TRUE(sys::write_file_atomic(dir + "/manifest.json", manifest.dump()).ok());
  const std::string archive = scratch_dir() + "/docker.tar";
  ASSERT_EQ(run_tool({"/usr/bin/tar", "-C", dir, "-cf", archive, "."}), "");

  CliResult load = vessel({"image", "load", "-i", archive});
  ASSERT_EQ(load.exit_code, 0) << show(load);
  EXPECT_TRUE(contains(load.out, "Loaded image: handmade/docker:v1")) << show(load);
  json j = inspect("handmade/docker:v1");
  EXPECT_EQ(j.value("Id", ""), config_digest.str());
  EXPECT_TRUE(contains(j.dump(), std::string(mt::kOciLayerTar) + "\"")) << j.dump(2);
  CliResult r = run_image("handmade/docker:v1", kSpecialCheck);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, kSpecialExpected) << show(r);
}

TEST_F(ArchivePullTest, BadArchivesFailNamingTheInputAndWhatIsWrong) {
  const std::string dir = scratch_dir() + "/bad";
  ASSERT_TRUE(sys::make_dirs(dir + "/empty").ok());
  ASSERT_TRUE(sys::write_file_atomic(dir + "/empty/README", "nothing\n").ok());
  const std::string empty = scratch_dir() + "/x.tar";
  ASSERT_EQ(run_tool({"/usr/bin/tar", "-C", dir + "/empty", "-cf", empty, "."}), "");
  ASSERT_EQ(vessel({"image", "ls"}).exit_code, 0);  // creates the (empty) store
  std::string before = store_listing(state_root());
  CliResult r = vessel({"image", "load", "-i", empty});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, "'" + empty + "'")) << show(r);
  EXPECT_TRUE(contains(r.err,
                       "neither an OCI image layout nor a docker save archive: no "
                       "index.json or manifest.json"))
      << show(r);

  // A docker-save layer that does not match the config's diff_id.
  ASSERT_TRUE(sys::make_dirs(dir + "/mismatch/l").ok());
  std::string config = config_json("amd64", {Digest::of(std::string_view("other"))});
  ASSERT_TRUE(sys::write_file_atomic(dir + "/mismatch/c.json", config).ok());
  ASSERT_TRUE(std::filesystem::copy_file(f_->special_tar.path, dir + "/mismatch/l/layer.tar"));
  ASSERT_TRUE(sys::write_file_atomic(
                  dir + "/mismatch/manifest.json",
                  R"([{"Config":"c.json","RepoTags":["bad/layer:1"],"Layers":["l/layer.tar"]}])")
                  .ok());
  const std::string mismatch = scratch_dir() + "/mismatch.tar";
  ASSERT_EQ(run_tool({"/usr/bin/tar", "-C", dir + "/mismatch", "-cf", mismatch, "."}), "");
  r = vessel({"image", "load", "-i", mismatch});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, "l/layer.tar") && contains(r.err, "digest mismatch")) << show(r);

  // manifest.json pointing outside the archive.
  ASSERT_TRUE(sys::write_file_atomic(
                  dir + "/mismatch/manifest.json",
                  R"([{"Config":"../../etc/passwd","RepoTags":["bad/x:1"],"Layers":[]}])")
                  .ok());
  ASSERT_EQ(run_tool({"/usr/bin/tar", "-C", dir + "/mismatch", "-cf", mismatch, "."}), "");
  r = vessel({"image", "load", "-i", mismatch});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, "path leaves the archive")) << show(r);

  CliResult missing = vessel({"image", "save", "-o", scratch_dir() + "/none.tar", "no/such:1"});
  EXPECT_EQ(missing.exit_code, 1) << show(missing);
  EXPECT_TRUE(contains(missing.err, "no such image")) << show(missing);
  EXPECT_NE(::access((scratch_dir() + "/none.tar").c_str(), F_OK), 0);
  EXPECT_EQ(store_listing(state_root()), before);
}

}  // namespace
}  // namespace vessel::test
