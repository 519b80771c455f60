// Runs a libFuzzer target over saved inputs without libFuzzer, so compilers
// without -fsanitize=fuzzer (g++) still exercise the corpus in ctest.
// Usage: <replay> FILE_OR_DIR...   (directories are walked recursively)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: open '%s' failed\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  // Copy into an exact-size buffer so ASan sees any read past the input.
  std::vector<uint8_t> exact(bytes.begin(), bytes.end());
  exact.shrink_to_fit();
  LLVMFuzzerTestOneInput(exact.data(), exact.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  size_t runs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(arg, ec)) {
        if (!e.is_regular_file()) continue;
        ok = run_file(e.path()) && ok;
        ++runs;
      }
      if (ec) {
        std::fprintf(stderr, "replay: walk '%s': %s\n", argv[i], ec.message().c_str());
        ok = false;
      }
    } else {
      ok = run_file(arg) && ok;
      ++runs;
    }
  }
  std::printf("replay: ran %zu inputs\n", runs);
  // An empty corpus would make the test pass while checking nothing.
  return ok && runs > 0 ? 0 : 1;
}
