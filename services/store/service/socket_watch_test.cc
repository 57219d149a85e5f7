#include "services/store/service/socket_watch.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

// A real listening unix socket at `path`; closed at the end of the test.
class Listener {
 public:
  explicit Listener(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 1) == 0;
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

class SocketWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sockwatchXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/store.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST_F(SocketWatchTest, ReportsARemovedSocketOnceWithTheReason) {
  Listener listener(path_);
  ASSERT_TRUE(listener.ok());
  auto watch = SocketWatch::Create(path_);
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->Check(), std::nullopt);
  EXPECT_EQ(watch->Check(), std::nullopt);

  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::optional<std::string> reason = watch->Check();
  ASSERT_TRUE(reason.has_value());
  EXPECT_THAT(*reason, HasSubstr("socket file is gone (No such file or directory)"));
  EXPECT_EQ(watch->Check(), std::nullopt);  // once
}

TEST_F(SocketWatchTest, ReportsASocketReplacedByAnotherFile) {
  Listener listener(path_);
  ASSERT_TRUE(listener.ok());
  auto watch = SocketWatch::Create(path_);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::optional<std::string> reason = watch->Check();
  ASSERT_TRUE(reason.has_value());
  EXPECT_THAT(*reason, HasSubstr("replaced by a file that is not a socket"));
}

TEST_F(SocketWatchTest, RefusesToWatchWhatIsNotASocket) {
  EXPECT_EQ(SocketWatch::Create(path_).status().code(), absl::StatusCode::kFailedPrecondition);
  std::FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_THAT(SocketWatch::Create(path_).status().message(), HasSubstr("not a socket"));
}

}  // namespace
}  // namespace apogee::store
