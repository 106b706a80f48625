#include "worker/shared_state.h"

namespace worker {

StateLease::StateLease(StateLease&& other) noexcept
    : local_(std::move(other.local_)), remote_(other.remote_), cookie_(other.cookie_) {
    other.remote_ = nullptr;
    other.cookie_ = nullptr;
}

StateLease& StateLease::operator=(StateLease&& other) noexcept {
    if (this != &other) {
        release();
        local_ = std::move(other.local_);
        remote_ = other.remote_;
        cookie_ = other.cookie_;
        other.remote_ = nullptr;
        other.cookie_ = nullptr;
    }
    return *this;
}

void StateLease::release() noexcept {
    local_.release();
    if (remote_ != nullptr) {
        SharedState* remote = remote_;
        remote_ = nullptr;
        remote->release(cookie_);
    }
}

AcquireResult LocalSharedState::acquire_now(std::string_view key, uint32_t limit) {
    AcquireResult result;
    if (table_ == nullptr) {
        // Nothing to count with: only a user without a limit gets in.
        if (limit != 0) result.refusal = StateRefusal::kBroken;
        return result;
    }
    common::SharedTable::Lease lease = table_->acquire(key, limit);
    switch (lease.refusal()) {
        case common::SharedTable::Refusal::kNone:
            result.lease = StateLease(std::move(lease));
            break;
        case common::SharedTable::Refusal::kAtLimit:
            result.refusal = StateRefusal::kAtLimit;
            break;
        case common::SharedTable::Refusal::kBroken:
            result.refusal = StateRefusal::kBroken;
            break;
        case common::SharedTable::Refusal::kTableFull:
        case common::SharedTable::Refusal::kBadKey:
            result.refusal = StateRefusal::kFull;
            break;
    }
    return result;
}

TakeResult LocalSharedState::take_now(std::string_view key, double rate, uint32_t burst) {
    TakeResult result;
    if (table_ == nullptr) {
        result.taken = true;  // no table, no budget (as before the interface)
        return result;
    }
    result.taken = table_->take(key, rate, burst, &result.wait);
    return result;
}

StickResult LocalSharedState::stick_now(std::string_view key, uint32_t proposed,
                                        std::chrono::nanoseconds ttl, uint32_t avoid) {
    StickResult result;
    if (table_ == nullptr) {
        result.stick.value = proposed;
        return result;
    }
    result.stick = table_->stick(key, proposed, ttl, avoid);
    return result;
}

SharedState::Ticket LocalSharedState::acquire(std::string_view key, uint32_t limit,
                                              AcquireCallback callback) {
    callback(acquire_now(key, limit));
    return 0;
}

SharedState::Ticket LocalSharedState::take(std::string_view key, double rate, uint32_t burst,
                                           TakeCallback callback) {
    callback(take_now(key, rate, burst));
    return 0;
}

SharedState::Ticket LocalSharedState::stick(std::string_view key, uint32_t proposed,
                                            std::chrono::nanoseconds ttl, uint32_t avoid,
                                            StickCallback callback) {
    callback(stick_now(key, proposed, ttl, avoid));
    return 0;
}

}  // namespace worker
