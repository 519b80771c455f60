#include "content/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::content {
namespace {

using image::Digest;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = sys::make_temp_dir("/tmp", "vessel-store-test-");
    ASSERT_TRUE(d.ok());
    dir_ = *d;
  }
  void TearDown() override { ASSERT_TRUE(sys::remove_tree(dir_).ok()); }
  std::string dir_;
};

TEST_F(StoreTest, PutReadListRemove) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok());
  auto d = s->put("hello");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Digest::of(std::string_view("hello")));
  EXPECT_TRUE(s->has(*d));
  EXPECT_EQ(*s->read(*d), "hello");
  EXPECT_EQ(*s->size(*d), 5u);
  EXPECT_EQ(s->list()->size(), 1u);
  struct stat st;
  ASSERT_EQ(::stat(s->blob_path(*d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ASSERT_TRUE(s->remove(*d).ok());
  EXPECT_FALSE(s->has(*d));
  EXPECT_TRUE(s->remove(*d).ok());
}

TEST_F(StoreTest, VerifyChecksWithoutPublishingAndCommitThenPublishes) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok());
  auto in = s->begin();
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(in->write("staged", 6).ok());
  Digest d = Digest::of(std::string_view("staged"));
  auto wrong = s->verify(*in, Digest::of(std::string_view("other")));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("digest mismatch"), std::string::npos);
  auto short_size = s->verify(*in, d, 7);
  ASSERT_FALSE(short_size.ok());
  EXPECT_NE(short_size.error().message().find("size mismatch"), std::string::npos);
  ASSERT_TRUE(s->verify(*in, d, 6).ok());
  EXPECT_FALSE(s->has(d)) << "verify must not publish";
  EXPECT_EQ(::access(in->path().c_str(), F_OK), 0);
  EXPECT_FALSE(in->write("more", 4).ok()) << "a verified ingest is final";
  // Committing after verify uses the digest computed once.
  ASSERT_TRUE(s->commit(*in, d, 6).ok());
  EXPECT_EQ(*s->read(d), "staged");
}

TEST_F(StoreTest, AdoptVerifiedTrustsTheWritersDigestButChecksTheSize) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok());
  auto in = s->begin();
  ASSERT_TRUE(in.ok());
  {
    // As RegistryClient::fetch_blob writes: through the path, same inode.
    auto fd = sys::open_fd(in->path(), O_WRONLY | O_TRUNC);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(sys::write_all(fd->get(), "fetched", 7).ok());
  }
  Digest d = Digest::of(std::string_view("fetched"));
  auto bad = s->adopt_verified(*in, d, 8);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("size mismatch"), std::string::npos);
  ASSERT_TRUE(s->adopt_verified(*in, d, 7).ok());
  ASSERT_TRUE(s->commit(*in, d, 7).ok());
  EXPECT_EQ(*s->read(d), "fetched");
}

TEST_F(StoreTest, DigestMismatchPublishesNothing) {
  auto s = Store::open(dir_);
  ASSERT_TRUE(s.ok());
  auto in = s->begin();
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(in->write("tampered", 8).ok());
  Digest expected = Digest::of(std::string_view("original"));
  auto st = s->commit(*in, expected);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("digest mismatch"), std::string::npos);
  EXPECT_NE(st.error().message().find(expected.str()), std::string::npos);
  EXPECT_FALSE(s->has(expected));
  std::string tmp = in->path();
  *in = std::move(*s->begin());  // destroying the failed ingest removes its file
  EXPECT_NE(::access(tmp.c_str(), F_OK), 0);
}

TEST_F(StoreTest, SizeMismatchIsAnError) {
  auto s = Store::open(dir_);
  auto in = s->begin();
  ASSERT_TRUE(in->write("abc", 3).ok());
  auto st = s->commit(*in, Digest::of(std::string_view("abc")), 4);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("size mismatch"), std::string::npos);
}

TEST_F(StoreTest, CommitFileHashesWhatWasWrittenByPath) {
  auto s = Store::open(dir_);
  auto in = s->begin();
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(sys::write_file_atomic(in->path(), "by path").ok());
  Digest d = Digest::of(std::string_view("by path"));
  ASSERT_TRUE(s->commit_file(*in, d, 7).ok());
  EXPECT_EQ(*s->read(d), "by path");
}

TEST_F(StoreTest, AbandonedIngestOfADeadWriterIsRemovedOnOpen) {
  ASSERT_TRUE(Store::open(dir_).ok());
  // A child starts a download and dies without cleaning up (kill -9).
  pid_t pid = ::fork();
  if (pid == 0) {
    auto s = Store::open(dir_);
    auto in = s->begin();
    (void)in->write("partial", 7);
    ::_exit(0);  // no destructors: as if killed
  }
  int status;
  ::waitpid(pid, &status, 0);
  auto listing = sys::list_dir(dir_ + "/ingest");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->size(), 1u);
  // A live ingest in this process must survive the cleanup.
  auto s = Store::open(dir_);
  auto live = s->begin();
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(Store::open(dir_).ok());
  listing = sys::list_dir(dir_ + "/ingest");
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_EQ(dir_ + "/ingest/" + listing->front(), live->path());
}

TEST_F(StoreTest, CorruptBlobIsDetectedOnRead) {
  auto s = Store::open(dir_);
  auto d = s->put("good");
  ASSERT_TRUE(d.ok());
  ::chmod(s->blob_path(*d).c_str(), 0644);
  ASSERT_TRUE(sys::write_file_atomic(s->blob_path(*d), "evil").ok());
  auto r = s->read(*d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("corrupt"), std::string::npos);
}

}  // namespace
}  // namespace vessel::content
