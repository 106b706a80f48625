// The authenticate stage of the request pipeline: who is this client? One
// per worker, shared by every protocol: HTTP's Proxy-Authorization (the
// pipeline asks it for every request on an `auth = password` listener) and
// SOCKS5's RFC 1929 username/password (the SOCKS session asks it during the
// handshake, where RFC 1929 wants the answer).
//
//   user field + password
//     -> parse the user field: NAME[-session-ID[-ttl-DURATION]]   malformed: 407 saying what
//     -> cache: NAME verified with this password lately?          yes: done, at once
//     -> PasswordVerifier: crypt on a thread, one job per client  no: 407
//        address at a time                                        yes: cached, done
//
// Why a thread pool: bcrypt at cost 10-12 takes 50-250 ms; on the event loop
// one client with wrong passwords would stall every session of the worker.
// Why the cache: a keep-alive client sends its credentials with every
// request, and only the first may cost a hash. The cache holds a salted
// SHA-256 of the password (never the password), compared in constant time,
// for a bounded number of users and a bounded time; it dies with the
// worker, so a reload (new workers, re-read users file) drops it.
//
// An unknown user costs a hash too (against another user's hash, and is
// refused whatever it says), so the answer's timing does not tell which
// names exist, as long as the users file uses one kind and cost of hash.
#pragma once

#include <event2/event.h>
#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/address.h"
#include "common/config.h"
#include "worker/password_verifier.h"
#include "worker/pipeline_types.h"

namespace worker {

// Verified credentials per account name: a salted digest of the password and
// when it stops counting: `lifetime` after its last use. Bounded; the entry
// used longest ago goes first.
class CredentialCache {
  public:
    using Digest = std::array<unsigned char, 32>;
    using Clock = std::chrono::steady_clock;

    CredentialCache(size_t capacity, Clock::duration lifetime);
    ~CredentialCache();
    CredentialCache(const CredentialCache&) = delete;
    CredentialCache& operator=(const CredentialCache&) = delete;

    // The salted digest of `password` for `name` (the salt is this cache's).
    // Computed for every request of an authenticated client, so the digest
    // algorithm is fetched once, not per call.
    Digest digest(std::string_view name, std::string_view password) const;
    // True when `name` was verified with this digest within the lifetime;
    // a hit counts as a use.
    bool holds(std::string_view name, const Digest& digest, Clock::time_point now);
    void remember(std::string_view name, const Digest& digest, Clock::time_point now);
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        Digest digest;
        Clock::time_point expires;
        std::list<std::string>::iterator age;  // position in by_use_
    };
    using Entries = std::unordered_map<std::string, Entry>;
    void forget(Entries::iterator it);

    size_t capacity_;
    Clock::duration lifetime_;
    std::array<unsigned char, 32> salt_;
    EVP_MD* sha256_ = nullptr;
    EVP_MD_CTX* context_ = nullptr;
    Entries entries_;
    std::list<std::string> by_use_;  // names, used longest ago first
};

// An authenticated client: the account and the parameters its user field
// carried (the session ID is for sticky routes).
struct AuthOutcome {
    std::optional<Account> account;  // set: authenticated
    std::optional<Refusal> refusal;  // otherwise: why not
};

class Authenticator {
  public:
    using Callback = std::function<void(AuthOutcome&&)>;

    // `config` (its users) outlives the authenticator.
    Authenticator(event_base* base, const common::Config& config);
    Authenticator(const Authenticator&) = delete;
    Authenticator& operator=(const Authenticator&) = delete;

    // Checks a user field and password presented by `client`. `done` runs
    // exactly once: before check() returns when
    // the answer needs no hash (a malformed user field, a cached
    // credential), else later from the loop. Returns a ticket for cancel(),
    // 0 when `done` has run already.
    uint64_t check(std::string_view user_field, std::string_view password,
                   const common::SocketAddress& client, Callback done);
    // `done` of `ticket` will not run.
    void cancel(uint64_t ticket);

    bool ok() const { return verifier_.ok(); }
    // Distinct credentials being hashed now.
    size_t hashes_in_flight() const { return in_flight_.size(); }

  private:
    // Checks of the same name and password in flight share one hash: a
    // client opening 50 connections at once with credentials not cached yet
    // costs one bcrypt, not 50 queued behind each other.
    struct Waiter {
        uint64_t id;
        Account account;  // its own parameters (session ID, ttl)
        std::string client_text;
        Callback done;
    };
    struct InFlight {
        std::string name;
        uint64_t verifier_ticket = 0;
        bool known_user = false;
        CredentialCache::Digest digest;
        std::vector<Waiter> waiters;
    };

    void on_verdict(const std::string& key, PasswordVerifier::Verdict verdict);

    const common::Config& config_;
    PasswordVerifier verifier_;
    CredentialCache cache_;
    std::unordered_map<std::string, InFlight> in_flight_;  // by name and digest
    std::unordered_map<uint64_t, std::string> waiting_;    // waiter id -> its key
    uint64_t next_waiter_ = 1;
};

// The refusal a failed authentication gets: 407 with `why` in its body.
Refusal auth_refusal(std::string why);

}  // namespace worker
