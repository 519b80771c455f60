// A userspace forwarder for published ports, run by a container's monitor
// (as Docker's docker-proxy and Podman's rootlessport do): the host port is
// a socket the monitor owns, so it is released whatever ends the monitor,
// reachable on 127.0.0.1 without touching the host's sysctls, and a port in
// use is an error at start.
#pragma once

#include <memory>
#include <vector>

#include "base/error.h"
#include "net/address.h"
#include "net/port_spec.h"

namespace vessel::net {

class PortProxy {
 public:
  /// Binds every mapping's host address and port (0 = a free port) and starts
  /// one thread forwarding each TCP connection and UDP flow to
  /// `target`:container_port. Nothing is left bound on failure. A port in
  /// use is kAlreadyExists: "publish 0.0.0.0:8080->80/tcp: port 8080/tcp is
  /// already in use".
  static Result<std::unique_ptr<PortProxy>> start(const std::vector<PortMapping>& mappings,
                                                  Ipv4 target);
  /// Stops the thread and closes every socket.
  ~PortProxy();
  PortProxy(const PortProxy&) = delete;
  PortProxy& operator=(const PortProxy&) = delete;

  /// The mappings with the host ports actually bound.
  const std::vector<PortMapping>& bound() const;

  /// Forwards to a new address from now on (a restarted VM keeps its address,
  /// so this is rarely needed).
  void set_target(Ipv4 target);

  struct Impl;

 private:
  // Defined in the .cc, where Impl is complete (an inline body would need
  // Impl's destructor here).
  explicit PortProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vessel::net
