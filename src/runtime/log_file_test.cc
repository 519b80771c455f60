#include "runtime/log_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "sys/fs.h"

namespace vessel::runtime {
namespace {

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-log-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/container.log";
  }
  void TearDown() override { (void)sys::remove_tree(dir_); }
  std::string dir_, path_;
};

TEST_F(LogFileTest, LinesAndStreamsRoundTrip) {
  auto w = LogWriter::open(path_);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write(LogStream::kStdout, "one\ntw").ok());
  ASSERT_TRUE(w->write(LogStream::kStderr, "err\n").ok());
  ASSERT_TRUE(w->write(LogStream::kStdout, "o\nlast").ok());
  ASSERT_TRUE(w->flush().ok());
  auto recs = read_log(path_);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 4u);
  EXPECT_EQ((*recs)[0].text, "one");
  EXPECT_EQ((*recs)[1].text, "err");
  EXPECT_EQ((*recs)[1].stream, LogStream::kStderr);
  EXPECT_EQ((*recs)[2].text, "two");
  EXPECT_FALSE((*recs)[2].partial);
  EXPECT_EQ((*recs)[3].text, "last");
  EXPECT_TRUE((*recs)[3].partial);
  EXPECT_GT((*recs)[0].time_ns, 1'600'000'000'000'000'000);
}

TEST_F(LogFileTest, LongLinesAreSplit) {
  auto w = LogWriter::open(path_);
  ASSERT_TRUE(w.ok());
  std::string big(LogWriter::kMaxLine + 10, 'x');
  ASSERT_TRUE(w->write(LogStream::kStdout, big + "\n").ok());
  auto recs = read_log(path_);
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_TRUE((*recs)[0].partial);
  EXPECT_EQ((*recs)[0].text.size() + (*recs)[1].text.size(), big.size());
}

TEST_F(LogFileTest, RotatesAndKeepsOrder) {
  auto w = LogWriter::open(path_, 200, 2);
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(w->write(LogStream::kStdout, "line " + std::to_string(i) + "\n").ok());
  auto recs = read_log(path_, 2);
  ASSERT_TRUE(recs.ok());
  ASSERT_FALSE(recs->empty());
  EXPECT_LT(recs->size(), 30u);  // the oldest were dropped
  EXPECT_EQ(recs->back().text, "line 29");
  for (size_t i = 1; i < recs->size(); ++i)
    EXPECT_LT(std::stoi((*recs)[i - 1].text.substr(5)), std::stoi((*recs)[i].text.substr(5)));
  auto size = sys::read_file(path_)->size();
  EXPECT_LE(size, 200u);
}

TEST_F(LogFileTest, ParsesOnlyWellFormedLines) {
  LogRecord r;
  EXPECT_TRUE(parse_log_line("2026-11-23T15:40:01.123456789Z stdout F hello world", r));
  EXPECT_EQ(r.text, "hello world");
  EXPECT_EQ(format_timestamp(r.time_ns), "2026-11-23T15:40:01.123456789Z");
  EXPECT_FALSE(parse_log_line("2026-11-23T15:40:01Z stdout F x", r));
  EXPECT_FALSE(parse_log_line("2026-11-23T15:40:01.123456789Z stdin F x", r));
  EXPECT_FALSE(parse_log_line("2026-11-23T15:40:01.123456789Z stdout X x", r));
  EXPECT_FALSE(parse_log_line("", r));
}

TEST_F(LogFileTest, FollowSeesAppendsUntilDone) {
  auto w = LogWriter::open(path_);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write(LogStream::kStdout, "before\n").ok());
  uint64_t offset = sys::read_file(path_)->size();
  std::vector<std::string> seen;
  int polls = 0;
  auto s = follow_log(
      path_, offset, [&](const LogRecord& r) { seen.push_back(r.text); },
      [&] {
        if (++polls == 1) (void)w->write(LogStream::kStdout, "after\n");
        return polls > 2;
      });
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "after");
}

}  // namespace
}  // namespace vessel::runtime
