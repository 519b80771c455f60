// Unit tests of the API's request handling that needs no state: targets,
// versions, routes, filters, the create body, the stream framing.
#include <gtest/gtest.h>

#include "api/context.h"
#include "api/create_body.h"
#include "api/http.h"
#include "api/router.h"
#include "api/server.h"

namespace vessel::api {
namespace {

using nlohmann::json;

TEST(ParseTarget, StripsVersionAndDecodesQuery) {
  Request r;
  ASSERT_TRUE(
      parse_target("/v1.41/containers/json?all=1&filters=%7B%22name%22%3A%5B%22x%22%5D%7D", r)
          .ok());
  EXPECT_EQ(r.version, "1.41");
  EXPECT_EQ(r.path, "/containers/json");
  EXPECT_TRUE(r.flag("all"));
  EXPECT_EQ(r.arg("filters"), R"({"name":["x"]})");
  ASSERT_TRUE(parse_target("/_ping", r).ok());
  EXPECT_EQ(r.version, "");
  EXPECT_EQ(r.path, "/_ping");
}

TEST(ParseTarget, RefusesVersionsOutsideTheRange) {
  Request r;
  auto too_new = parse_target("/v1.50/version", r);
  ASSERT_FALSE(too_new.ok());
  EXPECT_EQ(too_new.error().message(),
            "client version 1.50 is too new. Maximum supported API version is 1.41");
  EXPECT_FALSE(parse_target("/v1.12/version", r).ok());
  EXPECT_FALSE(parse_target("/v1.x/version", r).ok());
  EXPECT_TRUE(parse_target("/v1.24/version", r).ok());
}

TEST(ParseTarget, RefusesBadEscapesAndRelativeTargets) {
  Request r;
  EXPECT_FALSE(parse_target("/containers/%zz/json", r).ok());
  EXPECT_FALSE(parse_target("/containers/json?a=%4", r).ok());
  EXPECT_FALSE(parse_target("containers/json", r).ok());
  EXPECT_FALSE(parse_target("", r).ok());
}

TEST(Router, MatchesParametersAndImageNamesWithSlashes) {
  Router router = make_router();
  Request r;
  r.path = "/images/localhost:5000/team/app:1/json";
  ASSERT_NE(router.match("GET", r), nullptr);
  EXPECT_EQ(r.param("name"), "localhost:5000/team/app:1");
  r.path = "/containers/abc/json";
  ASSERT_NE(router.match("GET", r), nullptr);
  EXPECT_EQ(r.param("id"), "abc");
  r.path = "/images/busybox";
  ASSERT_NE(router.match("DELETE", r), nullptr);
  EXPECT_EQ(r.param("name"), "busybox");
  r.path = "/_ping";
  EXPECT_NE(router.match("HEAD", r), nullptr);  // HEAD falls back to GET
  r.path = "/no/such/endpoint";
  EXPECT_EQ(router.match("GET", r), nullptr);
  r.path = "/containers/json";
  EXPECT_EQ(router.match("PUT", r), nullptr);
}

TEST(Router, OnlyArchiveUploadsStreamTheirBody) {
  Router router = make_router();
  Request r;
  bool streams = false;
  r.path = "/containers/abc/archive";
  ASSERT_NE(router.match("PUT", r, &streams), nullptr);
  EXPECT_TRUE(streams);
  r.path = "/images/load";
  ASSERT_NE(router.match("POST", r, &streams), nullptr);
  EXPECT_TRUE(streams);
  r.path = "/containers/create";
  ASSERT_NE(router.match("POST", r, &streams), nullptr);
  EXPECT_FALSE(streams);  // bounded by kMaxBodyBytes
  r.path = "/containers/abc/archive";
  ASSERT_NE(router.match("HEAD", r, &streams), nullptr);
  EXPECT_FALSE(streams);
}

TEST(ParseAndRoute, GivesTheStatusOfBadRequests) {
  Request r;
  EXPECT_EQ(parse_and_route("GET /v1.41/_ping HTTP/1.1\r\nHost: x\r\n\r\n", r), 0);
  EXPECT_EQ(r.path, "/_ping");
  EXPECT_EQ(parse_and_route("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", r), 404);
  EXPECT_EQ(parse_and_route("GET /v1.99/_ping HTTP/1.1\r\nHost: x\r\n\r\n", r), 400);
  EXPECT_EQ(parse_and_route("NOT HTTP AT ALL\r\n\r\n", r), 400);
  std::string huge = "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(kMaxBodyBytes + 1) + "\r\n\r\n";
  EXPECT_EQ(parse_and_route(huge, r), 413);
}

TEST(ParseFilters, TakesBothForms) {
  auto f = parse_filters(R"({"name":["a","b"],"status":{"exited":true}})");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)["name"], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*f)["status"], (std::vector<std::string>{"exited"}));
  EXPECT_FALSE(parse_filters("[1]").ok());
  EXPECT_FALSE(parse_filters(R"({"name":[1]})").ok());
  EXPECT_FALSE(parse_filters("{").ok());
}

TEST(CreateBody, ReadsConfigAndHostConfig) {
  json body = json::parse(R"({
    "Image": "vessel/busybox", "Cmd": ["echo", "hi"], "Env": ["A=1"], "Tty": true,
    "Entrypoint": null, "Labels": {"k": "v"}, "WorkingDir": "/tmp", "StopSignal": "SIGINT",
    "HostConfig": {"Binds": ["/srv:/data:ro"], "Memory": 268435456, "NanoCpus": 1500000000,
      "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "AutoRemove": true,
      "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
      "NetworkMode": "mynet", "Privileged": false, "Devices": []},
    "NetworkingConfig": {"EndpointsConfig": {"mynet": {"Aliases": ["web"]}}}})");
  auto s = parse_create_body(body);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->image, "vessel/busybox");
  EXPECT_EQ(*s->cmd, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_FALSE(s->entrypoint);
  EXPECT_TRUE(s->config.tty);
  EXPECT_EQ(s->config.memory_bytes, 256u << 20);
  EXPECT_EQ(s->config.cpus, 2u);
  EXPECT_EQ(s->config.cpu_millis, 1500u);
  EXPECT_EQ(s->config.restart.to_string(), "on-failure:3");
  EXPECT_TRUE(s->config.auto_remove);
  ASSERT_EQ(s->config.mounts.size(), 1u);
  EXPECT_TRUE(s->config.mounts[0].read_only);
  ASSERT_EQ(s->config.ports.size(), 1u);
  EXPECT_EQ(s->config.ports[0].host_port, 8080);
  EXPECT_EQ(s->config.ports[0].host_ip, "127.0.0.1");
  ASSERT_EQ(s->attachments.size(), 1u);
  EXPECT_EQ(s->attachments[0].network, "mynet");
  EXPECT_EQ(s->attachments[0].aliases, (std::vector<std::string>{"web"}));
  EXPECT_EQ(s->config.stop_signal, 2);
}

TEST(CreateBody, ReadsCapabilitiesSecurityOptionsAndCpuQuota) {
  auto s = parse_create_body(json::parse(R"({"Image": "x", "HostConfig": {
    "CapAdd": ["NET_ADMIN"], "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
    "CpuQuota": 150000, "CpuPeriod": 100000}})"));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->config.cap_add, (std::vector<std::string>{"NET_ADMIN"}));
  EXPECT_EQ(s->config.cap_drop, (std::vector<std::string>{"ALL"}));
  EXPECT_TRUE(s->config.no_new_privileges);
  EXPECT_EQ(s->config.cpus, 2u);
  EXPECT_EQ(s->config.cpu_millis, 1500u);
  // --privileged: every capability (and no host device).
  auto p = parse_create_body(json::parse(R"({"Image": "x", "HostConfig": {"Privileged": true}})"));
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->config.cap_add, (std::vector<std::string>{"ALL"}));
  EXPECT_FALSE(p->config.no_new_privileges);
}

TEST(CreateBody, NamesTheFieldThatIsWrong) {
  auto err = [](const char* text) {
    auto s = parse_create_body(json::parse(text));
    return s.ok() ? std::string("ok") : s.error().to_string();
  };
  EXPECT_EQ(err(R"({"Cmd": ["x"]})"), "Config.Image: an image is required");
  EXPECT_EQ(err(R"({"Image": "x", "HostConfig": {"Memory": "lots"}})"),
            "HostConfig.Memory: expected an integer");
  EXPECT_EQ(err(R"({"Image": "x", "Env": [1]})"), "Config.Env: expected a list of strings");
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"Devices": [{"PathOnHost": "/dev/kvm"}]}})")
                .find("HostConfig.Devices (--device) is not supported by Vessel"),
            std::string::npos);
  EXPECT_EQ(err(R"({"Image": "x", "HostConfig": {"CapAdd": ["NET_ADMN"]}})"),
            "HostConfig.CapAdd: unknown capability 'NET_ADMN'");
  EXPECT_EQ(err(R"({"Image": "x", "HostConfig": {"CapDrop": "ALL"}})"),
            "HostConfig.CapDrop: expected a list of strings");
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"SecurityOpt": ["seccomp={\"a\": 1}"]}})")
                .find("HostConfig.SecurityOpt: unsupported security option 'seccomp'"),
            std::string::npos);
  // What a client sends unset passes; what the VM cannot honour is named.
  EXPECT_EQ(err(R"({"Image": "x", "HostConfig": {"CpuShares": 0, "BlkioWeightDevice": [],
    "Links": null, "OomKillDisable": false, "CpusetCpus": "", "CgroupnsMode": "",
    "Isolation": "default"}})"),
            "ok");
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"CpuShares": 512}})")
                .find("HostConfig.CpuShares (--cpu-shares) is not supported by Vessel"),
            std::string::npos);
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"DeviceRequests": [{"Count": -1}]}})")
                .find("HostConfig.DeviceRequests (--gpus)"),
            std::string::npos);
  EXPECT_EQ(err(R"({"Image": "x", "HostConfig": {"ShmSize": 67108864}})"), "ok");
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"ShmSize": 1073741824}})")
                .find("HostConfig.ShmSize (--shm-size) other than 64 MiB"),
            std::string::npos);
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"CgroupnsMode": "host"}})")
                .find("HostConfig.CgroupnsMode 'host' is not supported"),
            std::string::npos);
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"CpuQuota": 50000, "NanoCpus": 1000000000}})")
                .find("HostConfig.CpuQuota: conflicts with NanoCpus"),
            std::string::npos);
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"NetworkMode": "host"}})")
                .find("is not supported by Vessel"),
            std::string::npos);
  EXPECT_NE(err(R"({"Image": "x", "HostConfig": {"PortBindings": {"nope": null}}})"), "ok");
  EXPECT_NE(err(R"({"Image": "x", "WorkingDir": "relative"})"), "ok");
  EXPECT_EQ(err(R"({"Image": "x", "Cmd": "true"})"), "ok");  // a single string, as Docker takes
}

TEST(RegistryAuth, ReadsDockersHeader) {
  auto none = parse_registry_auth("e30=");  // {}
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  EXPECT_FALSE(*parse_registry_auth(""));
  // base64url without padding of {"username":"a","password":"b?>"}
  auto creds = parse_registry_auth("eyJ1c2VybmFtZSI6ImEiLCJwYXNzd29yZCI6ImI_PiJ9");
  ASSERT_TRUE(creds.ok()) << creds.error().to_string();
  ASSERT_TRUE(*creds);
  EXPECT_EQ((*creds)->username, "a");
  EXPECT_EQ((*creds)->password, "b?>");
  auto bad = parse_registry_auth("not base64!");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(parse_registry_auth("WzFd").ok());  // [1]: not an object
}

TEST(EndpointConfig, ReadsWhatConnectSends) {
  auto a = parse_endpoint_config(
      json::parse(R"({"Aliases": ["x"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}})"), "bridge",
      "EndpointConfig.");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->network, "default");  // Docker's bridge
  EXPECT_EQ(a->aliases, std::vector<std::string>{"x"});
  EXPECT_EQ(a->ip, "10.9.0.5");
  EXPECT_TRUE(parse_endpoint_config(json(), "n", "EndpointConfig.").ok());
  auto bad = parse_endpoint_config(json::parse(R"({"Aliases": "x"})"), "n", "EndpointConfig.");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("EndpointConfig.Aliases"), std::string::npos)
      << bad.error().message();
}

TEST(Streams, FramesWithDockersHeader) {
  std::string f = frame_stream(2, "hi\n");
  ASSERT_EQ(f.size(), 11u);
  EXPECT_EQ(f[0], 2);
  EXPECT_EQ(f.substr(1, 3), std::string(3, '\0'));
  EXPECT_EQ(static_cast<uint8_t>(f[7]), 3);
  EXPECT_EQ(f.substr(8), "hi\n");
}

TEST(SocketUri, AcceptsUnixOnly) {
  EXPECT_EQ(*socket_from_uri("unix:///run/x.sock"), "/run/x.sock");
  EXPECT_EQ(*socket_from_uri("/tmp/d.sock"), "/tmp/d.sock");
  EXPECT_FALSE(socket_from_uri("tcp://0.0.0.0:2375").ok());
  EXPECT_FALSE(socket_from_uri("relative.sock").ok());
}

}  // namespace
}  // namespace vessel::api
