// Why a worker is silent: reading the scheduler's view of a process, and
// classifying a missed heartbeat as starved, spinning, blocked or unknown.
#include "master/silence.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace master {
namespace {

using common::Duration;

constexpr uint64_t kMs = 1000000;  // nanoseconds
const Duration kInterval{200};
const Duration kSilent{2000};

SchedSample sample(uint64_t cpu_ms, uint64_t wait_ms, char state = 'S') {
    return SchedSample{cpu_ms * kMs, wait_ms * kMs, state};
}

SchedTrack track(SchedSample first, SchedSample last) {
    SchedTrack t = start_track(first);
    add_reading(t, last, kSilent);
    return t;
}

TEST(ParseSchedstat, ThreeFields) {
    auto s = parse_schedstat("123456789 987654321 42\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->cpu_ns, 123456789u);
    EXPECT_EQ(s->wait_ns, 987654321u);
    EXPECT_TRUE(parse_schedstat("0 0 0"));
}

TEST(ParseSchedstat, RefusesAnythingElse) {
    for (const char* bad : {"", "\n", "1 2", "1 2 x", "a b c", "1 2 3 4", "-1 2 3", "1,2,3",
                            "99999999999999999999999 1 1"}) {
        EXPECT_FALSE(parse_schedstat(bad)) << bad;
    }
}

TEST(ParseStatState, AfterTheLastParenthesis) {
    EXPECT_EQ(parse_stat_state("1234 (proxyd) S 1 1234 1234 0 -1"), 'S');
    EXPECT_EQ(parse_stat_state("1234 (a) b) R 1"), 'R');
    EXPECT_EQ(parse_stat_state("1234 (x) T"), 'T');
    EXPECT_EQ(parse_stat_state(""), '?');
    EXPECT_EQ(parse_stat_state("1234 (x)"), '?');
    EXPECT_EQ(parse_stat_state("1234 (x)R"), '?');
}

TEST(ReadSchedSample, OwnProcessAndAMissingOne) {
    auto before = read_sched_sample(getpid());
    ASSERT_TRUE(before) << "this kernel keeps no /proc/PID/schedstat";
    EXPECT_EQ(before->state, 'R');  // we are running, reading it
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    volatile uint64_t spin = 0;
    while (std::chrono::steady_clock::now() < until) spin = spin + 1;
    auto after = read_sched_sample(getpid());
    ASSERT_TRUE(after);
    EXPECT_GT(after->cpu_ns, before->cpu_ns);
    // A reaped child has no /proc entry.
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    EXPECT_FALSE(read_sched_sample(pid));
}

// What a stopped worker looks like: state T, and counters that do not move,
// as for one asleep in a call that never returns. It is blocked.
TEST(ReadSchedSample, AStoppedChildIsBlocked) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) pause();
    }
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
    SchedTrack t = start_track(read_sched_sample(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    add_reading(t, read_sched_sample(pid), Duration{50});
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(t.first && t.last);
    EXPECT_EQ(t.last->state, 'T');
    EXPECT_EQ(t.first->cpu_ns, t.last->cpu_ns);
    EXPECT_EQ(t.first->wait_ns, t.last->wait_ns);
    EXPECT_EQ(classify_silence(t, kSilent, kInterval), Silence::kBlocked);
}

TEST(ClassifySilence, RanAllAlongIsSpinning) {
    EXPECT_EQ(
        classify_silence(track(sample(100, 50, 'R'), sample(2100, 50, 'R')), kSilent, kInterval),
        Silence::kSpinning);
}

TEST(ClassifySilence, SpinningOnABusyMachineIsStillSpinning) {
    // A third of a CPU for 2 s: 660 ms of CPU time, far more than a working
    // worker needs to reach its heartbeat, though it waited longer than it ran.
    EXPECT_EQ(
        classify_silence(track(sample(0, 0, 'R'), sample(660, 1340, 'R')), kSilent, kInterval),
        Silence::kSpinning);
}

TEST(ClassifySilence, FinishedWaitsMakeItStarved) {
    EXPECT_EQ(classify_silence(track(sample(1000, 1000), sample(1050, 2900)), kSilent, kInterval),
              Silence::kStarved);
    // A quarter of the silence on the run queue is enough.
    EXPECT_EQ(classify_silence(track(sample(0, 0), sample(10, 500)), kSilent, kInterval),
              Silence::kStarved);
    EXPECT_EQ(classify_silence(track(sample(0, 0), sample(10, 499)), kSilent, kInterval),
              Silence::kBlocked);
}

// schedstat counts a wait only once it ends: a worker still waiting for a
// CPU shows none, but every reading finds it runnable.
TEST(ClassifySilence, AWaitStillGoingOnMakesItStarved) {
    SchedTrack t = start_track(sample(100, 100, 'R'));
    for (int i = 0; i < 18; ++i) add_reading(t, sample(100, 100, 'R'), Duration{100});
    EXPECT_EQ(t.queued, Duration{1800});
    EXPECT_EQ(classify_silence(t, kSilent, kInterval), Silence::kStarved);
    EXPECT_EQ(describe_track(t), "ran 0 ms, waited 1800 ms to run, state R");
}

TEST(ClassifySilence, RunnableOnlyAtOneEndCountsNothing) {
    SchedTrack t = start_track(sample(100, 100, 'S'));
    add_reading(t, sample(100, 100, 'R'), Duration{1000});
    add_reading(t, sample(100, 100, 'S'), Duration{1000});
    EXPECT_EQ(t.queued, Duration{0});
    EXPECT_EQ(classify_silence(t, kSilent, kInterval), Silence::kBlocked);
}

TEST(ClassifySilence, TheCpuAllowanceIsAHeartbeatIntervalAndAHalf) {
    EXPECT_EQ(classify_silence(track(sample(0, 0), sample(300, 1700)), kSilent, kInterval),
              Silence::kStarved);
    EXPECT_EQ(classify_silence(track(sample(0, 0), sample(301, 1699)), kSilent, kInterval),
              Silence::kSpinning);
}

TEST(ClassifySilence, NeitherRanNorWaitedIsBlocked) {
    EXPECT_EQ(classify_silence(track(sample(500, 500), sample(500, 500)), kSilent, kInterval),
              Silence::kBlocked);
    // A little of both, as a worker that blocked soon after its last report.
    EXPECT_EQ(classify_silence(track(sample(500, 500), sample(520, 600)), kSilent, kInterval),
              Silence::kBlocked);
}

TEST(ClassifySilence, MissingOrBackwardReadingsAreUnknown) {
    EXPECT_EQ(classify_silence(start_track(std::nullopt), kSilent, kInterval), Silence::kUnknown);
    SchedTrack gone = start_track(sample(1, 1));
    add_reading(gone, std::nullopt, kSilent);
    EXPECT_EQ(classify_silence(gone, kSilent, kInterval), Silence::kUnknown);
    // A pid reused by another process: the counters went backwards.
    EXPECT_EQ(classify_silence(track(sample(900, 900), sample(10, 10)), kSilent, kInterval),
              Silence::kUnknown);
    // Once broken, a track stays so.
    add_reading(gone, sample(2, 2), kSilent);
    EXPECT_EQ(classify_silence(gone, kSilent, kInterval), Silence::kUnknown);
    EXPECT_EQ(describe_track(gone), "no scheduler counters");
}

TEST(DescribeTrack, ForTheLog) {
    EXPECT_EQ(describe_track(track(sample(100, 200), sample(112, 2000, 'T'))),
              "ran 12 ms, waited 1800 ms to run, state T");
}

TEST(SilenceName, EveryCause) {
    EXPECT_STREQ(silence_name(Silence::kStarved), "starved");
    EXPECT_STREQ(silence_name(Silence::kSpinning), "spinning");
    EXPECT_STREQ(silence_name(Silence::kBlocked), "blocked");
    EXPECT_STREQ(silence_name(Silence::kUnknown), "unknown");
}

}  // namespace
}  // namespace master
