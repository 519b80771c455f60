// `vessel image pull`, `vessel image ls` and `vessel run IMAGE` end to end.
//
// The fixture, built once per test suite: Debian's docker-registry on
// 127.0.0.1 at a free port, serving two OCI images made here from the busybox
// rootfs fixture with umoci and pushed with skopeo:
//   test/busybox:latest  one layer; Cmd `sh -c 'echo default-cmd'`,
//                        Env FROM_IMAGE=yes, WorkingDir /tmp
//   test/busybox:two     a second layer over it that deletes /bin/vi (a
//                        whiteout) and adds /etc/layer2
// The tests assert what a user sees (output, exit codes, what `image ls`
// lists) and, through the registry's access log, what was fetched. Every
// test has its own state root, so the ones that run an image pull it first.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/strings.h"
#include "images/local_registry.h"
#include "support/cli_runner.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Bounds on one CLI call: a pull of ~1 MiB from 127.0.0.1, and a run (a boot
// under TCG takes about a second, a pull may come first).
constexpr auto kPullTimeout = 60s;
constexpr auto kRunTimeout = 120s;
// A second pull of an image already present only resolves the manifest.
constexpr auto kRepullBound = 5s;
constexpr const char* kBlobFetch = "GET /v2/test/busybox/blobs/";
constexpr size_t kReportTail = 8 << 10;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string tail(const std::string& s, size_t bytes = kReportTail) {
  if (s.size() <= bytes) return s;
  return "[... " + std::to_string(s.size() - bytes) + " bytes before]" + s.substr(s.size() - bytes);
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t')
      ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string last_line(const std::string& text) {
  std::string last;
  for (const auto& line : split(text, '\n'))
    if (!trim(line).empty()) last = line;
  return last;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& line : split(text, '\n'))
    if (!trim(line).empty()) out.push_back(line);
  return out;
}

// Whether `token` is how a table shows `digest` shortened: a prefix of its
// hex (7 characters or more), with or without "sha256:".
bool is_short_digest(std::string token, const std::string& digest) {
  const std::string hex = digest.substr(digest.find(':') + 1);
  if (starts_with(token, "sha256:")) token = token.substr(7);
  return token.size() >= 7 && token.size() <= hex.size() && starts_with(hex, token);
}

std::string show(const CliResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout:\n" + tail(r.out) + "\n--- stderr:\n" + tail(r.err);
}

// Runs a fixture tool; "" when it exits 0, else the command and its output.
std::string run_tool(const std::vector<std::string>& argv, std::string* out = nullptr) {
  RunOptions o;
  o.timeout = 120s;
  CliResult r = run_process(argv, o);
  if (out) *out = r.out;
  if (r.exit_code == 0) return "";
  return shell_quote(argv) + ": " + show(r);
}

struct ImageFixture {
  std::string dir;
  std::optional<LocalRegistry> registry;
  std::string repo;                       // "127.0.0.1:<port>/test/busybox"
  std::string latest_digest, two_digest;  // the manifests' digests, as served
};

// Builds the OCI layout, starts the registry and pushes both tags; "" on
// success, else what failed.
std::string build_fixture(ImageFixture& f) {
  const std::string umoci = *sys::find_program("umoci");
  const std::string skopeo = *sys::find_program("skopeo");
  const std::string cp = sys::find_program("cp").value_or("/bin/cp");
  const std::string layout = f.dir + "/layout", one = f.dir + "/bundle1", two = f.dir + "/bundle2";
  const std::string latest = layout + ":latest";
  std::string err;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {umoci, "init", "--layout", layout},
           {umoci, "new", "--image", latest},
           {umoci, "unpack", "--image", latest, one},
           {cp, "-a", paths().rootfs + "/.", one + "/rootfs/"},
           {umoci, "repack", "--image", latest, one},
           {umoci, "config", "--image", latest, "--config.cmd=/bin/sh", "--config.cmd=-c",
            "--config.cmd=echo default-cmd", "--config.env=FROM_IMAGE=yes",
            "--config.workingdir=/tmp"},
           {umoci, "unpack", "--image", latest, two},
       }) {
    if (err = run_tool(argv); !err.empty()) return err;
  }
  // The second layer: a whiteout for /bin/vi (an applet symlink) and a file.
  if (::unlink((two + "/rootfs/bin/vi").c_str()) != 0)
    return "unlink '" + two + "/rootfs/bin/vi': " + std::strerror(errno);
  if (auto s = sys::write_file_atomic(two + "/rootfs/etc/layer2", "layer2\n"); !s.ok())
    return s.error().to_string();
  if (err = run_tool({umoci, "repack", "--image", layout + ":two", two}); !err.empty()) return err;

  auto reg = LocalRegistry::start(f.dir + "/registry");
  if (!reg.ok()) return reg.error().to_string();
  f.registry.emplace(std::move(*reg));
  f.repo = f.registry->host() + "/test/busybox";
  for (const char* tag : {"latest", "two"}) {
    std::string dest = "docker://" + f.repo + ":" + tag;
    err = run_tool({skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
                    "oci:" + layout + ":" + tag, dest});
    if (!err.empty()) return err;
    std::string out;
    err = run_tool({skopeo, "--insecure-policy", "inspect", "--tls-verify=false", "--format",
                    "{{.Digest}}", dest},
                   &out);
    if (!err.empty()) return err;
    std::string digest(trim(out));
    if (!starts_with(digest, "sha256:") || digest.size() != 71)
      return "skopeo inspect " + dest + ": not a digest: '" + digest + "'";
    (std::string(tag) == "latest" ? f.latest_digest : f.two_digest) = digest;
  }
  return "";
}

class ImageTest : public VmTest {
 public:
  static void SetUpTestSuite() {
    skip_reason_.clear();
    setup_error_.clear();
    if (::access(kDockerRegistryBin, X_OK) != 0) {
      skip_reason_ = std::string(kDockerRegistryBin) + " is not installed (docker-registry)";
      return;
    }
    for (const char* tool : {"umoci", "skopeo"}) {
      if (!sys::find_program(tool)) {
        skip_reason_ = std::string(tool) + " is not in PATH (install " + tool + ")";
        return;
      }
    }
    if (::access((paths().rootfs + "/bin/busybox").c_str(), X_OK) != 0) {
      skip_reason_ = "no busybox rootfs at '" + paths().rootfs +
                     "' (build the busybox-rootfs target or set VESSEL_TEST_ROOTFS)";
      return;
    }
    const char* tmp = ::getenv("TMPDIR");
    auto dir = sys::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "vessel-image-test-");
    if (!dir.ok()) {
      setup_error_ = dir.error().to_string();
      return;
    }
    fixture_ = new ImageFixture;
    fixture_->dir = *dir;
    auto start = Clock::now();
    setup_error_ = build_fixture(*fixture_);
    std::fprintf(stderr, "image fixture: %s in %.1f s%s%s\n",
                 setup_error_.empty() ? "built" : "FAILED",
                 std::chrono::duration<double>(Clock::now() - start).count(),
                 fixture_->repo.empty() ? "" : ", registry at ", fixture_->repo.c_str());
  }

  static void TearDownTestSuite() {
    if (!fixture_) return;
    if (fixture_->registry) fixture_->registry->stop();  // kills and reaps it
    (void)sys::remove_tree(fixture_->dir);
    delete fixture_;
    fixture_ = nullptr;
  }

 protected:
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "image tests cannot run: " << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << "building the image fixture failed: " << setup_error_;
    VmTest::SetUp();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const auto& [command, r] : calls_)
        std::fprintf(stderr, "--- %s\n    %s\n", command.c_str(), show(r).c_str());
      if (fixture_ && fixture_->registry)
        std::fprintf(stderr, "--- registry log:\n%s\n",
                     tail(fixture_->registry->log(), 4 << 10).c_str());
    }
    VmTest::TearDown();
  }

  const ImageFixture& f() const { return *fixture_; }
  std::string ref(const std::string& tag) const { return fixture_->repo + ":" + tag; }
  std::string ref_at(const std::string& digest) const { return fixture_->repo + "@" + digest; }
  size_t blob_fetches() const { return fixture_->registry->count_requests(kBlobFetch); }
  size_t manifest_requests() const {
    return fixture_->registry->count_requests("GET /v2/test/busybox/manifests/") +
           fixture_->registry->count_requests("HEAD /v2/test/busybox/manifests/");
  }

  /// Runs `vessel --root <state root> ARGS...`, then (unless a VM of this
  /// test is meant to be running) the leak check.
  CliResult vessel(const std::vector<std::string>& args,
                   std::chrono::seconds timeout = kPullTimeout, bool leak_check = true) {
    std::vector<std::string> argv{"--root", state_root()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions o;
    o.timeout = timeout;
    o.env = {"VESSEL_TEST_STATE_ROOT=" + state_root()};
    CliResult r = run_cli(argv, o);
    std::string command = "vessel " + shell_quote(argv);
    calls_.push_back({command, r});
    EXPECT_FALSE(r.timed_out) << command << ": did not finish within " << timeout.count() << " s";
    if (leak_check) expect_no_leaks();
    return r;
  }

  /// Pulls `reference`, asserting success.
  void pull(const std::string& reference) {
    CliResult r = vessel({"image", "pull", reference});
    ASSERT_EQ(r.exit_code, 0) << "image pull " << reference << ": " << show(r);
  }

  /// `image ls --format json`, parsed; a failure is recorded if it is not
  /// an array.
  nlohmann::json image_list() {
    CliResult r = vessel({"image", "ls", "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << show(r);
    auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_array()) << "image ls --format json is not a JSON array: " << show(r);
    return j.is_array() ? j : nlohmann::json::array();
  }

  /// The entry of `list` whose "name" is the fixture's repository (bare or
  /// with ":tag"), or null.
  nlohmann::json find_image(const nlohmann::json& list, const std::string& tag) const {
    for (const auto& e : list) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
      std::string name = e["name"];
      if (name == ref(tag) || (name == fixture_->repo && e.value("tag", tag) == tag)) return e;
    }
    return nullptr;
  }

  inline static ImageFixture* fixture_ = nullptr;
  inline static std::string skip_reason_, setup_error_;

 private:
  std::vector<std::pair<std::string, CliResult>> calls_;
};

// Pulls, listings and errors: no VM boots (except by a bug), so these run
// where QEMU cannot.
class ImagePullTest : public ImageTest {
 protected:
  bool needs_vm() const override { return false; }
};

using ImageRunTest = ImageTest;

// --- Pull and list ------------------------------------------------------------

TEST_F(ImagePullTest, PullByTagPrintsTheDigestAndImageLsListsIt) {
  CliResult r = vessel({"image", "pull", "--progress", "plain", ref("latest")});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_TRUE(contains(r.out, f().latest_digest))
      << "stdout should name the digest " << f().latest_digest << ": " << show(r);
  // As Docker prints it: "Digest: sha256:…" then the reference.
  EXPECT_TRUE(contains(r.out, "Digest: " + f().latest_digest)) << show(r);
  EXPECT_TRUE(contains(last_line(r.out), f().repo)) << show(r);

  CliResult ls = vessel({"image", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << show(ls);
  std::vector<std::string> rows = lines(ls.out);
  ASSERT_FALSE(rows.empty()) << show(ls);
  std::vector<std::string> header = words(rows[0]);
  // Docker's columns: IMAGE ID is the short config digest.
  EXPECT_EQ(header, (std::vector<std::string>{"REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"}))
      << show(ls);
  std::vector<std::string> row;
  for (size_t i = 1; i < rows.size(); ++i) {
    auto w = words(rows[i]);
    if (w.size() >= 2 && w[0] == f().repo && w[1] == "latest") row = w;
  }
  ASSERT_FALSE(row.empty()) << "no row for " << f().repo << " latest: " << show(ls);
  ASSERT_GE(row.size(), 4u) << rows[0];

  nlohmann::json list = image_list();
  nlohmann::json image = find_image(list, "latest");
  ASSERT_FALSE(image.is_null()) << "no entry named " << ref("latest") << " in " << list.dump(2);
  ASSERT_TRUE(image.contains("digest")) << image.dump(2);
  EXPECT_EQ(image["digest"], f().latest_digest) << image.dump(2);
  ASSERT_TRUE(image.contains("config") && image["config"].is_string()) << image.dump(2);
  std::string config = image["config"].get<std::string>();
  EXPECT_TRUE(is_short_digest(row[2], config))
      << "'" << row[2] << "' is not a short form of " << config;

  CliResult quiet = vessel({"image", "ls", "-q"});
  EXPECT_EQ(quiet.exit_code, 0) << show(quiet);
  EXPECT_EQ(lines(quiet.out).size(), 1u) << "one image, one line: " << show(quiet);
}

TEST_F(ImagePullTest, PullingAgainFetchesNoBlobAndStillPrintsTheDigest) {
  auto t0 = Clock::now();
  CliResult first = vessel({"image", "pull", ref("latest")});
  auto first_took = Clock::now() - t0;
  ASSERT_EQ(first.exit_code, 0) << show(first);
  size_t blobs = blob_fetches();

  t0 = Clock::now();
  CliResult again = vessel({"image", "pull", ref("latest")});
  auto again_took = Clock::now() - t0;
  EXPECT_EQ(again.exit_code, 0) << show(again);
  EXPECT_TRUE(contains(again.out, f().latest_digest)) << show(again);
  EXPECT_EQ(blob_fetches(), blobs) << "the second pull downloaded blobs again; registry log:\n"
                                   << tail(f().registry->log(), 4 << 10);
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  EXPECT_LT(again_took, kRepullBound)
      << "second pull took " << ms(again_took) << " ms (first " << ms(first_took) << " ms)";
  EXPECT_EQ(image_list().size(), 1u) << "pulling twice should list the image once";
}

TEST_F(ImagePullTest, PullAndImagesAliasesWork) {
  CliResult r = vessel({"pull", ref("two")});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_TRUE(contains(r.out, f().two_digest)) << show(r);
  CliResult ls = vessel({"images"});
  EXPECT_EQ(ls.exit_code, 0) << show(ls);
  bool listed = false;
  for (const auto& line : lines(ls.out)) {
    auto w = words(line);
    listed |= w.size() >= 2 && w[0] == f().repo && w[1] == "two";
  }
  EXPECT_TRUE(listed) << "`images` does not list " << ref("two") << ": " << show(ls);
}

TEST_F(ImagePullTest, PullByDigestPrintsThatDigestAndListsIt) {
  CliResult r = vessel({"image", "pull", ref_at(f().two_digest)});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_TRUE(contains(r.out, f().two_digest)) << show(r);
  bool listed = false;
  for (const auto& e : image_list())
    listed |= e.is_object() && e.value("digest", "") == f().two_digest;
  EXPECT_TRUE(listed) << "no image with digest " << f().two_digest << " in image ls";
}

TEST_F(ImagePullTest, PushedCopyPullsBackWithTheSameDigestAndPruneFreesUnusedData) {
  ASSERT_EQ(vessel({"image", "pull", ref("latest")}).exit_code, 0);
  std::string copy = f().registry->host() + "/test/pushed:copy";
  CliResult t = vessel({"image", "tag", ref("latest"), copy});
  ASSERT_EQ(t.exit_code, 0) << show(t);
  CliResult p = vessel({"image", "push", "--progress", "plain", copy});
  ASSERT_EQ(p.exit_code, 0) << show(p);
  EXPECT_TRUE(contains(p.out, "Digest: " + f().latest_digest)) << show(p);

  // Pull the pushed copy into a second, empty state root.
  std::string other = scratch_dir() + "/other-root";
  CliResult back = run_cli({"--root", other, "image", "pull", copy});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_TRUE(contains(back.out, "Digest: " + f().latest_digest)) << back.out;

  CliResult inspect = vessel({"image", "inspect", copy});
  ASSERT_EQ(inspect.exit_code, 0) << show(inspect);
  auto j = nlohmann::json::parse(inspect.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << inspect.out;
  EXPECT_EQ(j[0].value("Digest", ""), f().latest_digest);

  // Removing one name keeps the data; removing the last lets prune free it.
  ASSERT_EQ(vessel({"image", "rm", copy}).exit_code, 0);
  CliResult kept = vessel({"image", "prune"});
  ASSERT_EQ(kept.exit_code, 0) << show(kept);
  EXPECT_TRUE(contains(kept.out, "Deleted 0 blobs")) << show(kept);
  ASSERT_EQ(vessel({"image", "rm", ref("latest")}).exit_code, 0);
  CliResult freed = vessel({"image", "prune"});
  ASSERT_EQ(freed.exit_code, 0) << show(freed);
  EXPECT_FALSE(contains(freed.out, "Deleted 0 blobs")) << show(freed);
  EXPECT_EQ(image_list().size(), 0u);
  EXPECT_EQ(vessel({"image", "rm", ref("latest")}).exit_code, 1);
}

// --- Errors -----------------------------------------------------------------------

TEST_F(ImagePullTest, MissingTagFailsWithExit1NamingTheReference) {
  CliResult r = vessel({"image", "pull", ref("nope")});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, ref("nope"))) << show(r);
  EXPECT_EQ(image_list().size(), 0u) << "a failed pull should leave no image";
}

TEST_F(ImagePullTest, MissingRepositoryFailsWithExit1NamingTheReference) {
  std::string missing = f().registry->host() + "/test/nosuch:latest";
  CliResult r = vessel({"image", "pull", missing});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, missing)) << show(r);
}

TEST_F(ImagePullTest, HttpsSchemeAgainstAnHttpRegistryFails) {
  CliResult r = vessel({"image", "pull", "--scheme", "https", ref("latest")});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_TRUE(contains(r.err, f().registry->host())) << show(r);
  EXPECT_EQ(image_list().size(), 0u);
}

TEST_F(ImagePullTest, RunWithPullNeverOfAnImageNotPulledFails) {
  size_t blobs = blob_fetches(), manifests = manifest_requests();
  CliResult r = run({"--rm", "--pull", "never", ref("latest"), "echo", "ran"});
  EXPECT_NE(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "") << "nothing should have run";
  EXPECT_TRUE(contains(r.err, ref("latest"))) << "the message should name the image: " << show(r);
  EXPECT_EQ(manifest_requests(), manifests) << "--pull never contacted the registry";
  EXPECT_EQ(blob_fetches(), blobs) << "--pull never downloaded blobs";
  EXPECT_EQ(image_list().size(), 0u);
}

TEST_F(ImagePullTest, RunOfAMissingTagFailsNamingTheReference) {
  CliResult r = run({"--rm", ref("nope"), "echo", "ran"});
  EXPECT_NE(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "") << "nothing should have run";
  EXPECT_TRUE(contains(r.err, ref("nope"))) << show(r);
}

// --- Running an image: each boots a VM ------------------------------------------------

TEST_F(ImageRunTest, RunWithoutCommandPullsAndRunsTheImagesCmd) {
  RunOptions o;
  o.timeout = kRunTimeout;
  CliResult r = run({"--rm", ref("latest")}, o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(last_line(r.out), "default-cmd") << show(r);
  EXPECT_EQ(r.out, "default-cmd\n")
      << "stdout should be the container's alone (pull progress belongs on stderr): " << show(r);
  EXPECT_FALSE(find_image(image_list(), "latest").is_null()) << "run did not keep what it pulled";
}

TEST_F(ImageRunTest, ImageEnvAndWorkingDirApplyToTheGivenCommand) {
  pull(ref("latest"));
  RunOptions o;
  o.timeout = kRunTimeout;
  CliResult r =
      run({"--rm", "--pull", "never", ref("latest"), "sh", "-c", "echo $FROM_IMAGE; pwd"}, o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "yes\n/tmp\n") << show(r);
}

TEST_F(ImageRunTest, EnvAndWorkdirFlagsOverrideTheImages) {
  pull(ref("latest"));
  RunOptions o;
  o.timeout = kRunTimeout;
  CliResult r = run({"--rm", "--pull", "never", "-e", "FROM_IMAGE=flag", "-w", "/etc",
                     ref("latest"), "sh", "-c", "echo $FROM_IMAGE; pwd"},
                    o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "flag\n/etc\n") << show(r);
}

TEST_F(ImageRunTest, SecondLayerWhiteoutHidesTheDeletedFile) {
  RunOptions o;
  o.timeout = kRunTimeout;
  // Says what is wrong before the exit status does.
  CliResult r = run({"--rm", ref("two"), "sh", "-c",
                     "test -e /etc/layer2 || echo 'no /etc/layer2'; "
                     "test -e /bin/vi -o -L /bin/vi && echo '/bin/vi is still there'; "
                     "test -e /bin/ls || echo 'no /bin/ls (first layer lost)'; "
                     "test -e /etc/layer2 && ! test -e /bin/vi && ! test -L /bin/vi"},
                    o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "") << show(r);
}

TEST_F(ImageRunTest, ContainersOfOneImageDoNotSeeEachOthersWrites) {
  pull(ref("latest"));
  // A writes /x and waits; meanwhile B runs from the same image, looks for
  // /x and writes its own; then A reads its /x back.
  CliResult b;
  RunOptions o;
  o.timeout = 2 * kRunTimeout;
  o.steps = {{.await = "written\n", .write = "\n", .call = [&] {
                b = vessel({"run", "--rm", "--pull", "never", ref("latest"), "sh", "-c",
                            "if test -e /x; then echo seen; cat /x; else echo absent; fi; "
                            "echo b >/x; cat /x"},
                           kRunTimeout, /*leak_check=*/false);  // A's VM is running
              }}};
  CliResult a = run({"--rm", "-i", "--pull", "never", ref("latest"), "sh", "-c",
                     "echo a >/x; echo written; read line; cat /x"},
                    o);
  EXPECT_EQ(a.steps_done, 1u) << "container A never wrote /x: " << show(a);
  EXPECT_EQ(a.exit_code, 0) << show(a);
  EXPECT_EQ(a.out, "written\na\n") << show(a);
  EXPECT_EQ(b.exit_code, 0) << show(b);
  EXPECT_EQ(b.out, "absent\nb\n") << "container B saw A's write: " << show(b);

  // Nor does a later container see either.
  RunOptions later;
  later.timeout = kRunTimeout;
  CliResult c = run(
      {"--rm", "--pull", "never", ref("latest"), "sh", "-c", "test -e /x && cat /x || echo absent"},
      later);
  EXPECT_EQ(c.exit_code, 0) << show(c);
  EXPECT_EQ(c.out, "absent\n") << show(c);
}

TEST_F(ImageRunTest, RunByDigestRunsThatImage) {
  pull(ref_at(f().two_digest));
  RunOptions o;
  o.timeout = kRunTimeout;
  CliResult r = run({"--rm", "--pull", "never", ref_at(f().two_digest), "cat", "/etc/layer2"}, o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, "layer2\n") << show(r);
}

TEST_F(ImageRunTest, PullAlwaysAsksTheRegistryButFetchesNoBlobItHas) {
  pull(ref("latest"));
  size_t blobs = blob_fetches(), manifests = manifest_requests();
  RunOptions o;
  o.timeout = kRunTimeout;
  CliResult r = run({"--rm", "--pull", "always", ref("latest"), "echo", "ran"}, o);
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(last_line(r.out), "ran") << show(r);
  EXPECT_GT(manifest_requests(), manifests) << "--pull always did not ask the registry";
  EXPECT_EQ(blob_fetches(), blobs) << "--pull always downloaded blobs already present";
}

}  // namespace
}  // namespace vessel::test
