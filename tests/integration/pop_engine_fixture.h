// What the PopEngine integration tests share: a real apogee-store process in
// a temp dir, a StoreClient and TopicManager over it, a manual clock, and
// one topic the test describes.
#pragma once

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_STORE_BIN
#error "APOGEE_STORE_BIN must name the apogee-store binary"
#endif

namespace apogee::broker {

class StoreBackedPopTest : public ::testing::Test {
 protected:
  // Starts the store and creates `topic` with `queues` queues of `type`.
  void StartWithTopic(const std::string& topic, int32_t queues,
                      nameserver::v1::TopicMessageType type) {
    auto process = ::apogee::testing::ServiceProcess::StartStore(APOGEE_STORE_BIN, dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    store_process_ = std::move(process).value();
    store_ = std::make_unique<StoreClient>(store_process_->address());
    topics_ = std::make_unique<TopicManager>(store_.get(), TopicOptions{});
    TopicConfig config;
    config.set_name(topic);
    config.set_read_queues(queues);
    config.set_write_queues(queues);
    config.set_permission(nameserver::v1::TOPIC_PERMISSION_READ_WRITE);
    config.set_message_type(type);
    ASSERT_TRUE(topics_->Upsert(config).ok());
  }

  // A new engine over the same store: what a broker restart starts with.
  void NewEngine(const PopOptions& options) {
    pop_ = std::make_unique<PopEngine>(store_.get(), topics_.get(), &clock_, options);
  }

  ::apogee::testing::TempDir dir_;
  std::unique_ptr<::apogee::testing::ServiceProcess> store_process_;
  std::unique_ptr<StoreClient> store_;
  std::unique_ptr<TopicManager> topics_;
  ManualClock clock_;
  std::unique_ptr<PopEngine> pop_;
};

}  // namespace apogee::broker
