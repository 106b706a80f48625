#include "common/scoreboard.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using common::Scoreboard;

TEST(Scoreboard, EmptyBoardHasNoOtherWorker) {
    auto board = Scoreboard::create(4);
    ASSERT_NE(board, nullptr);
    EXPECT_EQ(board->least_loaded_other(0), -1);
}

TEST(Scoreboard, LeastLoadedOtherIgnoresOwnRowAndFreeRows) {
    auto board = Scoreboard::create(4);
    board->claim(0, 100);
    board->claim(1, 101);
    board->claim(3, 103);
    board->set_accepting(0, 100, true);
    board->set_accepting(1, 101, true);
    board->set_accepting(3, 103, true);
    board->set_active(0, 100, 1);
    board->set_active(1, 101, 7);
    board->set_active(3, 103, 4);
    EXPECT_EQ(board->least_loaded_other(0), 4);
    EXPECT_EQ(board->least_loaded_other(1), 1);
    EXPECT_EQ(board->least_loaded_other(2), 1);
}

// Two workers must never both step aside for each other: a worker that is
// not watching its listeners (paused, yielding) is nobody to yield to.
TEST(Scoreboard, OnlyAcceptingWorkersCount) {
    auto board = Scoreboard::create(3);
    board->claim(1, 101);
    board->claim(2, 102);
    board->set_active(1, 101, 0);
    board->set_active(2, 102, 9);
    EXPECT_EQ(board->least_loaded_other(0), -1);
    board->set_accepting(2, 102, true);
    EXPECT_EQ(board->least_loaded_other(0), 9);
    board->set_accepting(1, 101, true);
    EXPECT_EQ(board->least_loaded_other(0), 0);
    board->set_accepting(1, 101, false);
    EXPECT_EQ(board->least_loaded_other(0), 9);
}

TEST(Scoreboard, OnlyTheOwnerWritesAndReleasesItsRow) {
    auto board = Scoreboard::create(2);
    board->claim(0, 100);
    board->claim(1, 200);
    board->set_active(1, 200, 5);
    board->claim(1, 201);  // a replacement takes the slot over
    board->set_accepting(1, 201, true);
    board->set_active(1, 200, 99);  // the old owner's write is ignored
    EXPECT_EQ(board->least_loaded_other(0), 0);
    board->release(1, 200);  // so is its release
    EXPECT_EQ(board->least_loaded_other(0), 0);
    board->release(1, 201);
    EXPECT_EQ(board->least_loaded_other(0), -1);
}

TEST(Scoreboard, OutOfRangeSlotsAreIgnored) {
    auto board = Scoreboard::create(1);
    board->claim(-1, 1);
    board->claim(5, 1);
    board->set_active(5, 1, 3);
    EXPECT_EQ(board->least_loaded_other(0), -1);
}

// The point of the scoreboard: a child's write is seen by its parent.
TEST(Scoreboard, SharedAcrossFork) {
    auto board = Scoreboard::create(2);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        board->claim(1, getpid());
        board->set_accepting(1, getpid(), true);
        board->set_active(1, getpid(), 42);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_EQ(board->least_loaded_other(0), 42);
}

}  // namespace
