#include "registry/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/strings.h"
#include "base/unique_fd.h"
#include "sys/fs.h"

namespace vessel::registry {

struct RegistryClient::AuthState {
  TokenCache tokens;
  std::mutex mu;
  bool use_basic = false;  // the registry answered with a Basic challenge
};

namespace {

std::string pull_scope(const std::string& repo) {
  return "repository:" + repo + ":pull";
}
std::string push_scope(const std::string& repo) {
  return "repository:" + repo + ":pull,push";
}

std::string ref_name(const std::string& repo, const std::string& reference) {
  return repo + (starts_with(reference, "sha256:") ? "@" : ":") + reference;
}

std::string blob_name(const image::Digest& d) {
  return "blob " + d.algorithm() + ":" + d.short_hex() + "…";
}

// The registry's error body ({"errors":[{"code":..,"message":..}]}), bounded
// to what a person wants to read.
std::string registry_detail(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  std::string out;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>()
                                                                     : std::string();
      std::string msg = e.contains("message") && e["message"].is_string()
                            ? e["message"].get<std::string>()
                            : std::string();
      if (!out.empty()) out += "; ";
      out += code.empty() ? msg : msg.empty() ? code : code + ": " + msg;
      if (out.size() > 300) break;
    }
  }
  if (out.size() > 300) out = out.substr(0, 300) + "…";
  return out;
}

Error http_error(const HttpResponse& r, const std::string& what) {
  ErrorCode code;
  std::string summary;
  switch (r.status) {
    case 401:
      code = ErrorCode::kPermissionDenied;
      summary = "unauthorized";
      break;
    case 403:
      code = ErrorCode::kPermissionDenied;
      summary = "denied";
      break;
    case 404:
      code = ErrorCode::kNotFound;
      summary = "not found";
      break;
    case 429:
      code = ErrorCode::kUnavailable;
      summary = "too many requests";
      break;
    case 400:
      code = ErrorCode::kInvalidArgument;
      summary = "rejected";
      break;
    default:
      code = r.status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kProtocol;
      summary = "unexpected status";
  }
  std::string detail = registry_detail(r);
  return Error(code, what + ": " + summary + " (HTTP " + std::to_string(r.status) +
                         (detail.empty() ? "" : ": " + detail) + ")");
}

bool retryable(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
}

// Splits "host:port" / "[v6]:port" into the host name part.
std::string_view host_name(std::string_view host) {
  if (starts_with(host, "[")) {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(1, close - 1);
  }
  if (std::count(host.begin(), host.end(), ':') == 1) return host.substr(0, host.find(':'));
  return host;
}

Status validate_host(std::string_view host) {
  auto bad = [&](const char* why) {
    return Error(ErrorCode::kInvalidArgument,
                 "parse registry host '" + std::string(host) + "': " + why);
  };
  if (host.empty() || host.size() > 255) return bad("empty or too long");
  std::string_view port;
  if (starts_with(host, "[")) {
    auto close = host.find(']');
    if (close == std::string_view::npos) return bad("unterminated '['");
    for (char c : host.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        return bad("invalid IPv6 address");
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("expected ':' after ']'");
      port = rest.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    auto colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
    if (name.empty()) return bad("empty host name");
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
        return bad("invalid character (expected host[:port], no scheme or path)");
  }
  if (!port.empty()) {
    auto p = parse_u64(port);
    if (!p || *p == 0 || *p > 65535) return bad("invalid port");
  }
  return ok_status();
}

// Removes the file unless dismissed: fetch_blob's cleanup on every error path.
class FileRemover {
 public:
  explicit FileRemover(std::string path) : path_(std::move(path)) {}
  ~FileRemover() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void dismiss() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

bool is_loopback_host(std::string_view host) {
  std::string name(host_name(host));
  std::string lower_name = name;
  for (char& c : lower_name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower_name == "localhost") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, name.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

std::string resolve_location(const std::string& request_url, const std::string& location) {
  if (starts_with(location, "http://") || starts_with(location, "https://")) return location;
  auto scheme_end = request_url.find("://");
  size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  if (starts_with(location, "/")) {
    auto path_start = request_url.find('/', authority);
    return request_url.substr(0, path_start) + location;
  }
  std::string base = request_url.substr(0, request_url.find_first_of("?#", authority));
  auto slash = base.rfind('/');
  if (slash == std::string::npos || slash < authority) return base + "/" + location;
  return base.substr(0, slash + 1) + location;
}

Status validate_repository(std::string_view repo) {
  auto bad = [&](const char* why) {
    return Error(ErrorCode::kInvalidArgument,
                 "parse repository '" + std::string(repo) + "': " + why);
  };
  if (repo.empty() || repo.size() > 255) return bad("empty or too long");
  for (const std::string& comp : split(repo, '/')) {
    if (comp.empty()) return bad("empty path component");
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(comp.front()) || !alnum(comp.back()))
      return bad("components must start and end with [a-z0-9]");
    for (char c : comp)
      if (!alnum(c) && c != '.' && c != '_' && c != '-') return bad("invalid character");
  }
  return ok_status();
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now) {
  std::string v(trim(value));
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Bounded: a huge number is just "too long", not an overflow.
    if (v.size() > 9) return std::chrono::seconds(999'999'999);
    return std::chrono::seconds(std::stol(v));
  }
  // IMF-fixdate, the only form senders must use (RFC 9110 5.6.7).
  std::tm tm{};
  const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  std::time_t at = ::timegm(&tm);
  if (at == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::seconds(at > now ? at - now : 0);
}

Status validate_reference(std::string_view reference) {
  if (starts_with(reference, "sha256:")) {
    auto d = image::Digest::parse(reference);
    if (!d.ok()) return d.error();
    return ok_status();
  }
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  bool ok = !reference.empty() && reference.size() <= 128 && word(reference[0]) &&
            std::all_of(reference.begin(), reference.end(),
                        [&](char c) { return word(c) || c == '.' || c == '-'; });
  if (!ok)
    return Error(ErrorCode::kInvalidArgument, "parse tag '" + std::string(reference) +
                                                  "': expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  return ok_status();
}

RegistryClient::RegistryClient(RegistryOptions options, std::string base_url)
    : options_(std::move(options)),
      base_url_(std::move(base_url)),
      http_(HttpOptions{.insecure_tls = options_.insecure_tls, .ca_file = options_.ca_file}),
      auth_(std::make_unique<AuthState>()) {}
RegistryClient::~RegistryClient() = default;
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;

Result<RegistryClient> RegistryClient::create(RegistryOptions options) {
  VESSEL_TRY(validate_host(options.host));
  if (options.attempts < 1) options.attempts = 1;
  if (options.chunk_size < 1) options.chunk_size = 64ll << 20;
  bool http = options.scheme == Scheme::kHttp ||
              (options.scheme == Scheme::kAuto && is_loopback_host(options.host));
  std::string base = std::string(http ? "http://" : "https://") + options.host;
  return RegistryClient(std::move(options), std::move(base));
}

Result<bool> RegistryClient::authenticate(const HttpResponse& response, const std::string& scope) {
  std::vector<Challenge> challenges;
  for (const std::string& h : response.headers.get_all("WWW-Authenticate")) {
    auto parsed = parse_www_authenticate(h);
    if (!parsed.ok()) return parsed.error().wrap("authenticate to '" + options_.host + "'");
    for (auto& c : *parsed)
      challenges.push_back(std::move(c));
  }
  for (const Challenge& c : challenges) {
    if (c.scheme != "bearer") continue;
    auto token = fetch_token(http_, c, scope, options_.credentials);
    if (!token.ok()) return token.error().wrap("authenticate to '" + options_.host + "'");
    auth_->tokens.put(scope, std::move(*token));
    return true;
  }
  for (const Challenge& c : challenges) {
    if (c.scheme != "basic") continue;
    if (!options_.credentials) return false;
    std::lock_guard lock(auth_->mu);
    if (auth_->use_basic) return false;  // the credentials were already refused
    auth_->use_basic = true;
    return true;
  }
  return false;
}

Result<HttpResponse> RegistryClient::send_once(const HttpRequest& request,
                                               const std::string& scope) {
  // Credentials go only to the registry itself, never to an upload Location
  // on another origin.
  bool to_registry = starts_with(request.url, base_url_ + "/");
  auto with_auth = [&]() {
    HttpRequest r = request;
    if (!to_registry) return r;
    if (auto token = auth_->tokens.get(scope)) {
      r.headers.push_back("Authorization: Bearer " + *token);
    } else if (options_.credentials) {
      std::lock_guard lock(auth_->mu);
      if (auth_->use_basic)
        r.headers.push_back("Authorization: " + basic_authorization(*options_.credentials));
    }
    return r;
  };
  auto resp = http_.perform(with_auth());
  if (!resp.ok() || resp->status != 401 || !to_registry) return resp;
  VESSEL_ASSIGN_OR_RETURN(bool retry, authenticate(*resp, scope));
  if (!retry) return resp;
  return http_.perform(with_auth());
}

Result<HttpResponse> RegistryClient::send(const HttpRequest& request, const std::string& scope,
                                          const std::function<Status()>& before_attempt,
                                          bool retry) {
  int attempts = retry ? options_.attempts : 1;
  std::chrono::milliseconds asked{0};  // the last reply's Retry-After
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(
          std::max<std::chrono::milliseconds>(options_.backoff_base * (1 << (attempt - 1)), asked));
    if (before_attempt) VESSEL_TRY(before_attempt());
    auto resp = send_once(request, scope);
    bool last = attempt + 1 >= attempts;
    if (!resp.ok()) {
      if (!last && retryable(resp.error())) continue;
      return resp;
    }
    if (last || (resp->status != 429 && resp->status < 500)) return resp;
    asked = std::chrono::milliseconds(0);
    // RFC 9110 10.2.3: with 429 and 503 the server may say when to come back.
    if (auto header = resp->headers.get("Retry-After");
        header && (resp->status == 429 || resp->status == 503)) {
      auto wait = parse_retry_after(*header, std::time(nullptr));
      // Longer than we are willing to wait: fail now rather than hang.
      if (wait && *wait > kMaxRetryAfter) return resp;
      if (wait) asked = *wait;
    }
  }
}

Result<FetchedManifest> RegistryClient::get_manifest(
    const std::string& repo, const std::string& reference,
    const std::vector<std::string>& accept_media_types) {
  std::string what = "get manifest '" + ref_name(repo, reference) + "'";
  VESSEL_TRY(validate_repository(repo));
  VESSEL_TRY(validate_reference(reference));
  HttpRequest req;
  req.url = base_url_ + "/v2/" + repo + "/manifests/" + reference;
  if (!accept_media_types.empty()) {
    std::string accept = "Accept: ";
    for (size_t i = 0; i < accept_media_types.size(); ++i)
      accept += (i ? ", " : "") + accept_media_types[i];
    req.headers.push_back(std::move(accept));
  }
  req.max_body = kMaxManifestBytes;
  auto resp = send(req, pull_scope(repo));
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status != 200) return http_error(*resp, what);

  image::Digest digest = image::Digest::of(resp->body);
  if (starts_with(reference, "sha256:") && digest.str() != reference)
    return Error(ErrorCode::kProtocol,
                 what + ": digest mismatch (expected " + reference + ", got " + digest.str() + ")");
  if (auto header = resp->headers.get("Docker-Content-Digest");
      header && starts_with(*header, "sha256:")) {
    auto claimed = image::Digest::parse(*header);
    if (!claimed.ok()) return claimed.error().wrap(what + ": Docker-Content-Digest");
    if (*claimed != digest)
      return Error(ErrorCode::kProtocol, what + ": digest mismatch (Docker-Content-Digest " +
                                             claimed->str() + ", content " + digest.str() + ")");
  }
  std::string media_type = resp->headers.get("Content-Type").value_or("");
  media_type = std::string(trim(media_type.substr(0, media_type.find(';'))));
  return FetchedManifest{std::move(resp->body), std::move(media_type), std::move(digest)};
}

Result<std::optional<int64_t>> RegistryClient::head_blob_scoped(const std::string& repo,
                                                                const image::Digest& digest,
                                                                const std::string& scope) {
  std::string what = "head " + blob_name(digest) + " in '" + repo + "'";
  VESSEL_TRY(validate_repository(repo));
  HttpRequest req;
  req.method = "HEAD";
  req.url = base_url_ + "/v2/" + repo + "/blobs/" + digest.str();
  req.follow_redirects = true;
  auto resp = send(req, scope);
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status == 404) return std::optional<int64_t>();
  if (resp->status != 200) return http_error(*resp, what);
  auto len = resp->headers.get("Content-Length");
  auto n = len ? parse_u64(*len) : std::nullopt;
  if (!n || *n > static_cast<uint64_t>(INT64_MAX))
    return Error(ErrorCode::kProtocol, what + ": no valid Content-Length");
  return std::optional<int64_t>(static_cast<int64_t>(*n));
}

Result<std::optional<int64_t>> RegistryClient::head_blob(const std::string& repo,
                                                         const image::Digest& digest) {
  return head_blob_scoped(repo, digest, pull_scope(repo));
}

Status RegistryClient::fetch_blob(const std::string& repo, const image::Digest& digest,
                                  int64_t expected_size, const std::string& dest_path,
                                  const ProgressFn& progress) {
  std::string what = "fetch " + blob_name(digest);
  VESSEL_TRY(validate_repository(repo));
  if (expected_size < 0)
    return Error(ErrorCode::kInvalidArgument, what + ": negative expected size");
  FileRemover remover(dest_path);
  UniqueFd fd;
  image::Sha256 hasher;
  int64_t received = 0;

  HttpRequest req;
  req.url = base_url_ + "/v2/" + repo + "/blobs/" + digest.str();
  req.follow_redirects = true;
  req.max_body = 1u << 20;  // bounds only error bodies: a 2xx body goes to the sink
  req.sink = [&](std::string_view chunk) -> Status {
    // Bound: never accept more than the descriptor's size.
    if (static_cast<uint64_t>(received) + chunk.size() > static_cast<uint64_t>(expected_size))
      return Error(ErrorCode::kProtocol, blob_name(digest) + ": size mismatch (expected " +
                                             std::to_string(expected_size) + " bytes, got more)");
    VESSEL_TRY(sys::write_all(fd.get(), chunk.data(), chunk.size()));
    hasher.update(chunk.data(), chunk.size());
    received += static_cast<int64_t>(chunk.size());
    if (progress) progress(received, expected_size);
    return ok_status();
  };
  // Each attempt starts the file and the hash afresh.
  auto restart = [&]() -> Status {
    VESSEL_ASSIGN_OR_RETURN(fd, sys::open_fd(dest_path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    hasher = image::Sha256();
    received = 0;
    return ok_status();
  };
  auto resp = send(req, pull_scope(repo), restart);
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status != 200) return http_error(*resp, what);
  if (received != expected_size)
    return Error(ErrorCode::kProtocol, blob_name(digest) + ": size mismatch (expected " +
                                           std::to_string(expected_size) + " bytes, got " +
                                           std::to_string(received) + ")");
  image::Digest got = hasher.finish();
  if (got != digest)
    return Error(ErrorCode::kProtocol, blob_name(digest) + ": digest mismatch (expected " +
                                           digest.str() + ", got " + got.str() + ")");
  if (::fsync(fd.get()) != 0) return Error::from_errno(errno, "fsync '" + dest_path + "'");
  remover.dismiss();
  return ok_status();
}

Status RegistryClient::push_blob(const std::string& repo, const image::Digest& digest,
                                 const std::string& path) {
  std::string what = "push " + blob_name(digest) + " to '" + repo + "'";
  VESSEL_TRY(validate_repository(repo));
  std::string scope = push_scope(repo);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(errno, "stat '" + path + "'");
  int64_t size = st.st_size;

  auto present = head_blob_scoped(repo, digest, scope);
  if (!present.ok()) return present.error().wrap(what);
  if (present->has_value()) return ok_status();

  HttpRequest post;
  post.method = "POST";
  post.url = base_url_ + "/v2/" + repo + "/blobs/uploads/";
  auto resp = send(post, scope);
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status != 202) return http_error(*resp, what + ": start upload");
  auto location = resp->headers.get("Location");
  if (!location || location->empty())
    return Error(ErrorCode::kProtocol, what + ": start upload: no Location header");
  std::string url = resolve_location(post.url, *location);

  int64_t offset = 0;
  if (size > options_.chunk_size) {
    while (offset < size) {
      int64_t n = std::min(options_.chunk_size, size - offset);
      HttpRequest patch;
      patch.method = "PATCH";
      patch.url = url;
      patch.body_path = path;
      patch.body_offset = offset;
      patch.body_length = n;
      patch.headers = {
          "Content-Type: application/octet-stream",
          "Content-Range: " + std::to_string(offset) + "-" + std::to_string(offset + n - 1)};
      // A PATCH is not idempotent: a lost reply leaves the offset unknown.
      resp = send(patch, scope, {}, /*retry=*/false);
      if (!resp.ok()) return resp.error().wrap(what);
      if (resp->status != 202) return http_error(*resp, what + ": upload chunk");
      location = resp->headers.get("Location");
      if (!location || location->empty())
        return Error(ErrorCode::kProtocol, what + ": upload chunk: no Location header");
      url = resolve_location(url, *location);
      offset += n;
    }
  }
  HttpRequest put;
  put.method = "PUT";
  put.url =
      url + (url.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_encode(digest.str());
  put.headers = {"Content-Type: application/octet-stream"};
  if (offset < size) {
    put.body_path = path;
    put.body_offset = offset;
  }
  resp = send(put, scope, {}, /*retry=*/false);
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status != 201 && resp->status != 204)
    return http_error(*resp, what + ": finish upload");
  return ok_status();
}

Status RegistryClient::put_manifest(const std::string& repo, const std::string& reference,
                                    const std::string& bytes, const std::string& media_type) {
  std::string what = "put manifest '" + ref_name(repo, reference) + "'";
  VESSEL_TRY(validate_repository(repo));
  VESSEL_TRY(validate_reference(reference));
  if (media_type.find_first_of("\r\n") != std::string::npos)
    return Error(ErrorCode::kInvalidArgument, what + ": invalid media type");
  image::Digest digest = image::Digest::of(bytes);
  if (starts_with(reference, "sha256:") && digest.str() != reference)
    return Error(ErrorCode::kInvalidArgument, what + ": content digest is " + digest.str());
  HttpRequest req;
  req.method = "PUT";
  req.url = base_url_ + "/v2/" + repo + "/manifests/" + reference;
  req.headers = {"Content-Type: " + media_type};
  req.body = bytes;
  auto resp = send(req, push_scope(repo));
  if (!resp.ok()) return resp.error().wrap(what);
  if (resp->status < 200 || resp->status >= 300) return http_error(*resp, what);
  if (auto header = resp->headers.get("Docker-Content-Digest");
      header && starts_with(*header, "sha256:") && *header != digest.str())
    return Error(ErrorCode::kProtocol,
                 what + ": registry stored digest " + *header + ", expected " + digest.str());
  return ok_status();
}

}  // namespace vessel::registry
