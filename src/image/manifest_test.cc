#include "image/manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::image {
namespace {

namespace mt = media_types;

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');

// An OCI manifest with two layers, `extra` spliced in at the top level.
std::string oci_manifest(const std::string& extra = "",
                         const std::string& layer_type = std::string(mt::kOciLayerTarGzip)) {
  return R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ")" +
         kD1 + R"(", "size": 1469},
    "layers": [
      {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ")" +
         kD2 + R"(", "size": 2818413},
      {"mediaType": ")" +
         layer_type + R"(", "digest": ")" + kD3 + R"(", "size": 0,
       "annotations": {"org.opencontainers.image.title": "x"}}
    ],
    "annotations": {"a": "b"})" +
         extra + "}";
}

const char* const kDockerManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
             "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
  "layers": [
    {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
    {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "urls": ["https://example.com/layer"]}
  ]
})";

// A Docker Hub style index: amd64, arm64/v8, arm/v7 and an attestation.
const char* const kIndex = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100,
     "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 101,
     "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 102,
     "digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 103,
     "digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
     "platform": {"architecture": "unknown", "os": "unknown"},
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
  ]
})";

Manifest as_manifest(const std::string& bytes, std::string_view hint = "") {
  auto r = parse_manifest(bytes, hint);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  if (!r.ok() || !std::holds_alternative<Manifest>(*r)) {
    ADD_FAILURE() << "not a manifest";
    return Manifest{.config = {.digest = *Digest::parse(kD1)}};
  }
  return std::get<Manifest>(std::move(r).value());
}

Index as_index(const std::string& bytes, std::string_view hint = "") {
  auto r = parse_manifest(bytes, hint);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  if (!r.ok() || !std::holds_alternative<Index>(*r)) {
    ADD_FAILURE() << "not an index";
    return Index{};
  }
  return std::get<Index>(std::move(r).value());
}

std::string error_of(const std::string& bytes, std::string_view hint = "") {
  auto r = parse_manifest(bytes, hint);
  if (r.ok()) return "(parsed)";
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
  return r.error().message();
}

TEST(Manifest, ParsesOciManifest) {
  Manifest m = as_manifest(oci_manifest());
  EXPECT_EQ(m.media_type, mt::kOciManifest);
  EXPECT_EQ(m.config.media_type, mt::kOciConfig);
  EXPECT_EQ(m.config.digest.str(), kD1);
  EXPECT_EQ(m.config.size, 1469);
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(m.layers[0].digest.str(), kD2);
  EXPECT_EQ(m.layers[0].size, 2818413);
  EXPECT_EQ(m.layers[1].size, 0);
  EXPECT_EQ(m.layers[1].annotations.at("org.opencontainers.image.title"), "x");
  EXPECT_EQ(m.annotations.at("a"), "b");
  EXPECT_FALSE(m.layers[0].platform);
}

TEST(Manifest, ParsesDockerSchema2) {
  Manifest m = as_manifest(kDockerManifest, mt::kDockerManifest);
  EXPECT_EQ(m.media_type, mt::kDockerManifest);
  EXPECT_EQ(m.config.media_type, mt::kDockerConfig);
  EXPECT_TRUE(is_image_config_media_type(m.config.media_type));
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(layer_compression(m.layers[0].media_type), LayerCompression::kGzip);
  EXPECT_TRUE(is_nondistributable_layer(m.layers[1].media_type));
  ASSERT_EQ(m.layers[1].urls.size(), 1u);
  EXPECT_EQ(m.layers[1].urls[0], "https://example.com/layer");
}

TEST(Manifest, ParsesIndexAndManifestList) {
  Index x = as_index(kIndex);
  EXPECT_EQ(x.media_type, mt::kOciIndex);
  ASSERT_EQ(x.manifests.size(), 4u);
  ASSERT_TRUE(x.manifests[1].platform);
  EXPECT_EQ(x.manifests[1].platform->str(), "linux/arm64/v8");
  EXPECT_EQ(x.manifests[3].annotations.at("vnd.docker.reference.type"), "attestation-manifest");

  std::string list = kIndex;
  list.replace(list.find(mt::kOciIndex), mt::kOciIndex.size(), mt::kDockerManifestList);
  EXPECT_EQ(as_index(list).media_type, mt::kDockerManifestList);
}

TEST(Manifest, MediaTypeFromHintOrShapeWhenAbsent) {
  const std::string bare_manifest = R"({"schemaVersion": 2,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ")" +
                                    kD1 + R"(", "size": 1}, "layers": []})";
  EXPECT_EQ(as_manifest(bare_manifest).media_type, mt::kOciManifest);
  EXPECT_EQ(as_manifest(bare_manifest, "application/json").media_type, mt::kOciManifest);
  EXPECT_EQ(as_manifest(bare_manifest, mt::kDockerManifest).media_type, mt::kDockerManifest);
  EXPECT_EQ(as_manifest(bare_manifest, " application/vnd.oci.image.manifest.v1+json; charset=utf-8")
                .media_type,
            mt::kOciManifest);
  EXPECT_TRUE(as_manifest(bare_manifest).layers.empty());

  const std::string bare_index = R"({"schemaVersion": 2, "manifests": []})";
  EXPECT_EQ(as_index(bare_index).media_type, mt::kOciIndex);
  EXPECT_EQ(as_index(bare_index, mt::kDockerManifestList).media_type, mt::kDockerManifestList);

  EXPECT_EQ(error_of(R"({"schemaVersion": 2})"),
            "invalid manifest: no mediaType and neither 'config' nor 'manifests'");
  EXPECT_EQ(error_of(bare_manifest, "text/html"),
            "invalid manifest: unknown media type 'text/html'");
}

TEST(Manifest, BodyMediaTypeMustAgreeWithAKnownHint) {
  EXPECT_EQ(as_manifest(oci_manifest(), mt::kOciManifest).media_type, mt::kOciManifest);
  // An unrelated content type is ignored when the body says what it is.
  EXPECT_EQ(as_manifest(oci_manifest(), "application/octet-stream").media_type, mt::kOciManifest);
  EXPECT_EQ(error_of(oci_manifest(), mt::kOciIndex),
            "invalid manifest: media type 'application/vnd.oci.image.manifest.v1+json' does not "
            "match content type 'application/vnd.oci.image.index.v1+json'");
}

TEST(Manifest, RefusesTypeConfusion) {
  EXPECT_EQ(error_of(oci_manifest(R"(, "manifests": [])")),
            "invalid manifest: image manifest has a 'manifests' field");
  std::string x = kIndex;
  x.insert(x.rfind('}'), R"(, "layers": [])");
  EXPECT_EQ(error_of(x), "invalid manifest: index has a 'config' or 'layers' field");
}

TEST(Manifest, LayerCompressionFromMediaType) {
  EXPECT_EQ(layer_compression(mt::kOciLayerTar), LayerCompression::kNone);
  EXPECT_EQ(layer_compression(mt::kOciLayerTarGzip), LayerCompression::kGzip);
  EXPECT_EQ(layer_compression(mt::kOciLayerTarZstd), LayerCompression::kZstd);
  EXPECT_EQ(layer_compression(mt::kOciLayerNondistributableTar), LayerCompression::kNone);
  EXPECT_EQ(layer_compression(mt::kOciLayerNondistributableTarGzip), LayerCompression::kGzip);
  EXPECT_EQ(layer_compression(mt::kOciLayerNondistributableTarZstd), LayerCompression::kZstd);
  EXPECT_EQ(layer_compression(mt::kDockerLayerTar), LayerCompression::kNone);
  EXPECT_EQ(layer_compression(mt::kDockerLayerTarGzip), LayerCompression::kGzip);
  EXPECT_EQ(layer_compression(mt::kDockerForeignLayerTar), LayerCompression::kNone);
  EXPECT_EQ(layer_compression(mt::kDockerForeignLayerTarGzip), LayerCompression::kGzip);
  EXPECT_EQ(layer_compression("application/vnd.in-toto+json"), std::nullopt);
  EXPECT_EQ(layer_compression(mt::kOciConfig), std::nullopt);
  EXPECT_FALSE(is_nondistributable_layer(mt::kOciLayerTarGzip));
  EXPECT_TRUE(is_nondistributable_layer(mt::kOciLayerNondistributableTarZstd));
  for (auto m : {mt::kOciLayerTar, mt::kOciLayerTarZstd, mt::kDockerLayerTar})
    EXPECT_EQ(as_manifest(oci_manifest("", std::string(m))).layers[1].media_type, m);
}

struct Bad {
  std::string name;
  std::string bytes;
  std::string hint;
  std::string message;  // the whole error message
};

void PrintTo(const Bad& b, std::ostream* os) {
  *os << b.name;
}

class RejectsManifest : public ::testing::TestWithParam<Bad> {};

TEST_P(RejectsManifest, WithMessage) {
  EXPECT_EQ(error_of(GetParam().bytes, GetParam().hint), GetParam().message);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string layers_json(size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i)
    s += std::string(i ? "," : "") + R"({"mediaType": "application/vnd.oci.image.layer.v1.tar", )" +
         R"("digest": ")" + kD2 + R"(", "size": 1})";
  return s + "]";
}

std::string with_layers(size_t n) {
  return R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ")" +
         kD1 + R"(", "size": 1}, "layers": )" + layers_json(n) + "}";
}

std::string with_manifests(size_t n) {
  std::string s = R"({"schemaVersion": 2, "manifests": [)";
  for (size_t i = 0; i < n; ++i)
    s += std::string(i ? "," : "") +
         R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kD2 +
         R"(", "size": 1})";
  return s + "]}";
}

const std::string kOciLayerGz = std::string(mt::kOciLayerTarGzip);

INSTANTIATE_TEST_SUITE_P(
    Manifest, RejectsManifest,
    ::testing::Values(
        Bad{"Empty", "", "", "invalid manifest: not valid JSON"},
        Bad{"Garbage", "{\"schemaVersion\": 2,", "", "invalid manifest: not valid JSON"},
        Bad{"BadUtf8", "{\"a\": \"\xff\"}", "", "invalid manifest: not valid JSON"},
        Bad{"Array", "[]", "", "invalid manifest: not a JSON object"},
        Bad{"TooBig", std::string(kMaxManifestBytes + 1, ' '), "",
            "invalid manifest: larger than 4194304 bytes"},
        Bad{"SchemaVersion1",
            replace(oci_manifest(), "\"schemaVersion\": 2", "\"schemaVersion\": 1"), "",
            "invalid manifest: schemaVersion 1 is not supported (want 2)"},
        Bad{"SchemaVersionString",
            replace(oci_manifest(), "\"schemaVersion\": 2", "\"schemaVersion\": \"2\""), "",
            "invalid manifest: schemaVersion: expected an integer, got string"},
        Bad{"SchemaVersionFloat",
            replace(oci_manifest(), "\"schemaVersion\": 2", "\"schemaVersion\": 2.0"), "",
            "invalid manifest: schemaVersion: expected an integer, got number"},
        Bad{"NoSchemaVersion", replace(oci_manifest(), "\"schemaVersion\": 2,", ""), "",
            "invalid manifest: schemaVersion: missing"},
        Bad{"Schema1", R"({"schemaVersion": 1, "name": "x", "fsLayers": []})",
            std::string(mt::kDockerSchema1SignedManifest),
            "invalid manifest: unknown media type "
            "'application/vnd.docker.distribution.manifest.v1+prettyjws' (Docker schema 1 "
            "manifests are not supported)"},
        Bad{"UnknownType", R"({"schemaVersion": 2, "mediaType": "x"})", "",
            "invalid manifest: unknown media type 'x'"},
        Bad{"MediaTypeNotString", R"({"schemaVersion": 2, "mediaType": 7})", "",
            "invalid manifest: mediaType: expected a string, got number"},
        Bad{"NoConfig", replace(with_layers(0), R"("config": {)", R"("cfg": {)"), "",
            "invalid manifest: config: missing"},
        Bad{"ConfigNotObject", replace(with_layers(0), R"("config": {)", R"("config": [{)"), "",
            "invalid manifest: not valid JSON"},
        Bad{"ConfigString", R"({"schemaVersion": 2, "config": "x", "layers": []})", "",
            "invalid manifest: config: expected an object, got string"},
        Bad{"NoLayers", replace(oci_manifest(), "\"layers\"", "\"layerz\""), "",
            "invalid manifest: layers: missing"},
        Bad{"LayersNotArray", replace(with_layers(0), R"("layers": [])", R"("layers": {})"), "",
            "invalid manifest: layers: expected an array"},
        Bad{"LayerNotObject", replace(with_layers(0), R"("layers": [])", R"("layers": [1])"), "",
            "invalid manifest: layers[0]: expected an object"},
        Bad{"UnknownLayerType", oci_manifest("", "application/vnd.in-toto+json"), "",
            "invalid manifest: layers[1]: unknown media type 'application/vnd.in-toto+json'"},
        Bad{"MalformedLayerType", oci_manifest("", "tar"), "",
            "invalid manifest: layers[1].mediaType: malformed media type 'tar'"},
        Bad{"MissingDigest", replace(oci_manifest(), R"("digest": ")" + kD3 + "\",", ""), "",
            "invalid manifest: layers[1].digest: missing"},
        Bad{"BadDigest", replace(oci_manifest(), kD3, "sha256:../../etc/passwd"), "",
            "invalid manifest: layers[1].digest: invalid digest 'sha256:../../etc/passwd'"},
        Bad{"DigestNotString", replace(oci_manifest(), "\"" + kD3 + "\"", "3"), "",
            "invalid manifest: layers[1].digest: expected a digest string, got number"},
        Bad{"ConfigBadDigest", replace(oci_manifest(), kD1, "md5:abc"), "",
            "invalid manifest: config.digest: invalid digest 'md5:abc'"},
        Bad{"NegativeSize", replace(oci_manifest(), "\"size\": 0", "\"size\": -1"), "",
            "invalid manifest: layers[1].size: out of range [0, 1099511627776]"},
        Bad{"HugeSize", replace(oci_manifest(), "\"size\": 0", "\"size\": 1099511627777"), "",
            "invalid manifest: layers[1].size: out of range [0, 1099511627776]"},
        Bad{"Uint64Size", replace(oci_manifest(), "\"size\": 0", "\"size\": 18446744073709551615"),
            "", "invalid manifest: layers[1].size: out of range [0, 1099511627776]"},
        Bad{"FloatSize", replace(oci_manifest(), "\"size\": 0", "\"size\": 1.5"), "",
            "invalid manifest: layers[1].size: expected an integer, got number"},
        Bad{"MissingSize", replace(oci_manifest(), "\"size\": 1469", "\"sighs\": 1"), "",
            "invalid manifest: config.size: missing"},
        Bad{"AnnotationNotString", replace(oci_manifest(), R"("a": "b")", R"("a": 1)"), "",
            "invalid manifest: annotations.a: expected a string, got number"},
        Bad{"AnnotationsArray",
            replace(oci_manifest(), R"("annotations": {"a": "b"})", R"("annotations": ["a"])"), "",
            "invalid manifest: annotations: expected an object of strings, got array"},
        Bad{"UrlsNotStrings", replace(kDockerManifest, R"(["https://example.com/layer"])", "[1]"),
            "", "invalid manifest: layers[1].urls[0]: expected a string, got number"},
        Bad{"TooManyLayers", with_layers(kMaxLayers + 1), "",
            "invalid manifest: layers: more than 1000 entries"},
        Bad{"TooManyManifests", with_manifests(kMaxIndexManifests + 1), "",
            "invalid manifest: manifests: more than 1000 entries"},
        Bad{"IndexWithoutManifests",
            R"({"schemaVersion": 2, "mediaType": ")" + std::string(mt::kOciIndex) + "\"}", "",
            "invalid manifest: manifests: missing"},
        Bad{"PlatformNotObject",
            replace(kIndex, R"({"architecture": "amd64", "os": "linux"})", R"("linux/amd64")"), "",
            "invalid manifest: manifests[0].platform: expected an object"},
        Bad{"PlatformNoOs",
            replace(kIndex, R"({"architecture": "amd64", "os": "linux"})",
                    R"({"architecture": "amd64"})"),
            "", "invalid manifest: manifests[0].platform.os: missing"},
        Bad{"PlatformEmptyArch",
            replace(kIndex, R"({"architecture": "amd64", "os": "linux"})",
                    R"({"architecture": "", "os": "linux"})"),
            "", "invalid manifest: manifests[0].platform.architecture: empty"},
        Bad{"PlatformVariantNumber", replace(kIndex, R"("variant": "v8")", R"("variant": 8)"), "",
            "invalid manifest: manifests[1].platform.variant: expected a string, got number"},
        Bad{"ControlCharsArePrintable", R"({"schemaVersion": 2, "mediaType": "a\u001bb"})", "",
            "invalid manifest: unknown media type 'a\\x1bb'"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.name; });

TEST(Manifest, BoundsAreInclusive) {
  EXPECT_EQ(as_manifest(with_layers(kMaxLayers)).layers.size(), kMaxLayers);
  EXPECT_EQ(as_index(with_manifests(kMaxIndexManifests)).manifests.size(), kMaxIndexManifests);
  Manifest m = as_manifest(
      replace(oci_manifest(), "\"size\": 0", "\"size\": " + std::to_string(kMaxBlobSize)));
  EXPECT_EQ(m.layers[1].size, kMaxBlobSize);
}

TEST(Manifest, NullOptionalFieldsAreAbsent) {
  Manifest m = as_manifest(
      replace(oci_manifest(), R"("annotations": {"a": "b"})", R"("annotations": null)"));
  EXPECT_TRUE(m.annotations.empty());
  // A null required field is missing.
  EXPECT_EQ(error_of(replace(oci_manifest(), "\"size\": 0", "\"size\": null")),
            "invalid manifest: layers[1].size: missing");
}

TEST(Manifest, DeepNestingIsNotACrash) {
  std::string deep =
      R"({"schemaVersion": 2, "x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  // Valid JSON, but it is neither a manifest nor an index.
  EXPECT_FALSE(parse_manifest(deep, "").ok());
}

TEST(SelectPlatform, PicksExactThenCompatible) {
  Index x = as_index(kIndex);
  auto pick = [&](const char* wanted) -> std::string {
    auto d = select_platform(x, *parse_platform(wanted));
    return d.ok() ? d->digest.str().substr(7, 1) : d.error().message();
  };
  EXPECT_EQ(pick("linux/amd64"), "a");
  EXPECT_EQ(pick("linux/x86_64"), "a");
  EXPECT_EQ(pick("linux/arm64"), "b");
  EXPECT_EQ(pick("linux/arm64/v8"), "b");
  EXPECT_EQ(pick("linux/aarch64"), "b");
  EXPECT_EQ(pick("linux/arm/v7"), "c");  // v6 runs on v7
  EXPECT_EQ(pick("linux/amd64/v3"), "a");
  EXPECT_EQ(pick("linux/s390x"),
            "no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8, "
            "linux/arm/v6");
  EXPECT_EQ(pick("linux/arm/v5"), pick("linux/arm/v5"));
  auto d = select_platform(x, *parse_platform("linux/arm/v5"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), ErrorCode::kNotFound);
}

TEST(SelectPlatform, PrefersExactVariantOverOlder) {
  Index x = as_index(with_manifests(0));
  Descriptor base{.media_type = std::string(mt::kOciManifest), .digest = *Digest::parse(kD1)};
  Descriptor v1 = base, v2 = base, v3 = base;
  v1.platform = Platform{"linux", "amd64", ""};
  v2.platform = Platform{"linux", "amd64", "v2"};
  v2.digest = *Digest::parse(kD2);
  v3.platform = Platform{"linux", "amd64", "v3"};
  v3.digest = *Digest::parse(kD3);
  x.manifests = {v1, v3, v2};
  EXPECT_EQ(select_platform(x, *parse_platform("linux/amd64/v2"))->digest.str(), kD2);
  EXPECT_EQ(select_platform(x, *parse_platform("linux/amd64/v3"))->digest.str(), kD3);
  EXPECT_EQ(select_platform(x, *parse_platform("linux/amd64"))->digest.str(), kD1);
}

TEST(SelectPlatform, SkipsNonManifestsAndFallsBackToUnlabelled) {
  Index x;
  Descriptor nested{.media_type = std::string(mt::kOciIndex),
                    .digest = *Digest::parse(kD1),
                    .platform = Platform{"linux", "amd64", ""}};
  x.manifests = {nested};
  auto none = select_platform(x, *parse_platform("linux/amd64"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message(), "no image for platform linux/amd64; available: none");

  Descriptor plain{.media_type = std::string(mt::kDockerManifest), .digest = *Digest::parse(kD2)};
  x.manifests.push_back(plain);
  auto d = select_platform(x, *parse_platform("linux/amd64"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest.str(), kD2);
}

}  // namespace
}  // namespace vessel::image
