#include "guest/machine.h"

#include <gtest/gtest.h>

namespace vessel::guest {
namespace {

protocol::MachineUser tester() {
  protocol::MachineUser u;
  u.name = "tester";
  u.uid = 4242;
  u.gid = 4242;
  u.home = "/home/tester";
  u.shell = "/bin/zsh";
  return u;
}

TEST(MakeUserFiles, AddsTheUserAGroupAndALockedPassword) {
  UserFiles in{"root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\nsudo:x:27:\n",
               "root:*:19000:0:99999:7:::\n"};
  UserFiles out = make_user_files(in, tester(), "/bin/bash");
  EXPECT_EQ(out.passwd,
            "root:x:0:0:root:/root:/bin/bash\n"
            "tester:x:4242:4242:tester:/home/tester:/bin/bash\n");
  EXPECT_EQ(out.group, "root:x:0:\nsudo:x:27:\ntester:x:4242:\n");
  EXPECT_EQ(out.shadow, "root:*:19000:0:99999:7:::\ntester:*:19000:0:99999:7:::\n");
}

TEST(MakeUserFiles, IsIdempotent) {
  UserFiles in{"root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\n", ""};
  UserFiles once = make_user_files(in, tester(), "/bin/sh");
  UserFiles twice = make_user_files(once, tester(), "/bin/sh");
  EXPECT_EQ(once.passwd, twice.passwd);
  EXPECT_EQ(once.group, twice.group);
  EXPECT_EQ(twice.shadow, "");  // no shadow file: none made
}

TEST(MakeUserFiles, ReplacesAnEntryOfTheSameName) {
  UserFiles in{
      "root:x:0:0:root:/root:/bin/bash\ntester:x:1000:1000::/home/t:/bin/sh\nz:x:1:1::/:/x\n",
      "tester:x:1000:\n", ""};
  UserFiles out = make_user_files(in, tester(), "/bin/sh");
  EXPECT_EQ(out.passwd,
            "root:x:0:0:root:/root:/bin/bash\n"
            "tester:x:4242:4242:tester:/home/tester:/bin/sh\n"
            "z:x:1:1::/:/x\n");
  // The name is taken by another gid's group: the new group gets another name.
  EXPECT_EQ(out.group, "tester:x:1000:\nvessel4242:x:4242:\n");
}

TEST(MakeUserFiles, GoesBeforeAnotherUserWithItsUid) {
  UserFiles in{"root:x:0:0:root:/root:/bin/bash\ndebian:x:4242:4242::/home/debian:/bin/sh\n",
               "debian:x:4242:\n", ""};
  UserFiles out = make_user_files(in, tester(), "/bin/sh");
  EXPECT_EQ(out.passwd,
            "root:x:0:0:root:/root:/bin/bash\n"
            "tester:x:4242:4242:tester:/home/tester:/bin/sh\n"
            "debian:x:4242:4242::/home/debian:/bin/sh\n");
  EXPECT_EQ(out.group, "debian:x:4242:\n");  // the gid has a group already
}

}  // namespace
}  // namespace vessel::guest
