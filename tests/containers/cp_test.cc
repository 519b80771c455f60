// vessel cp and vessel export through the real CLI: files and directories
// in and out of a running container (bytes, modes, symlinks), Docker's
// "dir/." and trailing-slash rules, tar streams on stdin and stdout, errors,
// a hostile tar, and export; and both on a stopped container, whose VM
// boots for the copy (a maintenance boot).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

std::string read_host_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::string kIdle = "echo ready; while true; do sleep 0.1; done";

class CpTest : public ContainerTest {
 protected:
  std::string box() {
    std::string id = run_detached({"--name", "box", kImage, "sh", "-c", kIdle});
    return id;
  }
  std::string in_box(const std::string& script) {
    CliResult r = vessel({"exec", "box", "sh", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << script << ": " << r.err;
    return r.out;
  }
  static mode_t mode_of(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
  }
};

TEST_F(CpTest, FilesAndDirectoriesInAndOutKeepBytesModesAndSymlinks) {
  ASSERT_FALSE(box().empty());
  std::string src = scratch_dir() + "/tree";
  ASSERT_TRUE(sys::make_dirs(src + "/sub", 0755).ok());
  std::string bytes;
  for (int i = 0; i < 300000; ++i)
    bytes += static_cast<char>(i * 31 + 7);
  std::ofstream(src + "/blob", std::ios::binary) << bytes;
  std::ofstream(src + "/sub/script") << "#!/bin/sh\necho hi\n";
  ASSERT_EQ(::chmod((src + "/sub/script").c_str(), 0751), 0);
  ASSERT_EQ(::symlink("sub/script", (src + "/link").c_str()), 0);

  // A file, then a directory, in.
  CliResult one = vessel({"cp", src + "/blob", "box:/tmp/blob"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(in_box("wc -c < /tmp/blob"), "300000\n");
  CliResult dir = vessel({"cp", src, "box:/tmp/copy"});
  ASSERT_EQ(dir.exit_code, 0) << dir.err;
  EXPECT_EQ(in_box("/tmp/copy/link; stat -c %a /tmp/copy/sub/script; readlink /tmp/copy/link"),
            "hi\n751\nsub/script\n");
  EXPECT_EQ(in_box("cmp /tmp/blob /tmp/copy/blob && echo same"), "same\n");

  // And back out: a new directory, then into an existing one.
  in_box("echo made inside > /tmp/copy/new; chmod 604 /tmp/copy/new");
  std::string back = scratch_dir() + "/back";
  CliResult out = vessel({"cp", "box:/tmp/copy", back});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(read_host_file(back + "/blob"), bytes);
  EXPECT_EQ(read_host_file(back + "/new"), "made inside\n");
  EXPECT_EQ(mode_of(back + "/new") & 07777, 0604u);
  EXPECT_EQ(mode_of(back + "/sub/script") & 07777, 0751u);
  EXPECT_TRUE(S_ISLNK(mode_of(back + "/link")));
  CliResult again = vessel({"cp", "box:/tmp/copy", back});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_host_file(back + "/copy/new"), "made inside\n");
  // A single file out, to a new name.
  CliResult file = vessel({"cp", "box:/tmp/copy/new", scratch_dir() + "/renamed"});
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_EQ(read_host_file(scratch_dir() + "/renamed"), "made inside\n");
}

TEST_F(CpTest, DockersDotAndTrailingSlashRules) {
  ASSERT_FALSE(box().empty());
  std::string src = scratch_dir() + "/tree";
  ASSERT_TRUE(sys::make_dirs(src + "/sub", 0755).ok());
  std::ofstream(src + "/a") << "a\n";
  std::ofstream(src + "/sub/b") << "b\n";
  in_box("mkdir /tmp/existing /tmp/contents");
  EXPECT_EQ(vessel({"cp", src, "box:/tmp/existing"}).exit_code, 0);
  EXPECT_EQ(in_box("cat /tmp/existing/tree/a"), "a\n");
  EXPECT_EQ(vessel({"cp", src + "/.", "box:/tmp/contents"}).exit_code, 0);
  EXPECT_EQ(in_box("cat /tmp/contents/a /tmp/contents/sub/b"), "a\nb\n");
  CliResult bad = vessel({"cp", src + "/a", "box:/tmp/nodir/"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "no such directory")) << bad.err;
  CliResult dir_to_file = vessel({"cp", src, "box:/tmp/contents/a"});
  EXPECT_EQ(dir_to_file.exit_code, 1);
  EXPECT_TRUE(contains(dir_to_file.err, "cannot copy a directory to a file")) << dir_to_file.err;
  // Out: dir/. into an existing host directory copies the contents.
  std::string host = scratch_dir() + "/host";
  ASSERT_TRUE(sys::make_dirs(host, 0755).ok());
  CliResult dot = vessel({"cp", "box:/tmp/contents/.", host});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  EXPECT_EQ(read_host_file(host + "/sub/b"), "b\n");
}

TEST_F(CpTest, TarStreamsOnStdinAndStdout) {
  ASSERT_FALSE(box().empty());
  in_box("mkdir -p /tmp/d/e; echo streamed > /tmp/d/e/f");
  CliResult out = vessel({"cp", "box:/tmp/d", "-"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  std::string tar = scratch_dir() + "/d.tar";
  std::ofstream(tar, std::ios::binary) << out.out;
  CliResult list = run_process({"/bin/tar", "-tf", tar}, {});
  EXPECT_TRUE(contains(list.out, "d/e/f")) << list.out;

  in_box("mkdir /tmp/into");
  RunOptions feed;
  feed.stdin_data = out.out;
  CliResult in = vessel({"cp", "-", "box:/tmp/into"}, feed);
  ASSERT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(in_box("cat /tmp/into/d/e/f"), "streamed\n");
}

TEST_F(CpTest, MissingPathsFailClearly) {
  ASSERT_FALSE(box().empty());
  CliResult r = vessel({"cp", "box:/no/such/file", scratch_dir() + "/x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "/no/such/file")) << r.err;
  CliResult into = vessel({"cp", scratch_dir() + "/absent", "box:/tmp"});
  EXPECT_EQ(into.exit_code, 1);
  CliResult nobody = vessel({"cp", "ghost:/x", scratch_dir()});
  EXPECT_EQ(nobody.exit_code, 1);
}

TEST_F(CpTest, AHostileTarIsRefusedAndWritesNothingOutside) {
  ASSERT_FALSE(box().empty());
  in_box("mkdir -p /tmp/dst /tmp/victim");
  // Built with tar(1) itself: "../victim/evil" via --transform.
  std::string work = scratch_dir() + "/evil";
  ASSERT_TRUE(sys::make_dirs(work, 0755).ok());
  std::ofstream(work + "/evil") << "pwned\n";
  std::string tar = scratch_dir() + "/evil.tar";
  CliResult made = run_process(
      {"/bin/tar", "-C", work, "--transform", "s,^,../victim/,", "-cf", tar, "evil"}, {});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  RunOptions feed;
  feed.stdin_data = read_host_file(tar);
  CliResult r = vessel({"cp", "-", "box:/tmp/dst"}, feed);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "outside")) << r.err;
  EXPECT_EQ(in_box("ls -A /tmp/victim /tmp/dst"), "/tmp/dst:\n\n/tmp/victim:\n");
}

TEST_F(CpTest, ExportHasTheContainersFilesButNotProc) {
  ASSERT_FALSE(box().empty());
  in_box("echo content > /made-here");
  std::string tar = scratch_dir() + "/box.tar";
  CliResult e = vessel({"export", "-o", tar, "box"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  CliResult list = run_process({"/bin/tar", "-tf", tar}, {});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(contains(list.out, "made-here")) << "the container's own file";
  EXPECT_TRUE(contains(list.out, "bin/busybox")) << "the image's files";
  EXPECT_TRUE(contains(list.out, "proc/\n")) << "the mount point itself";
  EXPECT_FALSE(contains(list.out, "proc/self")) << "nothing inside /proc";
  EXPECT_FALSE(contains(list.out, "sys/kernel")) << "nothing inside /sys";
  CliResult content = run_process({"/bin/tar", "-xOf", tar, "made-here"}, {});
  EXPECT_EQ(content.out, "content\n") << content.err;
  // A container that does not exist is refused clearly.
  CliResult ghost = vessel({"export", "-o", tar, "ghost"});
  EXPECT_EQ(ghost.exit_code, 1);
  EXPECT_TRUE(contains(ghost.err, "ghost")) << ghost.err;
}

// As Docker's: cp and export work on a container that has exited (and on
// one created, never started). Its VM boots for the copy without network or
// process; the container stays exited with its code, what was copied in is
// there at its next start, and a remove leaves nothing.
TEST_F(CpTest, CopiesAndExportOfAStoppedContainer) {
  CliResult run = vessel({"run", "--name", "done", kImage, "sh", "-c",
                          "echo made > /made; [ -f /given ] && cat /given; exit 3"});
  ASSERT_EQ(run.exit_code, 3) << run.err;
  std::string id = inspect("done")["Id"].get<std::string>();
  std::string host = scratch_dir();

  CliResult out = vessel({"cp", "done:/made", host + "/made"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(read_host_file(host + "/made"), "made\n");
  std::ofstream(host + "/given") << "given\n";
  CliResult in = vessel({"cp", host + "/given", "done:/given"});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  std::string tar = host + "/done.tar";
  CliResult e = vessel({"export", "-o", tar, "done"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  CliResult list = run_process({"/bin/tar", "-tf", tar}, {});
  EXPECT_TRUE(contains(list.out, "made\n") && contains(list.out, "given\n")) << list.out;
  CliResult missing = vessel({"cp", "done:/nowhere", host + "/x"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "/nowhere")) << missing.err;

  // Still exited, with its code: nothing ran.
  nlohmann::json st = inspect("done")["State"];
  EXPECT_EQ(st["Status"], "exited");
  EXPECT_EQ(st["ExitCode"], 3);
  // The next start (which waits for the copy's boot to end) sees the file.
  CliResult again = vessel({"start", "-a", "done"});
  EXPECT_EQ(again.exit_code, 3) << again.err;
  EXPECT_EQ(again.out, "given\n");

  // Created, never started: a file copied in is there at its first start.
  CliResult created = vessel({"create", "--name", "fresh", kImage, "cat", "/given"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  ASSERT_EQ(vessel({"cp", host + "/given", "fresh:/given"}).exit_code, 0);
  EXPECT_EQ(inspect("fresh")["State"]["Status"], "created");
  CliResult first = vessel({"start", "-a", "fresh"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "given\n");

  // A remove during a copy's boot ends the boot and leaves nothing.
  ASSERT_EQ(vessel({"cp", "done:/made", host + "/made2"}).exit_code, 0);
  CliResult rm = vessel({"rm", "done", "fresh"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  expect_gone(id);
}

}  // namespace
}  // namespace vessel::test
