#include "worker/redis_protocol.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>

namespace worker::redis {

namespace {

// Every script reads the time from Redis (TIME): one clock for all nodes.
// Redis 7 replicates a script's effects, not the script, so TIME is allowed
// before writes.
constexpr const char* kNowMs =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

// KEYS: lease hash, holders, this holder's held set. ARGV: holder, limit,
// holder TTL (ms). Sums the live holders' units (deleting dead holders'
// fields on the way), compares with the limit and takes one: 1 taken, 0 at
// the limit.
const std::string kAcquire = std::string(kNowMs) + R"lua(
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local limit = tonumber(ARGV[2])
if limit > 0 then
  local total = 0
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local expiry = redis.call('ZSCORE', KEYS[2], fields[i])
    if expiry and tonumber(expiry) > now then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
  if total >= limit then return 0 end
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[3], KEYS[1])
return 1
)lua";

// KEYS: lease hash, held set. ARGV: holder. Gives one unit back.
const std::string kRelease = R"lua(
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], KEYS[1])
end
return n
)lua";

// KEYS: bucket. ARGV: rate (tokens/s), burst. A token bucket refilled from
// Redis's clock in µs; idle buckets expire once they would be full again.
// 0: taken; else the µs until the next token.
const std::string kTake = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000000) end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
)lua";

// KEYS: route key. ARGV: proposed, TTL (ms), avoid. The stored value unless
// it is `avoid`, else the proposal stored: {value, previous replaced}.
const std::string kStick = R"lua(
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(v), 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if v then return {tonumber(ARGV[1]), tonumber(v)} end
return {tonumber(ARGV[1]), 0}
)lua";

// KEYS: holders. ARGV: holder, TTL (ms). Pushes the holder's expiry ahead
// and deletes the holdings of every holder whose expiry has passed.
// 1: the holder was live; 0: it had lapsed (its holdings may be gone).
const std::string kRefresh = std::string(kNowMs) + R"lua(
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
local live = expiry and tonumber(expiry) > now
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, h in ipairs(dead) do
  local held = 'proxyd:held:' .. h
  for _, k in ipairs(redis.call('SMEMBERS', held)) do redis.call('HDEL', k, h) end
  redis.call('DEL', held)
  redis.call('ZREM', KEYS[1], h)
end
if live then return 1 end
return 0
)lua";

// KEYS: holders, held set. ARGV: holder, TTL (ms), then pairs of lease
// hash and units. Rewrites what the holder holds after a reconnect: a
// release lost while Redis was away must not count forever.
const std::string kResync = std::string(kNowMs) + R"lua(
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('HDEL', k, ARGV[1]) end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', ARGV[i], ARGV[1], ARGV[i + 1])
  redis.call('SADD', KEYS[2], ARGV[i])
end
return 1
)lua";

// KEYS: holders, held set. ARGV: holder. A worker exiting gives back all.
const std::string kDrop = R"lua(
for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('HDEL', k, ARGV[1]) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
)lua";

std::string sha1_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        hex.push_back(kHex[digest[i] >> 4]);
        hex.push_back(kHex[digest[i] & 15]);
    }
    return hex;
}

const std::array<const std::string*, kScriptCount> kSources = {
    &kAcquire, &kRelease, &kTake, &kStick, &kRefresh, &kResync, &kDrop};

std::string ms_string(std::chrono::milliseconds ms) {
    return std::to_string(std::max<int64_t>(1, ms.count()));
}

}  // namespace

std::chrono::milliseconds backoff(unsigned attempt) {
    std::chrono::milliseconds delay = kBackoffFirst;
    for (unsigned i = 0; i < attempt && delay < kBackoffLast; ++i) delay *= 2;
    return std::min(delay, kBackoffLast);
}

std::string holders_key() {
    return "proxyd:holders";
}
std::string lease_key(std::string_view key) {
    return "proxyd:lease:" + std::string(key);
}
std::string held_key(std::string_view holder) {
    return "proxyd:held:" + std::string(holder);
}
std::string bucket_key(std::string_view key) {
    return "proxyd:bucket:" + std::string(key);
}
std::string route_key(std::string_view key) {
    return "proxyd:route:" + std::string(key);
}

std::string holder_id(std::string_view node, long pid, uint64_t nonce) {
    char tail[40];
    snprintf(tail, sizeof(tail), "/%ld/%016" PRIx64, pid, nonce);
    return std::string(node) + tail;
}

const std::string& script_source(Script script) {
    return *kSources[static_cast<size_t>(script)];
}

const std::string& script_sha(Script script) {
    static const std::array<std::string, kScriptCount> kShas = [] {
        std::array<std::string, kScriptCount> shas;
        for (size_t i = 0; i < kScriptCount; ++i) shas[i] = sha1_hex(*kSources[i]);
        return shas;
    }();
    return kShas[static_cast<size_t>(script)];
}

std::vector<std::string> acquire_args(std::string_view key, std::string_view holder,
                                      uint32_t limit) {
    return {"3",
            lease_key(key),
            holders_key(),
            held_key(holder),
            std::string(holder),
            std::to_string(limit),
            ms_string(kHolderTtl)};
}

std::vector<std::string> release_args(std::string_view key, std::string_view holder) {
    return {"2", lease_key(key), held_key(holder), std::string(holder)};
}

std::vector<std::string> take_args(std::string_view key, double rate, uint32_t burst) {
    char rate_text[40];
    snprintf(rate_text, sizeof(rate_text), "%.17g", rate);
    return {"1", bucket_key(key), rate_text, std::to_string(burst)};
}

std::vector<std::string> stick_args(std::string_view key, uint32_t proposed,
                                    std::chrono::nanoseconds ttl, uint32_t avoid) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(ttl);
    return {"1", route_key(key), std::to_string(proposed), ms_string(ms), std::to_string(avoid)};
}

std::vector<std::string> refresh_args(std::string_view holder) {
    return {"1", holders_key(), std::string(holder), ms_string(kHolderTtl)};
}

std::vector<std::string> resync_args(std::string_view holder, const std::vector<Holding>& held) {
    std::vector<std::string> args = {"2", holders_key(), held_key(holder), std::string(holder),
                                     ms_string(kHolderTtl)};
    for (const Holding& holding : held) {
        args.push_back(lease_key(holding.key));
        args.push_back(std::to_string(holding.count));
    }
    return args;
}

std::vector<std::string> drop_args(std::string_view holder) {
    return {"2", holders_key(), held_key(holder), std::string(holder)};
}

std::optional<bool> parse_acquire(const redisReply* reply) {
    if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) return std::nullopt;
    if (reply->integer != 0 && reply->integer != 1) return std::nullopt;
    return reply->integer == 1;
}

std::optional<std::chrono::nanoseconds> parse_take(const redisReply* reply) {
    if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER || reply->integer < 0) {
        return std::nullopt;
    }
    return std::chrono::microseconds(reply->integer);
}

std::optional<Stuck> parse_stick(const redisReply* reply) {
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        return std::nullopt;
    }
    const redisReply* value = reply->element[0];
    const redisReply* previous = reply->element[1];
    auto in_range = [](const redisReply* r) {
        return r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 &&
               r->integer <= UINT32_MAX;
    };
    if (!in_range(value) || !in_range(previous)) return std::nullopt;
    return Stuck{static_cast<uint32_t>(value->integer), static_cast<uint32_t>(previous->integer)};
}

std::optional<bool> parse_refresh(const redisReply* reply) {
    return parse_acquire(reply);  // the same shape: 1 or 0
}

bool is_noscript(const redisReply* reply) {
    return reply != nullptr && reply->type == REDIS_REPLY_ERROR && reply->str != nullptr &&
           std::string_view(reply->str, reply->len).substr(0, 8) == "NOSCRIPT";
}

}  // namespace worker::redis
