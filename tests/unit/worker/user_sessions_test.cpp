// Unit tests for worker/user_sessions: the per-user counts a worker sends
// after its report, over a real SEQPACKET socketpair like the channel.
#include "worker/user_sessions.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>

#include "common/channel.h"

namespace worker {
namespace {

namespace channel = common::channel;

class UserSessionCountsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_), 0);
    }
    void TearDown() override {
        close(fds_[0]);
        close(fds_[1]);
    }

    // Every record waiting on the master's end, summed by name.
    std::map<std::string, uint64_t> receive(int* records = nullptr) {
        std::map<std::string, uint64_t> sums;
        channel::UserSessions record;
        while (recv(fds_[1], &record, sizeof record, MSG_DONTWAIT) == sizeof record) {
            EXPECT_EQ(channel::decode_user_sessions(&record, sizeof record, record),
                      channel::DecodeStatus::kOk);
            EXPECT_EQ(record.pid, 77);
            for (uint32_t i = 0; i < record.count; ++i) {
                sums[std::string(record.users[i].name, record.users[i].name_length)] +=
                    record.users[i].sessions;
            }
            if (records) ++*records;
        }
        return sums;
    }

    int fds_[2];
};

TEST_F(UserSessionCountsTest, SendsCountsInRecordsOfAtMost32Users) {
    UserSessionCounts counts;
    for (int i = 0; i < 40; ++i) counts.count("user" + std::to_string(i));
    counts.count("user0");
    counts.count("");                    // never a user name
    counts.count(std::string(65, 'x'));  // longer than any users-file name
    counts.send(fds_[0], 77);
    EXPECT_TRUE(counts.empty());
    int records = 0;
    auto sums = receive(&records);
    EXPECT_EQ(records, 2);
    EXPECT_EQ(sums.size(), 40u);
    EXPECT_EQ(sums["user0"], 2u);
    EXPECT_EQ(sums["user39"], 1u);
    counts.send(fds_[0], 77);  // nothing new: nothing sent
    EXPECT_TRUE(receive().empty());
}

// A full channel loses nothing: the counts wait for the next report.
TEST_F(UserSessionCountsTest, FullChannelKeepsTheCounts) {
    channel::UserSessions filler = channel::make_user_sessions();
    while (send(fds_[0], &filler, sizeof filler, MSG_DONTWAIT) == sizeof filler) {
    }
    UserSessionCounts counts;
    counts.count("alice");
    counts.send(fds_[0], 77);
    EXPECT_FALSE(counts.empty());
    char drain[sizeof filler];
    while (recv(fds_[1], drain, sizeof drain, MSG_DONTWAIT) > 0) {
    }
    counts.count("alice");
    counts.send(fds_[0], 77);
    EXPECT_TRUE(counts.empty());
    EXPECT_EQ(receive()["alice"], 2u);
}

}  // namespace
}  // namespace worker
