#include "worker/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/credentials.h"
#include "common/log.h"
#include "worker/refusal.h"

namespace worker {

namespace {

// Per worker. Enough for every active user of a large users file to send
// requests without a hash; an evicted user pays one hash again.
constexpr size_t kCacheCapacity = 4096;
// A verified credential counts this long after its verification (use does
// not extend it). The users file only changes with a reload, which replaces
// the workers, so this bounds how long a digest stays in memory.
constexpr std::chrono::minutes kCacheLifetime{10};

// A client waits for its check at most header_timeout, like for its
// request head: the check is part of reading the request.
PasswordVerifier::Limits verifier_limits(const common::Config& config) {
    PasswordVerifier::Limits limits;
    limits.threads = 2;
    limits.max_wait = config.limits.header_timeout;
    return limits;
}

}  // namespace

Refusal auth_refusal(std::string why) {
    return make_refusal(RefusalCause::kAuthRequired, std::move(why));
}

// ---------------------------------------------------------------- cache

CredentialCache::CredentialCache(size_t capacity, Clock::duration lifetime)
    : capacity_(capacity),
      lifetime_(lifetime),
      sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
      context_(EVP_MD_CTX_new()) {
    // Without randomness the digests would still be salted per name; the
    // salt only keeps them from matching a digest computed elsewhere.
    if (RAND_bytes(salt_.data(), static_cast<int>(salt_.size())) != 1) salt_.fill(0);
}

CredentialCache::~CredentialCache() {
    EVP_MD_CTX_free(context_);
    EVP_MD_free(sha256_);
}

// Without the algorithm (out of memory) every digest is all zeros and
// unique to nothing: holds() then never matches a remembered one, since
// remember() is skipped for it.
CredentialCache::Digest CredentialCache::digest(std::string_view name,
                                                std::string_view password) const {
    Digest out{};
    unsigned int length = 0;
    bool ok = sha256_ != nullptr && context_ != nullptr &&
              EVP_DigestInit_ex2(context_, sha256_, nullptr) == 1 &&
              EVP_DigestUpdate(context_, salt_.data(), salt_.size()) == 1 &&
              EVP_DigestUpdate(context_, name.data(), name.size()) == 1 &&
              EVP_DigestUpdate(context_, "", 1) == 1 &&
              EVP_DigestUpdate(context_, password.data(), password.size()) == 1 &&
              EVP_DigestFinal_ex(context_, out.data(), &length) == 1 && length == out.size();
    if (!ok) out.fill(0);
    return out;
}

bool CredentialCache::holds(std::string_view name, const Digest& digest, Clock::time_point now) {
    auto it = entries_.find(std::string(name));
    if (it == entries_.end()) return false;
    Entry& entry = it->second;
    if (entry.expires <= now) {
        forget(it);
        return false;
    }
    if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) != 0) return false;
    entry.expires = now + lifetime_;
    by_use_.splice(by_use_.end(), by_use_, entry.age);
    return true;
}

void CredentialCache::remember(std::string_view name, const Digest& digest, Clock::time_point now) {
    auto it = entries_.find(std::string(name));
    if (it != entries_.end()) forget(it);
    if (capacity_ == 0 || digest == Digest{}) return;
    while (entries_.size() >= capacity_) forget(entries_.find(by_use_.front()));
    by_use_.emplace_back(name);
    entries_.emplace(std::string(name), Entry{digest, now + lifetime_, std::prev(by_use_.end())});
}

void CredentialCache::forget(Entries::iterator it) {
    by_use_.erase(it->second.age);
    entries_.erase(it);
}

// ---------------------------------------------------------------- authenticator

Authenticator::Authenticator(event_base* base, const common::Config& config)
    : config_(config),
      verifier_(base, verifier_limits(config)),
      cache_(kCacheCapacity, kCacheLifetime) {}

uint64_t Authenticator::check(std::string_view user_field, std::string_view password,
                              const common::SocketAddress& client, Callback done) {
    std::string error;
    auto field = common::accounts::parse_user_field(user_field, error);
    if (!field) {
        LOG_WARN("authentication failed from %s: %s", client.to_string().c_str(), error.c_str());
        done(AuthOutcome{std::nullopt, auth_refusal(error)});
        return 0;
    }
    Account account;
    account.name = std::string(field->name);
    account.session_id = std::string(field->session_id);
    account.ttl = field->ttl;
    const auto& users = config_.auth.users;
    auto user = users.find(account.name);
    bool known = user != users.end();
    CredentialCache::Digest digest = cache_.digest(account.name, password);
    if (known) {
        account.max_sessions = user->second.max_sessions;
        if (cache_.holds(account.name, digest, CredentialCache::Clock::now())) {
            done(AuthOutcome{std::move(account), std::nullopt});
            return 0;
        }
    }
    if (users.empty()) {
        done(AuthOutcome{std::nullopt, auth_refusal("wrong user name or password")});
        return 0;
    }
    std::string key = account.name;
    key.push_back('\0');
    key.append(reinterpret_cast<const char*>(digest.data()), digest.size());
    auto [flight, fresh] = in_flight_.try_emplace(key);
    if (fresh) {
        flight->second.name = account.name;
        flight->second.known_user = known;
        flight->second.digest = digest;
        // An unknown name is checked against another user's hash, and
        // refused whatever the verdict: it takes as long as a known one.
        const std::string& hash = known ? user->second.hash : users.begin()->second.hash;
        flight->second.verifier_ticket = verifier_.verify(
            client.host_string(), hash, std::string(password),
            [this, key](PasswordVerifier::Verdict verdict) { on_verdict(key, verdict); });
        if (flight->second.verifier_ticket == 0) {  // out of memory: no answer would come
            in_flight_.erase(flight);
            done(AuthOutcome{std::nullopt,
                             make_refusal(RefusalCause::kInternal, "cannot verify passwords")});
            return 0;
        }
    }
    uint64_t id = next_waiter_++;
    flight->second.waiters.push_back(
        Waiter{id, std::move(account), client.to_string(), std::move(done)});
    waiting_.emplace(id, std::move(key));
    return id;
}

// Every check waiting on this hash gets the verdict. The entry leaves the
// map first: a callback may start another check of the same credentials,
// or cancel a waiter not answered yet (it is then skipped).
void Authenticator::on_verdict(const std::string& key, PasswordVerifier::Verdict verdict) {
    auto found = in_flight_.find(key);
    if (found == in_flight_.end()) return;
    InFlight flight = std::move(found->second);
    in_flight_.erase(found);

    using Verdict = PasswordVerifier::Verdict;
    const bool matched = verdict == Verdict::kMatch && flight.known_user;
    if (matched) cache_.remember(flight.name, flight.digest, CredentialCache::Clock::now());
    std::optional<Refusal> refusal;
    if (verdict == Verdict::kBusy || verdict == Verdict::kTimeout) {
        refusal = make_refusal(RefusalCause::kAuthBusy,
                               verdict == Verdict::kBusy
                                   ? "too many authentications pending from this client"
                                   : "the password check waited too long (the proxy is busy)");
    } else if (!matched) {
        refusal = auth_refusal("wrong user name or password");
    }
    const char* why = verdict == Verdict::kError ? "verification failed"
                      : flight.known_user        ? "wrong password"
                                                 : "no such user";
    for (Waiter& waiter : flight.waiters) {
        if (waiting_.erase(waiter.id) == 0) continue;  // cancelled by an earlier callback
        if (refusal) {
            LOG_WARN("authentication failed for user \"%s\" from %s: %s",
                     waiter.account.name.c_str(), waiter.client_text.c_str(),
                     refusal->cause == RefusalCause::kAuthBusy ? refusal->detail.c_str() : why);
            waiter.done(AuthOutcome{std::nullopt, refusal});
        } else {
            waiter.done(AuthOutcome{std::move(waiter.account), std::nullopt});
        }
    }
}

// The last waiter gone: the hash is not needed any more.
void Authenticator::cancel(uint64_t ticket) {
    auto waiting = waiting_.find(ticket);
    if (waiting == waiting_.end()) return;
    std::string key = std::move(waiting->second);
    waiting_.erase(waiting);
    auto flight = in_flight_.find(key);
    if (flight == in_flight_.end()) return;
    auto& waiters = flight->second.waiters;
    std::erase_if(waiters, [ticket](const Waiter& w) { return w.id == ticket; });
    if (waiters.empty()) {
        verifier_.cancel(flight->second.verifier_ticket);
        in_flight_.erase(flight);
    }
}

}  // namespace worker
