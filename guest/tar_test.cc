// The tar writer and reader of CopyOut/CopyIn, on the host: round trips of
// real trees, interoperability with GNU tar, and hostile archives.
#include "guest/tar.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vessel::guest::tar {
namespace {

namespace fs = std::filesystem;

class TarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/guest_tar_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    src_ = base_ + "/src";
    dst_ = base_ + "/dst";
    fs::create_directories(src_);
    fs::create_directories(dst_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  static void write(const std::string& path, const std::string& data, mode_t mode = 0644) {
    std::ofstream(path, std::ios::binary) << data;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  /// Archives `path` into base_/out.tar; returns the problem count.
  uint64_t archive(const std::string& path, WriteOptions options = {}, bool follow = false) {
    struct stat st;
    EXPECT_EQ(follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st), 0);
    UniqueFd out(
        open((base_ + "/out.tar").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    UniqueFd err(open("/dev/null", O_WRONLY | O_CLOEXEC));
    Result<uint64_t> r = write_archive(path, st, follow, options, out.get(), err.get());
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : 0;
  }

  /// Extracts `tar_path` into `dest`.
  static Status extract(const std::string& tar_path, const std::string& dest,
                        bool no_overwrite_dir_non_dir = false) {
    UniqueFd in(open(tar_path.c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd dir(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ExtractOptions options;
    options.devices = geteuid() == 0;
    options.keep_owner = false;
    options.no_overwrite_dir_non_dir = no_overwrite_dir_non_dir;
    return extract_archive(in.get(), dir.get(), options);
  }

  static mode_t mode_of(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
  }

  std::string base_, src_, dst_;
};

TEST_F(TarTest, RoundTripsATree) {
  std::string top = src_ + "/tree";
  fs::create_directories(top + "/sub/deeper");
  write(top + "/hello.txt", "hello\n", 0640);
  write(top + "/empty", "", 0600);
  std::string big(3 * 65536 + 17, 'x');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 7);
  write(top + "/sub/big.bin", big, 0755);
  ASSERT_EQ(symlink("../hello.txt", (top + "/sub/link").c_str()), 0);
  ASSERT_EQ(link((top + "/hello.txt").c_str(), (top + "/sub/hard").c_str()), 0);
  ASSERT_EQ(mkfifo((top + "/fifo").c_str(), 0620), 0);
  ASSERT_EQ(chmod((top + "/fifo").c_str(), 0620), 0);  // past the umask
  // Names that need ustar's prefix field, and one that needs PAX.
  std::string mid(90, 'm');
  fs::create_directories(top + "/" + mid);
  write(top + "/" + mid + "/" + std::string(60, 'f'), "prefix\n");
  std::string deep = top;
  for (int i = 0; i < 4; ++i)
    deep += "/" + std::string(80, static_cast<char>('a' + i));
  fs::create_directories(deep);
  write(deep + "/" + std::string(120, 'z'), "pax\n");
  ASSERT_EQ(chmod((top + "/sub").c_str(), 0750), 0);
  struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (top + "/hello.txt").c_str(), times, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (top + "/sub").c_str(), times, 0), 0);

  EXPECT_EQ(archive(top, WriteOptions{"copy"}), 0u);
  Status s = extract(base_ + "/out.tar", dst_);
  ASSERT_TRUE(s.ok()) << s.message();

  std::string out = dst_ + "/copy";
  EXPECT_EQ(read(out + "/hello.txt"), "hello\n");
  EXPECT_EQ(mode_of(out + "/hello.txt") & 07777, 0640u);
  EXPECT_EQ(read(out + "/empty"), "");
  EXPECT_EQ(mode_of(out + "/empty") & 07777, 0600u);
  EXPECT_EQ(read(out + "/sub/big.bin"), big);
  EXPECT_EQ(mode_of(out + "/sub/big.bin") & 07777, 0755u);
  EXPECT_EQ(mode_of(out + "/sub") & 07777, 0750u);
  EXPECT_TRUE(S_ISLNK(mode_of(out + "/sub/link")));
  EXPECT_EQ(fs::read_symlink(out + "/sub/link"), "../hello.txt");
  EXPECT_TRUE(S_ISFIFO(mode_of(out + "/fifo")));
  EXPECT_EQ(mode_of(out + "/fifo") & 07777, 0620u);
  struct stat a, b;
  ASSERT_EQ(stat((out + "/hello.txt").c_str(), &a), 0);
  ASSERT_EQ(stat((out + "/sub/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // still one file
  EXPECT_EQ(a.st_mtim.tv_sec, 1000000000);
  ASSERT_EQ(stat((out + "/sub").c_str(), &b), 0);
  EXPECT_EQ(b.st_mtim.tv_sec, 1000000000);  // set after its entries
  EXPECT_EQ(read(out + "/" + mid + "/" + std::string(60, 'f')), "prefix\n");
  std::string deep_out = out;
  for (int i = 0; i < 4; ++i)
    deep_out += "/" + std::string(80, static_cast<char>('a' + i));
  EXPECT_EQ(read(deep_out + "/" + std::string(120, 'z')), "pax\n");
}

TEST_F(TarTest, GnuTarReadsOurArchivesAndWeReadItsOwn) {
  if (system("tar --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no tar(1)";
  std::string top = src_ + "/t";
  std::string longname(150, 'n');
  fs::create_directories(top + "/d");
  write(top + "/d/" + longname, "long\n", 0604);
  ASSERT_EQ(symlink(std::string(130, 's').c_str(), (top + "/l").c_str()), 0);
  EXPECT_EQ(archive(top), 0u);
  std::string list = base_ + "/list";
  ASSERT_EQ(system(("tar -tvf " + base_ + "/out.tar > " + list).c_str()), 0);
  std::string listing = read(list);
  EXPECT_NE(listing.find("t/d/" + longname), std::string::npos) << listing;
  EXPECT_NE(listing.find(std::string(130, 's')), std::string::npos) << listing;

  // GNU tar's own formats, both with long names.
  for (const char* format : {"gnu", "pax", "ustar"}) {
    std::string name = std::string(format) == "ustar" ? "short" : longname;
    fs::create_directories(base_ + "/g/in");
    write(base_ + "/g/in/" + name, format, 0612);
    std::string tarfile = base_ + "/g.tar";
    ASSERT_EQ(system(("tar --format=" + std::string(format) + " -C " + base_ + "/g -cf " + tarfile +
                      " in")
                         .c_str()),
              0);
    std::string into = base_ + "/from_" + format;
    fs::create_directories(into);
    Status s = extract(tarfile, into);
    ASSERT_TRUE(s.ok()) << format << ": " << s.message();
    EXPECT_EQ(read(into + "/in/" + name), format);
    EXPECT_EQ(mode_of(into + "/in/" + name) & 07777, 0612u);
    fs::remove_all(base_ + "/g");
  }
}

TEST_F(TarTest, DotNameArchivesTheContentsOnly) {
  fs::create_directories(src_ + "/dir/inner");
  write(src_ + "/dir/a", "a");
  write(src_ + "/dir/inner/b", "b");
  EXPECT_EQ(archive(src_ + "/dir/."), 0u);
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_).ok());
  EXPECT_EQ(read(dst_ + "/a"), "a");
  EXPECT_EQ(read(dst_ + "/inner/b"), "b");
  EXPECT_FALSE(fs::exists(dst_ + "/dir"));
}

TEST_F(TarTest, TopOnlyIsAStat) {
  write(src_ + "/f", "contents that are not sent");
  EXPECT_EQ(archive(src_ + "/f", WriteOptions{"", false, true}), 0u);
  EXPECT_EQ(fs::file_size(base_ + "/out.tar"), 512u * 3);  // a header, two zero blocks
  // The header says the file's size (26 = octal 32), for the stat.
  std::string tar = read(base_ + "/out.tar");
  EXPECT_EQ(tar.substr(124, 12), std::string("00000000032") + '\0');
  fs::create_directories(src_ + "/d/x");
  EXPECT_EQ(archive(src_ + "/d", WriteOptions{"", false, true}), 0u);
  EXPECT_EQ(fs::file_size(base_ + "/out.tar"), 512u * 3);
}

TEST_F(TarTest, FollowsTheTopSymlinkOnlyWhenAsked) {
  write(src_ + "/real", "real");
  ASSERT_EQ(symlink("real", (src_ + "/link").c_str()), 0);
  archive(src_ + "/link");
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_).ok());
  EXPECT_TRUE(S_ISLNK(mode_of(dst_ + "/link")));
  fs::remove(dst_ + "/link");
  archive(src_ + "/link", {}, /*follow=*/true);
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_).ok());
  EXPECT_TRUE(S_ISREG(mode_of(dst_ + "/link")));
  EXPECT_EQ(read(dst_ + "/link"), "real");
}

TEST_F(TarTest, ReplacesFilesAndMergesDirectories) {
  fs::create_directories(src_ + "/d");
  write(src_ + "/d/new", "new");
  write(src_ + "/d/f", "second");
  archive(src_ + "/d");
  fs::create_directories(dst_ + "/d");
  write(dst_ + "/d/old", "old");
  write(dst_ + "/d/f", "first");
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_).ok());
  EXPECT_EQ(read(dst_ + "/d/old"), "old");
  EXPECT_EQ(read(dst_ + "/d/new"), "new");
  EXPECT_EQ(read(dst_ + "/d/f"), "second");
}

// Docker's noOverwriteDirNonDir: a directory is not replaced by a file, nor
// a file by a directory; without it, an empty directory is replaced.
TEST_F(TarTest, NoOverwriteDirNonDirRefusesToChangeWhatAPathIs) {
  write(src_ + "/x", "a file");
  archive(src_ + "/x");
  fs::create_directories(dst_ + "/x");
  Status dir_by_file = extract(base_ + "/out.tar", dst_, true);
  ASSERT_FALSE(dir_by_file.ok());
  EXPECT_EQ(dir_by_file.message(), "cannot overwrite directory 'x' with a non-directory");
  EXPECT_TRUE(fs::is_directory(dst_ + "/x"));
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_).ok());
  EXPECT_EQ(read(dst_ + "/x"), "a file");
  fs::remove(src_ + "/x");
  fs::create_directories(src_ + "/x");
  archive(src_ + "/x");
  Status file_by_dir = extract(base_ + "/out.tar", dst_, true);
  ASSERT_FALSE(file_by_dir.ok());
  EXPECT_EQ(file_by_dir.message(), "cannot overwrite non-directory 'x' with a directory");
  EXPECT_EQ(read(dst_ + "/x"), "a file");
  // Same kinds merge and replace as before.
  ASSERT_TRUE(extract(base_ + "/out.tar", dst_, false).ok());
  EXPECT_TRUE(fs::is_directory(dst_ + "/x"));
  EXPECT_TRUE(extract(base_ + "/out.tar", dst_, true).ok());
}

// ---- hostile archives, written by hand ---------------------------------------

struct RawEntry {
  std::string name;
  char type = '0';
  std::string data;
  std::string link;
};

void octal(char* field, size_t width, uint64_t v) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(v));
}

std::string raw_tar(const std::vector<RawEntry>& entries, bool end = true) {
  std::string out;
  for (const RawEntry& e : entries) {
    char b[512] = {};
    std::memcpy(b, e.name.data(), std::min<size_t>(e.name.size(), 100));
    octal(b + 100, 8, 0644);
    octal(b + 108, 8, 0);
    octal(b + 116, 8, 0);
    octal(b + 124, 12, e.data.size());
    octal(b + 136, 12, 0);
    b[156] = e.type;
    std::memcpy(b + 157, e.link.data(), std::min<size_t>(e.link.size(), 100));
    std::memcpy(b + 257,
                "ustar\0"
                "00",
                8);
    std::memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : b)
      sum += c;
    std::snprintf(b + 148, 8, "%06o", sum);
    out.append(b, 512);
    out += e.data;
    out.append((512 - e.data.size() % 512) % 512, '\0');
  }
  if (end) out.append(1024, '\0');
  return out;
}

TEST_F(TarTest, RefusesEntriesOutsideTheDestination) {
  fs::create_directories(dst_ + "/in");
  std::string outside = base_ + "/outside";
  fs::create_directories(outside);
  std::vector<std::vector<RawEntry>> attacks = {
      {{"../evil", '0', "x"}},
      {{"a/../../evil", '0', "x"}},
      {{"/abs-evil", '0', "x"}},
      // A symlink out, then a file through it.
      {{"link", '2', "", outside}, {"link/evil", '0', "x"}},
      {{"rel", '2', "", "../../outside"}, {"rel/evil", '0', "x"}},
      // A hardlink to a file outside.
      {{"hard", '1', "", "../outside/target"}},
      {{"hard", '1', "", "/etc/passwd"}},
  };
  write(outside + "/target", "target");
  for (size_t i = 0; i < attacks.size(); ++i) {
    write(base_ + "/evil.tar", raw_tar(attacks[i]));
    Status s = extract(base_ + "/evil.tar", dst_ + "/in");
    EXPECT_FALSE(s.ok()) << "attack " << i;
    EXPECT_EQ(s.errnum(), EINVAL) << "attack " << i << ": " << s.message();
  }
  EXPECT_FALSE(fs::exists(base_ + "/evil"));
  EXPECT_FALSE(fs::exists(dst_ + "/evil"));
  EXPECT_FALSE(fs::exists(base_ + "/abs-evil"));
  EXPECT_FALSE(fs::exists(outside + "/evil"));
  EXPECT_EQ(read(outside + "/target"), "target");
  // An existing symlink in the destination is not gone through either.
  ASSERT_EQ(symlink(outside.c_str(), (dst_ + "/in/pre").c_str()), 0);
  write(base_ + "/evil.tar", raw_tar({{"pre/evil", '0', "x"}}));
  EXPECT_FALSE(extract(base_ + "/evil.tar", dst_ + "/in").ok());
  EXPECT_FALSE(fs::exists(outside + "/evil"));
}

TEST_F(TarTest, RejectsCorruptAndTruncatedArchives) {
  std::string good = raw_tar({{"f", '0', std::string(1000, 'x')}});
  write(base_ + "/t.tar", good);
  ASSERT_TRUE(extract(base_ + "/t.tar", dst_).ok());
  // Every truncation inside the entry fails; one at the end-of-archive
  // blocks is accepted (tar(1) tolerates a missing end).
  for (size_t n : {size_t{1}, size_t{511}, size_t{512}, size_t{600}, size_t{1024}, size_t{1535}}) {
    write(base_ + "/t.tar", good.substr(0, n));
    fs::remove_all(dst_);
    fs::create_directories(dst_);
    EXPECT_FALSE(extract(base_ + "/t.tar", dst_).ok()) << n;
  }
  std::string bad = good;
  bad[0] = 'g';  // checksum no longer matches
  write(base_ + "/t.tar", bad);
  Status s = extract(base_ + "/t.tar", dst_);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
  write(base_ + "/t.tar", "this is not a tar archive at all");
  EXPECT_FALSE(extract(base_ + "/t.tar", dst_).ok());
  // A PAX header announcing a huge size is refused before any allocation.
  std::string pax = raw_tar({{"h", 'x', ""}}, false);
  std::snprintf(pax.data() + 124, 12, "%011llo", 1ull << 32);
  write(base_ + "/t.tar", pax);
  EXPECT_FALSE(extract(base_ + "/t.tar", dst_).ok());
}

TEST_F(TarTest, PaxRecordsOverrideTheHeader) {
  std::string records = "30 path=pax-named-file.txt\n";
  // Fix the record length: count the digits too.
  records = std::to_string(records.size()) + records.substr(2);
  std::string t = raw_tar({{"PaxHeader", 'x', records}, {"short", '0', "body"}});
  write(base_ + "/t.tar", t);
  Status s = extract(base_ + "/t.tar", dst_);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(read(dst_ + "/pax-named-file.txt"), "body");
  EXPECT_FALSE(fs::exists(dst_ + "/short"));
  write(base_ + "/t.tar", raw_tar({{"PaxHeader", 'x', "99 path=x\n"}, {"short", '0', "b"}}));
  EXPECT_FALSE(extract(base_ + "/t.tar", dst_).ok());
}

}  // namespace
}  // namespace vessel::guest::tar
