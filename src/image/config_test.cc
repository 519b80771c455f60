#include "image/config.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::image {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

// Shaped like `docker image inspect`'s source: Docker's container config
// with its nulls and extra fields.
const std::string kDockerConfig = R"({
  "architecture": "amd64",
  "config": {
    "Hostname": "", "AttachStdin": false,
    "User": "nobody:nogroup",
    "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.25.3"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Volumes": {"/var/cache/nginx": {}},
    "WorkingDir": "/srv",
    "Labels": {"maintainer": "NGINX Docker Maintainers"},
    "StopSignal": "SIGQUIT",
    "OnBuild": null,
    "ArgsEscaped": true
  },
  "container_config": {"Cmd": ["/bin/sh"]},
  "created": "2023-11-01T00:00:00Z",
  "history": [{"created_by": "/bin/sh -c #(nop) ADD file:abc in /"}, {"empty_layer": true}],
  "os": "linux",
  "rootfs": {"type": "layers", "diff_ids": [")" +
                                  kD1 + R"(", ")" + kD2 + R"("]}
})";

const std::string kMinimal =
    R"({"architecture": "arm64", "os": "linux", "variant": "v8", "rootfs": {"type": "layers", "diff_ids": []}})";

std::string error_of(const std::string& bytes) {
  auto r = parse_image_config(bytes);
  if (r.ok()) return "(parsed)";
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
  return r.error().message();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(ImageConfig, ParsesDockerConfig) {
  auto r = parse_image_config(kDockerConfig);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ImageConfig& c = *r;
  EXPECT_EQ(c.architecture, "amd64");
  EXPECT_EQ(c.os, "linux");
  EXPECT_EQ(c.platform().str(), "linux/amd64");
  EXPECT_EQ(c.config.user, "nobody:nogroup");
  ASSERT_EQ(c.config.env.size(), 2u);
  EXPECT_EQ(c.config.env[1], "NGINX_VERSION=1.25.3");
  EXPECT_EQ(c.config.entrypoint, std::vector<std::string>{"/docker-entrypoint.sh"});
  EXPECT_EQ(c.config.cmd, (std::vector<std::string>{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(c.config.working_dir, "/srv");
  EXPECT_EQ(c.config.stop_signal, "SIGQUIT");
  EXPECT_EQ(c.config.labels.at("maintainer"), "NGINX Docker Maintainers");
  EXPECT_EQ(c.config.exposed_ports, (std::vector<std::string>{"53/udp", "80/tcp"}));
  EXPECT_EQ(c.config.volumes, std::vector<std::string>{"/var/cache/nginx"});
  ASSERT_EQ(c.diff_ids.size(), 2u);
  EXPECT_EQ(c.diff_ids[0].str(), kD1);
  EXPECT_EQ(c.diff_ids[1].str(), kD2);
  EXPECT_EQ(c.created, "2023-11-01T00:00:00Z");
  ASSERT_EQ(c.history.size(), 2u);
  EXPECT_EQ(c.history[0].created_by, "/bin/sh -c #(nop) ADD file:abc in /");
  EXPECT_FALSE(c.history[0].empty_layer);
  EXPECT_TRUE(c.history[1].empty_layer);
}

TEST(ImageConfig, MinimalConfigHasEmptyDefaults) {
  auto r = parse_image_config(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->platform().str(), "linux/arm64/v8");
  EXPECT_TRUE(r->config.cmd.empty());
  EXPECT_TRUE(r->config.env.empty());
  EXPECT_TRUE(r->config.user.empty());
  EXPECT_TRUE(r->diff_ids.empty());
}

TEST(ImageConfig, NullsAreAbsent) {
  const std::string doc = R"({"architecture": "amd64", "os": "linux", "config": {
    "User": null, "Env": null, "Entrypoint": null, "Cmd": null, "WorkingDir": null,
    "Labels": null, "ExposedPorts": null, "Volumes": null, "StopSignal": null},
    "rootfs": {"type": "layers", "diff_ids": []}})";
  auto r = parse_image_config(doc);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->config.entrypoint.empty());
  EXPECT_TRUE(r->config.labels.empty());
  auto null_config =
      parse_image_config(replace(kMinimal, R"("variant": "v8")", R"("config": null)"));
  ASSERT_TRUE(null_config.ok());
}

TEST(ImageConfig, CmdAndEntrypointMayBeAString) {
  auto r = parse_image_config(
      replace(kDockerConfig, R"("Cmd": ["nginx", "-g", "daemon off;"])", R"("Cmd": "nginx")"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->config.cmd, std::vector<std::string>{"nginx"});
}

struct Bad {
  std::string name, bytes, message;
};

void PrintTo(const Bad& b, std::ostream* os) {
  *os << b.name;
}

class RejectsConfig : public ::testing::TestWithParam<Bad> {};

TEST_P(RejectsConfig, WithMessage) {
  EXPECT_EQ(error_of(GetParam().bytes), GetParam().message);
}

std::string many_env(size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i)
    s += std::string(i ? "," : "") + "\"A=1\"";
  return s + "]";
}

std::string many_diff_ids(size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i)
    s += std::string(i ? "," : "") + "\"" + kD1 + "\"";
  return s + "]";
}

INSTANTIATE_TEST_SUITE_P(
    ImageConfig, RejectsConfig,
    ::testing::Values(
        Bad{"NotJson", "{", "invalid image config: not valid JSON"},
        Bad{"NotObject", "\"x\"", "invalid image config: not a JSON object"},
        Bad{"TooBig", std::string(kMaxConfigBytes + 1, ' '),
            "invalid image config: larger than 8388608 bytes"},
        Bad{"NoArchitecture", replace(kMinimal, R"("architecture": "arm64", )", ""),
            "invalid image config: architecture: missing"},
        Bad{"EmptyOs", replace(kMinimal, R"("os": "linux")", R"("os": "")"),
            "invalid image config: os: empty"},
        Bad{"OsNumber", replace(kMinimal, R"("os": "linux")", R"("os": 1)"),
            "invalid image config: os: expected a string, got number"},
        Bad{"VariantBool", replace(kMinimal, R"("variant": "v8")", R"("variant": true)"),
            "invalid image config: variant: expected a string, got boolean"},
        Bad{"NoRootfs", R"({"architecture": "amd64", "os": "linux"})",
            "invalid image config: rootfs: missing"},
        Bad{"RootfsType", replace(kMinimal, R"("type": "layers")", R"("type": "tarballs")"),
            "invalid image config: rootfs.type: expected 'layers', got 'tarballs'"},
        Bad{"NoDiffIds", replace(kMinimal, R"(, "diff_ids": [])", ""),
            "invalid image config: rootfs.diff_ids: missing"},
        Bad{"DiffIdsObject", replace(kMinimal, R"("diff_ids": [])", R"("diff_ids": {})"),
            "invalid image config: rootfs.diff_ids: expected an array"},
        Bad{"BadDiffId", replace(kDockerConfig, kD2, "sha256:xyz"),
            "invalid image config: rootfs.diff_ids[1]: invalid digest 'sha256:xyz'"},
        Bad{"DiffIdNumber", replace(kDockerConfig, "\"" + kD2 + "\"", "2"),
            "invalid image config: rootfs.diff_ids[1]: expected a digest string, got number"},
        Bad{"TooManyDiffIds",
            replace(kMinimal, R"("diff_ids": [])",
                    "\"diff_ids\": " + many_diff_ids(kMaxDiffIds + 1)),
            "invalid image config: rootfs.diff_ids: more than 1000 entries"},
        Bad{"CreatedNumber",
            replace(kMinimal, R"("os": "linux")", R"("os": "linux", "created": 5)"),
            "invalid image config: created: expected a string, got number"},
        Bad{"HistoryObject",
            replace(kMinimal, R"("os": "linux")", R"("os": "linux", "history": {})"),
            "invalid image config: history: expected an array"},
        Bad{"HistoryEmptyLayerString",
            replace(kMinimal, R"("os": "linux")",
                    R"("os": "linux", "history": [{"empty_layer": "yes"}])"),
            "invalid image config: history[0].empty_layer: expected a boolean"},
        Bad{"ConfigArray", replace(kMinimal, R"("variant": "v8")", R"("config": [])"),
            "invalid image config: config: expected an object"},
        Bad{"EnvNotArray", replace(kDockerConfig, R"("Env": [)", R"("Env": {"x": 1}, "y": [)"),
            "invalid image config: config.Env: expected an array of strings, got object"},
        Bad{"EnvEntryNumber", replace(kDockerConfig, R"("NGINX_VERSION=1.25.3")", "7"),
            "invalid image config: config.Env[1]: expected a string, got number"},
        Bad{"EnvNul", replace(kDockerConfig, R"("NGINX_VERSION=1.25.3")", R"("A=\u0000B")"),
            "invalid image config: config.Env[1]: contains a NUL byte"},
        Bad{"CmdNul", replace(kDockerConfig, R"("daemon off;")", R"("x\u0000")"),
            "invalid image config: config.Cmd[2]: contains a NUL byte"},
        Bad{"EntrypointNumber", replace(kDockerConfig, R"(["/docker-entrypoint.sh"])", "1"),
            "invalid image config: config.Entrypoint: expected an array of strings, got number"},
        Bad{"UserNul", replace(kDockerConfig, R"("nobody:nogroup")", R"("root\u0000")"),
            "invalid image config: config.User: contains a NUL byte"},
        Bad{"WorkingDirArray", replace(kDockerConfig, R"("/srv")", R"(["/srv"])"),
            "invalid image config: config.WorkingDir: expected a string, got array"},
        Bad{"LabelNumber", replace(kDockerConfig, R"("NGINX Docker Maintainers")", "1"),
            "invalid image config: config.Labels.maintainer: expected a string, got number"},
        Bad{"PortsArray",
            replace(kDockerConfig, R"({"80/tcp": {}, "53/udp": {}})", R"(["80/tcp"])"),
            "invalid image config: config.ExposedPorts: expected an object, got array"},
        Bad{"PortValue", replace(kDockerConfig, R"("80/tcp": {})", R"("80/tcp": 1)"),
            "invalid image config: config.ExposedPorts.80/tcp: expected an object, got number"},
        Bad{"VolumesString", replace(kDockerConfig, R"({"/var/cache/nginx": {}})", R"("/x")"),
            "invalid image config: config.Volumes: expected an object, got string"},
        Bad{"TooManyEnv",
            replace(kDockerConfig, R"("Env": [)",
                    "\"Env\": " + many_env(kMaxConfigListEntries + 1) + ", \"X\": ["),
            "invalid image config: config.Env: more than 4096 entries"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.name; });

}  // namespace
}  // namespace vessel::image
