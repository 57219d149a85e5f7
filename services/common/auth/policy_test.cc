#include "services/common/auth/policy.h"

#include "gtest/gtest.h"

namespace apogee::auth {
namespace {

Policy P(const char* resource, std::vector<std::string> actions, const char* decision = "allow",
         std::vector<std::string> sources = {}) {
  absl::StatusOr<Policy> p = ParsePolicy(resource, actions, decision, sources);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

uint32_t Ip(const char* text) {
  uint32_t ip = 0;
  EXPECT_TRUE(PeerIpv4(text, &ip)) << text;
  return ip;
}

TEST(Policy, DecisionTable) {
  User bob{"bob",
           "x",
           UserType::kNormal,
           {P("topic:Orders", {"pub"}), P("topic:Logs*", {"pub", "sub"}),
            P("topic:LogsSecret", {"sub"}, "deny"), P("group:G1", {"sub"}),
            P("topic:Internal*", {"all"}), P("topic:Internal", {"pub"}, "deny"),
            P("topic:Lan", {"pub"}, "allow", {"10.0.0.0/8"})}};
  User root{"root", "x", UserType::kSuper, {}};
  struct Case {
    const User* user;
    ResourceKind kind;
    const char* name;
    std::vector<Action> actions;
    const char* source;  // "" = unknown peer
    bool allowed;
  };
  using A = Action;
  using K = ResourceKind;
  const Case cases[] = {
      {&bob, K::kTopic, "Orders", {A::kPub}, "", true},
      {&bob, K::kTopic, "Orders", {A::kSub}, "", false},              // not granted
      {&bob, K::kTopic, "Orders2", {A::kPub}, "", false},             // exact name only
      {&bob, K::kTopic, "LogsApp", {A::kSub}, "", true},              // prefix
      {&bob, K::kTopic, "LogsSecret", {A::kSub}, "", false},          // deny wins
      {&bob, K::kTopic, "LogsSecret", {A::kPub}, "", true},           // deny is per action
      {&bob, K::kTopic, "LogsSecret", {A::kPub, A::kSub}, "", true},  // any one of them
      {&bob, K::kGroup, "G1", {A::kSub}, "", true},
      {&bob, K::kGroup, "Orders", {A::kSub}, "", false},       // kinds are apart
      {&bob, K::kTopic, "InternalX", {A::kDelete}, "", true},  // all
      {&bob, K::kTopic, "Internal", {A::kPub}, "", false},     // deny beats all
      {&bob, K::kCluster, "", {A::kGet}, "", false},
      {&bob, K::kTopic, "Lan", {A::kPub}, "ipv4:10.1.2.3:5555", true},
      {&bob, K::kTopic, "Lan", {A::kPub}, "ipv4:192.168.1.1:5555", false},
      {&bob, K::kTopic, "Lan", {A::kPub}, "", false},  // source unknown
      {&root, K::kCluster, "", {A::kUpdate}, "", true},
      {&root, K::kTopic, "Anything", {A::kPub}, "", true},
  };
  for (const Case& c : cases) {
    Access access{c.kind, c.name, c.actions};
    const bool has_source = *c.source != '\0';
    absl::Status s = Decide(*c.user, access, has_source, has_source ? Ip(c.source) : 0);
    EXPECT_EQ(s.ok(), c.allowed) << AccessResourceName(access) << " " << c.source << ": " << s;
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    }
  }
}

TEST(Policy, DenialNamesUserResourceAndAction) {
  User bob{"bob", "x", UserType::kNormal, {}};
  absl::Status s = Decide(bob, Access{ResourceKind::kTopic, "Orders", {Action::kPub}}, false, 0);
  EXPECT_EQ(s.message(), "user \"bob\" may not pub on topic:Orders");
}

TEST(Policy, ParsesAndRefusesBadInput) {
  EXPECT_EQ(ParseResource("topic:A*")->ToString(), "topic:A*");
  EXPECT_EQ(ParseResource("group:G")->ToString(), "group:G");
  EXPECT_EQ(ParseResource("cluster")->ToString(), "cluster");
  EXPECT_EQ(ParseResource("topic:*")->ToString(), "topic:*");  // every topic
  for (const char* bad : {"queue:A", "topic:", "topic:A*B", "Topic:A", ""}) {
    absl::StatusOr<ResourcePattern> r = ParseResource(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("want topic:NAME"), std::string::npos) << r.status();
  }
  EXPECT_FALSE(ParsePolicy("topic:A", {"publish"}, "allow", {}).ok());
  EXPECT_FALSE(ParsePolicy("topic:A", {}, "allow", {}).ok());
  EXPECT_FALSE(ParsePolicy("topic:A", {"pub"}, "maybe", {}).ok());
  EXPECT_FALSE(ParsePolicy("topic:A", {"pub"}, "allow", {"10.0.0.0/33"}).ok());
  EXPECT_FALSE(ParsePolicy("topic:A", {"pub"}, "allow", {"10.0.0"}).ok());
  EXPECT_EQ(ParseCidr("10.1.0.0/16")->ToString(), "10.1.0.0/16");
  EXPECT_TRUE(ParseCidr("0.0.0.0/0")->Contains(Ip("1.2.3.4")));
  EXPECT_TRUE(ValidateUserName("ops_1-a").ok());
  EXPECT_FALSE(ValidateUserName("").ok());
  EXPECT_FALSE(ValidateUserName("a:b").ok());
  EXPECT_FALSE(ValidateUserName(std::string(65, 'a')).ok());
  uint32_t ip = 0;
  EXPECT_FALSE(PeerIpv4("unix:/tmp/x.sock", &ip));
  EXPECT_FALSE(PeerIpv4("ipv6:[::1]:80", &ip));
}

}  // namespace
}  // namespace apogee::auth
