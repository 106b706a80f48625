// The vocabulary of the request pipeline (see request_pipeline.h): what a
// protocol hands to it (Intent), the way out it chooses (Route), and the one
// refusal it may end in (Refusal). Plain types; no libevent.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "common/address.h"
#include "common/config.h"
#include "common/uri.h"

namespace worker {

// Who a client authenticated as (authenticator.h): an account of the users
// file, and the parameters its user field carried.
struct Account {
    std::string name;             // as in the users file
    std::string session_id;       // NAME-session-ID; empty: none
    std::chrono::seconds ttl{0};  // NAME-session-ID-ttl-DURATION; 0: none given
    uint64_t max_sessions = 0;    // its limit; 0: none
};

// What a client asked for, in terms every protocol shares: an HTTP request
// (kForward), an HTTP CONNECT or a SOCKS connect (kTunnel).
struct Intent {
    enum class Mode { kForward, kTunnel };

    const common::ListenConfig* listener = nullptr;  // the listener that accepted the client
    const common::SocketAddress* client = nullptr;   // the session's; outlives the intent
    common::ProxyTarget destination;                 // host and port; path unused
    Mode mode = Mode::kForward;
    // HTTP: the request carries a Via entry with our pseudonym (a loop).
    bool via_names_us = false;
    // HTTP: the user field and password of Proxy-Authorization, or why the
    // field could not be read (`credentials_error`). Unused on listeners
    // without authentication.
    std::optional<std::pair<std::string, std::string>> credentials;
    std::string credentials_error;
    // Authenticated already: SOCKS5 does it during its handshake (RFC 1929
    // answers there), before it has an intent.
    std::optional<Account> account;

    bool tunnel() const { return mode == Mode::kTunnel; }
};

// One way out (worker/route_table.h holds them all): a parent proxy or
// direct to the destination, from a source address or the kernel's choice.
struct Route {
    const common::ParentConfig* parent = nullptr;   // nullptr: direct
    const common::SocketAddress* source = nullptr;  // nullptr: the kernel's choice
    // "direct", "direct@192.0.2.7", "NAME" or "NAME@192.0.2.7": in the access
    // log, the pool's keys, `proxyctl routes`.
    std::string name = "direct";
    uint32_t id = 1;   // a hash of the name, never 0: the sticky map's value
    size_t index = 0;  // in the RouteTable
};

// Every way the pipeline (or a protocol, before it) can refuse a request.
// One table (refusal.cpp) maps each to what each protocol and the logs say.
enum class RefusalCause {
    kBadRequest,              // the protocol could not read what was asked (400)
    kPortDenied,              // tunnel port not in connect_ports (403)
    kViaLoop,                 // the request names us in Via (508)
    kAddressLoop,             // the destination is one of our listeners (508)
    kPrivateDestination,      // every address is private and that is denied (403)
    kResolve,                 // the name did not resolve (502)
    kResolveTimeout,          // no DNS answer within dns_timeout (504)
    kUnreachable,             // no route to the destination (502)
    kConnectRefused,          // refused or reset while connecting (502)
    kConnectTimeout,          // connect_timeout (504)
    kClientTimeout,           // the client did not finish its request head in time (408)
    kUpstreamProtocol,        // the upstream's response is malformed (502)
    kUpstreamHeadTooLarge,    // the upstream's response head is over max_header_size (502)
    kUpstreamTransferCoding,  // a response transfer coding other than chunked (502)
    kUpstreamIncomplete,      // the upstream closed without (a whole) response head (502)
    kUpstreamTimeout,         // the upstream did not answer in time (504)
    kAuthRequired,            // no, wrong or malformed credentials (407)
    kAuthBusy,                // too many verifications pending for this client (429)
    kUserLimit,               // the user holds max_sessions sessions already (429)
    kParentTls,               // TLS to an https parent failed (502)
    kParentCertificate,       // an https parent's certificate was refused (502)
    kParentAuth,              // a parent refused our credentials (502, never its 407)
    kParentRefused,           // a parent could not or would not reach the destination (502)
    kNoRoute,                 // every route is down (502)
    kDestinationRate,         // the destination's budget from this exit is spent (429)
    kClientDenied,            // the client's address is not in allow_clients (403)
    kSharedStateDown,         // the cluster store is unreachable, on_redis_down = deny (503)
    kInternal,                // out of memory or descriptors (500)
};

struct Refusal {
    RefusalCause cause = RefusalCause::kInternal;
    int http_status = 500;
    uint8_t socks_reply = 0;      // RFC 1928 REP
    std::string detail;           // for the error body, the log and the access log
    const char* error_type = "";  // RFC 9209 Proxy-Status error type
    uint32_t error_class = 0;     // common::channel::ErrorClass
    uint32_t retry_after = 0;     // seconds, for Retry-After; 0: none
};

}  // namespace worker
