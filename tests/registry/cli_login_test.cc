// `vessel registry login|logout|ls` run as a user would, against Debian's
// docker-registry on 127.0.0.1 with TLS (self-signed) and htpasswd auth.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry/http.h"
#include "support/cli_runner.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel {
namespace {

using test::run_cli;

constexpr const char* kRegistryBin = "/usr/bin/docker-registry";

int free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

Status run(const std::vector<std::string>& argv, const std::string& out_path = "") {
  sys::SpawnOptions o;
  o.argv = argv;
  UniqueFd out;
  if (!out_path.empty()) {
    VESSEL_ASSIGN_OR_RETURN(out, sys::open_fd(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    o.fds.push_back({1, out.get()});
  }
  VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait(std::chrono::seconds(60)));
  if (st.shell_code() != 0)
    return Error(ErrorCode::kInternal, argv[0] + " failed: " + st.to_string());
  return ok_status();
}

class RegistryLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TMPDIR");
    auto d = sys::make_temp_dir(t && *t ? t : "/tmp", "vessel-login-test-");
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    dir_ = *d;
    root_ = dir_ + "/root";
  }
  void TearDown() override {
    if (process_ && process_->running()) {
      (void)process_->kill(SIGKILL);
      (void)process_->wait(std::chrono::seconds(10));
    }
    ASSERT_TRUE(sys::remove_tree(dir_).ok());
  }

  // Starts docker-registry with TLS and htpasswd (user "user", password "pass").
  void start_registry() {
    if (::access(kRegistryBin, X_OK) != 0) GTEST_SKIP() << kRegistryBin << " is not installed";
    auto openssl = sys::find_program("openssl");
    auto htpasswd = sys::find_program("htpasswd");
    if (!openssl) GTEST_SKIP() << "openssl is not installed";
    if (!htpasswd) GTEST_SKIP() << "htpasswd (apache2-utils) is not installed";
    std::string cert = dir_ + "/cert.pem", key = dir_ + "/key.pem", pw = dir_ + "/htpasswd";
    Status s = run({*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-days", "1", "-keyout", key, "-out", cert});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    s = run({*htpasswd, "-Bbn", "user", "pass"}, pw);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    port_ = free_port();
    std::string yml =
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        dir_ + "/data\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) +
        "\n  tls:\n    certificate: " + cert + "\n    key: " + key +
        "\nauth:\n  htpasswd:\n    realm: vessel-test\n    path: " + pw + "\n";
    ASSERT_TRUE(sys::write_file_atomic(dir_ + "/config.yml", yml).ok());
    auto log = sys::open_fd(dir_ + "/registry.log", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(log.ok());
    sys::SpawnOptions o;
    o.argv = {kRegistryBin, "serve", dir_ + "/config.yml"};
    o.fds = {{1, log->get()}, {2, log->get()}};
    auto p = sys::Process::spawn(o);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    process_ = std::move(*p);
    registry::HttpClient http(
        registry::HttpOptions{.insecure_tls = true, .connect_timeout_seconds = 2});
    for (int i = 0; i < 150; ++i) {
      ASSERT_FALSE(process_->try_wait()) << "docker-registry exited";
      auto r = http.perform(registry::HttpRequest{.url = "https://" + host() + "/v2/"});
      if (r.ok() && r->status != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "docker-registry did not answer";
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

  test::CliResult vessel(std::vector<std::string> args, std::optional<std::string> in = {}) {
    args.insert(args.begin(), {"--root", root_});
    test::RunOptions o;
    o.stdin_data = std::move(in);
    o.timeout = std::chrono::seconds(60);
    return run_cli(args, o);
  }

  test::CliResult login(const std::string& password) {
    return vessel({"registry", "login", "--scheme", "https", "--tls-verify=false", "-u", "user",
                   "--password-stdin", host()},
                  password);
  }

  std::string dir_, root_;
  int port_ = 0;
  std::optional<sys::Process> process_;
};

TEST_F(RegistryLoginTest, LoginLsLogout) {
  start_registry();
  if (IsSkipped() || HasFatalFailure()) return;

  auto bad = login("wrong\n");
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("incorrect username or password"), std::string::npos) << bad.err;
  EXPECT_FALSE(sys::read_file(root_ + "/config.json").ok());

  auto good = login("pass\n");
  ASSERT_EQ(good.exit_code, 0) << good.err;
  EXPECT_NE(good.out.find("Login Succeeded"), std::string::npos) << good.out;
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto text = sys::read_file(root_ + "/config.json");
  ASSERT_TRUE(text.ok());
  auto doc = nlohmann::json::parse(*text);
  ASSERT_TRUE(doc["auths"].contains(host())) << *text;
  EXPECT_EQ(doc["auths"][host()]["auth"], "dXNlcjpwYXNz");  // base64("user:pass")

  auto ls = vessel({"registry", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(host()), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("user"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find("pass"), std::string::npos) << ls.out;
  auto json = vessel({"registry", "ls", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto arr = nlohmann::json::parse(json.out);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["server"], host());
  EXPECT_EQ(arr[0]["username"], "user");

  auto out = vessel({"registry", "logout", host()});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  auto again = vessel({"registry", "logout", host()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("not logged in to '" + host() + "'"), std::string::npos) << again.err;
  ls = vessel({"registry", "ls", "--format", "json"});
  EXPECT_EQ(ls.out, "[]\n");
}

TEST_F(RegistryLoginTest, PromptsForThePasswordWithoutEcho) {
  start_registry();
  if (IsSkipped() || HasFatalFailure()) return;
  test::RunOptions o;
  o.pty = true;
  o.timeout = std::chrono::seconds(60);
  o.steps = {{.await = "Password: ", .write = "pass\n"}};
  auto r = run_cli({"--root", root_, "registry", "login", "--scheme", "https", "--tls-verify=false",
                    "-u", "user", host()},
                   o);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.steps_done, 1u);
  EXPECT_NE(r.out.find("Login Succeeded"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("pass"), std::string::npos) << "password echoed: " << r.out;
  EXPECT_TRUE(sys::read_file(root_ + "/config.json").ok());
}

TEST_F(RegistryLoginTest, ControlCAtThePasswordPromptLeavesEchoOn) {
  // A shell runs the login on the terminal and then `stty -a`, which shows
  // whether echo is on once the login has died of the ^C. The shell traps
  // SIGINT with a handler (not ignored, so the login still gets the default).
  test::RunOptions o;
  o.pty = true;
  o.timeout = std::chrono::seconds(60);
  o.steps = {{.await = "Password: ", .write = "\x03"}};
  std::string script =
      "trap : INT; \"$0\" --root \"$1\" registry login -u user 127.0.0.1:1; "
      "echo \"rc=$?\"; stty -a";
  auto r = test::run_process({"/bin/sh", "-c", script, test::paths().vessel, root_}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.steps_done, 1u) << r.out;
  EXPECT_NE(r.out.find("rc=130"), std::string::npos) << "^C should end the login: " << r.out;
  EXPECT_EQ(r.out.find("-echo "), std::string::npos) << "echo left off: " << r.out;
  EXPECT_NE(r.out.find(" echo "), std::string::npos) << r.out;
}

TEST_F(RegistryLoginTest, ErrorsWithoutARegistry) {
  auto ls = vessel({"registry", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("SERVER"), std::string::npos);
  auto out = vessel({"registry", "logout", "127.0.0.1:1"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.err.find("not logged in"), std::string::npos) << out.err;
  auto no_server = vessel({"registry", "login", "-u", "user", "--password-stdin"}, "pass\n");
  EXPECT_NE(no_server.exit_code, 0);
  // stdin is not a terminal and there is no --password-stdin: no prompt.
  auto no_tty = vessel({"registry", "login", "-u", "user", "127.0.0.1:1"});
  EXPECT_EQ(no_tty.exit_code, 1);
  EXPECT_NE(no_tty.err.find("--password-stdin"), std::string::npos) << no_tty.err;
  // Nothing listens: a clear error, nothing stored.
  auto down = vessel({"registry", "login", "-u", "user", "--password-stdin", "127.0.0.1:1"}, "p\n");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_FALSE(down.err.empty());
  EXPECT_FALSE(sys::read_file(root_ + "/config.json").ok());
}

}  // namespace
}  // namespace vessel
