// What proxyd keeps in Redis and how it talks to it, as pure functions:
// the key names, the Lua scripts, the reconnect back-off and the reading of
// the scripts' replies. The connection itself is redis_shared_state.h.
//
// The data model (one Redis server, not Redis Cluster: the scripts touch
// keys they compute, which Redis Cluster would refuse):
//   proxyd:holders            sorted set: holder -> expiry (ms, Redis TIME)
//   proxyd:lease:KEY          hash: holder -> units of KEY it holds
//   proxyd:held:HOLDER        set: the lease hashes HOLDER has a field in
//   proxyd:bucket:KEY         hash: tokens, ts (µs): a destination budget
//   proxyd:route:KEY          string: the sticky value, PEXPIRE = its TTL
// A holder is one worker process ("node/pid/nonce"). Its units count only
// while its expiry is in the future; each worker pushes it kHolderTtl ahead
// every kHolderTtl / 3, so the leases of a node (or a worker) that dies
// stop counting within kHolderTtl, and the next acquire on the key deletes
// them. Expiries are read from Redis's clock (TIME inside the script), so
// the nodes' clocks do not matter.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace worker::redis {

// A dead holder's leases stop counting within this.
constexpr std::chrono::milliseconds kHolderTtl{10000};
// How often a worker pushes its expiry ahead: three chances before it lapses.
constexpr std::chrono::milliseconds kHolderRefresh{kHolderTtl / 3};
// The longest a connect or a command may take before the connection counts
// as lost. Above a loaded machine's scheduling hiccups, below what a client
// would notice as a hang.
constexpr std::chrono::milliseconds kTimeout{500};
// Reconnect back-off: doubling from the first to the last.
constexpr std::chrono::milliseconds kBackoffFirst{100};
constexpr std::chrono::milliseconds kBackoffLast{5000};

// The delay before reconnect attempt `attempt` (0 for the first).
std::chrono::milliseconds backoff(unsigned attempt);

std::string holders_key();
std::string lease_key(std::string_view key);
std::string held_key(std::string_view holder);
std::string bucket_key(std::string_view key);
std::string route_key(std::string_view key);

// "node/pid/nonce": unique per worker process, even when a pid is reused.
std::string holder_id(std::string_view node, long pid, uint64_t nonce);

enum class Script : uint8_t { kAcquire, kRelease, kTake, kStick, kRefresh, kResync, kDrop };
constexpr size_t kScriptCount = 7;

// The Lua source of `script` and its SHA-1 (hex), the EVALSHA name.
const std::string& script_source(Script script);
const std::string& script_sha(Script script);

// The arguments after EVALSHA/EVAL SHA|SOURCE: numkeys, keys, args.
std::vector<std::string> acquire_args(std::string_view key, std::string_view holder,
                                      uint32_t limit);
std::vector<std::string> release_args(std::string_view key, std::string_view holder);
std::vector<std::string> take_args(std::string_view key, double rate, uint32_t burst);
std::vector<std::string> stick_args(std::string_view key, uint32_t proposed,
                                    std::chrono::nanoseconds ttl, uint32_t avoid);
std::vector<std::string> refresh_args(std::string_view holder);
struct Holding {
    std::string key;  // the shared table's key ("user:alice")
    uint32_t count = 0;
};
std::vector<std::string> resync_args(std::string_view holder, const std::vector<Holding>& held);
std::vector<std::string> drop_args(std::string_view holder);

// Replies. nullopt: not the shape the script returns (an error reply, a
// protocol surprise): the call failed.
std::optional<bool> parse_acquire(const redisReply* reply);
// Taken (0), or the wait until the next token.
std::optional<std::chrono::nanoseconds> parse_take(const redisReply* reply);
struct Stuck {
    uint32_t value = 0;
    uint32_t previous = 0;
};
std::optional<Stuck> parse_stick(const redisReply* reply);
// The refresh: whether the holder was still live (false: it had lapsed, so
// its holdings must be written again).
std::optional<bool> parse_refresh(const redisReply* reply);
// An error reply saying the script is not in the server's cache.
bool is_noscript(const redisReply* reply);

}  // namespace worker::redis
