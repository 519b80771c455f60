// render_ruleset() is pure: these tests need no root and run nothing.
// apply_firewall() is exercised in a private network namespace by
// firewall_apply_test.cc (including its refusal of bad names: even a refused
// call is only ever made where a bug could not touch the host's rules).
#include "net/firewall.h"

#include <gtest/gtest.h>

namespace vessel::net {
namespace {

Ipv4Net net(const char* text) {
  auto parsed = Ipv4Net::parse(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : Ipv4Net{};
}

constexpr const char* kReplaceHeader =
    "table ip vessel {}\n"
    "delete table ip vessel\n";

TEST(RenderRuleset, NoNetworksOnlyDeletesTheTable) {
  EXPECT_EQ(render_ruleset({}), kReplaceHeader);
}

TEST(RenderRuleset, OneNetwork) {
  EXPECT_EQ(render_ruleset({{"vessel0", net("10.88.0.0/16"), false}}),
            std::string(kReplaceHeader) +
                "table ip vessel {\n"
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.88.0.0/16 oifname != \"vessel0\" masquerade\n"
                "\t}\n"
                "\tchain forward {\n"
                "\t\ttype filter hook forward priority filter; policy accept;\n"
                "\t}\n"
                "}\n");
}

TEST(RenderRuleset, TwoNetworksAreIsolatedFromEachOther) {
  EXPECT_EQ(render_ruleset({{"vessel0", net("10.88.0.0/16"), false},
                            {"vessel-a1", net("10.89.1.0/24"), false}}),
            std::string(kReplaceHeader) +
                "table ip vessel {\n"
                "\tset bridges {\n"
                "\t\ttype ifname\n"
                "\t\telements = { \"vessel0\", \"vessel-a1\" }\n"
                "\t}\n"
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.88.0.0/16 oifname != \"vessel0\" masquerade\n"
                "\t\tip saddr 10.89.1.0/24 oifname != \"vessel-a1\" masquerade\n"
                "\t}\n"
                "\tchain forward {\n"
                "\t\ttype filter hook forward priority filter; policy accept;\n"
                "\t\tiifname \"vessel0\" oifname @bridges oifname != \"vessel0\" drop\n"
                "\t\tiifname \"vessel-a1\" oifname @bridges oifname != \"vessel-a1\" drop\n"
                "\t}\n"
                "}\n");
}

TEST(RenderRuleset, InternalNetworkHasNoMasqueradeAndNoForwarding) {
  EXPECT_EQ(render_ruleset({{"vessel0", net("10.88.0.0/16"), false},
                            {"vessel-int", net("10.90.0.0/24"), true}}),
            std::string(kReplaceHeader) +
                "table ip vessel {\n"
                "\tset bridges {\n"
                "\t\ttype ifname\n"
                "\t\telements = { \"vessel0\", \"vessel-int\" }\n"
                "\t}\n"
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.88.0.0/16 oifname != \"vessel0\" masquerade\n"
                "\t}\n"
                "\tchain forward {\n"
                "\t\ttype filter hook forward priority filter; policy accept;\n"
                "\t\tiifname \"vessel-int\" oifname != \"vessel-int\" drop\n"
                "\t\toifname \"vessel-int\" iifname != \"vessel-int\" drop\n"
                "\t\tiifname \"vessel0\" oifname @bridges oifname != \"vessel0\" drop\n"
                "\t}\n"
                "}\n");
}

TEST(RenderRuleset, OnlyInternalNetwork) {
  const std::string script = render_ruleset({{"vint", net("10.90.0.0/24"), true}});
  EXPECT_EQ(script.find("masquerade"), std::string::npos) << script;
  EXPECT_NE(script.find("\t\tiifname \"vint\" oifname != \"vint\" drop\n"), std::string::npos);
  EXPECT_NE(script.find("\t\toifname \"vint\" iifname != \"vint\" drop\n"), std::string::npos);
  EXPECT_EQ(script.find("@bridges"), std::string::npos) << script;
}

TEST(RenderRuleset, SubnetIsWrittenAsItsNetworkAddress) {
  // Ipv4Net keeps the address as given; the rule must name the subnet.
  const std::string script = render_ruleset({{"vessel0", Ipv4Net{Ipv4{0x0a580001}, 16}, false}});
  EXPECT_NE(script.find("ip saddr 10.88.0.0/16 "), std::string::npos) << script;
}

TEST(RenderRuleset, NamesThatNeedQuotingAreNeverWritten) {
  // apply_firewall() refuses these outright; render_ruleset() must still not
  // let one reach a script, where a quote or newline would inject rules.
  for (const char* bad : {"", "Vessel0", "br\"0", "br0\"; flush ruleset; \"", "br 0", "br\n0",
                          "br0@x", "br_0", "br.0", "a234567890123456", "br{0}", "br$x"}) {
    const std::string script = render_ruleset({{bad, net("10.88.0.0/16"), false}});
    EXPECT_EQ(script, kReplaceHeader) << "name: " << bad;
  }
  // A bad name next to a good one: the good one keeps its rules.
  const std::string script =
      render_ruleset({{"ok-0", net("10.88.0.0/16"), false}, {"bad\"", net("10.89.0.0/16"), false}});
  EXPECT_NE(script.find("oifname != \"ok-0\" masquerade"), std::string::npos) << script;
  EXPECT_EQ(script.find("10.89.0.0"), std::string::npos) << script;
  EXPECT_EQ(script.find("bad"), std::string::npos) << script;
}

TEST(RenderRuleset, FifteenByteNameIsAccepted) {
  const std::string script = render_ruleset({{"a23456789012345", net("10.88.0.0/16"), false}});
  EXPECT_NE(script.find("oifname != \"a23456789012345\" masquerade"), std::string::npos) << script;
}

TEST(RenderRuleset, DuplicateBridgeIsWrittenOnce) {
  const std::string script = render_ruleset(
      {{"vessel0", net("10.88.0.0/16"), false}, {"vessel0", net("10.89.0.0/16"), false}});
  EXPECT_EQ(script.find("10.89.0.0"), std::string::npos) << script;
  EXPECT_EQ(script.find("@bridges"), std::string::npos) << script;
}

}  // namespace
}  // namespace vessel::net
