// The registry client against a real registry: Debian's docker-registry
// (distribution 2.8) on 127.0.0.1, plain HTTP and TLS with basic auth.
//
// Token auth is tested against a fake registry in this file instead: making
// docker-registry trust a token server means minting JWTs signed with a key
// in its rootcertbundle, which would put a JWT signer in the test. The fake
// answers 401 with a Bearer challenge, serves a token from its realm and
// accepts requests that carry it: the client's side of the protocol.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <atomic>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "image/digest.h"
#include "registry/client.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::registry {
namespace {

using image::Digest;

constexpr const char* kRegistryBin = "/usr/bin/docker-registry";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kOciLayer = "application/vnd.oci.image.layer.v1.tar";

// A port that was free a moment ago: bind port 0, read it, close.
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

std::string temp_parent() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

// Runs a program to completion with stdout into `out_path` (if set).
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

struct RegistryConfig {
  std::string cert, key, htpasswd;  // TLS and basic auth when set
};

// A docker-registry process on 127.0.0.1 with its storage under `dir`.
class RegistryServer {
 public:
  Status start(const std::string& dir, const RegistryConfig& c) {
    port_ = free_port();
    std::string yml =
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        dir + "/data\n" + "http:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (!c.cert.empty()) yml += "  tls:\n    certificate: " + c.cert + "\n    key: " + c.key + "\n";
    if (!c.htpasswd.empty())
      yml += "auth:\n  htpasswd:\n    realm: vessel-test\n    path: " + c.htpasswd + "\n";
    VESSEL_TRY(sys::write_file_atomic(dir + "/config.yml", yml));
    log_path_ = dir + "/registry.log";
    VESSEL_ASSIGN_OR_RETURN(UniqueFd log,
                            sys::open_fd(log_path_, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    sys::SpawnOptions o;
    o.argv = {kRegistryBin, "serve", dir + "/config.yml"};
    o.fds = {{1, log.get()}, {2, log.get()}};
    VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
    process_ = std::move(p);
    // Ready when /v2/ answers at all (200, or 401 with auth on).
    HttpClient http(HttpOptions{.insecure_tls = true, .connect_timeout_seconds = 2});
    std::string url = std::string(c.cert.empty() ? "http" : "https") +
                      "://127.0.0.1:" + std::to_string(port_) + "/v2/";
    for (int i = 0; i < 150; ++i) {
      if (process_->try_wait())
        return Error(ErrorCode::kUnavailable, "docker-registry exited: " + log_text());
      auto r = http.perform(HttpRequest{.url = url});
      if (r.ok() && r->status != 0) return ok_status();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error(ErrorCode::kTimeout, "docker-registry did not answer: " + log_text());
  }
  void stop() {
    if (process_ && process_->running()) {
      (void)process_->kill(SIGKILL);
      (void)process_->wait(std::chrono::seconds(10));
    }
    process_.reset();
  }
  ~RegistryServer() { stop(); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log_text() const {
    auto t = sys::read_file(log_path_, 1 << 20);
    return t.ok() ? *t : "";
  }

 private:
  int port_ = 0;
  std::string log_path_;
  std::optional<sys::Process> process_;
};

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = sys::make_temp_dir(temp_parent(), "vessel-registry-test-");
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    dir_ = *d;
  }
  void TearDown() override {
    server_.stop();
    ASSERT_TRUE(sys::remove_tree(dir_).ok());
  }

  void start_registry(const RegistryConfig& c = {}) {
    if (::access(kRegistryBin, X_OK) != 0) GTEST_SKIP() << kRegistryBin << " is not installed";
    ASSERT_TRUE(sys::make_dirs(dir_ + "/registry").ok());
    Status s = server_.start(dir_ + "/registry", c);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
  }

  std::string write(const std::string& name, const std::string& data) {
    std::string p = dir_ + "/" + name;
    EXPECT_TRUE(sys::write_file_atomic(p, data).ok());
    return p;
  }

  // Pushes a config blob, a layer blob and an OCI manifest tagged `tag`;
  // returns the manifest bytes.
  std::string push_image(RegistryClient& c, const std::string& repo, const std::string& tag) {
    config_ = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    layer_.clear();
    for (int i = 0; i < 5000; ++i)
      layer_ += static_cast<char>('a' + i % 26);
    Digest cd = Digest::of(config_), ld = Digest::of(layer_);
    Status s = c.push_blob(repo, cd, write("config", config_));
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    s = c.push_blob(repo, ld, write("layer", layer_));
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    nlohmann::json m = {
        {"schemaVersion", 2},
        {"mediaType", kOciManifest},
        {"config", {{"mediaType", kOciConfig}, {"digest", cd.str()}, {"size", config_.size()}}},
        {"layers", {{{"mediaType", kOciLayer}, {"digest", ld.str()}, {"size", layer_.size()}}}}};
    std::string bytes = m.dump();
    s = c.put_manifest(repo, tag, bytes, kOciManifest);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return bytes;
  }

  std::string dir_;
  RegistryServer server_;
  std::string config_, layer_;
};

TEST_F(RegistryTest, PushThenPullByTagAndDigest) {
  start_registry();
  auto c = RegistryClient::create({.host = server_.host(), .chunk_size = 1024});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base_url(), "http://" + server_.host());
  std::string manifest = push_image(*c, "vessel/test", "v1");
  Digest md = Digest::of(manifest);

  auto by_tag = c->get_manifest("vessel/test", "v1", {kOciManifest});
  ASSERT_TRUE(by_tag.ok()) << by_tag.error().to_string();
  EXPECT_EQ(by_tag->bytes, manifest);
  EXPECT_EQ(by_tag->media_type, kOciManifest);
  EXPECT_EQ(by_tag->digest, md);
  auto by_digest = c->get_manifest("vessel/test", md.str(), {kOciManifest});
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().to_string();
  EXPECT_EQ(by_digest->bytes, manifest);

  Digest ld = Digest::of(layer_);
  auto size = c->head_blob("vessel/test", ld);
  ASSERT_TRUE(size.ok()) << size.error().to_string();
  EXPECT_EQ(*size, std::optional<int64_t>(layer_.size()));
  auto absent = c->head_blob("vessel/test", Digest::of(std::string("absent")));
  ASSERT_TRUE(absent.ok()) << absent.error().to_string();
  EXPECT_FALSE(absent->has_value());

  std::string dest = dir_ + "/layer.download";
  int64_t last = 0, total = 0;
  Status s = c->fetch_blob("vessel/test", ld, static_cast<int64_t>(layer_.size()), dest,
                           [&](int64_t n, int64_t t) { last = n, total = t; });
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(last, static_cast<int64_t>(layer_.size()));
  EXPECT_EQ(total, last);
  auto got = sys::read_file(dest);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, layer_);
  // Pushing again finds the blob and skips the upload.
  s = c->push_blob("vessel/test", ld, dir_ + "/layer");
  EXPECT_TRUE(s.ok()) << s.error().to_string();
}

TEST_F(RegistryTest, WrongExpectedSizeFailsAndRemovesTheFile) {
  start_registry();
  auto c = RegistryClient::create({.host = server_.host()});
  ASSERT_TRUE(c.ok());
  push_image(*c, "vessel/test", "v1");
  Digest ld = Digest::of(layer_);
  std::string dest = dir_ + "/layer.download";
  for (int64_t size :
       {static_cast<int64_t>(layer_.size()) - 1, static_cast<int64_t>(layer_.size()) + 1}) {
    Status s = c->fetch_blob("vessel/test", ld, size, dest);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), ErrorCode::kProtocol);
    EXPECT_NE(s.error().to_string().find("blob sha256:" + ld.short_hex() + "…: size mismatch"),
              std::string::npos)
        << s.error().to_string();
    EXPECT_NE(::access(dest.c_str(), F_OK), 0) << "partial file left behind";
  }
}

TEST_F(RegistryTest, MissingManifestAndBlobAreNotFound) {
  start_registry();
  auto c = RegistryClient::create({.host = server_.host()});
  ASSERT_TRUE(c.ok());
  push_image(*c, "vessel/test", "v1");
  auto m = c->get_manifest("vessel/test", "nope", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(m.error().to_string().find("vessel/test:nope"), std::string::npos);
  auto other = c->get_manifest("vessel/other", "v1", {kOciManifest});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kNotFound);
  Status s = c->fetch_blob("vessel/test", Digest::of(std::string("absent")), 6, dir_ + "/x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
}

TEST_F(RegistryTest, BasicAuthOverSelfSignedTls) {
  auto openssl = sys::find_program("openssl");
  auto htpasswd = sys::find_program("htpasswd");
  if (!openssl) GTEST_SKIP() << "openssl is not installed";
  if (!htpasswd) GTEST_SKIP() << "htpasswd (apache2-utils) is not installed: no bcrypt hashes";
  RegistryConfig rc{dir_ + "/cert.pem", dir_ + "/key.pem", dir_ + "/htpasswd"};
  Status s = run({*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                  "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days",
                  "1", "-keyout", rc.key, "-out", rc.cert});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  s = run({*htpasswd, "-Bbn", "user", "pass"}, rc.htpasswd);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  start_registry(rc);

  RegistryOptions base{.host = server_.host(), .scheme = Scheme::kHttps, .insecure_tls = true};
  {
    auto anon = RegistryClient::create(base);
    ASSERT_TRUE(anon.ok());
    auto m = anon->get_manifest("vessel/test", "v1", {kOciManifest});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(m.error().to_string().find("unauthorized"), std::string::npos)
        << m.error().to_string();
    auto wrong = base;
    wrong.credentials = Credentials{"user", "wrong"};
    auto w = RegistryClient::create(wrong);
    ASSERT_TRUE(w.ok());
    m = w->get_manifest("vessel/test", "v1", {kOciManifest});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code(), ErrorCode::kPermissionDenied);
  }
  auto with_creds = base;
  with_creds.credentials = Credentials{"user", "pass"};
  auto c = RegistryClient::create(with_creds);
  ASSERT_TRUE(c.ok());
  std::string manifest = push_image(*c, "vessel/test", "v1");
  auto m = c->get_manifest("vessel/test", "v1", {kOciManifest});
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->bytes, manifest);

  // Verification on, the system store: the self-signed certificate is refused.
  auto verify = with_creds;
  verify.insecure_tls = false;
  auto v = RegistryClient::create(verify);
  ASSERT_TRUE(v.ok());
  m = v->get_manifest("vessel/test", "v1", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(m.error().to_string().find("https://" + server_.host()), std::string::npos)
      << m.error().to_string();
  // Trusting the certificate as a CA file works.
  verify.ca_file = rc.cert;
  auto ca = RegistryClient::create(verify);
  ASSERT_TRUE(ca.ok());
  m = ca->get_manifest("vessel/test", "v1", {kOciManifest});
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->bytes, manifest);
}

// A minimal HTTP/1.1 server on 127.0.0.1 (one request per connection) whose
// replies come from `handler`.
struct FakeRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // names lowercased
};
class FakeServer {
 public:
  using Handler = std::function<std::string(const FakeRequest&)>;
  explicit FakeServer(Handler h) : handler_(std::move(h)) {
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
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  void loop() {
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
      FakeRequest r;
      auto lines = req.substr(0, req.find("\r\n\r\n"));
      size_t pos = 0;
      bool first = true;
      while (pos < lines.size()) {
        size_t end = lines.find("\r\n", pos);
        std::string line =
            lines.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        pos = end == std::string::npos ? lines.size() : end + 2;
        if (first) {
          first = false;
          auto s1 = line.find(' '), s2 = line.rfind(' ');
          r.method = line.substr(0, s1);
          r.target = line.substr(s1 + 1, s2 - s1 - 1);
          continue;
        }
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (char& ch : name)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      std::string resp = handler_(r);
      (void)sys::write_all(conn.get(), resp.data(), resp.size());
    }
  }

  Handler handler_;
  UniqueFd listen_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string reply(int status, const std::string& body,
                  const std::vector<std::string>& headers = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nConnection: close\r\n";
  for (const auto& h : headers)
    r += h + "\r\n";
  return r + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(FakeRegistryTest, BearerTokenFlowRetriesAndDigestChecks) {
  const std::string manifest = R"({"schemaVersion":2})";
  const std::string blob = "real blob content";
  std::mutex mu;
  std::map<std::string, int> hits;
  int port = 0;
  FakeServer server([&](const FakeRequest& r) {
    std::lock_guard lock(mu);
    std::string path = r.target.substr(0, r.target.find('?'));
    ++hits[path];
    if (path == "/token") {
      hits["token-query:" + r.target.substr(r.target.find('?') + 1)]++;
      bool basic = r.headers.count("authorization") &&
                   r.headers.at("authorization") == basic_authorization({"user", "pass"});
      return reply(basic ? 200 : 401, R"({"token":"tok-123","expires_in":300})");
    }
    if (path == "/v2/test/flaky/manifests/v1")
      return hits[path] < 3 ? reply(503, "")
                            : reply(200, manifest, {std::string("Content-Type: ") + kOciManifest});
    if (path == "/v2/test/gone/manifests/v1")
      return reply(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
    auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() || auth->second != "Bearer tok-123")
      return reply(401, "",
                   {"WWW-Authenticate: Bearer realm=\"http://127.0.0.1:" + std::to_string(port) +
                    "/token\",service=\"fake\",scope=\"repository:test/app:pull\""});
    if (path == "/v2/test/app/manifests/v1")
      return reply(200, manifest,
                   {std::string("Content-Type: ") + kOciManifest + "; charset=utf-8",
                    "Docker-Content-Digest: " + Digest::of(manifest).str()});
    if (path == "/v2/test/app/manifests/lying")
      return reply(200, manifest, {"Docker-Content-Digest: " + Digest::of(blob).str()});
    if (path == "/v2/test/app/blobs/" + Digest::of(std::string("expected")).str())
      return reply(200, blob);  // not the content the digest names
    return reply(404, "");
  });
  port = server.port();
  ASSERT_GT(port, 0);

  RegistryOptions o{.host = "127.0.0.1:" + std::to_string(port),
                    .credentials = Credentials{"user", "pass"},
                    .backoff_base = std::chrono::milliseconds(10)};
  auto c = RegistryClient::create(o);
  ASSERT_TRUE(c.ok());
  auto m = c->get_manifest("test/app", "v1", {kOciManifest});
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->bytes, manifest);
  EXPECT_EQ(m->media_type, kOciManifest);
  m = c->get_manifest("test/app", "v1", {kOciManifest});
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(hits["/token"], 1) << "the token is cached per scope";
    EXPECT_EQ(hits["token-query:service=fake&scope=repository%3Atest%2Fapp%3Apull"], 1);
  }

  // Docker-Content-Digest disagrees with the content.
  m = c->get_manifest("test/app", "lying", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kProtocol);
  EXPECT_NE(m.error().to_string().find("digest mismatch"), std::string::npos);

  // A blob whose bytes are not what its digest names.
  Digest expected = Digest::of(std::string("expected"));
  std::string dest = temp_parent() + "/vessel-fake-blob-" + std::to_string(::getpid());
  Status s = c->fetch_blob("test/app", expected, static_cast<int64_t>(blob.size()), dest);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kProtocol);
  EXPECT_NE(s.error().to_string().find("blob sha256:" + expected.short_hex() +
                                       "…: digest mismatch (expected " + expected.str() + ", got " +
                                       Digest::of(blob).str() + ")"),
            std::string::npos)
      << s.error().to_string();
  EXPECT_NE(::access(dest.c_str(), F_OK), 0);

  // 503 twice, then 200: retried. 404: not retried.
  m = c->get_manifest("test/flaky", "v1", {kOciManifest});
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  m = c->get_manifest("test/gone", "v1", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(m.error().to_string().find("MANIFEST_UNKNOWN"), std::string::npos);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(hits["/v2/test/flaky/manifests/v1"], 3);
    EXPECT_EQ(hits["/v2/test/gone/manifests/v1"], 1);
  }

  // Without credentials the token server refuses.
  o.credentials.reset();
  auto anon = RegistryClient::create(o);
  ASSERT_TRUE(anon.ok());
  m = anon->get_manifest("test/app", "v1", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kPermissionDenied);
}

}  // namespace
TEST(FakeRegistryTest, RetryAfterOn429And503IsHonouredAndALongOneFailsAtOnce) {
  const std::string manifest = R"({"schemaVersion":2})";
  std::mutex mu;
  std::map<std::string, int> hits;
  FakeServer server([&](const FakeRequest& r) {
    std::lock_guard lock(mu);
    int n = ++hits[r.target];
    if (r.target == "/v2/test/app/manifests/busy")
      return n == 1 ? reply(429, "", {"Retry-After: 1"}) : reply(200, manifest);
    if (r.target == "/v2/test/app/manifests/down") return reply(503, "", {"Retry-After: 3600"});
    return reply(404, "");
  });
  ASSERT_GT(server.port(), 0);
  RegistryOptions o{.host = "127.0.0.1:" + std::to_string(server.port()),
                    .backoff_base = std::chrono::milliseconds(10)};
  auto c = RegistryClient::create(o);
  ASSERT_TRUE(c.ok());

  auto start = std::chrono::steady_clock::now();
  auto m = c->get_manifest("test/app", "busy", {kOciManifest});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  // The backoff alone would have retried after 10 ms.
  EXPECT_GE(took, std::chrono::milliseconds(900)) << "Retry-After: 1 was not waited for";

  m = c->get_manifest("test/app", "down", {kOciManifest});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().to_string().find("503"), std::string::npos) << m.error().to_string();
  std::lock_guard lock(mu);
  EXPECT_EQ(hits["/v2/test/app/manifests/busy"], 2);
  EXPECT_EQ(hits["/v2/test/app/manifests/down"], 1) << "an hour's Retry-After is not retried";
}

}  // namespace vessel::registry
