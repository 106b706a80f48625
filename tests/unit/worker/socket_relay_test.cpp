// Unit tests for worker/socket_relay and worker/pipe_pool: a relay between
// two real loopback TCP connections driven by a real libevent loop, through
// a kernel pipe and, when no pipe can be made, through its copy buffer.
//
//   producer --tcp--> source | relay | sink --tcp--> consumer
#include "worker/socket_relay.h"

#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/libevent_handles.h"

namespace worker {
namespace {

using namespace std::chrono_literals;
using common::UniqueFd;

std::string pattern(size_t n, unsigned seed) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<char>((i * 131 + seed * 7 + i / 251) & 0xff);
    return out;
}

// A connected loopback TCP pair: `near` (nonblocking, the relay's side) and
// `far` (blocking, the test's producer or consumer).
struct TcpPair {
    UniqueFd near_end;
    UniqueFd far_end;
};

TcpPair make_tcp_pair() {
    UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(listen(listener.get(), 1), 0);
    EXPECT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
    UniqueFd far(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(connect(far.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
    UniqueFd near(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    EXPECT_TRUE(near.valid());
    return {std::move(near), std::move(far)};
}

bool send_all(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<size_t>(n);
    }
    return true;
}

// Reads exactly `n` bytes, or until EOF/error; bounded by a receive timeout.
std::string read_bytes(int fd, size_t n) {
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string out;
    char chunk[65536];
    while (out.size() < n) {
        ssize_t got = recv(fd, chunk, std::min(sizeof(chunk), n - out.size()), 0);
        if (got <= 0) break;
        out.append(chunk, static_cast<size_t>(got));
    }
    return out;
}

class SocketRelayTest : public ::testing::Test {
  protected:
    // Like a worker, the test ignores SIGPIPE: a splice or write to a
    // closed connection then fails with EPIPE instead of killing us.
    SocketRelayTest() : base_(event_base_new()), pipes_(64 * 1024, 4, 64) {
        signal(SIGPIPE, SIG_IGN);
    }

    // Starts a relay from source_ to sink_ and runs the loop until it ends
    // (or 10 s pass). Returns how it ended.
    std::optional<SocketRelay::End> relay(uint64_t limit, PipePool& pipes) {
        std::optional<SocketRelay::End> end;
        SocketRelay relay(
            base_.get(), pipes, source_.near_end.get(), sink_.near_end.get(), limit,
            [this](size_t n) { progress_ += n; }, [&end](SocketRelay::End how, int) { end = how; });
        relay.start();
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!end && std::chrono::steady_clock::now() < deadline) {
            event_base_loop(base_.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
            if (!end) std::this_thread::sleep_for(1ms);
        }
        return end;
    }

    common::EventBasePtr base_;
    PipePool pipes_;
    TcpPair source_ = make_tcp_pair();
    TcpPair sink_ = make_tcp_pair();
    uint64_t progress_ = 0;
};

TEST_F(SocketRelayTest, MovesExactlyTheLimitAndLeavesWhatFollows) {
    const std::string body = pattern(300 * 1024, 1);
    ASSERT_TRUE(send_all(source_.far_end.get(), body + "EXTRA"));
    std::string received;
    std::thread consumer([&] { received = read_bytes(sink_.far_end.get(), body.size()); });
    auto end = relay(body.size(), pipes_);
    consumer.join();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end, SocketRelay::End::kLimitReached);
    EXPECT_EQ(progress_, body.size());
    EXPECT_EQ(received, body);
    // Nothing past the limit was read: the next message is still there.
    char rest[16] = {};
    EXPECT_EQ(recv(source_.near_end.get(), rest, sizeof(rest), 0), 5);
    EXPECT_EQ(std::string(rest, 5), "EXTRA");
    // The pipe went back to the pool, empty.
    EXPECT_EQ(pipes_.idle(), 1u);
}

TEST_F(SocketRelayTest, SourceEofEndsTheRelayAfterEveryByte) {
    const std::string body = pattern(100 * 1024 + 7, 2);
    ASSERT_TRUE(send_all(source_.far_end.get(), body));
    shutdown(source_.far_end.get(), SHUT_WR);
    std::string received;
    std::thread consumer([&] { received = read_bytes(sink_.far_end.get(), body.size()); });
    auto end = relay(UINT64_MAX, pipes_);
    consumer.join();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end, SocketRelay::End::kSourceEof);
    EXPECT_EQ(received, body);
}

TEST_F(SocketRelayTest, SlowSinkHoldsTheSourceBackAndLosesNothing) {
    const std::string body = pattern(8 << 20, 3);
    std::thread producer([&] { send_all(source_.far_end.get(), body); });
    std::string received;
    std::thread consumer([&] {
        std::this_thread::sleep_for(300ms);  // let the sink fill up first
        received = read_bytes(sink_.far_end.get(), body.size());
    });
    auto end = relay(body.size(), pipes_);
    producer.join();
    consumer.join();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end, SocketRelay::End::kLimitReached);
    EXPECT_EQ(received.size(), body.size());
    EXPECT_TRUE(received == body);
}

TEST_F(SocketRelayTest, ResetSinkEndsWithASinkError) {
    sink_.far_end.reset();  // the consumer is gone
    const std::string body = pattern(1 << 20, 4);
    std::thread producer([&] { send_all(source_.far_end.get(), body); });
    auto end = relay(body.size(), pipes_);
    shutdown(source_.far_end.get(), SHUT_RDWR);  // unblocks the producer
    producer.join();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end, SocketRelay::End::kSinkError);
}

// With every descriptor in use no pipe can be made: the relay copies through
// its own buffer instead, with the same result.
TEST_F(SocketRelayTest, CopiesWhenNoPipeCanBeMade) {
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizers' runtime itself needs a pipe to check memory (UBSan's
    // vptr check reports "invalid vptr" when it cannot make one).
    GTEST_SKIP() << "needs a full descriptor table, which the sanitizer runtime cannot bear";
#endif
    PipePool empty_pool(64 * 1024, 0, 64);
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit lowered = saved;
    lowered.rlim_cur = static_cast<rlim_t>(fcntl(sink_.far_end.get(), F_DUPFD, 0));
    ASSERT_GT(lowered.rlim_cur, 0u);
    close(static_cast<int>(lowered.rlim_cur));
    lowered.rlim_cur += 64;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    std::vector<UniqueFd> filler;
    while (true) {
        int fd = dup(0);
        if (fd < 0) break;
        filler.emplace_back(fd);
    }
    ASSERT_FALSE(empty_pool.take().has_value()) << "a pipe could still be made";

    const std::string body = pattern(256 * 1024 + 3, 5);
    ASSERT_TRUE(send_all(source_.far_end.get(), body));
    std::string received;
    std::thread consumer([&] { received = read_bytes(sink_.far_end.get(), body.size()); });
    auto end = relay(body.size(), empty_pool);
    consumer.join();
    filler.clear();
    setrlimit(RLIMIT_NOFILE, &saved);
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end, SocketRelay::End::kLimitReached);
    EXPECT_EQ(received, body);
    EXPECT_EQ(progress_, body.size());
}

TEST(PipePool, KeepsAtMostMaxIdleEmptyPipes) {
    PipePool pool(64 * 1024, 2, 64);
    std::vector<Pipe> taken;
    for (int i = 0; i < 3; ++i) {
        auto pipe = pool.take();
        ASSERT_TRUE(pipe.has_value());
        EXPECT_GE(pipe->capacity, 4096u);
        taken.push_back(std::move(*pipe));
    }
    for (Pipe& pipe : taken) pool.give_back(std::move(pipe));
    EXPECT_EQ(pool.idle(), 2u);
    auto again = pool.take();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(pool.idle(), 1u);
}

}  // namespace
}  // namespace worker
