#include "registry/http.h"

// Calls go through CurlApi's pointers below: no typecheck-gcc macros.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/library.h"
#include "base/strings.h"
#include "base/unique_fd.h"

namespace vessel::registry {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// libcurl is opened at the first request instead of being linked: with the
// ~30 libraries it needs (TLS, HTTP/2, SSH, Kerberos, LDAP, ...), loading it
// cost every start of every program that links this layer ~3.7 ms (`perf
// stat` of an empty program linked like the CLI: 8.6 ms, 4.9 without
// libcurl), and most commands (run from a local image, exec, ps, logs)
// never speak HTTP. libcurl.so.4 is the soname of Debian's libcurl4, the
// library the -dev package builds against.
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

Result<const CurlApi*> load_curl() {
  static CurlApi api;
  Library curl("libcurl.so.4", "libcurl4");
  curl.bind(api.global_init, "curl_global_init");
  curl.bind(api.easy_init, "curl_easy_init");
  curl.bind(api.easy_cleanup, "curl_easy_cleanup");
  curl.bind(api.easy_setopt, "curl_easy_setopt");
  curl.bind(api.easy_perform, "curl_easy_perform");
  curl.bind(api.easy_getinfo, "curl_easy_getinfo");
  curl.bind(api.easy_strerror, "curl_easy_strerror");
  curl.bind(api.slist_append, "curl_slist_append");
  curl.bind(api.slist_free_all, "curl_slist_free_all");
  if (Status s = curl.status(); !s.ok()) return s.error().wrap("HTTP");
  // Not thread-safe (libcurl-thread(3)): once, under the static's guard.
  api.global_init(CURL_GLOBAL_DEFAULT);
  return &api;
}

// The loaded library, or why it could not be loaded (both kept: a missing
// library is not looked for again).
Result<const CurlApi*> curl_api() {
  static const Result<const CurlApi*> loaded = load_curl();
  return loaded;
}

struct CurlDeleter {
  const CurlApi* api;
  void operator()(CURL* c) const { api->easy_cleanup(c); }
};
struct SlistDeleter {
  const CurlApi* api;
  void operator()(curl_slist* l) const { api->slist_free_all(l); }
};

// State shared with libcurl's callbacks during one perform.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  long status = 0;  // from the last status line seen
  std::optional<Error> abort_error;
  // Request body from memory or file.
  size_t mem_pos = 0;
  int body_fd = -1;
  int64_t file_pos = 0;
  int64_t file_remaining = 0;
};

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  // A status line starts each response (redirects, 100 Continue): keep only
  // the headers of the last one.
  if (starts_with(line, "HTTP/")) {
    t->response->headers.clear();
    auto sp = line.find(' ');
    if (sp != std::string_view::npos && line.size() >= sp + 4) {
      auto code = parse_u64(line.substr(sp + 1, 3));
      t->status = code ? static_cast<long>(*code) : 0;
    }
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;  // the blank line, or junk
  std::string name(trim(line.substr(0, colon)));
  std::string value(trim(line.substr(colon + 1)));
  if (!name.empty()) t->response->headers.add(std::move(name), std::move(value));
  return len;
}

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  bool success = t->status >= 200 && t->status < 300;
  if (success && t->request->sink) {
    Status s = t->request->sink(std::string_view(data, len));
    if (!s.ok()) {
      t->abort_error = s.error();
      return CURL_WRITEFUNC_ERROR;
    }
    return len;
  }
  if (t->response->body.size() + len > t->request->max_body) {
    t->abort_error =
        Error(ErrorCode::kProtocol,
              "read response: body larger than " + std::to_string(t->request->max_body) + " bytes");
    return CURL_WRITEFUNC_ERROR;
  }
  t->response->body.append(data, len);
  return len;
}

size_t read_cb(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t cap = size * n;
  if (t->body_fd < 0) {
    const std::string& body = t->request->body;
    size_t k = std::min(cap, body.size() - t->mem_pos);
    std::memcpy(buf, body.data() + t->mem_pos, k);
    t->mem_pos += k;
    return k;
  }
  size_t want =
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(cap), t->file_remaining));
  if (want == 0) return 0;
  ssize_t r;
  do {
    r = ::pread(t->body_fd, buf, want, t->file_pos);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) {
    t->abort_error = r < 0 ? Error::from_errno(errno, "read '" + *t->request->body_path + "'")
                           : Error(ErrorCode::kFailedPrecondition,
                                   "read '" + *t->request->body_path + "': file shrank");
    return CURL_READFUNC_ABORT;
  }
  t->file_pos += r;
  t->file_remaining -= r;
  return static_cast<size_t>(r);
}

Error curl_error(const CurlApi& api, CURLcode code, const char* errbuf, const HttpRequest& req) {
  std::string detail = errbuf[0] ? std::string(errbuf) : api.easy_strerror(code);
  ErrorCode ec;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      ec = ErrorCode::kTimeout;
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      ec = ErrorCode::kPermissionDenied;
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      ec = ErrorCode::kUnavailable;
      break;
    default:
      ec = ErrorCode::kProtocol;
  }
  return Error(ec, req.method + " '" + req.url + "': " + detail);
}

}  // namespace

void HttpHeaders::add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [k, v] : entries_)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request) const {
  VESSEL_ASSIGN_OR_RETURN(const CurlApi* api, curl_api());
  std::unique_ptr<CURL, CurlDeleter> curl(api->easy_init(), CurlDeleter{api});
  if (!curl) return Error(ErrorCode::kInternal, "create curl handle");
  CURL* c = curl.get();

  HttpResponse response;
  Transfer t;
  t.request = &request;
  t.response = &response;

  std::unique_ptr<curl_slist, SlistDeleter> headers(nullptr, SlistDeleter{api});
  auto add_header = [&](const std::string& h) -> bool {
    curl_slist* l = api->slist_append(headers.get(), h.c_str());
    if (!l) return false;
    headers.release();
    headers.reset(l);
    return true;
  };
  for (const auto& h : request.headers) {
    if (h.find_first_of("\r\n") != std::string::npos)
      return Error(ErrorCode::kInvalidArgument,
                   request.method + " '" + request.url + "': header contains a line break");
    if (!add_header(h)) return Error(ErrorCode::kInternal, "append curl header");
  }

  UniqueFd body_fd;
  bool has_body = request.method != "GET" && request.method != "HEAD";
  int64_t body_size = static_cast<int64_t>(request.body.size());
  if (request.body_path) {
    int fd = ::open(request.body_path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno(errno, "open '" + *request.body_path + "'");
    body_fd.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Error::from_errno(errno, "stat '" + *request.body_path + "'");
    if (request.body_offset < 0 || request.body_offset > st.st_size)
      return Error(ErrorCode::kInvalidArgument, "read '" + *request.body_path + "': bad offset");
    body_size = request.body_length.value_or(st.st_size - request.body_offset);
    if (body_size < 0 || request.body_offset + body_size > st.st_size)
      return Error(ErrorCode::kInvalidArgument, "read '" + *request.body_path + "': bad length");
    t.body_fd = fd;
    t.file_pos = request.body_offset;
    t.file_remaining = body_size;
  }
  // Uploads larger than 1 MiB would otherwise wait for "100 Continue".
  if (has_body && !add_header("Expect:")) return Error(ErrorCode::kInternal, "append curl header");

  char errbuf[CURL_ERROR_SIZE] = {0};
  api->easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  api->easy_setopt(c, CURLOPT_URL, request.url.c_str());
  api->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  api->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  api->easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_seconds);
  api->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  api->easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.low_speed_seconds);
  // The registry talks to us directly; a proxy from the environment would
  // also see loopback traffic meant for a local registry.
  api->easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
  if (options_.insecure_tls) {
    api->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    api->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!options_.ca_file.empty()) {
    api->easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  api->easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  api->easy_setopt(c, CURLOPT_HEADERDATA, &t);
  api->easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  api->easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (request.follow_redirects) {
    api->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    api->easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  }
  if (request.method == "GET") {
    api->easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    api->easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    // Every other method sends a (possibly empty) body with a Content-Length.
    api->easy_setopt(c, CURLOPT_UPLOAD, 1L);
    api->easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    api->easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    api->easy_setopt(c, CURLOPT_READDATA, &t);
    api->easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
  }
  api->easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = api->easy_perform(c);
  if (t.abort_error) return *t.abort_error;
  if (rc != CURLE_OK) return curl_error(*api, rc, errbuf, request);

  long status = 0;
  api->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  char* eff = nullptr;
  if (api->easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
    response.effective_url = eff;
  return response;
}

}  // namespace vessel::registry
