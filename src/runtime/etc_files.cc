#include "runtime/etc_files.h"

#include <algorithm>

#include "base/strings.h"
#include "sys/fs.h"

namespace vessel::runtime {

namespace {

struct HostResolv {
  std::vector<std::string> nameservers, search, options;
};

HostResolv host_resolv() {
  HostResolv h;
  auto content = sys::read_file("/etc/resolv.conf", 64 << 10);
  if (!content.ok()) return h;
  for (const auto& line : split(*content, '\n')) {
    auto words = split(std::string(trim(line)), ' ');
    words.erase(std::remove_if(words.begin(), words.end(),
                               [](const std::string& w) { return trim(w).empty(); }),
                words.end());
    if (words.size() < 2) continue;
    std::vector<std::string> rest(words.begin() + 1, words.end());
    if (words[0] == "nameserver") {
      // Loopback resolvers mean nothing inside the VM (Docker filters
      // them the same way).
      if (starts_with(words[1], "127.") || words[1] == "::1") continue;
      h.nameservers.push_back(words[1]);
    } else if (words[0] == "search" || words[0] == "domain") {
      h.search = rest;
    } else if (words[0] == "options") {
      h.options = rest;
    }
  }
  return h;
}

std::string join_words(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

std::string container_resolv_conf(std::optional<net::Ipv4> network_dns,
                                  const std::vector<std::string>& dns,
                                  const std::vector<std::string>& search,
                                  const std::vector<std::string>& options) {
  HostResolv h = host_resolv();
  std::vector<std::string> servers = dns;
  if (servers.empty()) {
    if (network_dns)
      servers = {network_dns->to_string()};
    else
      servers = h.nameservers;
  }
  // Never empty: an empty file would leave the image's own (or none at all).
  std::string out = "# made by vessel\n";
  for (const auto& s : servers)
    out += "nameserver " + s + "\n";
  auto s = search.empty() ? h.search : search;
  // "--dns-search ." means no search domains at all, as in Docker.
  if (!s.empty() && !(s.size() == 1 && s[0] == ".")) out += "search " + join_words(s) + "\n";
  auto o = options.empty() ? h.options : options;
  if (!o.empty()) out += "options " + join_words(o) + "\n";
  return out;
}

std::string container_hosts(const std::string& hostname, const std::vector<net::Ipv4>& own,
                            const std::vector<std::string>& extra_hosts) {
  std::string out = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  if (own.empty()) out += "127.0.1.1\t" + hostname + "\n";
  for (const auto& a : own)
    out += a.to_string() + "\t" + hostname + "\n";
  for (const auto& e : extra_hosts) {
    auto colon = e.find(':');
    if (colon == std::string::npos) continue;
    out += e.substr(colon + 1) + "\t" + e.substr(0, colon) + "\n";
  }
  return out;
}

Status validate_extra_host(const std::string& spec) {
  auto colon = spec.find(':');
  if (colon == std::string::npos || colon == 0)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --add-host '" + spec + "': expected NAME:IP");
  std::string ip = spec.substr(colon + 1);
  if (ip == "host-gateway") return ok_status();
  if (auto a = net::Ipv4::parse(ip); !a.ok())
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --add-host '" + spec + "': '" + ip + "' is not an IPv4 address");
  return ok_status();
}

}  // namespace vessel::runtime
