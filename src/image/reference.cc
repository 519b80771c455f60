#include "image/reference.h"

#include "image/text.h"

namespace vessel::image {
namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_word(char c) {
  return is_alnum(c) || c == '_';
}
bool has_upper(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*
// separator      := "." | "_" | "__" | "-"+
bool valid_path_component(std::string_view c) {
  size_t i = 0;
  while (true) {
    const size_t start = i;
    while (i < c.size() && is_lower_alnum(c[i]))
      ++i;
    if (i == start) return false;  // empty, or starts/ends with a separator
    if (i == c.size()) return true;
    const size_t sep = i;
    while (i < c.size() && !is_lower_alnum(c[i]))
      ++i;
    std::string_view s = c.substr(sep, i - sep);
    const bool ok =
        s == "." || s == "_" || s == "__" || s.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
  }
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view c) {
  if (c.empty() || !is_alnum(c.front()) || !is_alnum(c.back())) return false;
  for (char ch : c)
    if (!is_alnum(ch) && ch != '-') return false;
  return true;
}

// host [":" port], host := domain-name | IPv4 | "[" IPv6 "]". An IPv4
// address is a domain name of digit components, as in Docker's grammar.
bool valid_registry(std::string_view r) {
  std::string_view host = r, port;
  if (!r.empty() && r.front() == '[') {
    const size_t close = r.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : r.substr(1, close - 1))
      if (!is_hex(c) && c != ':') return false;
    host = {};
    std::string_view rest = r.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    const size_t colon = r.find(':');
    if (colon != std::string_view::npos) {
      host = r.substr(0, colon);
      port = r.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    size_t start = 0;
    while (true) {
      const size_t dot = host.find('.', start);
      if (!valid_domain_component(host.substr(start, dot - start))) return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (!port.empty()) {
    // Docker's grammar allows any digits; a port above 65535 cannot work.
    if (port.size() > 5) return false;
    uint32_t n = 0;
    for (char c : port) {
      if (!is_digit(c)) return false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (n > 65535) return false;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength || !is_word(t.front())) return false;
  for (char c : t)
    if (!is_word(c) && c != '.' && c != '-') return false;
  return true;
}

// Docker refuses a bare 64-hex name: it would be mistaken for an image ID.
bool is_image_id(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

// Docker's splitDockerDomain test: the first component of a name is a
// registry if it has '.' or ':', is "localhost", or has uppercase (which
// no repository may have).
bool looks_like_registry(std::string_view head) {
  return head.find_first_of(".:") != std::string_view::npos || head == "localhost" ||
         has_upper(head);
}

}  // namespace

std::string Reference::name() const {
  return registry + "/" + repository;
}

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::familiar() const {
  std::string s;
  if (registry == kDockerHubRegistry) {
    std::string_view path = repository;
    constexpr std::string_view kLibrary = "library/";
    if (path.starts_with(kLibrary) && path.find('/', kLibrary.size()) == std::string_view::npos)
      path.remove_prefix(kLibrary.size());
    // Keep "docker.io/" when dropping it would make the first path
    // component read as a registry ("docker.io/foo.com/x"). Docker's
    // familiarizeName drops it regardless, and its output then names
    // another image.
    const std::string_view head = path.substr(0, path.find('/'));
    if (path.find('/') != std::string_view::npos && looks_like_registry(head))
      s = name();
    else
      s = path;
  } else {
    s = name();
  }
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::registry_host() const {
  if (registry == kDockerHubRegistry) return std::string(kDockerHubApiHost);
  return registry;
}

Result<Reference> parse_reference(std::string_view input) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid reference '" + detail::printable(input) + "': " + std::string(why));
  };
  if (input.empty()) return bad("empty reference");
  if (is_image_id(input)) return bad("a 64-character hex string is an image ID, not a name");

  Reference ref;
  std::string_view rest = input;

  // "@" cannot occur in a name or tag, so the first one starts the digest.
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::parse(rest.substr(at + 1));
    if (!digest.ok()) return bad(digest.error().message());
    ref.digest = std::move(digest).value();
    rest = rest.substr(0, at);
  }

  // A ':' after the last '/' starts the tag; one before it is a registry port.
  const size_t colon = rest.rfind(':');
  const size_t slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (tag.empty()) return bad("empty tag");
    if (tag.size() > kMaxTagLength)
      return bad("tag longer than " + std::to_string(kMaxTagLength) + " characters");
    if (!valid_tag(tag)) return bad("invalid tag '" + detail::printable(tag) + "'");
    ref.tag = tag;
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("empty repository name");

  std::string_view path = rest;
  ref.registry = kDockerHubRegistry;
  if (const size_t first = rest.find('/'); first != std::string_view::npos) {
    std::string_view head = rest.substr(0, first);
    if (looks_like_registry(head)) {
      if (!valid_registry(head)) return bad("invalid registry '" + detail::printable(head) + "'");
      ref.registry = head == "index.docker.io" ? std::string(kDockerHubRegistry) : head;
      path = rest.substr(first + 1);
    }
  }
  if (has_upper(path)) return bad("repository name must be lowercase");
  if (path.empty()) return bad("empty repository name");

  size_t start = 0;
  while (true) {
    const size_t end = path.find('/', start);
    std::string_view component = path.substr(start, end - start);
    if (component.empty()) return bad("empty path component");
    if (!valid_path_component(component))
      return bad("invalid path component '" + detail::printable(component) + "'");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  ref.repository = path;
  if (ref.registry == kDockerHubRegistry && path.find('/') == std::string_view::npos)
    ref.repository = "library/" + ref.repository;

  if (ref.name().size() > kMaxNameLength)
    return bad("repository name longer than " + std::to_string(kMaxNameLength) + " characters");
  if (ref.tag.empty() && !ref.digest) ref.tag = kDefaultTag;
  return ref;
}

}  // namespace vessel::image
