#include "base/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel {
namespace {

std::string hex(const Sha256Bytes& b) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (uint8_t c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// FIPS 180-2's examples.
TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(hex(sha256("", 0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc", 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShotAndSurvivesAMove) {
  std::string text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Sha256Context a;
  a.update(text.data(), 10);
  Sha256Context b = std::move(a);
  b.update(text.data() + 10, text.size() - 10);
  EXPECT_EQ(hex(b.finish()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace vessel
