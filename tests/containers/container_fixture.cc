#include "containers/container_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "base/strings.h"

namespace vessel::test {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool is_full_id(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::vector<std::string> lines(std::string_view s) {
  std::vector<std::string> out;
  for (auto& l : split(s, '\n'))
    if (!l.empty()) out.push_back(l);
  return out;
}

void ContainerTest::TearDown() {
  if (!state_root().empty()) {
    // A failed test may have left containers running: remove them as a
    // user would, then make sure (VmTest's leak check reports what is
    // still there after this, and kills it).
    vessel({"rm", "-f", "--all"}, {.timeout = std::chrono::seconds(120)});
  }
  VmTest::TearDown();
}

std::string ContainerTest::run_detached(const std::vector<std::string>& run_args,
                                        RunOptions options) {
  std::vector<std::string> args{"run", "-d"};
  bool sized = std::find_if(run_args.begin(), run_args.end(), [](const std::string& a) {
                 return a == "-m" || a == "--memory";
               }) != run_args.end();
  if (!sized) args.insert(args.end(), {"-m", kMemory});
  args.insert(args.end(), run_args.begin(), run_args.end());
  CliResult r = vessel(args, std::move(options));
  EXPECT_EQ(r.exit_code, 0) << shell_quote(args) << "\nstderr: " << r.err;
  std::string id(trim(r.out));
  EXPECT_TRUE(is_full_id(id)) << "run -d printed '" << r.out << "'";
  EXPECT_EQ(r.out, id + "\n") << "run -d must print the id alone";
  return r.exit_code == 0 && is_full_id(id) ? id : "";
}

CliResult ContainerTest::unrecorded(const std::vector<std::string>& args) {
  std::vector<std::string> all{"--root", state_root()};
  all.insert(all.end(), args.begin(), args.end());
  RunOptions o{.env = {"VESSEL_TEST_STATE_ROOT=" + state_root()}};
  CliResult r = run_cli(all, o);
  EXPECT_FALSE(r.timed_out) << shell_quote(all) << ": timed out";
  return r;
}

json ContainerTest::inspect(const std::string& ref, bool record) {
  CliResult r = record ? vessel({"inspect", ref}) : unrecorded({"inspect", ref});
  EXPECT_EQ(r.exit_code, 0) << "inspect " << ref << ": " << r.err;
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (r.exit_code != 0 || !j.is_array() || j.size() != 1 || !j[0].is_object()) {
    ADD_FAILURE() << "inspect " << ref << " printed no single object:\n" << r.out;
    return json();
  }
  return j[0];
}

std::string ContainerTest::logs_of(const std::string& ref) {
  return unrecorded({"logs", ref}).out;
}

std::string ContainerTest::status_of(const std::string& ref) {
  json j = inspect(ref, false);
  if (!j.is_object() || !j.contains("State") || !j["State"]["Status"].is_string()) return "";
  return j["State"]["Status"].get<std::string>();
}

json ContainerTest::list_all(bool record) {
  CliResult r = record ? vessel({"ls", "-a", "--format", "json"})
                       : unrecorded({"ls", "-a", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "ls --format json printed no array:\n" << r.out;
    return json::array();
  }
  return j;
}

std::vector<std::string> ContainerTest::all_ids() {
  std::vector<std::string> ids;
  for (const auto& c : list_all())
    if (c.contains("ID") && c["ID"].is_string()) ids.push_back(c["ID"].get<std::string>());
  return ids;
}

bool ContainerTest::wait_until(const std::function<bool()>& condition,
                               std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool ContainerTest::wait_for_log(const std::string& ref, std::string_view text,
                                 std::chrono::milliseconds timeout) {
  // Polled without recording each try: only the last one matters.
  CliResult last;
  bool seen = wait_until(
      [&] {
        last = unrecorded({"logs", ref});
        return contains(last.out, text) || contains(last.err, text);
      },
      timeout);
  EXPECT_TRUE(seen) << "logs " << ref << " never showed '" << text << "'; last stdout:\n"
                    << last.out << "\nstderr:\n"
                    << last.err;
  return seen;
}

std::vector<std::string> ContainerTest::processes_of(const std::string& id) {
  return find_processes(vm_process_names(), id.substr(0, 12));
}

void ContainerTest::expect_no_processes(const std::string& id) {
  std::vector<std::string> left;
  wait_until(
      [&] {
        left = processes_of(id);
        return left.empty();
      },
      std::chrono::seconds(5));
  EXPECT_EQ(left, std::vector<std::string>{}) << "processes of " << id << " left";
}

void ContainerTest::expect_gone(const std::string& id) {
  ASSERT_TRUE(is_full_id(id)) << "not an id: '" << id << "'";
  std::vector<std::string> left;
  // What the monitor killed may take a moment to be reaped.
  wait_until(
      [&] {
        left = processes_of(id);
        return left.empty();
      },
      std::chrono::seconds(5));
  EXPECT_EQ(left, std::vector<std::string>{}) << "processes of " << id << " left";
  struct stat st;
  std::string run_dir = state_root() + "/run/" + id.substr(0, 12);
  EXPECT_NE(::lstat(run_dir.c_str(), &st), 0) << "left behind: " << run_dir;
  std::string dir = state_root() + "/containers/" + id;
  EXPECT_NE(::lstat(dir.c_str(), &st), 0) << "left behind: " << dir;
  for (const auto& other : all_ids())
    EXPECT_NE(other, id) << "ls -a still lists " << id;
}

}  // namespace vessel::test
