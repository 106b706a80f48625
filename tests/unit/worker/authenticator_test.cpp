// Unit tests for worker/authenticator (the credential cache, and checks on a
// real libevent loop with real hashes verified by libxcrypt on the
// verifier's threads) and the admit stage of worker/request_pipeline.
#include "worker/authenticator.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/libevent_handles.h"
#include "common/shared_table.h"
#include "worker/request_pipeline.h"

namespace worker {
namespace {

using namespace std::chrono_literals;

// `htpasswd -nbB -C 4 alice secret` and `mkpasswd -m sha512crypt hunter2`.
constexpr const char* kAliceHash = "$2y$04$rxlxlYgfPllmY1UMf.B94./kLTIMKyryhFPINttAdHkEZPonZd5zW";
constexpr const char* kBobHash =
    "$6$pLwPxCPKLRzFBDl7$4OPyuCHmEpoluP8/Hh45aokt1qrt8BH5gKtAXDS3zu/"
    "lhni.sDpPqCKPVncM5KB3RdZ9oMCeW3sbWBEVNZITh/";

TEST(CredentialCache, HoldsWhatWasVerifiedUntilUnusedForItsLifetime) {
    CredentialCache cache(4, 10min);
    auto now = CredentialCache::Clock::now();
    auto right = cache.digest("alice", "secret");
    EXPECT_EQ(right, cache.digest("alice", "secret"));
    EXPECT_FALSE(cache.holds("alice", right, now));
    cache.remember("alice", right, now);
    EXPECT_TRUE(cache.holds("alice", right, now + 9min));
    EXPECT_FALSE(cache.holds("alice", cache.digest("alice", "Secret"), now));
    // The digest is per name: bob with alice's password is another digest.
    EXPECT_FALSE(cache.holds("bob", cache.digest("alice", "secret"), now));
    // The use at +9 min renewed it: it lasts until +19 min unused.
    EXPECT_TRUE(cache.holds("alice", right, now + 18min));
    EXPECT_FALSE(cache.holds("alice", right, now + 29min));  // expired, and dropped
    EXPECT_EQ(cache.size(), 0u);
}

TEST(CredentialCache, IsBoundedLeastRecentlyUsedFirst) {
    CredentialCache cache(2, 10min);
    auto now = CredentialCache::Clock::now();
    for (const char* name : {"a", "b", "c"}) cache.remember(name, cache.digest(name, "pw"), now);
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_FALSE(cache.holds("a", cache.digest("a", "pw"), now));
    EXPECT_TRUE(cache.holds("c", cache.digest("c", "pw"), now));
    EXPECT_TRUE(cache.holds("b", cache.digest("b", "pw"), now));  // b used last
    cache.remember("d", cache.digest("d", "pw"), now);
    EXPECT_TRUE(cache.holds("b", cache.digest("b", "pw"), now));
    EXPECT_FALSE(cache.holds("c", cache.digest("c", "pw"), now));
    // Remembering a name again replaces its entry instead of adding one.
    cache.remember("b", cache.digest("b", "pw2"), now);
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_FALSE(cache.holds("b", cache.digest("b", "pw"), now));
}

class AuthenticatorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        base_.reset(event_base_new());
        config_.auth.users.emplace("alice", common::UserAccount{kAliceHash, 3});
        config_.auth.users.emplace("bob", common::UserAccount{kBobHash, 0});
        authenticator_.emplace(base_.get(), config_);
        ASSERT_TRUE(authenticator_->ok());
        client_ = *common::SocketAddress::from_numeric("127.0.0.1", 40000);
    }

    struct Checked {
        std::optional<AuthOutcome> outcome;
        bool synchronous = false;
    };

    // Runs one check to its answer (or 5 s).
    Checked check(std::string_view user, std::string_view password) {
        Checked checked;
        authenticator_->check(user, password, client_,
                              [&](AuthOutcome&& outcome) { checked.outcome = std::move(outcome); });
        checked.synchronous = checked.outcome.has_value();
        timeval limit{5, 0};
        event_base_loopexit(base_.get(), &limit);
        while (!checked.outcome && event_base_loop(base_.get(), EVLOOP_ONCE) == 0) {
        }
        return checked;
    }

    common::EventBasePtr base_;
    common::Config config_;
    std::optional<Authenticator> authenticator_;
    common::SocketAddress client_;
};

TEST_F(AuthenticatorTest, RightPasswordIsHashedOnceThenCached) {
    Checked first = check("alice", "secret");
    ASSERT_TRUE(first.outcome && first.outcome->account);
    EXPECT_FALSE(first.synchronous);  // bcrypt ran on a thread
    EXPECT_EQ(first.outcome->account->name, "alice");
    EXPECT_EQ(first.outcome->account->max_sessions, 3u);

    Checked again = check("alice", "secret");
    ASSERT_TRUE(again.outcome && again.outcome->account);
    EXPECT_TRUE(again.synchronous);  // the cache answered

    Checked sha = check("bob", "hunter2");
    ASSERT_TRUE(sha.outcome && sha.outcome->account);
    EXPECT_EQ(sha.outcome->account->max_sessions, 0u);
}

TEST_F(AuthenticatorTest, WrongPasswordAndUnknownUserReadTheSame) {
    check("alice", "secret");  // cached: a wrong password must still be hashed
    for (auto [user, password] : {std::pair{"alice", "Secret"}, std::pair{"mallory", "secret"}}) {
        Checked refused = check(user, password);
        ASSERT_TRUE(refused.outcome);
        EXPECT_FALSE(refused.synchronous) << user;  // an unknown name costs a hash too
        EXPECT_FALSE(refused.outcome->account);
        ASSERT_TRUE(refused.outcome->refusal);
        EXPECT_EQ(refused.outcome->refusal->http_status, 407);
        EXPECT_EQ(refused.outcome->refusal->cause, RefusalCause::kAuthRequired);
        EXPECT_EQ(refused.outcome->refusal->detail, "wrong user name or password");
    }
}

TEST_F(AuthenticatorTest, UserFieldParametersAuthenticateAsTheName) {
    Checked sticky = check("alice-session-job_42-ttl-10m", "secret");
    ASSERT_TRUE(sticky.outcome && sticky.outcome->account);
    EXPECT_EQ(sticky.outcome->account->name, "alice");
    EXPECT_EQ(sticky.outcome->account->session_id, "job_42");
    EXPECT_EQ(sticky.outcome->account->ttl, 600s);

    // Malformed parameters are refused at once, saying what is wrong.
    Checked malformed = check("alice-ttl-10m", "secret");
    ASSERT_TRUE(malformed.outcome && malformed.outcome->refusal);
    EXPECT_TRUE(malformed.synchronous);
    EXPECT_EQ(malformed.outcome->refusal->http_status, 407);
    EXPECT_NE(malformed.outcome->refusal->detail.find("ttl"), std::string::npos);
}

// Many requests with credentials not cached yet share one hash.
TEST_F(AuthenticatorTest, SameCredentialsInFlightShareOneHash) {
    std::vector<std::optional<AuthOutcome>> outcomes(20);
    for (size_t i = 0; i < outcomes.size(); ++i) {
        std::string user = "alice-session-s" + std::to_string(i);
        authenticator_->check(user, "secret", client_, [&outcomes, i](AuthOutcome&& outcome) {
            outcomes[i] = std::move(outcome);
        });
    }
    std::optional<AuthOutcome> wrong;
    authenticator_->check("alice", "guess", client_,
                          [&](AuthOutcome&& outcome) { wrong = std::move(outcome); });
    EXPECT_EQ(authenticator_->hashes_in_flight(), 2u);  // the right password, and the guess
    timeval limit{5, 0};
    event_base_loopexit(base_.get(), &limit);
    auto all = [&] {
        return wrong && std::all_of(outcomes.begin(), outcomes.end(),
                                    [](const auto& o) { return o.has_value(); });
    };
    while (!all() && event_base_loop(base_.get(), EVLOOP_ONCE) == 0) {
    }
    ASSERT_TRUE(all());
    for (size_t i = 0; i < outcomes.size(); ++i) {
        ASSERT_TRUE(outcomes[i]->account) << i;
        EXPECT_EQ(outcomes[i]->account->session_id, "s" + std::to_string(i));  // each its own
    }
    EXPECT_TRUE(wrong->refusal);
    EXPECT_EQ(authenticator_->hashes_in_flight(), 0u);
}

// A check sharing a hash can still be cancelled while the verdict is being
// handed out: by an earlier waiter's callback (a session it closes).
TEST_F(AuthenticatorTest, WaiterCancelledDuringDeliveryIsSkipped) {
    uint64_t second = 0;
    bool first_called = false, second_called = false, third_called = false;
    authenticator_->check("alice", "secret", client_, [&](AuthOutcome&&) {
        first_called = true;
        authenticator_->cancel(second);
    });
    second = authenticator_->check("alice", "secret", client_,
                                   [&](AuthOutcome&&) { second_called = true; });
    authenticator_->check("alice", "secret", client_, [&](AuthOutcome&&) { third_called = true; });
    EXPECT_EQ(authenticator_->hashes_in_flight(), 1u);
    timeval limit{5, 0};
    event_base_loopexit(base_.get(), &limit);
    while (!third_called && event_base_loop(base_.get(), EVLOOP_ONCE) == 0) {
    }
    EXPECT_TRUE(first_called);
    EXPECT_FALSE(second_called);
    EXPECT_TRUE(third_called);
}

TEST_F(AuthenticatorTest, CancelledCheckNeverAnswers) {
    bool called = false;
    uint64_t ticket =
        authenticator_->check("alice", "wrong", client_, [&](AuthOutcome&&) { called = true; });
    ASSERT_NE(ticket, 0u);
    authenticator_->cancel(ticket);
    EXPECT_EQ(authenticator_->hashes_in_flight(), 0u);  // its hash is not needed any more
    timeval wait{0, 300000};
    event_base_loopexit(base_.get(), &wait);
    event_base_dispatch(base_.get());
    EXPECT_FALSE(called);
}

// ---- admit ------------------------------------------------------------------

// The pipeline's admission step on this node's table: the local backend's
// answer to the user key's lease, applied by admit().
std::optional<Refusal> admit_locally(common::SharedTable* table, const Account& account,
                                     Admission& admission) {
    LocalSharedState state(table);
    admission.account = account;
    std::optional<Refusal> refusal;
    bool answered = false;
    state.acquire(common::user_lease_key(account.name), lease_limit(account),
                  [&](AcquireResult&& result) {
                      answered = true;
                      refusal = admit(std::move(result), admission, state);
                  });
    EXPECT_TRUE(answered) << "the local table answers before acquire() returns";
    return refusal;
}

TEST(Admit, HoldsOneLeasePerSessionUpToTheLimit) {
    auto table = common::SharedTable::create(common::SharedTable::Capacity{64, 64, 8});
    ASSERT_TRUE(table);
    Account alice{"alice", "", 0s, 2};
    Admission first, second, third;
    EXPECT_FALSE(admit_locally(table.get(), alice, first));
    EXPECT_FALSE(admit_locally(table.get(), alice, second));
    EXPECT_EQ(table->count(common::user_lease_key("alice")), 2u);
    auto refusal = admit_locally(table.get(), alice, third);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->cause, RefusalCause::kUserLimit);
    EXPECT_EQ(refusal->http_status, 429);
    EXPECT_EQ(refusal->socks_reply, 0x02);
    EXPECT_STREQ(refusal->error_type, "http_request_denied");
    EXPECT_NE(refusal->detail.find("max_sessions"), std::string::npos);
    ASSERT_TRUE(first.account);
    EXPECT_EQ(first.account->name, "alice");

    first = Admission();  // a session ends: its unit is back
    EXPECT_EQ(table->count(common::user_lease_key("alice")), 1u);
    EXPECT_FALSE(admit_locally(table.get(), alice, third));
}

TEST(Admit, UnlimitedUsersAreCountedToo) {
    auto table = common::SharedTable::create(common::SharedTable::Capacity{64, 64, 8});
    ASSERT_TRUE(table);
    Account bob{"bob", "", 0s, 0};
    std::vector<Admission> held(5);
    for (Admission& a : held) EXPECT_FALSE(admit_locally(table.get(), bob, a));
    EXPECT_EQ(table->count(common::user_lease_key("bob")), 5u);
}

// A full table fails closed: the session is refused, never let through
// uncounted.
TEST(Admit, FullTableRefusesTheSession) {
    auto table = common::SharedTable::create(common::SharedTable::Capacity{1, 1, 1});
    ASSERT_TRUE(table);
    Admission alice, bob;
    EXPECT_FALSE(admit_locally(table.get(), Account{"alice", "", 0s, 0}, alice));
    auto refusal = admit_locally(table.get(), Account{"bob", "", 0s, 0}, bob);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->http_status, 500);
    EXPECT_EQ(refusal->detail, "the session table is full");
    EXPECT_EQ(bob.held(), 0u);
}

TEST(Admit, WithoutATableOnlyUnlimitedUsersPass) {
    Admission admission;
    EXPECT_FALSE(admit_locally(nullptr, Account{"bob", "", 0s, 0}, admission));
    auto refusal = admit_locally(nullptr, Account{"alice", "", 0s, 2}, admission);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->http_status, 500);
    EXPECT_EQ(refusal->detail, "the session table is unusable");
}

}  // namespace
}  // namespace worker
