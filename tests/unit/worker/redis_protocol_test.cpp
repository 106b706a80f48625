// The pure parts of the Redis backend (worker/redis_protocol.h): key names,
// the back-off schedule, the scripts' arguments and the reading of replies.
#include "worker/redis_protocol.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstring>
#include <set>

namespace worker::redis {
namespace {

using namespace std::chrono_literals;

redisReply integer(long long value) {
    redisReply reply{};
    reply.type = REDIS_REPLY_INTEGER;
    reply.integer = value;
    return reply;
}

redisReply error(const char* text) {
    redisReply reply{};
    reply.type = REDIS_REPLY_ERROR;
    reply.str = const_cast<char*>(text);
    reply.len = std::strlen(text);
    return reply;
}

TEST(RedisProtocol, KeysArePrefixedAndHoldersUnique) {
    EXPECT_EQ(lease_key("user:alice"), "proxyd:lease:user:alice");
    EXPECT_EQ(bucket_key("dst:example.com|-"), "proxyd:bucket:dst:example.com|-");
    EXPECT_EQ(route_key("sticky:alice:s1"), "proxyd:route:sticky:alice:s1");
    EXPECT_EQ(held_key("a/1/0"), "proxyd:held:a/1/0");
    EXPECT_EQ(holders_key(), "proxyd:holders");
    EXPECT_EQ(holder_id("node-a", 4242, 0xabc), "node-a/4242/0000000000000abc");
    EXPECT_NE(holder_id("node-a", 4242, 1), holder_id("node-a", 4242, 2));
}

TEST(RedisProtocol, BackoffDoublesFrom100msTo5s) {
    EXPECT_EQ(backoff(0), 100ms);
    EXPECT_EQ(backoff(1), 200ms);
    EXPECT_EQ(backoff(2), 400ms);
    EXPECT_EQ(backoff(5), 3200ms);
    EXPECT_EQ(backoff(6), 5000ms);
    EXPECT_EQ(backoff(1000), 5000ms);
}

TEST(RedisProtocol, HolderTtlBoundsAndRefreshesThreeTimes) {
    EXPECT_EQ(kHolderTtl, 10s);
    EXPECT_LE(kHolderRefresh * 3, kHolderTtl);
    EXPECT_LT(kTimeout, kHolderRefresh);
}

TEST(RedisProtocol, ScriptsHaveDistinctShas) {
    std::set<std::string> shas;
    for (size_t i = 0; i < kScriptCount; ++i) {
        const std::string& sha = script_sha(static_cast<Script>(i));
        EXPECT_EQ(sha.size(), 40u);
        EXPECT_EQ(sha.find_first_not_of("0123456789abcdef"), std::string::npos);
        EXPECT_FALSE(script_source(static_cast<Script>(i)).empty());
        shas.insert(sha);
    }
    EXPECT_EQ(shas.size(), kScriptCount);
}

TEST(RedisProtocol, ArgumentsNameTheirKeysFirst) {
    EXPECT_EQ(acquire_args("user:alice", "n/1/2", 5),
              (std::vector<std::string>{"3", "proxyd:lease:user:alice", "proxyd:holders",
                                        "proxyd:held:n/1/2", "n/1/2", "5", "10000"}));
    EXPECT_EQ(
        release_args("user:alice", "n/1/2"),
        (std::vector<std::string>{"2", "proxyd:lease:user:alice", "proxyd:held:n/1/2", "n/1/2"}));
    EXPECT_EQ(take_args("dst:a|-", 0.5, 3),
              (std::vector<std::string>{"1", "proxyd:bucket:dst:a|-", "0.5", "3"}));
    EXPECT_EQ(stick_args("sticky:a:s", 7, 2500ms, 0),
              (std::vector<std::string>{"1", "proxyd:route:sticky:a:s", "7", "2500", "0"}));
    // A TTL under a millisecond still lives one.
    EXPECT_EQ(stick_args("k", 7, 10us, 3)[3], "1");
    EXPECT_EQ(resync_args("h", {{"user:a", 2}, {"user:b", 1}}),
              (std::vector<std::string>{"2", "proxyd:holders", "proxyd:held:h", "h", "10000",
                                        "proxyd:lease:user:a", "2", "proxyd:lease:user:b", "1"}));
}

TEST(RedisProtocol, RepliesAreReadByShape) {
    redisReply one = integer(1), zero = integer(0), two = integer(2), bad = error("ERR x");
    EXPECT_EQ(parse_acquire(&one), true);
    EXPECT_EQ(parse_acquire(&zero), false);
    EXPECT_FALSE(parse_acquire(&two));
    EXPECT_FALSE(parse_acquire(&bad));
    EXPECT_FALSE(parse_acquire(nullptr));

    redisReply wait = integer(250000), negative = integer(-1);
    EXPECT_EQ(parse_take(&zero), 0ns);
    EXPECT_EQ(parse_take(&wait), 250ms);
    EXPECT_FALSE(parse_take(&negative));

    redisReply value = integer(7), previous = integer(3);
    redisReply* elements[] = {&value, &previous};
    redisReply array{};
    array.type = REDIS_REPLY_ARRAY;
    array.elements = 2;
    array.element = elements;
    auto stuck = parse_stick(&array);
    ASSERT_TRUE(stuck);
    EXPECT_EQ(stuck->value, 7u);
    EXPECT_EQ(stuck->previous, 3u);
    array.elements = 1;
    EXPECT_FALSE(parse_stick(&array));
    redisReply huge = integer(1LL << 33);
    elements[0] = &huge;
    array.elements = 2;
    EXPECT_FALSE(parse_stick(&array));
}

TEST(RedisProtocol, NoscriptIsRecognised) {
    redisReply noscript = error("NOSCRIPT No matching script. Please use EVAL.");
    redisReply other = error("ERR wrong number of arguments");
    EXPECT_TRUE(is_noscript(&noscript));
    EXPECT_FALSE(is_noscript(&other));
    EXPECT_FALSE(is_noscript(nullptr));
}

}  // namespace
}  // namespace worker::redis
