#include "registry/credentials.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "sys/fs.h"

namespace vessel::registry {
namespace {

constexpr size_t kMaxConfigBytes = 4u << 20;
// Docker writes Docker Hub's entry under this key.
constexpr const char* kDockerHubKey = "https://index.docker.io/v1/";

std::string config_path(const std::string& dir) {
  return dir + "/config.json";
}

// The parsed file, or an empty object when it does not exist.
Result<nlohmann::json> load(const std::string& dir) {
  std::string path = config_path(dir);
  auto data = sys::read_file(path, kMaxConfigBytes);
  if (!data.ok()) {
    if (data.error().errnum() == ENOENT) return nlohmann::json::object();
    return data.error();
  }
  auto j = nlohmann::json::parse(*data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object())
    return Error(ErrorCode::kInvalidArgument, "parse '" + path + "': not a JSON object");
  return j;
}

}  // namespace

std::string canonical_registry(std::string_view key) {
  std::string k(key);
  for (char& c : k)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* scheme : {"https://", "http://"})
    if (starts_with(k, scheme)) k = k.substr(std::string_view(scheme).size());
  k = k.substr(0, k.find('/'));
  if (k == "index.docker.io" || k == "registry-1.docker.io" || k == "registry.hub.docker.com")
    return "docker.io";
  return k;
}

std::string default_docker_config_dir() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return d;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.docker";
  return "";
}

Result<std::optional<Credentials>> read_credentials(const std::string& dir,
                                                    std::string_view registry) {
  VESSEL_ASSIGN_OR_RETURN(nlohmann::json j, load(dir));
  std::string want = canonical_registry(registry);
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return std::optional<Credentials>();
  for (const auto& [key, entry] : auths->items()) {
    if (canonical_registry(key) != want || !entry.is_object()) continue;
    std::string where = "parse '" + config_path(dir) + "': entry '" + key + "'";
    auto auth = entry.find("auth");
    if (auth != entry.end() && auth->is_string() && !auth->get_ref<const std::string&>().empty()) {
      auto decoded = base64_decode(auth->get<std::string>());
      if (!decoded) return Error(ErrorCode::kInvalidArgument, where + ": invalid base64");
      auto colon = decoded->find(':');
      if (colon == std::string::npos)
        return Error(ErrorCode::kInvalidArgument, where + ": expected user:password");
      return std::optional<Credentials>(
          Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
    }
    // Older files spell them out.
    auto user = entry.find("username");
    auto pass = entry.find("password");
    if (user != entry.end() && pass != entry.end() && user->is_string() && pass->is_string())
      return std::optional<Credentials>(
          Credentials{user->get<std::string>(), pass->get<std::string>()});
  }
  return std::optional<Credentials>();
}

Result<std::optional<Credentials>> lookup_credentials(const std::string& vessel_dir,
                                                      const std::string& docker_dir,
                                                      std::string_view registry) {
  if (!vessel_dir.empty()) {
    VESSEL_ASSIGN_OR_RETURN(auto c, read_credentials(vessel_dir, registry));
    if (c) return c;
  }
  if (!docker_dir.empty()) return read_credentials(docker_dir, registry);
  return std::optional<Credentials>();
}

Status store_credentials(const std::string& dir, std::string_view registry,
                         const Credentials& credentials) {
  std::string canonical = canonical_registry(registry);
  if (canonical.empty())
    return Error(ErrorCode::kInvalidArgument, "store credentials: empty registry name");
  if (credentials.username.find(':') != std::string::npos)
    return Error(ErrorCode::kInvalidArgument,
                 "store credentials for '" + canonical + "': user name contains ':'");
  VESSEL_TRY(sys::make_dirs(dir, 0700));
  VESSEL_ASSIGN_OR_RETURN(nlohmann::json j, load(dir));
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = nlohmann::json::object();
  auto& auths = j["auths"];
  // One entry per registry: drop aliases before writing the canonical key.
  for (auto it = auths.begin(); it != auths.end();) {
    if (canonical_registry(it.key()) == canonical)
      it = auths.erase(it);
    else
      ++it;
  }
  std::string key = canonical == "docker.io" ? kDockerHubKey : canonical;
  auths[key] = {{"auth", base64_encode(credentials.username + ":" + credentials.password)}};
  std::string path = config_path(dir);
  VESSEL_TRY(sys::write_file_atomic(path, j.dump(2) + "\n", 0600));
  // write_file_atomic's mode applies only when it creates the temporary file.
  if (::chmod(path.c_str(), 0600) != 0) return Error::from_errno(errno, "chmod '" + path + "'");
  return ok_status();
}

Status remove_credentials(const std::string& dir, std::string_view registry) {
  std::string canonical = canonical_registry(registry);
  VESSEL_ASSIGN_OR_RETURN(nlohmann::json j, load(dir));
  bool removed = false;
  if (j.contains("auths") && j["auths"].is_object()) {
    auto& auths = j["auths"];
    for (auto it = auths.begin(); it != auths.end();) {
      if (canonical_registry(it.key()) == canonical) {
        it = auths.erase(it);
        removed = true;
      } else {
        ++it;
      }
    }
  }
  if (!removed)
    return Error(ErrorCode::kNotFound, "remove credentials: not logged in to '" + canonical + "'");
  std::string path = config_path(dir);
  VESSEL_TRY(sys::write_file_atomic(path, j.dump(2) + "\n", 0600));
  if (::chmod(path.c_str(), 0600) != 0) return Error::from_errno(errno, "chmod '" + path + "'");
  return ok_status();
}

}  // namespace vessel::registry
