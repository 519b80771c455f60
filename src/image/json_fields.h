// Internal: typed, bounded access to fields of untrusted JSON documents
// (manifests, indexes, image configs). Every accessor checks the JSON type
// before reading, so nlohmann::json never throws on registry-controlled
// input, and reports errors as "<path>: <problem>" with code kProtocol.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "image/digest.h"

namespace vessel::image::detail {

using Json = nlohmann::json;

/// Parses `bytes` without exceptions. Fails ("not valid JSON") on a syntax
/// error or invalid UTF-8, ("not a JSON object") when the top level is not
/// an object, and ("larger than N bytes") above `max_bytes`.
Result<Json> parse_object(std::string_view bytes, size_t max_bytes);

/// "<parent>.<key>", or "<key>" at the top level.
std::string join(std::string_view parent, std::string_view key);
/// "<parent>[<i>]".
std::string index(std::string_view parent, size_t i);

/// An Error(kProtocol, "<path>: <why>").
Error field_error(std::string_view path, std::string_view why);

/// The member `key` of `obj`, or nullptr when it is absent or JSON null
/// (Go encoders write null for nil slices and maps). `obj` must be an object.
const Json* find(const Json& obj, std::string_view key);

/// A required member that must be an object.
Result<const Json*> require_object(const Json& obj, std::string_view key, std::string_view path);

/// The string at `key`; required fails when absent, optional yields nullopt.
Result<std::string> require_string(const Json& obj, std::string_view key, std::string_view path);
Result<std::optional<std::string>> optional_string(const Json& obj, std::string_view key,
                                                   std::string_view path);

/// An integer in [min, max] (JSON floats are refused).
Result<int64_t> require_int(const Json& obj, std::string_view key, std::string_view path,
                            int64_t min, int64_t max);

/// A string that Digest::parse accepts.
Result<Digest> require_digest(const Json& obj, std::string_view key, std::string_view path);
Result<Digest> digest_value(const Json& value, std::string_view path);

/// An optional array of strings (absent -> empty), at most `max_count`.
/// When `accept_string` a lone JSON string is taken as a one-element array
/// (Docker's strslice type does this for Cmd and Entrypoint).
Result<std::vector<std::string>> string_array(const Json& obj, std::string_view key,
                                              std::string_view path, size_t max_count,
                                              bool accept_string = false);

/// An optional object of string values (absent -> empty), at most `max_count`.
Result<std::map<std::string, std::string>> string_map(const Json& obj, std::string_view key,
                                                      std::string_view path, size_t max_count);

/// The keys of an optional object whose values must be objects ("80/tcp":
/// {}), at most `max_count`.
Result<std::vector<std::string>> object_keys(const Json& obj, std::string_view key,
                                             std::string_view path, size_t max_count);

}  // namespace vessel::image::detail
