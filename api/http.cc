#include "api/http.h"

#include <charconv>

namespace vessel::api {

using nlohmann::json;

bool Request::flag(const std::string& k, bool fallback) const {
  auto it = query.find(k);
  if (it == query.end()) return fallback;
  const std::string& v = it->second;
  return v == "1" || v == "true" || v == "True" || v == "TRUE";
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Reply json_reply(int status, const json& body) {
  Reply r;
  r.status = status;
  r.body = dump_json(body) + "\n";
  return r;
}

Reply error_reply(int status, const std::string& message) {
  return json_reply(status, json{{"message", message}});
}

int status_of(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

Reply error_reply(const Error& e) {
  return error_reply(status_of(e), e.to_string());
}

std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// "1.41" -> {1, 41}; nullopt unless two decimal numbers.
std::optional<std::pair<int, int>> parse_version(std::string_view v) {
  auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= v.size() || v.size() > 12)
    return std::nullopt;
  int a = 0, b = 0;
  auto r1 = std::from_chars(v.data(), v.data() + dot, a);
  auto r2 = std::from_chars(v.data() + dot + 1, v.data() + v.size(), b);
  if (r1.ec != std::errc() || r1.ptr != v.data() + dot || r2.ec != std::errc() ||
      r2.ptr != v.data() + v.size())
    return std::nullopt;
  return std::make_pair(a, b);
}

}  // namespace

Status parse_target(const std::string& target, Request& out) {
  if (target.empty() || target[0] != '/')
    return Error(ErrorCode::kInvalidArgument, "invalid request target '" + target.substr(0, 64) +
                                                  "': expected an absolute path");
  std::string_view t = target;
  std::string_view raw_path = t.substr(0, t.find('?'));
  std::string_view raw_query =
      t.find('?') == std::string_view::npos ? std::string_view() : t.substr(t.find('?') + 1);
  // '+' is a plus in a path, not a space.
  std::string p;
  {
    std::string decoded;
    for (size_t i = 0; i < raw_path.size(); ++i) {
      if (raw_path[i] == '%') {
        auto one = url_decode(raw_path.substr(i, 3));
        if (!one) return Error(ErrorCode::kInvalidArgument, "invalid escape in the request path");
        decoded += *one;
        i += 2;
      } else {
        decoded += raw_path[i];
      }
    }
    p = std::move(decoded);
  }
  out.version.clear();
  if (p.size() > 3 && p.compare(0, 3, "/v1") == 0 && p[2] >= '0' && p[2] <= '9') {
    auto slash = p.find('/', 1);
    std::string v = p.substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
    auto parsed = parse_version(v);
    if (!parsed) return Error(ErrorCode::kInvalidArgument, "invalid API version '" + v + "'");
    auto max = *parse_version(kApiVersion), min = *parse_version(kMinApiVersion);
    if (*parsed > max)
      return Error(ErrorCode::kFailedPrecondition, "client version " + v +
                                                       " is too new. Maximum supported API "
                                                       "version is " +
                                                       kApiVersion);
    if (*parsed < min)
      return Error(ErrorCode::kFailedPrecondition,
                   "client version " + v + " is too old. Minimum supported API version is " +
                       kMinApiVersion + ", please upgrade your client to a newer version");
    out.version = v;
    p = slash == std::string::npos ? "/" : p.substr(slash);
  }
  // Trailing slashes do not matter ("/containers/json/").
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  out.path = p;
  out.query.clear();
  size_t pos = 0;
  while (pos <= raw_query.size() && !raw_query.empty()) {
    size_t amp = raw_query.find('&', pos);
    std::string_view item =
        raw_query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (!item.empty()) {
      auto eq = item.find('=');
      auto k = url_decode(item.substr(0, eq));
      auto v = url_decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
      if (!k || !v) return Error(ErrorCode::kInvalidArgument, "invalid escape in the query string");
      out.query[*k] = *v;
      out.query_all[*k].push_back(*v);
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return ok_status();
}

Result<std::map<std::string, std::vector<std::string>>> parse_filters(const std::string& text) {
  std::map<std::string, std::vector<std::string>> out;
  if (text.empty()) return out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return Error(ErrorCode::kInvalidArgument, "invalid filters: expected a JSON object");
  for (auto& [k, v] : j.items()) {
    auto& list = out[k];
    if (v.is_array()) {
      for (const auto& x : v) {
        if (!x.is_string())
          return Error(ErrorCode::kInvalidArgument,
                       "invalid filters: '" + k + "': expected strings");
        list.push_back(x.get<std::string>());
      }
    } else if (v.is_object()) {  // the old form {"name": {"x": true}}
      for (auto& [value, on] : v.items())
        if (!on.is_boolean() || on.get<bool>()) list.push_back(value);
    } else {
      return Error(ErrorCode::kInvalidArgument,
                   "invalid filters: '" + k + "': expected a list of strings");
    }
  }
  return out;
}

Result<json> parse_body(const Request& req) {
  if (req.body.empty()) return json::object();
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded())
    return Error(ErrorCode::kInvalidArgument, "invalid JSON body: not well-formed JSON");
  if (!j.is_object())
    return Error(ErrorCode::kInvalidArgument, "invalid JSON body: expected an object");
  return j;
}

}  // namespace vessel::api
