#include "worker/resolver.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace worker {

namespace {

constexpr int kMinTtlSeconds = 1;
constexpr int kMaxTtlSeconds = 300;
constexpr size_t kMaxCacheEntries = 10000;

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// One name in flight: its A and AAAA queries, answered independently.
struct Resolver::Lookup {
    struct Query {
        Resolver* resolver;
        Lookup* lookup;
    };
    std::string host;
    Query query{nullptr, nullptr};
    int pending = 0;
    int ttl = kMaxTtlSeconds;
    std::vector<common::SocketAddress> v4, v6;
    std::string error;
    bool timed_out = false;  // the error is a timeout
    std::vector<RequestId> waiters;
};

std::unique_ptr<Resolver> Resolver::create(event_base* base, std::chrono::milliseconds timeout,
                                           const std::vector<common::SocketAddress>& nameservers) {
    common::EvDnsBasePtr dns(
        evdns_base_new(base, nameservers.empty() ? EVDNS_BASE_INITIALIZE_NAMESERVERS : 0));
    if (!dns) {
        LOG_ERROR("evdns_base_new() failed while starting the resolver");
        return nullptr;
    }
    for (const common::SocketAddress& server : nameservers) {
        if (evdns_base_nameserver_sockaddr_add(dns.get(), server.get(), server.length, 0) != 0) {
            LOG_ERROR("evdns_base_nameserver_sockaddr_add() failed for nameserver %s",
                      server.to_string().c_str());
            return nullptr;
        }
    }
    // Two tries, each half of dns_timeout, so one lost UDP packet is retried.
    std::string half = std::to_string(std::max<double>(0.1, timeout.count() / 2000.0));
    evdns_base_set_option(dns.get(), "timeout:", half.c_str());
    evdns_base_set_option(dns.get(), "attempts:", "2");
    std::unique_ptr<Resolver> resolver(new Resolver(base, std::move(dns)));
    if (!resolver->deliver_event_) return nullptr;
    return resolver;
}

Resolver::Resolver(event_base* base, common::EvDnsBasePtr dns)
    : base_(base), dns_(std::move(dns)), deliver_event_(event_new(base, -1, 0, on_deliver, this)) {
    load_hosts();
}

Resolver::~Resolver() {
    // Freeing evdns fails the outstanding queries through their callbacks,
    // which still need the lookups: free it first, deliver nothing.
    shutting_down_ = true;
    waiters_.clear();
    dns_.reset();
}

std::multimap<std::string, common::SocketAddress> Resolver::parse_hosts(const std::string& text) {
    std::multimap<std::string, common::SocketAddress> hosts;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        line = line.substr(0, line.find('#'));
        std::istringstream fields(line);
        std::string address_text, name;
        if (!(fields >> address_text)) continue;
        auto address = common::SocketAddress::from_numeric(address_text, 0);
        if (!address) continue;
        while (fields >> name) {
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            hosts.emplace(name, *address);
        }
    }
    return hosts;
}

void Resolver::load_hosts() {
    std::ifstream file("/etc/hosts");
    std::stringstream text;
    text << file.rdbuf();
    hosts_ = parse_hosts(text.str());
}

// Literals, /etc/hosts, RFC 6761 ".invalid" and the cache answer without a
// query. Returns false when DNS must be asked.
bool Resolver::answer_locally(const std::string& host, Resolution& out) {
    if (auto literal = common::SocketAddress::from_numeric(host, 0)) {
        out = {true, "", {*literal}};
        return true;
    }
    auto [first, last] = hosts_.equal_range(host);
    if (first != last) {
        out = {true, "", {}};
        for (auto it = first; it != last; ++it) out.addresses.push_back(it->second);
        std::stable_partition(out.addresses.begin(), out.addresses.end(),
                              [](const auto& a) { return a.family() == AF_INET; });
        return true;
    }
    if (host == "invalid" || ends_with(host, ".invalid")) {
        out = {false, "host not found", {}};
        return true;
    }
    auto cached = cache_.find(host);
    if (cached != cache_.end()) {
        if (cached->second.expires > std::chrono::steady_clock::now()) {
            out = {true, "", cached->second.addresses};
            return true;
        }
        cache_.erase(cached);
    }
    return false;
}

Resolver::RequestId Resolver::resolve(const std::string& name, Callback callback) {
    // DNS names are case-insensitive; one spelling for the cache and lookups.
    std::string host = name;
    std::transform(host.begin(), host.end(), host.begin(), ::tolower);
    RequestId id = next_id_++;
    waiters_.emplace(id, std::make_pair(host, std::move(callback)));
    Resolution local;
    if (answer_locally(host, local)) {
        deliver_later(id, std::move(local));
        return id;
    }
    auto lookup = lookups_.find(host);
    if (lookup == lookups_.end()) {
        start_lookup(host);
        lookup = lookups_.find(host);
    }
    if (lookup != lookups_.end()) {
        lookup->second->waiters.push_back(id);
    } else {
        deliver_later(id, {false, "DNS query could not be sent", {}});
    }
    return id;
}

void Resolver::start_lookup(const std::string& host) {
    auto lookup = std::make_unique<Lookup>();
    lookup->host = host;
    lookup->query = {this, lookup.get()};
    // No search domains: a proxy resolves exactly the name it was given.
    if (evdns_base_resolve_ipv4(dns_.get(), host.c_str(), DNS_QUERY_NO_SEARCH, on_dns_answer,
                                &lookup->query)) {
        lookup->pending++;
    }
    if (evdns_base_resolve_ipv6(dns_.get(), host.c_str(), DNS_QUERY_NO_SEARCH, on_dns_answer,
                                &lookup->query)) {
        lookup->pending++;
    }
    if (lookup->pending > 0) lookups_.emplace(host, std::move(lookup));
}

void Resolver::cancel(RequestId id) {
    waiters_.erase(id);
}

void Resolver::on_dns_answer(int result, char type, int count, int ttl, void* addresses,
                             void* arg) noexcept {
    auto* query = static_cast<Lookup::Query*>(arg);
    Lookup& lookup = *query->lookup;
    if (result == DNS_ERR_NONE && type == DNS_IPv4_A) {
        auto* a = static_cast<const in_addr*>(addresses);
        for (int i = 0; i < count; ++i) {
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_addr = a[i];
            lookup.v4.push_back(
                common::SocketAddress::from(reinterpret_cast<sockaddr*>(&sin), sizeof(sin)));
        }
        lookup.ttl = std::min(lookup.ttl, ttl);
    } else if (result == DNS_ERR_NONE && type == DNS_IPv6_AAAA) {
        auto* a = static_cast<const in6_addr*>(addresses);
        for (int i = 0; i < count; ++i) {
            sockaddr_in6 sin6{};
            sin6.sin6_family = AF_INET6;
            sin6.sin6_addr = a[i];
            lookup.v6.push_back(
                common::SocketAddress::from(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6)));
        }
        lookup.ttl = std::min(lookup.ttl, ttl);
    } else if (result != DNS_ERR_NONE && lookup.error.empty()) {
        lookup.timed_out = result == DNS_ERR_TIMEOUT;
        lookup.error = result == DNS_ERR_NOTEXIST  ? "host not found"
                       : result == DNS_ERR_TIMEOUT ? "DNS timeout"
                                                   : evdns_err_to_string(result);
    }
    if (--lookup.pending == 0) query->resolver->finish(lookup);
}

void Resolver::finish(Lookup& lookup) {
    if (shutting_down_) return;
    Resolution result;
    result.addresses = lookup.v4;
    result.addresses.insert(result.addresses.end(), lookup.v6.begin(), lookup.v6.end());
    result.ok = !result.addresses.empty();
    result.error = result.ok ? "" : (lookup.error.empty() ? "host not found" : lookup.error);
    result.timed_out = !result.ok && lookup.timed_out;
    if (result.ok) {
        if (cache_.size() >= kMaxCacheEntries) cache_.clear();
        int ttl = std::clamp(lookup.ttl, kMinTtlSeconds, kMaxTtlSeconds);
        cache_[lookup.host] = {result.addresses,
                               std::chrono::steady_clock::now() + std::chrono::seconds(ttl)};
    }
    std::vector<RequestId> waiters = std::move(lookup.waiters);
    lookups_.erase(lookup.host);  // destroys `lookup`
    for (RequestId id : waiters) deliver_later(id, result);
}

void Resolver::deliver_later(RequestId id, Resolution result) {
    ready_.emplace_back(id, std::move(result));
    event_active(deliver_event_.get(), 0, 0);
}

void Resolver::on_deliver(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<Resolver*>(arg);
    std::vector<std::pair<RequestId, Resolution>> ready;
    ready.swap(self->ready_);
    for (auto& [id, result] : ready) {
        auto waiter = self->waiters_.find(id);
        if (waiter == self->waiters_.end()) continue;  // cancelled
        Callback callback = std::move(waiter->second.second);
        self->waiters_.erase(waiter);
        callback(result);
    }
}

}  // namespace worker
