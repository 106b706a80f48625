// Unit tests for worker/password_verifier, with real libxcrypt hashes made
// here (bcrypt, yescrypt, SHA-512 crypt) and a real libevent loop: verdicts
// for each kind, settings crypt does not know and NUL bytes; the loop keeps
// running its timers while the threads hash; a client with many attempts
// queued does not hold back another client's first; the per-client and total
// limits; cancel; and destruction with jobs queued and hashing.
#include "worker/password_verifier.h"

#include <crypt.h>
#include <dirent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace worker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Verdict = PasswordVerifier::Verdict;
using Limits = PasswordVerifier::Limits;

// A crypt(3) hash of `password` with a fresh salt from libxcrypt.
std::string make_hash(const char* prefix, unsigned long cost, const std::string& password) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn(prefix, cost, nullptr, 0, setting, sizeof setting) == nullptr) {
        ADD_FAILURE() << "crypt_gensalt_rn(" << prefix << ", " << cost << ") failed";
        return "";
    }
    auto data = std::make_unique<crypt_data>();
    const char* hash = crypt_rn(password.c_str(), setting, data.get(), sizeof *data);
    if (hash == nullptr || hash[0] == '*') {
        ADD_FAILURE() << "crypt_rn() failed for " << setting;
        return "";
    }
    return hash;
}

// The /proc/self/task directories of the threads named "proxyd-crypt".
// A thread shows its name once it has run, so callers poll.
std::vector<std::string> crypt_thread_dirs() {
    std::vector<std::string> dirs;
    std::unique_ptr<DIR, int (*)(DIR*)> tasks(opendir("/proc/self/task"), closedir);
    if (!tasks) return dirs;
    while (dirent* entry = readdir(tasks.get())) {
        std::string dir = std::string("/proc/self/task/") + entry->d_name;
        std::string name;
        std::getline(std::ifstream(dir + "/comm"), name);
        if (name == "proxyd-crypt") dirs.push_back(dir);
    }
    return dirs;
}

// A real loop and a verifier on it; run() turns the loop until `done` or a
// bounded timeout.
class PasswordVerifierLoop : public ::testing::Test {
  protected:
    void SetUp() override {
        base_.reset(event_base_new());
        ASSERT_NE(base_, nullptr);
    }
    void TearDown() override {
        verifier_.reset();
        base_.reset();
    }

    void start(Limits limits = {}) {
        verifier_ = std::make_unique<PasswordVerifier>(base_.get(), limits);
        ASSERT_TRUE(verifier_->ok());
    }

    // Returns false on timeout.
    bool run(const std::function<bool()>& done, std::chrono::milliseconds limit = 8000ms) {
        bool timed_out = false;
        common::EventPtr timer(evtimer_new(
            base_.get(), [](evutil_socket_t, short, void* arg) { *static_cast<bool*>(arg) = true; },
            &timed_out));
        timeval tv{static_cast<time_t>(limit.count() / 1000),
                   static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
        evtimer_add(timer.get(), &tv);
        while (!done() && !timed_out) event_base_loop(base_.get(), EVLOOP_ONCE);
        return !timed_out;
    }

    // Starts a verification whose verdict lands in `out`; checks that the
    // callback did not run inside verify().
    uint64_t verify(std::string_view key, const std::string& hash, const std::string& password,
                    std::optional<Verdict>& out) {
        uint64_t ticket =
            verifier_->verify(key, hash, password, [&out](Verdict verdict) { out = verdict; });
        EXPECT_FALSE(out.has_value()) << "callback ran inside verify()";
        EXPECT_NE(ticket, 0u);
        return ticket;
    }

    common::EventBasePtr base_;
    std::unique_ptr<PasswordVerifier> verifier_;
};

TEST_F(PasswordVerifierLoop, MatchAndMismatchForEachKind) {
    start();
    struct Kind {
        const char* prefix;
        unsigned long cost;
    };
    // yescrypt and SHA-512 at libxcrypt's defaults, as htpasswd and mkpasswd make them.
    const Kind kinds[] = {{"$2b$", 4}, {"$2y$", 6}, {"$2b$", 8}, {"$y$", 0}, {"$6$", 0}};
    std::vector<std::string> hashes;
    for (const Kind& kind : kinds) hashes.push_back(make_hash(kind.prefix, kind.cost, "s3cret pw"));
    ASSERT_TRUE(hashes[3].rfind("$y$", 0) == 0) << hashes[3];
    ASSERT_TRUE(hashes[4].rfind("$6$", 0) == 0) << hashes[4];

    // One client key: its verdicts come back in the order asked.
    std::vector<std::string> order;
    std::vector<std::optional<Verdict>> right(hashes.size()), wrong(hashes.size());
    for (size_t i = 0; i < hashes.size(); ++i) {
        verifier_->verify("192.0.2.1", hashes[i], "s3cret pw", [&, i](Verdict v) {
            right[i] = v;
            order.push_back("right" + std::to_string(i));
        });
        verifier_->verify("192.0.2.1", hashes[i], "s3cret pX", [&, i](Verdict v) {
            wrong[i] = v;
            order.push_back("wrong" + std::to_string(i));
        });
    }
    EXPECT_TRUE(order.empty()) << "callback ran inside verify()";
    EXPECT_EQ(verifier_->pending(), 2 * hashes.size());
    ASSERT_TRUE(run([&] { return order.size() == 2 * hashes.size(); }));
    for (size_t i = 0; i < hashes.size(); ++i) {
        EXPECT_EQ(right[i], Verdict::kMatch) << hashes[i];
        EXPECT_EQ(wrong[i], Verdict::kMismatch) << hashes[i];
        EXPECT_EQ(order[2 * i], "right" + std::to_string(i));
        EXPECT_EQ(order[2 * i + 1], "wrong" + std::to_string(i));
    }
    EXPECT_EQ(verifier_->pending(), 0u);
}

TEST_F(PasswordVerifierLoop, InvalidSettingsAndNulBytesMismatch) {
    start();
    std::string hash = make_hash("$2b$", 4, "pass");
    std::optional<Verdict> unknown, star, empty, truncated, longer, nul, control;
    verify("a", "$9$x", "pass", unknown);
    verify("b", "*", "pass", star);
    verify("c", "", "", empty);
    verify("d", hash.substr(0, hash.size() - 1), "pass", truncated);
    verify("e", hash + "x", "pass", longer);
    // crypt(3) would see only "pass" and match.
    verify("f", hash, std::string("pass\0word", 9), nul);
    verify("g", hash, "pass", control);
    ASSERT_TRUE(
        run([&] { return unknown && star && empty && truncated && longer && nul && control; }));
    EXPECT_EQ(unknown, Verdict::kMismatch);
    EXPECT_EQ(star, Verdict::kMismatch);
    EXPECT_EQ(empty, Verdict::kMismatch);
    EXPECT_EQ(truncated, Verdict::kMismatch);
    EXPECT_EQ(longer, Verdict::kMismatch);
    EXPECT_EQ(nul, Verdict::kMismatch);
    EXPECT_EQ(control, Verdict::kMatch);
}

// While the threads hash, a 5 ms timer on the loop keeps firing: the largest
// gap between its calls stays far below one hash (~100 ms at cost 10 here).
TEST_F(PasswordVerifierLoop, LoopStaysResponsiveWhileHashing) {
    start();
    std::string hash = make_hash("$2b$", 10, "right");
    struct Ticks {
        Clock::time_point last;
        Clock::duration largest_gap{};
        int count = 0;
    } ticks;
    common::EventPtr timer(event_new(
        base_.get(), -1, EV_PERSIST,
        [](evutil_socket_t, short, void* arg) {
            auto* t = static_cast<Ticks*>(arg);
            Clock::time_point now = Clock::now();
            t->largest_gap = std::max(t->largest_gap, now - t->last);
            t->last = now;
            t->count++;
        },
        &ticks));
    timeval five_ms{0, 5000};
    std::vector<std::optional<Verdict>> verdicts(8);
    Clock::time_point started = Clock::now();
    ticks.last = started;
    evtimer_add(timer.get(), &five_ms);
    for (size_t i = 0; i < verdicts.size(); ++i) {
        verify("client" + std::to_string(i), hash, "wrong", verdicts[i]);
    }
    ASSERT_TRUE(run([&] {
        return std::all_of(verdicts.begin(), verdicts.end(), [](const auto& v) { return v; });
    }));
    auto elapsed = Clock::now() - started;
    auto ms = [](Clock::duration d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    std::cout << "[ measured ] 8 bcrypt cost-10 verifications took " << ms(elapsed)
              << " ms; 5 ms timer fired " << ticks.count << " times, largest gap "
              << ms(ticks.largest_gap) << " ms\n";
    for (const auto& verdict : verdicts) EXPECT_EQ(verdict, Verdict::kMismatch);
    EXPECT_LT(ms(ticks.largest_gap), 100);
    EXPECT_GE(ticks.count, 3);
}

// Client "a" queues 20 slow attempts, then "b" one: b waits at most for the
// attempt of a that is hashing, not for a's queue.
TEST_F(PasswordVerifierLoop, OneClientQueuesBehindItself) {
    start({.threads = 2});
    std::string hash = make_hash("$2b$", 10, "right");
    std::vector<std::string> order;
    for (int i = 1; i <= 20; ++i) {
        verifier_->verify("a", hash, "guess" + std::to_string(i),
                          [&order, i](Verdict) { order.push_back("a" + std::to_string(i)); });
    }
    std::optional<Verdict> b;
    verifier_->verify("b", hash, "right", [&](Verdict verdict) {
        b = verdict;
        order.push_back("b");
    });
    EXPECT_EQ(verifier_->pending(), 21u);
    ASSERT_TRUE(
        run([&] { return b && std::find(order.begin(), order.end(), "a5") != order.end(); }));
    std::string seen;
    for (const std::string& name : order) seen += name + " ";
    std::cout << "[ measured ] delivery order: " << seen << "\n";
    auto position = [&](const std::string& name) {
        return std::find(order.begin(), order.end(), name) - order.begin();
    };
    EXPECT_LT(position("b"), position("a5")) << seen;
    EXPECT_EQ(b, Verdict::kMatch);
    // a's own attempts stay in order.
    for (int i = 1; i < 5; ++i) {
        EXPECT_LT(position("a" + std::to_string(i)), position("a" + std::to_string(i + 1)));
    }
    // The verifier goes with 15 of a's attempts still waiting.
}

TEST_F(PasswordVerifierLoop, LimitsAnswerBusyAsynchronously) {
    start({.threads = 1, .per_client_pending = 2, .total_pending = 3});
    std::string hash = make_hash("$2b$", 4, "pw");
    std::optional<Verdict> a1, a2, a3, b1, c1;
    verify("a", hash, "pw", a1);
    verify("a", hash, "pw", a2);
    verify("a", hash, "pw", a3);  // a's third: over per_client_pending
    EXPECT_EQ(verifier_->pending(), 2u);
    verify("b", hash, "pw", b1);
    verify("c", hash, "pw", c1);  // over total_pending
    EXPECT_EQ(verifier_->pending(), 3u);
    ASSERT_TRUE(run([&] { return a1 && a2 && a3 && b1 && c1; }));
    EXPECT_EQ(a1, Verdict::kMatch);
    EXPECT_EQ(a2, Verdict::kMatch);
    EXPECT_EQ(a3, Verdict::kBusy);
    EXPECT_EQ(b1, Verdict::kMatch);
    EXPECT_EQ(c1, Verdict::kBusy);
    EXPECT_EQ(verifier_->pending(), 0u);
    // The slots are free again.
    std::optional<Verdict> again;
    verify("c", hash, "pw", again);
    ASSERT_TRUE(run([&] { return again.has_value(); }));
    EXPECT_EQ(again, Verdict::kMatch);
}

// A kBusy answer comes on a later loop iteration, so a caller that retries
// from the callback gives the loop its turn in between.
TEST_F(PasswordVerifierLoop, BusyRetryFromCallbackLetsLoopRun) {
    start({.threads = 1, .per_client_pending = 0, .total_pending = 4096});
    int answers = 0;
    // A descriptor that stays readable: its event runs on every poll.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    common::UniqueFd read_end(fds[0]), write_end(fds[1]);
    ASSERT_EQ(write(write_end.get(), "x", 1), 1);
    int polls = 0;
    common::EventPtr readable(event_new(
        base_.get(), read_end.get(), EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void* arg) { ++*static_cast<int*>(arg); }, &polls));
    event_add(readable.get(), nullptr);
    std::function<void(Verdict)> retry = [&](Verdict verdict) {
        EXPECT_EQ(verdict, Verdict::kBusy);
        if (++answers < 5) verifier_->verify("a", "*", "pw", retry);
    };
    verifier_->verify("a", "*", "pw", retry);
    ASSERT_TRUE(run([&] { return answers == 5; }));
    EXPECT_GE(polls, 4);
}

TEST_F(PasswordVerifierLoop, CancelledCallbacksNeverRun) {
    start({.threads = 1});
    std::string slow = make_hash("$2b$", 10, "pw");
    std::string fast = make_hash("$2b$", 4, "pw");
    std::optional<Verdict> a1, a2, b1, c1;
    uint64_t hashing = verify("a", slow, "pw", a1);  // taken by the thread
    uint64_t waiting = verify("a", fast, "pw", a2);  // in a's queue
    uint64_t queued = verify("b", fast, "pw", b1);   // in the thread queue behind a1
    uint64_t kept = verify("c", fast, "pw", c1);
    EXPECT_EQ(verifier_->pending(), 4u);
    verifier_->cancel(waiting);
    verifier_->cancel(queued);
    verifier_->cancel(hashing);
    EXPECT_GE(verifier_->pending(), 1u);  // c1, and a1 if it is hashing already
    ASSERT_TRUE(run([&] { return c1.has_value() && verifier_->pending() == 0; }));
    EXPECT_EQ(c1, Verdict::kMatch);
    EXPECT_FALSE(a1.has_value());
    EXPECT_FALSE(a2.has_value());
    EXPECT_FALSE(b1.has_value());
    // Delivered, already cancelled and unknown tickets: nothing happens.
    verifier_->cancel(kept);
    verifier_->cancel(hashing);
    verifier_->cancel(123456789);
    // a's slot is free once its dropped job has ended.
    std::optional<Verdict> a3;
    verify("a", fast, "pw", a3);
    ASSERT_TRUE(run([&] { return a3.has_value(); }));
    EXPECT_EQ(a3, Verdict::kMatch);
    EXPECT_FALSE(a1.has_value());
}

TEST_F(PasswordVerifierLoop, CallbackMayVerifyAndCancel) {
    start({.threads = 1});
    std::string slow = make_hash("$2b$", 8, "pw");
    std::string fast = make_hash("$2b$", 4, "pw");
    std::optional<Verdict> y, z;
    uint64_t y_ticket = 0;
    std::optional<Verdict> x;
    verifier_->verify("k1", fast, "pw", [&](Verdict verdict) {
        x = verdict;
        verifier_->cancel(y_ticket);
        verify("k1", fast, "wrong", z);
    });
    y_ticket = verify("k2", slow, "pw", y);
    ASSERT_TRUE(run([&] { return z.has_value() && verifier_->pending() == 0; }));
    EXPECT_EQ(x, Verdict::kMatch);
    EXPECT_EQ(z, Verdict::kMismatch);
    EXPECT_FALSE(y.has_value());
}

TEST_F(PasswordVerifierLoop, DestructorWithWorkInFlight) {
    start({.threads = 2});
    std::string hash = make_hash("$2b$", 10, "pw");
    int callbacks = 0;
    auto owned = std::make_shared<int>(0);  // each callback holds a reference
    for (int i = 0; i < 9; ++i) {
        verifier_->verify("client" + std::to_string(i % 6), hash, "pw",
                          [&callbacks, owned](Verdict) { ++callbacks; });
    }
    EXPECT_EQ(verifier_->pending(), 9u);
    // Let the threads take their first jobs.
    run([] { return false; }, 20ms);
    Clock::time_point before = Clock::now();
    verifier_.reset();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - before);
    std::cout << "[ measured ] destructor with 2 hashing and 7 queued: " << took.count() << " ms\n";
    EXPECT_LT(took.count(), 2000);  // one hash per thread at most
    EXPECT_EQ(owned.use_count(), 1) << "callbacks not destroyed";
    for (int i = 0; i < 5; ++i) event_base_loop(base_.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(callbacks, 0);
}

// The threads are named and block the signals the loop handles; the
// creating thread's mask is as it was.
TEST_F(PasswordVerifierLoop, ThreadsNamedWithSignalsBlocked) {
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    start({.threads = 2});
    pthread_sigmask(SIG_SETMASK, nullptr, &after);
    for (int signal : {SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE}) {
        EXPECT_EQ(sigismember(&before, signal), sigismember(&after, signal)) << signal;
    }
    // Names show in /proc once the threads have run.
    std::vector<std::string> masks;
    for (int attempt = 0; attempt < 200 && masks.size() < 2; ++attempt) {
        masks.clear();
        for (const std::string& dir : crypt_thread_dirs()) {
            std::ifstream status(dir + "/status");
            for (std::string line; std::getline(status, line);) {
                if (line.rfind("SigBlk:", 0) == 0) masks.push_back(line.substr(7));
            }
        }
        if (masks.size() < 2) usleep(5000);
    }
    ASSERT_EQ(masks.size(), 2u);
    for (const std::string& mask : masks) {
        unsigned long long bits = std::stoull(mask, nullptr, 16);
        for (int signal : {SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE}) {
            EXPECT_TRUE(bits & (1ull << (signal - 1))) << "signal " << signal << " in " << mask;
        }
    }
}

// Jobs that no thread starts within max_wait are answered kTimeout by the
// loop, without waiting for the hashes ahead of them.
TEST_F(PasswordVerifierLoop, OverdueJobsTimeOutWithoutWaitingForHashes) {
    start({.threads = 1, .max_wait = 300ms});
    std::string hash = make_hash("$2b$", 12, "right");  // ~0.25-2 s a try
    std::vector<std::optional<Verdict>> verdicts(12);
    auto begun = Clock::now();
    Clock::time_point last_timeout = begun;
    for (size_t i = 0; i < verdicts.size(); ++i) {
        verifier_->verify(i % 2 ? "a" : "b", hash, "guess", [&, i](Verdict verdict) {
            verdicts[i] = verdict;
            if (verdict == Verdict::kTimeout) last_timeout = Clock::now();
        });
    }
    auto answered = [&] {
        return std::all_of(verdicts.begin(), verdicts.end(), [](auto& v) { return v.has_value(); });
    };
    ASSERT_TRUE(run(answered, 10000ms));
    auto timeouts = std::count(verdicts.begin(), verdicts.end(), std::optional(Verdict::kTimeout));
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(last_timeout - begun);
    std::cout << "[ measured ] " << timeouts << " of 12 jobs timed out, the last after "
              << waited.count() << " ms\n";
    // The thread may start a job or two before max_wait passes (a hash can
    // be quicker than 300 ms); every other one is overdue and answered by
    // the sweep, not after the hashes ahead of it (that would take 3-20 s).
    EXPECT_GE(timeouts, 9);
    EXPECT_LT(waited, 3000ms);
    EXPECT_NE(verdicts[0], Verdict::kTimeout);  // started at once: hashed
}

// The crypt threads yield to the loop: they run at nice + 5.
TEST_F(PasswordVerifierLoop, ThreadsRunAtALowerPriority) {
    errno = 0;
    int loop_nice = getpriority(PRIO_PROCESS, 0);
    ASSERT_EQ(errno, 0);
    start({.threads = 2});
    // The nice value (field 19 of stat) of each thread, once both have
    // named themselves and lowered their priority.
    auto nice_values = [] {
        std::vector<int> values;
        for (const std::string& dir : crypt_thread_dirs()) {
            std::string stat;
            std::getline(std::ifstream(dir + "/stat"), stat);
            std::istringstream fields(stat.substr(stat.rfind(')') + 2));
            std::string field;
            for (int i = 3; i <= 19 && fields >> field; ++i) {
            }
            values.push_back(std::stoi(field));
        }
        return values;
    };
    const int expected = std::min(loop_nice + 5, 19);
    std::vector<int> values;
    for (int attempt = 0; attempt < 200; ++attempt) {
        values = nice_values();
        if (values == std::vector<int>{expected, expected}) break;
        usleep(5000);
    }
    EXPECT_EQ(values, (std::vector<int>{expected, expected}));
}

// Without an eventfd (the descriptor limit reached) the verifier is not ok()
// and answers kError from the loop.
TEST_F(PasswordVerifierLoop, NotOkAnswersErrorAsynchronously) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "needs a full descriptor table, which the sanitizer runtime cannot bear";
#endif
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int lowest_free = dup(0);
    ASSERT_GE(lowest_free, 0);
    close(lowest_free);
    rlimit full = saved;
    full.rlim_cur = static_cast<rlim_t>(lowest_free);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &full), 0);
    verifier_ = std::make_unique<PasswordVerifier>(base_.get(), Limits{});
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    EXPECT_FALSE(verifier_->ok());
    std::optional<Verdict> verdict;
    verify("a", make_hash("$2b$", 4, "pw"), "pw", verdict);
    ASSERT_TRUE(run([&] { return verdict.has_value(); }));
    EXPECT_EQ(verdict, Verdict::kError);
    EXPECT_EQ(verifier_->pending(), 0u);
}

}  // namespace
}  // namespace worker
