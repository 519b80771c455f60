#include "state/store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "sys/fs.h"

namespace vessel::state {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-state-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.db";
  }
  void TearDown() override { (void)sys::remove_tree(dir_); }

  std::unique_ptr<Store> open() {
    auto s = Store::open(path_);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static ContainerRecord make(const std::string& id, const std::string& name) {
    ContainerRecord r;
    r.id = id;
    r.name = name;
    r.image = "vessel/busybox";
    r.config = "{}";
    r.created = now_ns();
    return r;
  }

  std::string dir_, path_;
};

const std::string kIdA = "aaaa1111" + std::string(56, '0');
const std::string kIdB = "aaaa2222" + std::string(56, '0');

TEST_F(StoreTest, AddFindAndRemove) {
  auto store = open();
  ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  ASSERT_TRUE(store->add_container(make(kIdB, "db")).ok());

  EXPECT_EQ(store->find_container("web")->id, kIdA);
  EXPECT_EQ(store->find_container(kIdB)->name, "db");
  EXPECT_EQ(store->find_container("aaaa2")->name, "db");
  auto ambiguous = store->find_container("aaaa");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.error().code(), ErrorCode::kInvalidArgument);
  auto missing = store->find_container("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "No such container: nope");
  // LIKE wildcards in a reference match nothing.
  EXPECT_FALSE(store->find_container("%").ok());
  EXPECT_FALSE(store->find_container("a_aa").ok());

  ASSERT_EQ(store->containers()->size(), 2u);
  ASSERT_TRUE(store->remove_container(kIdA).ok());
  EXPECT_EQ(store->remove_container(kIdA).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store->containers()->size(), 1u);
}

TEST_F(StoreTest, NamesAreUnique) {
  auto store = open();
  ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  auto dup = store->add_container(make(kIdB, "web"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message().find("\"web\" is already in use"), std::string::npos);
}

TEST_F(StoreTest, RenameKeepsNamesUnique) {
  auto store = open();
  ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  ASSERT_TRUE(store->add_container(make(kIdB, "db")).ok());
  ASSERT_TRUE(store->rename_container(kIdA, "site").ok());
  EXPECT_EQ(store->find_container("site")->id, kIdA);
  EXPECT_FALSE(store->find_container("web").ok());
  auto taken = store->rename_container(kIdA, "db");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(store->rename_container(std::string(64, 'f'), "x").error().code(),
            ErrorCode::kNotFound);
}

TEST_F(StoreTest, SetEndpointsReplacesThemAllOrNothing) {
  auto store = open();
  for (const char* n : {"one", "two"})
    ASSERT_TRUE(
        store
            ->add_network(NetworkRecord{n, std::string(64, n[0] == 'o' ? 'a' : 'b'), "10.1.0.0/24",
                                        "", std::string("br-") + n, false, "{}", 0})
            .ok());
  EndpointRecord e{kIdA, "one", 0, 0, 0, "02:00:00:00:00:01", "[]"};
  ASSERT_TRUE(store->add_container(make(kIdA, "web"), {e}).ok());
  EndpointRecord f{kIdA, "two", 1, 0, 0, "02:00:00:00:00:02", R"(["x"])"};
  ASSERT_TRUE(store->set_endpoints(kIdA, {e, f}).ok());
  ASSERT_EQ(store->endpoints_of(kIdA)->size(), 2u);
  EXPECT_EQ((*store->endpoints_of(kIdA))[1].aliases, R"(["x"])");
  EndpointRecord missing{kIdA, "three", 0, 0, 0, "02:00:00:00:00:03", "[]"};
  auto bad = store->set_endpoints(kIdA, {missing});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store->endpoints_of(kIdA)->size(), 2u);  // rolled back
  ASSERT_TRUE(store->set_endpoints(kIdA, {}).ok());
  EXPECT_TRUE(store->endpoints_of(kIdA)->empty());
}

TEST_F(StoreTest, StateSurvivesReopen) {
  {
    auto store = open();
    ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
    auto r = store->update_container(kIdA, [](ContainerRecord& c) {
      c.state.status = RunState::kExited;
      c.state.exit_code = 3;
      c.state.error = "boom";
      c.state.stopped_by_user = true;
      return ok_status();
    });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
  auto store = open();
  auto r = store->container(kIdA);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state.status, RunState::kExited);
  EXPECT_EQ(r->state.exit_code, 3);
  EXPECT_EQ(r->state.error, "boom");
  EXPECT_TRUE(r->state.stopped_by_user);
}

TEST_F(StoreTest, FailedUpdateChangesNothing) {
  auto store = open();
  ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  auto r = store->update_container(kIdA, [](ContainerRecord& c) -> Status {
    c.state.exit_code = 9;
    return Error(ErrorCode::kFailedPrecondition, "no");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(store->container(kIdA)->state.exit_code, 0);
}

// Several processes incrementing one counter: no update is lost.
TEST_F(StoreTest, ConcurrentUpdatesFromProcessesAreSerialised) {
  {
    auto store = open();
    ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  }
  constexpr int kProcs = 4, kIncrements = 25;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::open(path_);
      if (!s.ok()) ::_exit(2);
      for (int i = 0; i < kIncrements; ++i) {
        auto r = (*s)->update_container(kIdA, [](ContainerRecord& c) {
          ++c.state.restart_count;
          return ok_status();
        });
        if (!r.ok()) ::_exit(3);
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = open();
  EXPECT_EQ(store->container(kIdA)->state.restart_count, kProcs * kIncrements);
}

TEST_F(StoreTest, VolumesAndTheirUsers) {
  auto store = open();
  ASSERT_TRUE(store->add_volume({"data", now_ns(), "{}", false}).ok());
  EXPECT_EQ(store->add_volume({"data", now_ns(), "{}", false}).error().code(),
            ErrorCode::kAlreadyExists);
  ASSERT_TRUE(store->add_container(make(kIdA, "web")).ok());
  ASSERT_TRUE(store->add_volume_use(kIdA, "data").ok());
  auto busy = store->remove_volume("data");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), ErrorCode::kFailedPrecondition);
  // Removing the container releases the volume.
  ASSERT_TRUE(store->remove_container(kIdA).ok());
  EXPECT_TRUE(store->volume_users("data")->empty());
  ASSERT_TRUE(store->remove_volume("data").ok());
  EXPECT_EQ(store->volume("data").error().code(), ErrorCode::kNotFound);
}

TEST_F(StoreTest, RejectsANewerSchema) {
  { auto store = open(); }
  ASSERT_EQ(std::system(("sqlite3 " + path_ + " 'PRAGMA user_version=99'").c_str()), 0);
  auto s = Store::open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(StoreTest, KeepsTheKindOfRecord) {
  auto store = open();
  ContainerRecord m = make(std::string(64, 'b'), "dev");
  m.kind = "machine";
  ASSERT_TRUE(store->add_container(make(std::string(64, 'a'), "web")).ok());
  ASSERT_TRUE(store->add_container(m).ok());
  EXPECT_EQ(store->container(std::string(64, 'a'))->kind, "container");
  EXPECT_EQ(store->find_container("dev")->kind, "machine");
}

// A version 2 store (before machines) gains the kind column in place, and
// its containers stay containers.
TEST_F(StoreTest, UpgradesAVersion2Store) {
  {
    auto store = open();
    ASSERT_TRUE(store->add_container(make(std::string(64, 'a'), "web")).ok());
  }
  std::string downgrade =
      "sqlite3 " + path_ + " 'ALTER TABLE containers DROP COLUMN kind; PRAGMA user_version=2'";
  ASSERT_EQ(std::system(downgrade.c_str()), 0);
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto r = store->container(std::string(64, 'a'));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->kind, "container");
}

}  // namespace
}  // namespace vessel::state
