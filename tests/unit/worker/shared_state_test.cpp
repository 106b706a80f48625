// The local backend of the shared state (worker/shared_state.h): it answers
// before the call returns, with the table's semantics, and its leases give
// their unit back when released, moved or destroyed.
#include "worker/shared_state.h"

#include <gtest/gtest.h>

#include <optional>

namespace worker {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<common::SharedTable> small_table() {
    return common::SharedTable::create(common::SharedTable::Capacity{64, 64, 8});
}

TEST(LocalSharedState, AnswersBeforeReturningWithTheTablesLimit) {
    auto table = small_table();
    LocalSharedState state(table.get());
    std::optional<AcquireResult> first, second, third;
    EXPECT_EQ(state.acquire("user:alice", 2, [&](AcquireResult&& r) { first = std::move(r); }), 0u);
    ASSERT_TRUE(first);
    state.acquire("user:alice", 2, [&](AcquireResult&& r) { second = std::move(r); });
    state.acquire("user:alice", 2, [&](AcquireResult&& r) { third = std::move(r); });
    EXPECT_TRUE(first->lease);
    EXPECT_TRUE(second->lease);
    EXPECT_FALSE(third->lease);
    EXPECT_EQ(third->refusal, StateRefusal::kAtLimit);
    EXPECT_EQ(table->count("user:alice"), 2u);

    StateLease moved = std::move(first->lease);
    EXPECT_EQ(table->count("user:alice"), 2u);
    moved.release();
    EXPECT_EQ(table->count("user:alice"), 1u);
    second.reset();
    EXPECT_EQ(table->count("user:alice"), 0u);
}

TEST(LocalSharedState, BucketsAndStickyValues) {
    auto table = small_table();
    LocalSharedState state(table.get());
    int taken = 0;
    std::chrono::nanoseconds wait{0};
    for (int i = 0; i < 3; ++i) {
        state.take("dst:a|-", 1, 2, [&](TakeResult r) {
            taken += r.taken;
            if (!r.taken) wait = r.wait;
        });
    }
    EXPECT_EQ(taken, 2);
    EXPECT_GT(wait, 0ns);

    StickResult first, second;
    state.stick("sticky:a:s", 7, 10s, 0, [&](StickResult r) { first = r; });
    state.stick("sticky:a:s", 9, 10s, 0, [&](StickResult r) { second = r; });
    EXPECT_EQ(first.stick.value, 7u);
    EXPECT_EQ(second.stick.value, 7u);
    EXPECT_FALSE(second.down);
}

// No table (it could not be mapped): users without a limit pass, users
// with one are refused, budgets and the sticky map are not kept.
TEST(LocalSharedState, WithoutATable) {
    LocalSharedState state(nullptr);
    AcquireResult unlimited = state.acquire_now("user:bob", 0);
    EXPECT_EQ(unlimited.refusal, StateRefusal::kNone);
    EXPECT_EQ(state.acquire_now("user:alice", 1).refusal, StateRefusal::kBroken);
    EXPECT_TRUE(state.take_now("dst:a|-", 1, 1).taken);
    StickResult stuck = state.stick_now("sticky:a:s", 5, 1s, 0);
    EXPECT_EQ(stuck.stick.value, 5u);
    EXPECT_FALSE(stuck.stick.stored);
}

}  // namespace
}  // namespace worker
