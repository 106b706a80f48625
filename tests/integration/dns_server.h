// A loopback DNS server the test controls, for the proxy's real DNS path
// (point it there with "[resolver] nameservers = " + dns.address()).
//
// UDP on 127.0.0.1:0, one thread, joined by the destructor. It speaks the
// RFC 1035 wire format strictly: a packet that is not one well-formed
// standard query (QR 0, opcode QUERY, one question of class IN, no other
// sections, no compression in the question, nothing left over) gets FORMERR
// or NOTIMP and is counted in malformed(), so a test can assert the proxy
// asked properly. A well-formed query is recorded, then answered from the
// table the test set:
//
//   name set with addresses   A / AAAA records (IPv4 literals are A, IPv6
//                             AAAA), in the order given; NOERROR with no
//                             answer (NODATA) for a type it has none of
//   name set silent           no answer at all (for dns_timeout)
//   any other name            NXDOMAIN
//
// The question is echoed byte for byte (resolvers that randomise the case
// of names, like evdns, check it); names are looked up case-insensitively
// and recorded lower-cased.
//
//   harness::DnsServer dns;
//   dns.set_addresses("origin.test", {"127.0.0.1"});
//   config.set("resolver", "nameservers", dns.address());
//   ...
//   EXPECT_EQ(dns.queries_for("origin.test", harness::DnsServer::kTypeA), 1u);
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace harness {

class DnsServer {
  public:
    static constexpr uint16_t kTypeA = 1;
    static constexpr uint16_t kTypeAAAA = 28;

    struct Query {
        std::string name;  // lower-cased, without the final dot
        uint16_t type = 0;
    };

    // Binds and starts serving; ADD_FAILUREs (port() is 0) when it cannot.
    DnsServer();
    ~DnsServer();
    DnsServer(const DnsServer&) = delete;
    DnsServer& operator=(const DnsServer&) = delete;

    uint16_t port() const { return port_; }
    // "127.0.0.1:PORT", the value for [resolver] nameservers.
    std::string address() const;

    // Answers `name` with `addresses` (numeric IPv4 or IPv6, in that order,
    // each with `ttl` seconds). ADD_FAILUREs on an address that is not a
    // literal. Replaces what was set for the name before.
    void set_addresses(const std::string& name, const std::vector<std::string>& addresses,
                       uint32_t ttl = 60);
    // Never answers queries for `name` (they are still recorded).
    void set_silent(const std::string& name);

    // The well-formed queries received so far, in order.
    std::vector<Query> queries() const;
    // How many of them asked for `name` (any type when `type` is 0).
    size_t queries_for(const std::string& name, uint16_t type = 0) const;
    // Waits until queries_for(name, type) >= n.
    bool wait_queries(const std::string& name, size_t n, uint16_t type = 0,
                      Millis timeout = 5s) const;
    // Packets that were not a well-formed standard query.
    size_t malformed() const { return malformed_.load(); }

  private:
    struct Record {
        uint16_t type = 0;
        std::string data;  // RDATA: 4 or 16 address bytes
    };
    struct Entry {
        bool silent = false;
        uint32_t ttl = 60;
        std::vector<Record> records;
    };

    void serve();
    // The reply to one packet; "" when it gets none.
    std::string answer(const std::string& packet);
    std::string answer_question(const std::string& packet, uint16_t type, size_t question_end,
                                const std::string& name);

    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<size_t> malformed_{0};
    mutable std::mutex mutex_;
    std::map<std::string, Entry> table_;
    std::vector<Query> queries_;
    std::thread thread_;
};

}  // namespace harness
