// libFuzzer target for the registry's authentication parsers: a
// WWW-Authenticate header value and a token server's JSON reply both come
// from the network, and base64_decode reads stored credentials.
//
// Beyond "no crash, no sanitizer report" it checks and aborts when one fails:
//   - parse_www_authenticate rejects only with kProtocol, rejects any header
//     over kMaxAuthHeader, and a parsed header respects the documented bounds
//     (1..kMaxChallenges challenges, at most kMaxAuthParams parameters each,
//     lowercase token schemes and names, no control characters in values,
//     token68 xor parameters);
//   - the parsed challenges, written back out canonically, parse to the same
//     challenges;
//   - parse_token_response rejects only with kProtocol, and a parsed token is
//     non-empty visible ASCII of at most 16 KiB expiring within (0, 24h];
//   - base64_decode output has the length the input implies, and re-encoding
//     it decodes back to the same bytes.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "registry/auth.h"

namespace vessel::registry {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_tchar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= '0' && u <= '9') return true;
  if (u >= 'a' && u <= 'z') return true;
  if (u >= 'A' && u <= 'Z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_lower_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c) || (c >= 'A' && c <= 'Z')) return false;
  return true;
}

bool is_token68(std::string_view s) {
  size_t i = 0;
  auto t68 = [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (i < s.size() && t68(s[i]))
    ++i;
  if (i == 0) return false;
  while (i < s.size() && s[i] == '=')
    ++i;
  return i == s.size();
}

std::string quote(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string serialize(const std::vector<Challenge>& challenges) {
  std::string out;
  for (const Challenge& ch : challenges) {
    if (!out.empty()) out += ", ";
    out += ch.scheme;
    if (!ch.token68.empty()) {
      out += ' ';
      out += ch.token68;
      continue;
    }
    bool first = true;
    for (const auto& [name, value] : ch.params) {
      out += first ? " " : ", ";
      first = false;
      out += name;
      out += '=';
      out += quote(value);
    }
  }
  return out;
}

bool same(const std::vector<Challenge>& a, const std::vector<Challenge>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].scheme != b[i].scheme || a[i].params != b[i].params || a[i].token68 != b[i].token68)
      return false;
  return true;
}

void check_www_authenticate(std::string_view header) {
  auto r = parse_www_authenticate(header);
  if (!r.ok()) {
    check(r.error().code() == ErrorCode::kProtocol);
    return;
  }
  check(header.size() <= kMaxAuthHeader);
  check(!r->empty() && r->size() <= kMaxChallenges);
  for (const Challenge& ch : *r) {
    check(is_lower_token(ch.scheme));
    check(ch.params.size() <= kMaxAuthParams);
    check(ch.token68.empty() || ch.params.empty());
    if (!ch.token68.empty()) check(is_token68(ch.token68));
    for (const auto& [name, value] : ch.params) {
      check(is_lower_token(name));
      for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        check(c == '\t' || (u >= 0x20 && u != 0x7f));
      }
      check(ch.param(name) == value);
    }
  }
  const std::string again = serialize(*r);
  if (again.size() > kMaxAuthHeader) return;  // quoting can grow a value
  auto reparsed = parse_www_authenticate(again);
  check(reparsed.ok() && same(*r, *reparsed));
}

void check_token_response(std::string_view body) {
  const auto before = std::chrono::steady_clock::now();
  auto r = parse_token_response(body);
  const auto after = std::chrono::steady_clock::now();
  if (!r.ok()) {
    check(r.error().code() == ErrorCode::kProtocol);
    return;
  }
  check(!r->token.empty() && r->token.size() <= 16384);
  for (char c : r->token)
    check(c >= 0x21 && c <= 0x7e);
  check(r->expires > before && r->expires <= after + std::chrono::hours(24));
}

void check_base64(std::string_view data) {
  auto d = base64_decode(data);
  if (!d) return;
  check(data.size() % 4 == 0);
  size_t pad = 0;
  while (pad < data.size() && pad < 2 && data[data.size() - 1 - pad] == '=')
    ++pad;
  check(d->size() == data.size() / 4 * 3 - pad);
  // Not encode(decode(x)) == x: the decoder accepts non-zero unused bits in
  // the last group ("QR==" decodes like "QQ=="), which RFC 4648 allows.
  const std::string encoded = base64_encode(*d);
  check(encoded.size() == data.size());
  auto again = base64_decode(encoded);
  check(again && *again == *d);
}

}  // namespace
}  // namespace vessel::registry

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::registry;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_www_authenticate(bytes);
  check_token_response(bytes);
  check_base64(bytes);
  // "Basic <base64>" as in an Authorization header or a stored auth entry:
  // also decode what follows the first space, so header-shaped inputs reach
  // the decoder.
  if (size_t sp = bytes.find(' '); sp != std::string_view::npos) check_base64(bytes.substr(sp + 1));
  return 0;
}
