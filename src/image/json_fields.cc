#include "image/json_fields.h"

#include "image/text.h"

namespace vessel::image::detail {
namespace {

const char* type_name(const Json& v) {
  // Json::type_name() is noexcept but spells "number" for all numbers;
  // that is precise enough for a message.
  return v.type_name();
}

Error wrong_type(std::string_view path, const char* expected, const Json& v) {
  return field_error(path, std::string("expected ") + expected + ", got " + type_name(v));
}

}  // namespace

Result<Json> parse_object(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes)
    return Error(ErrorCode::kProtocol, "larger than " + std::to_string(max_bytes) + " bytes");
  // allow_exceptions=false: a syntax error yields a "discarded" value instead
  // of throwing. The catch is for what the flag does not cover (bad_alloc
  // aside, nothing is known to reach it).
  Json doc;
  try {
    doc = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    return Error(ErrorCode::kProtocol, "not valid JSON");
  }
  if (doc.is_discarded()) return Error(ErrorCode::kProtocol, "not valid JSON");
  if (!doc.is_object()) return Error(ErrorCode::kProtocol, "not a JSON object");
  return doc;
}

std::string join(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

std::string index(std::string_view parent, size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

Error field_error(std::string_view path, std::string_view why) {
  return Error(ErrorCode::kProtocol, std::string(path) + ": " + std::string(why));
}

const Json* find(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<const Json*> require_object(const Json& obj, std::string_view key, std::string_view path) {
  const std::string p = join(path, key);
  const Json* v = find(obj, key);
  if (!v) return field_error(p, "missing");
  if (!v->is_object()) return wrong_type(p, "an object", *v);
  return v;
}

Result<std::string> require_string(const Json& obj, std::string_view key, std::string_view path) {
  const std::string p = join(path, key);
  const Json* v = find(obj, key);
  if (!v) return field_error(p, "missing");
  if (!v->is_string()) return wrong_type(p, "a string", *v);
  return v->get_ref<const std::string&>();
}

Result<std::optional<std::string>> optional_string(const Json& obj, std::string_view key,
                                                   std::string_view path) {
  const Json* v = find(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return wrong_type(join(path, key), "a string", *v);
  return std::optional<std::string>(v->get_ref<const std::string&>());
}

Result<int64_t> require_int(const Json& obj, std::string_view key, std::string_view path,
                            int64_t min, int64_t max) {
  const std::string p = join(path, key);
  const Json* v = find(obj, key);
  if (!v) return field_error(p, "missing");
  auto out_of_range = [&] {
    return field_error(p,
                       "out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  };
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max) || (min > 0 && u < static_cast<uint64_t>(min)))
      return out_of_range();
    return static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) {
    const int64_t i = v->get<int64_t>();
    if (i < min || i > max) return out_of_range();
    return i;
  }
  return wrong_type(p, "an integer", *v);
}

Result<Digest> digest_value(const Json& value, std::string_view path) {
  if (!value.is_string()) return wrong_type(path, "a digest string", value);
  const auto& s = value.get_ref<const std::string&>();
  auto d = Digest::parse(s);
  // Digest's own message quotes the raw string; this one makes it printable.
  if (!d.ok()) return field_error(path, "invalid digest '" + printable(s) + "'");
  return std::move(d).value();
}

Result<Digest> require_digest(const Json& obj, std::string_view key, std::string_view path) {
  const std::string p = join(path, key);
  const Json* v = find(obj, key);
  if (!v) return field_error(p, "missing");
  return digest_value(*v, p);
}

Result<std::vector<std::string>> string_array(const Json& obj, std::string_view key,
                                              std::string_view path, size_t max_count,
                                              bool accept_string) {
  const std::string p = join(path, key);
  std::vector<std::string> out;
  const Json* v = find(obj, key);
  if (!v) return out;
  if (accept_string && v->is_string()) {
    out.push_back(v->get_ref<const std::string&>());
    return out;
  }
  if (!v->is_array()) return wrong_type(p, "an array of strings", *v);
  if (v->size() > max_count)
    return field_error(p, "more than " + std::to_string(max_count) + " entries");
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) return wrong_type(index(p, i), "a string", e);
    out.push_back(e.get_ref<const std::string&>());
  }
  return out;
}

Result<std::map<std::string, std::string>> string_map(const Json& obj, std::string_view key,
                                                      std::string_view path, size_t max_count) {
  const std::string p = join(path, key);
  std::map<std::string, std::string> out;
  const Json* v = find(obj, key);
  if (!v) return out;
  if (!v->is_object()) return wrong_type(p, "an object of strings", *v);
  if (v->size() > max_count)
    return field_error(p, "more than " + std::to_string(max_count) + " entries");
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) return wrong_type(join(p, printable(k, 64)), "a string", e);
    out.emplace(k, e.get_ref<const std::string&>());
  }
  return out;
}

Result<std::vector<std::string>> object_keys(const Json& obj, std::string_view key,
                                             std::string_view path, size_t max_count) {
  const std::string p = join(path, key);
  std::vector<std::string> out;
  const Json* v = find(obj, key);
  if (!v) return out;
  if (!v->is_object()) return wrong_type(p, "an object", *v);
  if (v->size() > max_count)
    return field_error(p, "more than " + std::to_string(max_count) + " entries");
  for (const auto& [k, e] : v->items()) {
    if (!e.is_object()) return wrong_type(join(p, printable(k, 64)), "an object", e);
    out.push_back(k);
  }
  return out;
}

}  // namespace vessel::image::detail
