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
    : capacity_(capacity), lifetime_(lifetime) {
    // Without randomness the digests would still be salted per name; the
    // salt only keeps them from matching a digest computed elsewhere.
    if (RAND_bytes(salt_.data(), static_cast<int>(salt_.size())) != 1) salt_.fill(0);
}

CredentialCache::Digest CredentialCache::digest(std::string_view name,
                                                std::string_view password) const {
    std::string input(reinterpret_cast<const char*>(salt_.data()), salt_.size());
    input.append(name).push_back('\0');
    input.append(password);
    Digest out;
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), out.data());
    OPENSSL_cleanse(input.data(), input.size());
    return out;
}

bool CredentialCache::holds(std::string_view name, const Digest& digest, Clock::time_point now) {
    auto it = entries_.find(std::string(name));
    if (it == entries_.end()) return false;
    if (it->second.expires <= now) {
        forget(it);
        return false;
    }
    return CRYPTO_memcmp(it->second.digest.data(), digest.data(), digest.size()) == 0;
}

void CredentialCache::remember(std::string_view name, const Digest& digest, Clock::time_point now) {
    auto it = entries_.find(std::string(name));
    if (it != entries_.end()) forget(it);
    if (capacity_ == 0) return;
    while (entries_.size() >= capacity_) forget(entries_.find(oldest_.front()));
    oldest_.emplace_back(name);
    entries_.emplace(std::string(name), Entry{digest, now + lifetime_, std::prev(oldest_.end())});
}

void CredentialCache::forget(std::unordered_map<std::string, Entry>::iterator it) {
    oldest_.erase(it->second.age);
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
    // An unknown name is checked against another user's hash, and refused
    // whatever the verdict: it takes as long as a known one.
    const std::string& hash = known ? user->second.hash : users.begin()->second.hash;
    std::string text = client.to_string();
    return verifier_.verify(
        client.host_string(), hash, std::string(password),
        [this, account = std::move(account), known, digest, text = std::move(text),
         done = std::move(done)](PasswordVerifier::Verdict verdict) {
            on_verdict(verdict, account, known, digest, text, done);
        });
}

void Authenticator::on_verdict(PasswordVerifier::Verdict verdict, Account account, bool known_user,
                               const CredentialCache::Digest& digest,
                               const std::string& client_text, const Callback& done) {
    using Verdict = PasswordVerifier::Verdict;
    if (verdict == Verdict::kMatch && known_user) {
        cache_.remember(account.name, digest, CredentialCache::Clock::now());
        done(AuthOutcome{std::move(account), std::nullopt});
        return;
    }
    if (verdict == Verdict::kBusy || verdict == Verdict::kTimeout) {
        const char* why = verdict == Verdict::kBusy
                              ? "too many authentications pending from this client"
                              : "the password check waited too long (the proxy is busy)";
        LOG_WARN("authentication refused for user \"%s\" from %s: %s", account.name.c_str(),
                 client_text.c_str(), why);
        done(AuthOutcome{std::nullopt, make_refusal(RefusalCause::kAuthBusy, why)});
        return;
    }
    const char* why = verdict == Verdict::kError ? "verification failed"
                      : known_user               ? "wrong password"
                                                 : "no such user";
    LOG_WARN("authentication failed for user \"%s\" from %s: %s", account.name.c_str(),
             client_text.c_str(), why);
    done(AuthOutcome{std::nullopt, auth_refusal("wrong user name or password")});
}

void Authenticator::cancel(uint64_t ticket) {
    if (ticket != 0) verifier_.cancel(ticket);
}

}  // namespace worker
