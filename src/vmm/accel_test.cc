#include "vmm/accel.h"

#include <gtest/gtest.h>

namespace vessel::vmm {
namespace {

HostFacts facts(bool kvm, const std::string& flags, const std::string& machine = "x86_64") {
  return {kvm, "processor\t: 0\nflags\t\t: fpu " + flags + " sse\n", machine};
}

TEST(Accel, KvmNeedsDeviceAndHardwareVirtualization) {
  EXPECT_EQ(choose_accel(facts(true, "vmx")).accel, Accel::kKvm);
  EXPECT_EQ(choose_accel(facts(true, "svm")).accel, Accel::kKvm);
  // A paravirtual /dev/kvm without vmx/svm cannot boot a normal guest.
  auto pvm = choose_accel(facts(true, "hypervisor"));
  EXPECT_EQ(pvm.accel, Accel::kTcg);
  EXPECT_NE(pvm.reason.find("vmx"), std::string::npos);
  EXPECT_EQ(choose_accel(facts(false, "vmx")).accel, Accel::kTcg);
}

TEST(Accel, Arm64NeedsOnlyTheDevice) {
  EXPECT_EQ(choose_accel(facts(true, "", "aarch64")).accel, Accel::kKvm);
  EXPECT_EQ(choose_accel(facts(false, "", "aarch64")).accel, Accel::kTcg);
}

TEST(Accel, FlagSubstringsDoNotCount) {
  EXPECT_EQ(choose_accel(facts(true, "vmxfoo svmbar")).accel, Accel::kTcg);
}

TEST(Accel, RequestedOverrides) {
  EXPECT_EQ(resolve_accel(Accel::kTcg, facts(true, "vmx"))->accel, Accel::kTcg);
  auto r = resolve_accel(Accel::kKvm, facts(false, "vmx"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(resolve_accel(std::nullopt, facts(true, "svm"))->accel, Accel::kKvm);
}

TEST(Accel, CpuKhz) {
  EXPECT_EQ(cpu_khz("processor : 0\ncpu MHz\t\t: 2596.136\n"), 2596136u);
  EXPECT_EQ(cpu_khz("cpu MHz : 3000\n"), 3000000u);
  EXPECT_EQ(cpu_khz("cpu MHz : 2.5\n"), 2500u);
  EXPECT_EQ(cpu_khz("cpu MHz : junk\n"), 0u);
  EXPECT_EQ(cpu_khz("Features : fp asimd\n"), 0u);
}

TEST(Accel, Parse) {
  EXPECT_EQ(**parse_accel("kvm"), Accel::kKvm);
  EXPECT_EQ(**parse_accel("tcg"), Accel::kTcg);
  EXPECT_FALSE(parse_accel("auto")->has_value());
  auto bad = parse_accel("hvf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'hvf'"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm
