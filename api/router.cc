#include "api/router.h"

#include "api/handlers.h"
#include "base/strings.h"

namespace vessel::api {

namespace {

std::vector<std::string> segments_of(const std::string& path) {
  std::vector<std::string> out;
  for (auto& s : split(path, '/'))
    if (!s.empty()) out.push_back(s);
  return out;
}

bool is_param(const std::string& s) {
  return s.size() > 2 && s.front() == '{' && s.back() == '}';
}

// Matches `path` against `pattern` from segment i and j on.
bool match_from(const std::vector<std::string>& pattern, size_t i,
                const std::vector<std::string>& path, size_t j,
                std::map<std::string, std::string>& params) {
  if (i == pattern.size()) return j == path.size();
  const std::string& p = pattern[i];
  if (is_param(p) && p[p.size() - 2] == '*') {
    // Greedy but leaving enough segments for the rest of the pattern.
    size_t rest = pattern.size() - i - 1;
    if (path.size() < j + 1 + rest) return false;
    size_t end = path.size() - rest;
    std::string joined;
    for (size_t k = j; k < end; ++k)
      joined += (k == j ? "" : "/") + path[k];
    params[p.substr(1, p.size() - 3)] = joined;
    return match_from(pattern, i + 1, path, end, params);
  }
  if (j == path.size()) return false;
  if (is_param(p)) {
    params[p.substr(1, p.size() - 2)] = path[j];
  } else if (p != path[j]) {
    return false;
  }
  return match_from(pattern, i + 1, path, j + 1, params);
}

}  // namespace

void Router::add(const std::string& method, const std::string& pattern, Handler handler,
                 bool streams_body) {
  routes_.push_back({method, segments_of(pattern), std::move(handler), streams_body});
}

const Handler* Router::match(const std::string& method, Request& req, bool* streams_body) const {
  auto path = segments_of(req.path);
  for (const std::string& m : {method, method == "HEAD" ? std::string("GET") : std::string()}) {
    if (m.empty()) continue;
    for (const auto& r : routes_) {
      if (r.method != m) continue;
      std::map<std::string, std::string> params;
      if (match_from(r.segments, 0, path, 0, params)) {
        req.params = std::move(params);
        if (streams_body) *streams_body = r.streams_body;
        return &r.handler;
      }
    }
  }
  return nullptr;
}

Router make_router() {
  Router r;
  add_system_routes(r);
  add_container_routes(r);
  add_archive_routes(r);
  add_exec_routes(r);
  add_image_routes(r);
  add_volume_routes(r);
  add_network_routes(r);
  return r;
}

}  // namespace vessel::api
