// The body of POST /containers/create (Docker's Config + HostConfig +
// NetworkingConfig), read into what the containers layer takes, and the
// other parsers of what clients send that carry no state (an endpoint's
// config, X-Registry-Auth). Pure: no state is touched, so the fuzz target
// runs them on any bytes. The image's
// defaults (Entrypoint, Cmd, Env, ...) are applied later, by the handler,
// once the image is found.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "networks/networks.h"
#include "registry/auth.h"
#include "runtime/config.h"

namespace vessel::api {

struct CreateSpec {
  std::string image;                                   // Config.Image, required
  runtime::ContainerConfig config;                     // everything the body says
  std::optional<std::vector<std::string>> entrypoint;  // null/absent: the image's
  std::optional<std::vector<std::string>> cmd;         // null/absent: the image's
  bool workdir_set = false, user_set = false, stop_signal_set = false;
  bool publish_all = false;  // HostConfig.PublishAllPorts
  std::vector<networks::Attachment> attachments;
};

/// Reads `body`. Each known field must have its JSON type; zero values of
/// fields Vessel does not support are accepted (clients send them all),
/// anything else naming such a feature is refused. Errors are
/// kInvalidArgument naming the field: "HostConfig.Memory: expected a
/// number", "HostConfig.CpuShares (--cpu-shares) is not supported by
/// Vessel (...)": a field Vessel cannot honour is refused when set (see
/// is_set), never ignored.
Result<CreateSpec> parse_create_body(const nlohmann::json& body);

/// Whether a client set a field: clients send unset ones as null, 0, false,
/// "" or an empty list or object.
bool is_set(const nlohmann::json& value);

/// One endpoint's settings (EndpointsConfig.NAME at create, EndpointConfig
/// of network connect): Aliases, MacAddress, IPAMConfig.IPv4Address; null
/// is none. `path` prefixes the field names in errors ("X.Y.").
Result<networks::Attachment> parse_endpoint_config(const nlohmann::json& ep,
                                                   const std::string& network,
                                                   const std::string& path);

/// The X-Registry-Auth header: base64url (padding optional) of a JSON
/// object {"username", "password", ...}. nullopt for no header or no
/// username and password ("e30=", {}): use the stored credentials.
/// kInvalidArgument when it is not that.
Result<std::optional<registry::Credentials>> parse_registry_auth(const std::string& header);

}  // namespace vessel::api
