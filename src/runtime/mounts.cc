#include "runtime/mounts.h"

#include <set>

#include "base/strings.h"

namespace vessel::runtime {
namespace {

Status check_target(const std::string& target, const std::string& text) {
  if (target.empty() || target[0] != '/')
    return Error(ErrorCode::kInvalidArgument, "invalid mount '" + text + "': the container path '" +
                                                  target + "' is not absolute");
  for (const auto& part : split(target, '/'))
    if (part == "..")
      return Error(ErrorCode::kInvalidArgument,
                   "invalid mount '" + text + "': the container path may not contain '..'");
  return ok_status();
}

// tmpfs options we pass on: size=N[kmg] and mode=octal.
Status check_tmpfs_options(const std::string& options, const std::string& text) {
  if (options.empty()) return ok_status();
  for (const auto& opt : split(options, ',')) {
    auto eq = opt.find('=');
    std::string key = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    bool ok = false;
    if (key == "size")
      ok = parse_size(value).has_value();
    else if (key == "mode")
      ok = !value.empty() && value.size() <= 4 &&
           value.find_first_not_of("01234567") == std::string::npos;
    if (!ok)
      return Error(ErrorCode::kInvalidArgument, "invalid tmpfs option '" + opt + "' in '" + text +
                                                    "' (expected size=N[k|m|g] or mode=OCTAL)");
  }
  return ok_status();
}

}  // namespace

const char* mount_type_name(MountSpec::Type t) {
  switch (t) {
    case MountSpec::Type::kBind:
      return "bind";
    case MountSpec::Type::kVolume:
      return "volume";
    case MountSpec::Type::kTmpfs:
      return "tmpfs";
  }
  return "?";
}

Status validate_volume_name(const std::string& name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool ok = name.size() >= 2 && name.size() <= 128 && alnum(name[0]);
  for (char c : name)
    ok = ok && (alnum(c) || c == '_' || c == '.' || c == '-');
  if (!ok)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid volume name '" + name +
                     "': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters");
  return ok_status();
}

Result<MountSpec> parse_volume_flag(const std::string& text) {
  auto parts = split(text, ':');
  MountSpec m;
  if (parts.size() == 1) {
    m.type = MountSpec::Type::kVolume;  // anonymous
    m.target = parts[0];
    VESSEL_TRY(check_target(m.target, text));
    return m;
  }
  if (parts.size() > 3 || parts[0].empty())
    return Error(ErrorCode::kInvalidArgument,
                 "invalid volume '" + text + "' (expected SOURCE:TARGET[:ro|rw] or TARGET)");
  m.source = parts[0];
  m.target = parts[1];
  if (parts.size() == 3) {
    for (const auto& opt : split(parts[2], ',')) {
      if (opt == "ro")
        m.read_only = true;
      else if (opt != "rw")
        return Error(ErrorCode::kInvalidArgument,
                     "invalid volume option '" + opt + "' in '" + text + "' (expected ro or rw)");
    }
  }
  VESSEL_TRY(check_target(m.target, text));
  if (m.source[0] == '/') {
    m.type = MountSpec::Type::kBind;
    m.create_source = true;
  } else if (m.source[0] == '.' || m.source[0] == '~') {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid volume '" + text + "': a host path must be absolute");
  } else {
    m.type = MountSpec::Type::kVolume;
    VESSEL_TRY(validate_volume_name(m.source));
  }
  return m;
}

Result<MountSpec> parse_mount_flag(const std::string& text) {
  MountSpec m;
  std::string type;
  std::vector<std::string> tmpfs_opts;
  for (const auto& field : split(text, ',')) {
    auto eq = field.find('=');
    std::string key = field.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (key == "type")
      type = value;
    else if (key == "source" || key == "src")
      m.source = value;
    else if (key == "target" || key == "destination" || key == "dst")
      m.target = value;
    else if (key == "readonly" || key == "ro") {
      if (eq != std::string::npos && value != "true" && value != "1" && value != "false" &&
          value != "0")
        return Error(ErrorCode::kInvalidArgument, "invalid value '" + value + "' for " + key +
                                                      " in '" + text +
                                                      "' (expected true or false)");
      m.read_only = eq == std::string::npos || value == "true" || value == "1";
    } else if (key == "tmpfs-size") {
      tmpfs_opts.push_back("size=" + value);
    } else if (key == "tmpfs-mode") {
      tmpfs_opts.push_back("mode=" + value);
    } else {
      return Error(ErrorCode::kInvalidArgument,
                   "unknown field '" + key + "' in --mount '" + text + "'");
    }
  }
  if (type == "bind") {
    m.type = MountSpec::Type::kBind;
    if (m.source.empty() || m.source[0] != '/')
      return Error(ErrorCode::kInvalidArgument,
                   "invalid --mount '" + text + "': a bind mount needs an absolute source");
  } else if (type == "volume") {
    m.type = MountSpec::Type::kVolume;
    if (!m.source.empty()) VESSEL_TRY(validate_volume_name(m.source));
  } else if (type == "tmpfs") {
    m.type = MountSpec::Type::kTmpfs;
    if (!m.source.empty())
      return Error(ErrorCode::kInvalidArgument,
                   "invalid --mount '" + text + "': a tmpfs mount has no source");
  } else {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --mount '" + text + "': type must be bind, volume or tmpfs");
  }
  if (!tmpfs_opts.empty() && m.type != MountSpec::Type::kTmpfs)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --mount '" + text + "': tmpfs options on a " + type + " mount");
  for (const auto& o : tmpfs_opts)
    m.options += (m.options.empty() ? "" : ",") + o;
  VESSEL_TRY(check_tmpfs_options(m.options, text));
  VESSEL_TRY(check_target(m.target, text));
  return m;
}

Result<MountSpec> parse_tmpfs_flag(const std::string& text) {
  MountSpec m;
  m.type = MountSpec::Type::kTmpfs;
  auto colon = text.find(':');
  m.target = text.substr(0, colon);
  if (colon != std::string::npos) m.options = text.substr(colon + 1);
  VESSEL_TRY(check_target(m.target, text));
  VESSEL_TRY(check_tmpfs_options(m.options, text));
  return m;
}

Status check_mounts(const std::vector<MountSpec>& mounts) {
  std::set<std::string> seen;
  for (const auto& m : mounts) {
    std::string t = m.target;
    while (t.size() > 1 && t.back() == '/')
      t.pop_back();
    if (t == "/")
      return Error(ErrorCode::kInvalidArgument, "a mount cannot replace the container's root '/'");
    if (!seen.insert(t).second)
      return Error(ErrorCode::kInvalidArgument, "duplicate mount point '" + t + "'");
  }
  return ok_status();
}

}  // namespace vessel::runtime
