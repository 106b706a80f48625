// The state the request pipeline shares with other workers, and with other
// nodes when a cluster store is set: per-user session leases, destination
// budgets (token buckets) and the sticky-route map. One asynchronous
// interface, two backends, so the pipeline's admit, route and budget stages
// never know which one they talk to:
//   - LocalSharedState: this node's shared-memory table
//     (common/shared_table.h); answers before the call returns.
//   - RedisSharedState (redis_shared_state.h): a Redis server named by
//     [cluster] redis; answers from the loop, one round trip per call.
//
// Every call takes a callback that runs exactly once, unless the returned
// ticket is cancelled first (the pipeline that asked may be destroyed while
// a call is in flight; after cancel() its callback never runs). A call
// answered before it returns runs its callback before returning, and
// returns ticket 0, which cancel() ignores.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/shared_table.h"

namespace worker {

class SharedState;

// Why a call was not granted.
enum class StateRefusal : uint8_t {
    kNone,     // granted
    kAtLimit,  // the key holds `limit` leases already
    kFull,     // the local table has no room (or a bad key)
    kBroken,   // the local table is unusable
    kDown,     // the cluster store is unreachable and on_redis_down = deny
};

// One unit of a key, held until destroyed or released: a lease in the local
// table, or one recorded by a remote backend (which it points back to, so
// that backend must outlive every lease it handed out). Move-only.
class StateLease {
  public:
    StateLease() = default;
    StateLease(common::SharedTable::Lease local) : local_(std::move(local)) {}
    StateLease(SharedState* remote, void* cookie) : remote_(remote), cookie_(cookie) {}
    StateLease(StateLease&& other) noexcept;
    StateLease& operator=(StateLease&& other) noexcept;
    StateLease(const StateLease&) = delete;
    StateLease& operator=(const StateLease&) = delete;
    ~StateLease() { release(); }

    explicit operator bool() const { return static_cast<bool>(local_) || remote_ != nullptr; }
    // Gives the unit back now; later calls do nothing.
    void release() noexcept;

  private:
    common::SharedTable::Lease local_;
    SharedState* remote_ = nullptr;  // not owned
    void* cookie_ = nullptr;         // the remote backend's record of the holding
};

struct AcquireResult {
    StateLease lease;  // empty when refused
    StateRefusal refusal = StateRefusal::kNone;
};

struct TakeResult {
    bool taken = false;
    // Not taken: the time until the next token; zero when the local table
    // had no room, or the store is down and on_redis_down = deny (`down`).
    std::chrono::nanoseconds wait{0};
    bool down = false;
};

struct StickResult {
    common::SharedTable::Stick stick;  // not stored: the caller routes by its proposal
    bool down = false;                 // the store is down and on_redis_down = deny
};

class SharedState {
  public:
    using Ticket = uint64_t;  // 0: answered already
    using AcquireCallback = std::function<void(AcquireResult&&)>;
    using TakeCallback = std::function<void(TakeResult)>;
    using StickCallback = std::function<void(StickResult)>;

    virtual ~SharedState() = default;

    // One unit of `key` unless it holds `limit` already (0: no limit).
    virtual Ticket acquire(std::string_view key, uint32_t limit, AcquireCallback callback) = 0;
    // One token of `key`'s bucket (`burst` at most, refilled at `rate`/s).
    virtual Ticket take(std::string_view key, double rate, uint32_t burst,
                        TakeCallback callback) = 0;
    // The sticky map: common::SharedTable::stick()'s semantics.
    virtual Ticket stick(std::string_view key, uint32_t proposed, std::chrono::nanoseconds ttl,
                         uint32_t avoid, StickCallback callback) = 0;
    // The callback of `ticket` will not run. A lease granted meanwhile is
    // given back.
    virtual void cancel(Ticket ticket) = 0;
    // The refusal text when a call answers down ("the cluster store (Redis
    // 127.0.0.1:6379) is unreachable").
    virtual std::string down_detail() const { return {}; }

  private:
    friend class StateLease;
    // Gives back a lease this backend handed out with `cookie`.
    virtual void release(void* cookie) noexcept { (void)cookie; }
};

// This node's shared-memory table, or nothing when it could not be mapped
// (null: users without a limit are admitted, users with one are refused as
// kBroken, buckets and the sticky map are not kept).
class LocalSharedState final : public SharedState {
  public:
    explicit LocalSharedState(common::SharedTable* table) : table_(table) {}

    Ticket acquire(std::string_view key, uint32_t limit, AcquireCallback callback) override;
    Ticket take(std::string_view key, double rate, uint32_t burst, TakeCallback callback) override;
    Ticket stick(std::string_view key, uint32_t proposed, std::chrono::nanoseconds ttl,
                 uint32_t avoid, StickCallback callback) override;
    void cancel(Ticket) override {}

    // The same calls answered as values, for a remote backend's fallback.
    AcquireResult acquire_now(std::string_view key, uint32_t limit);
    TakeResult take_now(std::string_view key, double rate, uint32_t burst);
    StickResult stick_now(std::string_view key, uint32_t proposed, std::chrono::nanoseconds ttl,
                          uint32_t avoid);

  private:
    common::SharedTable* table_;  // not owned; may be null
};

}  // namespace worker
