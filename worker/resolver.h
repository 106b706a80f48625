// Asynchronous name resolution for one worker: libevent's evdns for A and
// AAAA queries (the configured nameservers, else resolv.conf's), /etc/hosts first, and a cache that
// honours the TTLs the answers carry. Concurrent lookups of one name share one query.
#pragma once

#include <event2/dns.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/address.h"
#include "common/libevent_handles.h"

namespace worker {

struct Resolution {
    bool ok = false;
    std::string error;                             // "host not found", "DNS timeout", ...
    std::vector<common::SocketAddress> addresses;  // port 0; IPv4 first, then IPv6
    bool timed_out = false;                        // no answer within the DNS timeout
};

class Resolver {
  public:
    using Callback = std::function<void(const Resolution&)>;
    using RequestId = uint64_t;

    // Asks `nameservers` in order, or those of /etc/resolv.conf when the
    // list is empty. Returns nullptr and logs when evdns cannot be set up.
    static std::unique_ptr<Resolver> create(
        event_base* base, std::chrono::milliseconds timeout,
        const std::vector<common::SocketAddress>& nameservers = {});
    ~Resolver();

    // Resolves `host` (a DNS name or an IP literal). The callback runs later
    // from the event loop, never from inside resolve(), unless cancelled.
    RequestId resolve(const std::string& host, Callback callback);
    // Forgets a pending request; its callback will not run.
    void cancel(RequestId id);

    // Parses /etc/hosts-format text into name -> addresses (exposed for tests).
    static std::multimap<std::string, common::SocketAddress> parse_hosts(const std::string& text);

  private:
    struct CacheEntry {
        std::vector<common::SocketAddress> addresses;
        std::chrono::steady_clock::time_point expires;
    };
    struct Lookup;  // one name's in-flight A + AAAA queries and their waiters

    Resolver(event_base* base, common::EvDnsBasePtr dns);
    void load_hosts();
    bool answer_locally(const std::string& host, Resolution& out);
    void start_lookup(const std::string& host);
    void deliver_later(RequestId id, Resolution result);
    void finish(Lookup& lookup);
    static void on_dns_answer(int result, char type, int count, int ttl, void* addresses,
                              void* arg) noexcept;
    static void on_deliver(evutil_socket_t, short, void* arg) noexcept;

    event_base* base_;
    common::EvDnsBasePtr dns_;
    common::EventPtr deliver_event_;
    std::vector<std::pair<RequestId, Resolution>> ready_;
    bool shutting_down_ = false;
    std::multimap<std::string, common::SocketAddress> hosts_;
    std::unordered_map<std::string, CacheEntry> cache_;
    std::unordered_map<std::string, std::unique_ptr<Lookup>> lookups_;
    std::unordered_map<RequestId, std::pair<std::string, Callback>> waiters_;
    RequestId next_id_ = 1;
};

}  // namespace worker
