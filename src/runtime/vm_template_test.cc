#include "runtime/vm_template.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::runtime {
namespace {

class PruneTemplates : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = sys::make_temp_dir("/tmp", "vessel-templates-test-");
    ASSERT_TRUE(d.ok());
    dir_ = *d;
  }
  void TearDown() override { (void)sys::remove_tree(dir_); }

  /// Makes `name` with its mtime `age` seconds ago.
  void file(const std::string& name, time_t age) {
    std::string path = dir_ + "/" + name;
    ASSERT_TRUE(sys::write_file_atomic(path, "x").ok());
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - age;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
  bool exists(const std::string& name) { return ::access((dir_ + "/" + name).c_str(), F_OK) == 0; }
  /// A template with its mark and lock, last used `age` seconds ago.
  void shape(const std::string& key, time_t age) {
    file(key + ".vmstate", age);
    file(key + ".wanted", age);
    file(key + ".lock", age);
  }

  std::string dir_;
};

TEST_F(PruneTemplates, KeepsTheMostRecentlyUsedAndDropsTheStale) {
  shape("a", 10);
  shape("b", 20);
  shape("c", 30);
  shape("old", 20 * 24 * 3600);
  file("d.wanted", 5);                   // a marked shape without a template yet
  file("e.vmstate.tmp-1234", 2 * 3600);  // a dead maker's
  file("f.vmstate.tmp-5678", 60);        // a live maker's
  prune_templates(dir_, 2, std::chrono::hours(14 * 24));
  EXPECT_TRUE(exists("a.vmstate") && exists("a.wanted") && exists("a.lock"));
  EXPECT_TRUE(exists("b.vmstate"));
  EXPECT_FALSE(exists("c.vmstate") || exists("c.wanted") || exists("c.lock"));
  EXPECT_FALSE(exists("old.vmstate") || exists("old.wanted"));
  EXPECT_TRUE(exists("d.wanted"));
  EXPECT_FALSE(exists("e.vmstate.tmp-1234"));
  EXPECT_TRUE(exists("f.vmstate.tmp-5678"));
}

TEST_F(PruneTemplates, AMissingDirectoryIsNothingToDo) {
  prune_templates(dir_ + "/none", 8, std::chrono::hours(1));
  EXPECT_FALSE(exists("none"));
}

TEST(TemplatesDir, OffWithoutAStateRootOrWhenTurnedOff) {
  EXPECT_EQ(templates_dir(""), "");
  ::setenv("VESSEL_TEMPLATES", "0", 1);
  EXPECT_EQ(templates_dir("/r"), "");
  ::unsetenv("VESSEL_TEMPLATES");
  EXPECT_EQ(templates_dir("/r"), "/r/cache/templates");
}

}  // namespace
}  // namespace vessel::runtime
