// Unit tests for what a worker holds descriptors with, and how it gives them
// back: the upstream keep-alive pool's bounds (per destination and in total,
// least recently pooled first) and evict_oldest(), the splice pipe pool's
// cap, and the dialler taking a descriptor back from the pool when the
// descriptor table is full.
#include <dirent.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/libevent_handles.h"
#include "tests/unit/worker/pooled_connections.h"
#include "worker/pipe_pool.h"
#include "worker/resolver.h"
#include "worker/upstream_connector.h"
#include "worker/upstream_pool.h"

namespace worker {
namespace {

using namespace std::chrono_literals;
using common::UniqueFd;

class PoolTest : public ::testing::Test, protected PooledConnections {};

TEST_F(PoolTest, TotalCapClosesTheLeastRecentlyPooled) {
    UpstreamPool pool(30s, 8, 3);
    pool.put("a:80 direct", connection());
    pool.put("b:80 direct", connection());
    pool.put("c:80 direct", connection());
    EXPECT_EQ(pool.idle_count(), 3u);
    pool.put("d:80 direct", connection());
    EXPECT_EQ(pool.idle_count(), 3u);
    EXPECT_TRUE(closed(0)) << "the oldest, to a, stayed open";
    EXPECT_FALSE(closed(1));
    EXPECT_FALSE(pool.take("a:80 direct").has_value());
    for (const char* key : {"b:80 direct", "c:80 direct", "d:80 direct"}) {
        EXPECT_TRUE(pool.take(key).has_value()) << key;
    }
    EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(PoolTest, ReuseMakesAConnectionTheNewest) {
    UpstreamPool pool(30s, 8, 3);
    pool.put("a", connection());
    pool.put("b", connection());
    pool.put("c", connection());
    auto reused = pool.take("a");
    ASSERT_TRUE(reused.has_value());
    pool.put("a", std::move(*reused));  // after its exchange: the newest now
    pool.put("d", connection());        // b goes, not a
    EXPECT_TRUE(closed(1));
    EXPECT_FALSE(closed(0));
    EXPECT_FALSE(pool.take("b").has_value());
    EXPECT_TRUE(pool.take("a").has_value());
}

TEST_F(PoolTest, PerKeyCapStillHolds) {
    UpstreamPool pool(30s, 2, 100);
    for (int i = 0; i < 4; ++i) pool.put("same", connection());
    EXPECT_EQ(pool.idle_count(), 2u);
    EXPECT_TRUE(closed(0));
    EXPECT_TRUE(closed(1));
    EXPECT_FALSE(closed(2));
    EXPECT_FALSE(closed(3));
}

TEST_F(PoolTest, MostRecentOfAKeyIsTakenFirst) {
    UpstreamPool pool(30s, 4, 100);
    pool.put("k", connection());
    pool.put("k", connection());
    auto taken = pool.take("k");
    ASSERT_TRUE(taken.has_value());
    // The pool's end of pair 1: writing on it reaches peer 1.
    ASSERT_EQ(send(bufferevent_getfd(taken->connection.get()), "x", 1, 0), 1);
    char byte = 0;
    EXPECT_EQ(recv(peers_[1].get(), &byte, 1, MSG_DONTWAIT), 1);
}

TEST_F(PoolTest, EvictOldestClosesInPoolOrderWhateverTheKey) {
    UpstreamPool pool(30s, 8, 100);
    pool.put("a", connection());
    pool.put("b", connection());
    pool.put("a", connection());
    EXPECT_EQ(pool.evict_oldest(2), 2u);
    // At once, not from the loop: the caller retries accept() or socket().
    EXPECT_TRUE(closed(0, true));
    EXPECT_TRUE(closed(1, true));
    EXPECT_FALSE(closed(2));
    EXPECT_EQ(pool.idle_count(), 1u);
    EXPECT_FALSE(pool.take("b").has_value());
    EXPECT_EQ(pool.evict_oldest(5), 1u);
    EXPECT_EQ(pool.evict_oldest(1), 0u);
    EXPECT_FALSE(pool.take("a").has_value());
}

TEST_F(PoolTest, ClosedByThePeerLeavesBothBoundsConsistent) {
    UpstreamPool pool(30s, 8, 2);
    pool.put("a", connection());
    pool.put("b", connection());
    peers_[0].reset();  // the upstream of a closes
    run_loop();
    EXPECT_EQ(pool.idle_count(), 1u);
    EXPECT_FALSE(pool.take("a").has_value());
    pool.put("c", connection());  // fits without closing b
    EXPECT_FALSE(closed(1));
    EXPECT_EQ(pool.idle_count(), 2u);
    pool.put("d", connection());  // now b is the oldest
    EXPECT_TRUE(closed(1));
    EXPECT_FALSE(closed(2));
}

TEST_F(PoolTest, ZeroTotalKeepsNothing) {
    UpstreamPool pool(30s, 8, 0);
    pool.put("a", connection());
    EXPECT_EQ(pool.idle_count(), 0u);
    EXPECT_TRUE(closed(0));
}

// --- Splice pipes ----------------------------------------------------------------

TEST(PipePoolCap, AtMostMaxPipesLiveBusyOrIdle) {
    PipePool pool(64 * 1024, 1, 2);
    auto first = pool.take();
    auto second = pool.take();
    ASSERT_TRUE(first && second);
    EXPECT_EQ(pool.live(), 2u);
    EXPECT_FALSE(pool.take().has_value()) << "a third pipe past max_pipes";
    pool.give_back(std::move(*first));  // kept idle: still live
    first.reset();
    EXPECT_EQ(pool.live(), 2u);
    auto again = pool.take();  // the idle one
    ASSERT_TRUE(again.has_value());
    second.reset();  // closed with bytes in it, say: no longer live
    EXPECT_EQ(pool.live(), 1u);
    EXPECT_TRUE(pool.take().has_value());
}

TEST(PipePoolCap, DropIdleClosesEveryIdlePipe) {
    PipePool pool(64 * 1024, 4, 8);
    std::vector<Pipe> pipes;
    for (int i = 0; i < 3; ++i) pipes.push_back(*pool.take());
    for (Pipe& pipe : pipes) pool.give_back(std::move(pipe));
    pipes.clear();
    EXPECT_EQ(pool.idle(), 3u);
    EXPECT_EQ(pool.drop_idle(), 3u);
    EXPECT_EQ(pool.idle(), 0u);
    EXPECT_EQ(pool.live(), 0u);
}

// --- The dialler, short of descriptors ---------------------------------------------

// Lowers RLIMIT_NOFILE to the descriptors open now and fills every gap
// below it, so that the next socket() fails with EMFILE; restores on
// destruction.
class FullDescriptorTable {
  public:
    FullDescriptorTable() {
        getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit lowered = saved_;
        lowered.rlim_cur = static_cast<rlim_t>(highest_open_descriptor()) + 1;
        setrlimit(RLIMIT_NOFILE, &lowered);
        while (true) {
            int fd = dup(0);
            if (fd < 0) break;
            filler_.emplace_back(fd);
        }
    }
    ~FullDescriptorTable() {
        filler_.clear();
        setrlimit(RLIMIT_NOFILE, &saved_);
    }

  private:
    static int highest_open_descriptor() {
        int highest = 0;
        DIR* dir = opendir("/proc/self/fd");
        if (dir == nullptr) return 1024;
        while (dirent* entry = readdir(dir)) {
            if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
        }
        closedir(dir);
        return highest;
    }

    rlimit saved_{};
    std::vector<UniqueFd> filler_;
};

class DialTest : public PoolTest {
  protected:
    void SetUp() override {
        resolver_ = Resolver::create(base_.get(), 2000ms);
        ASSERT_TRUE(resolver_);
        listener_.reset(socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
        ASSERT_EQ(listen(listener_.get(), 16), 0);
        socklen_t length = sizeof(address);
        getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        policy_.deny_private = false;
        policy_.connect_timeout = 2000ms;
    }

    ConnectResult dial(UpstreamPool* pool) {
        std::optional<ConnectResult> result;
        UpstreamConnect connect(base_.get(), *resolver_, policy_, pool);
        connect.start("127.0.0.1", port_, DialOptions{},
                      [&](ConnectResult&& r) { result.emplace(std::move(r)); });
        auto deadline = std::chrono::steady_clock::now() + 3s;
        while (!result && std::chrono::steady_clock::now() < deadline) {
            event_base_loop(base_.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
        }
        if (result) return std::move(*result);
        ConnectResult none;
        none.error = ConnectError::kTimeout;
        none.detail = "no result";
        return none;
    }

    std::unique_ptr<Resolver> resolver_;
    UniqueFd listener_;
    uint16_t port_ = 0;
    ConnectPolicy policy_;
};

TEST_F(DialTest, ClosesAnIdlePooledConnectionWhenNoDescriptorIsLeft) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "needs a full descriptor table, which the sanitizer runtime cannot bear";
#endif
    UpstreamPool pool(30s, 8, 8);
    pool.put("old:80 direct", connection());
    pool.put("new:80 direct", connection());
    ConnectResult result;
    {
        FullDescriptorTable full;
        result = dial(&pool);
    }
    EXPECT_EQ(result.error, ConnectError::kNone) << result.detail;
    EXPECT_TRUE(result.connection);
    EXPECT_EQ(pool.idle_count(), 1u);
    EXPECT_TRUE(closed(0)) << "the oldest idle connection gave its descriptor";
    EXPECT_FALSE(closed(1));
}

TEST_F(DialTest, WithNothingIdleTheDescriptorLimitIsTheFailure) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "needs a full descriptor table, which the sanitizer runtime cannot bear";
#endif
    UpstreamPool pool(30s, 8, 8);
    ConnectResult result;
    {
        FullDescriptorTable full;
        result = dial(&pool);
    }
    EXPECT_EQ(result.error, ConnectError::kNoResources);
    EXPECT_NE(result.detail.find("Too many open files"), std::string::npos) << result.detail;
}

}  // namespace
}  // namespace worker
