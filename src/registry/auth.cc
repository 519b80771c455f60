#include "registry/auth.h"

#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace vessel::registry {
namespace {

// RFC 9110 5.6.2: tchar.
bool is_tchar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 11.2: token68 characters (without the trailing '=' padding).
bool is_token68_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error bad(std::string_view why) {
  return Error(ErrorCode::kProtocol, "parse www-authenticate: " + std::string(why));
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  size_t pos() const { return i_; }
  void seek(size_t i) { i_ = i; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t'))
      ++i_;
  }
  std::string_view token() {
    size_t start = i_;
    while (!at_end() && is_tchar(peek()))
      ++i_;
    return s_.substr(start, i_ - start);
  }
  // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 5.6.4).
  Result<std::string> quoted_string() {
    ++i_;  // the opening quote
    std::string out;
    while (true) {
      if (at_end()) return bad("unterminated quoted string");
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c == '\\') {
        if (at_end()) return bad("unterminated quoted string");
        c = static_cast<unsigned char>(s_[i_++]);
        if (c != '\t' && (c < 0x20 || c == 0x7f)) return bad("control character in quoted string");
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (c != '\t' && (c < 0x20 || c == 0x7f)) return bad("control character in quoted string");
      out.push_back(static_cast<char>(c));
    }
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// After a comma: does an auth-param (token BWS "=") start here, rather than
// the next challenge's scheme?
bool param_follows(Parser& p) {
  size_t save = p.pos();
  bool is_param = false;
  if (!p.token().empty()) {
    p.skip_ows();
    is_param = !p.at_end() && p.peek() == '=';
  }
  p.seek(save);
  return is_param;
}

}  // namespace

std::string Challenge::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
  if (header.size() > kMaxAuthHeader) return bad("header too long");
  Parser p(header);
  std::vector<Challenge> out;
  while (true) {
    // Empty list elements are allowed (RFC 9110 5.6.1).
    p.skip_ows();
    while (!p.at_end() && p.peek() == ',') {
      p.seek(p.pos() + 1);
      p.skip_ows();
    }
    if (p.at_end()) break;
    std::string_view scheme = p.token();
    if (scheme.empty()) return bad("expected an auth scheme");
    if (out.size() == kMaxChallenges) return bad("too many challenges");
    Challenge ch;
    ch.scheme = lower(scheme);
    if (!p.at_end() && p.peek() != ',') {
      if (p.peek() != ' ' && p.peek() != '\t') return bad("expected a space after the scheme");
      p.skip_ows();
    }
    // token68: the characters, then only '=' padding up to the end or a comma.
    if (!p.at_end() && p.peek() != ',') {
      size_t save = p.pos();
      while (!p.at_end() && is_token68_char(p.peek()))
        p.seek(p.pos() + 1);
      size_t chars_end = p.pos();
      while (!p.at_end() && p.peek() == '=')
        p.seek(p.pos() + 1);
      size_t end = p.pos();
      p.skip_ows();
      // "abc==" followed by the end or a comma is a token68; "abc=value" is
      // a parameter.
      if (chars_end > save && (p.at_end() || p.peek() == ',')) {
        ch.token68 = std::string(header.substr(save, end - save));
        out.push_back(std::move(ch));
        continue;
      }
      p.seek(save);
      // auth-params.
      while (true) {
        std::string_view name = p.token();
        if (name.empty()) return bad("expected a parameter name");
        p.skip_ows();
        if (p.at_end() || p.peek() != '=')
          return bad("expected '=' after '" + std::string(name) + "'");
        p.seek(p.pos() + 1);
        p.skip_ows();
        std::string value;
        if (p.at_end()) return bad("missing value for '" + std::string(name) + "'");
        if (p.peek() == '"') {
          VESSEL_ASSIGN_OR_RETURN(value, p.quoted_string());
        } else {
          value = std::string(p.token());
          if (value.empty()) return bad("missing value for '" + std::string(name) + "'");
        }
        if (ch.params.size() == kMaxAuthParams) return bad("too many parameters");
        if (!ch.params.emplace(lower(name), std::move(value)).second)
          return bad("duplicate parameter '" + lower(name) + "'");
        p.skip_ows();
        if (p.at_end()) break;
        if (p.peek() != ',') return bad("expected ',' after a parameter");
        // Skip the comma (and empty elements); then either another
        // parameter or the next challenge.
        size_t after_comma;
        do {
          p.seek(p.pos() + 1);
          p.skip_ows();
          after_comma = p.pos();
        } while (!p.at_end() && p.peek() == ',');
        if (p.at_end() || !param_follows(p)) {
          p.seek(after_comma);
          break;
        }
      }
    }
    out.push_back(std::move(ch));
  }
  if (out.empty()) return bad("no challenge");
  return out;
}

std::string base64_encode(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view data) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (data.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < data.size(); i += 4) {
    bool last = i + 4 == data.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = data[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 255);
    if (pad < 1) out += static_cast<char>(n & 255);
  }
  return out;
}

std::string basic_authorization(const Credentials& credentials) {
  return "Basic " + base64_encode(credentials.username + ":" + credentials.password);
}

Result<BearerToken> parse_token_response(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error(ErrorCode::kProtocol, "parse token response: not a JSON object");
  std::string token;
  for (const char* key : {"token", "access_token"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      token = it->get<std::string>();
      break;
    }
  }
  if (token.empty()) return Error(ErrorCode::kProtocol, "parse token response: no token");
  // The token goes into a header: visible ASCII only, bounded.
  if (token.size() > 16384)
    return Error(ErrorCode::kProtocol, "parse token response: token too long");
  for (char c : token)
    if (c < 0x21 || c > 0x7e)
      return Error(ErrorCode::kProtocol, "parse token response: invalid character in token");
  int64_t expires_in = 60;
  auto it = j.find("expires_in");
  if (it != j.end() && it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    if (v > 0) expires_in = std::min<int64_t>(v, 24 * 3600);
  }
  return BearerToken{std::move(token),
                     std::chrono::steady_clock::now() + std::chrono::seconds(expires_in)};
}

Result<BearerToken> fetch_token(const HttpClient& http, const Challenge& challenge,
                                const std::string& scope,
                                const std::optional<Credentials>& credentials) {
  std::string realm = challenge.param("realm");
  if (!starts_with(realm, "https://") && !starts_with(realm, "http://"))
    return Error(ErrorCode::kProtocol, "fetch token: realm '" + realm + "' is not an http(s) URL");
  HttpRequest req;
  req.url = realm;
  char sep = realm.find('?') == std::string::npos ? '?' : '&';
  std::string service = challenge.param("service");
  if (!service.empty()) {
    req.url += sep + std::string("service=") + url_encode(service);
    sep = '&';
  }
  std::string s = scope.empty() ? challenge.param("scope") : scope;
  if (!s.empty()) req.url += sep + std::string("scope=") + url_encode(s);
  if (credentials) req.headers.push_back("Authorization: " + basic_authorization(*credentials));
  req.follow_redirects = true;
  req.max_body = 1u << 20;
  auto resp = http.perform(req);
  if (!resp.ok()) return resp.error().wrap("fetch token from '" + realm + "'");
  if (resp->status == 401 || resp->status == 403)
    return Error(ErrorCode::kPermissionDenied, "fetch token from '" + realm +
                                                   "': unauthorized (HTTP " +
                                                   std::to_string(resp->status) + ")");
  if (resp->status != 200)
    return Error(resp->status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kProtocol,
                 "fetch token from '" + realm + "': HTTP " + std::to_string(resp->status));
  auto token = parse_token_response(resp->body);
  if (!token.ok()) return token.error().wrap("fetch token from '" + realm + "'");
  return token;
}

std::optional<std::string> TokenCache::get(const std::string& scope) const {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(scope);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires - std::chrono::seconds(10) < std::chrono::steady_clock::now())
    return std::nullopt;
  return it->second.token;
}

void TokenCache::put(const std::string& scope, BearerToken token) {
  std::lock_guard lock(mu_);
  tokens_[scope] = std::move(token);
}

void TokenCache::erase(const std::string& scope) {
  std::lock_guard lock(mu_);
  tokens_.erase(scope);
}

}  // namespace vessel::registry
