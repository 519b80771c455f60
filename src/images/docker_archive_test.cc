#include "images/docker_archive.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::images {
namespace {

bool has(const Error& e, std::string_view s) {
  return e.message().find(s) != std::string::npos;
}

TEST(DockerArchiveManifestTest, ParsesDockerSaveOfBothEras) {
  auto r = parse_docker_archive_manifest(R"([
    {"Config":"aa.json","RepoTags":["busybox:latest","busybox:1"],
     "Layers":["11/layer.tar","./22/layer.tar"]},
    {"Config":"blobs/sha256/bb","RepoTags":null,"Layers":["blobs/sha256/cc"],
     "LayerSources":{}}])");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].config, "aa.json");
  EXPECT_EQ((*r)[0].repo_tags, (std::vector<std::string>{"busybox:latest", "busybox:1"}));
  EXPECT_EQ((*r)[0].layers, (std::vector<std::string>{"11/layer.tar", "22/layer.tar"}));
  EXPECT_EQ((*r)[1].config, "blobs/sha256/bb");
  EXPECT_TRUE((*r)[1].repo_tags.empty());
  EXPECT_EQ((*r)[1].layers, (std::vector<std::string>{"blobs/sha256/cc"}));
}

TEST(DockerArchiveManifestTest, RefusesMalformedDocumentsNamingTheField) {
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "not valid JSON"},
           {"{", "not valid JSON"},
           {R"({"Config":"a"})", "not a JSON array"},
           {"[]", "lists no image"},
           {"[1]", "[0]: not an object"},
           {R"([{"Layers":[]}])", "[0].Config: missing"},
           {R"([{"Config":7,"Layers":[]}])", "[0].Config: not a string"},
           {R"([{"Config":"c"}])", "[0].Layers: missing"},
           {R"([{"Config":"c","Layers":"l"}])", "[0].Layers: not an array"},
           {R"([{"Config":"c","Layers":[1]}])", "[0].Layers[0]: not a string"},
           {R"([{"Config":"c","RepoTags":"x","Layers":[]}])", "[0].RepoTags: not an array"},
           {R"([{"Config":"c","RepoTags":[1],"Layers":[]}])", "[0].RepoTags[0]: not a string"},
           {R"([{"Config":"c","Layers":["../etc/passwd"]}])", "path leaves the archive"},
           {R"([{"Config":"a/../../b","Layers":[]}])", "path leaves the archive"},
           {R"([{"Config":"/etc/passwd","Layers":[]}])", "absolute path"},
           {R"([{"Config":"a//b","Layers":[]}])", "empty path component"},
           {R"([{"Config":"","Layers":[]}])", "empty path"},
           {R"([{"Config":".","Layers":[]}])", "archive's root"},
           {R"([{"Config":"a\u0000b","Layers":[]}])", "NUL"},
       }) {
    auto r = parse_docker_archive_manifest(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.error().code(), ErrorCode::kProtocol) << c.json;
    EXPECT_TRUE(has(r.error(), c.says)) << c.json << " -> " << r.error().to_string();
    EXPECT_TRUE(has(r.error(), "manifest.json")) << r.error().to_string();
  }
}

TEST(DockerArchiveManifestTest, EnforcesItsBounds) {
  std::string big = "[" + std::string(kMaxDockerArchiveManifestBytes, ' ') + "]";
  auto r = parse_docker_archive_manifest(big);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has(r.error(), "larger than")) << r.error().to_string();

  std::string layers;
  for (int i = 0; i < 1001; ++i)
    layers += std::string(i ? "," : "") + "\"l\"";
  r = parse_docker_archive_manifest(R"([{"Config":"c","Layers":[)" + layers + "]}]");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has(r.error(), "more than 1000 layers")) << r.error().to_string();

  r = parse_docker_archive_manifest(R"([{"Config":")" + std::string(5000, 'a') +
                                    R"(","Layers":[]}])");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has(r.error(), "too long")) << r.error().to_string();
}

}  // namespace
}  // namespace vessel::images
