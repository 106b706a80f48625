// The configuration: a typed, validated, immutable snapshot of one INI file.
//
// load_config() is the only way to make one. Once loaded, a Config is shared
// as std::shared_ptr<const Config>; a reload builds a new one beside it and
// never changes the old one, so a refused reload leaves nothing half-applied.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/log.h"
#include "common/tls.h"

namespace common {

using Duration = std::chrono::milliseconds;

enum class ListenProtocol { kHttp, kSocks5 };
// Whether clients of a listener must authenticate (users file, [auth]).
enum class ListenAuth { kNone, kPassword };

struct ListenConfig {
    std::string name;  // from "[listen NAME]"
    HostPort address;  // numeric host (resolved at load) and port
    ListenProtocol protocol = ListenProtocol::kHttp;
    ListenAuth auth = ListenAuth::kNone;
    std::string tls_certificate;  // both set: clients speak TLS to the proxy
    std::string tls_key;
    tls::SharedSslCtx tls_context;  // made at load time, in the master
    int backlog = 511;
    // Connections start with a PROXY protocol header (v1 or v2) from a load
    // balancer, and the client address it reports replaces the socket's for
    // the ACL, limits and logs (worker/proxy_header.h).
    bool proxy_protocol = false;
    // Who may send that header: after loading, 127.0.0.1/32 when
    // proxy_protocol is on and the key is not set; empty when it is off.
    std::vector<Cidr> proxy_protocol_from;

    bool tls() const { return !tls_certificate.empty(); }
};

struct MasterConfig {
    // "workers = auto" (the default) is an elastic pool: it starts with
    // workers_min and the master adds workers up to workers_max as the
    // running ones near their session capacity (master/worker_pool.h). A
    // number is a fixed count.
    bool workers_auto = true;
    int workers = 0;      // resolved: the fixed count, or with auto workers_min
    int workers_min = 0;  // resolved: "auto" (the default) is the number of CPUs
    int workers_max = 0;  // resolved: default max(kDefaultWorkersMax, workers_min)
    std::string pid_file = "run/proxyd.pid";
    std::string control_socket = "run/proxyd.sock";
    std::string user;  // drop privileges to this user after binding (root only)
    std::string group;
    Duration heartbeat_interval{1000};
    Duration heartbeat_timeout{5000};
    Duration graceful_timeout{30000};
    uint64_t worker_max_rss = 0;       // bytes; 0 = off
    uint64_t worker_max_sessions = 0;  // client connections; 0 = off
    int max_draining_generations = 3;
};

// [metrics]: the Prometheus endpoint the master serves (master/metrics_endpoint.h).
struct MetricsConfig {
    std::optional<HostPort> listen;  // numeric host; port 0 picks one; none: off
};

// combined: NCSA Combined, what goaccess and other log tools read;
// json: one object per line.
enum class AccessLogFormat { kCombined, kJson };

struct LogConfig {
    std::string error_log = "stderr";
    LogLevel level = LogLevel::kInfo;
    std::string access_log;  // empty = off
    AccessLogFormat access_log_format = AccessLogFormat::kCombined;
};

struct LimitsConfig {
    // Client connections per worker; 0 = auto: as many as the descriptor
    // limit the master gets allows (resolve_max_connections()). Workers
    // always see the resolved value.
    uint64_t max_connections = 0;
    uint64_t max_header_size = 32 * 1024;
    uint64_t max_headers = 100;
    uint64_t buffer_size = 64 * 1024;  // per direction high watermark
    Duration connect_timeout{10000};
    Duration header_timeout{10000};
    Duration idle_timeout{60000};
    Duration tunnel_idle_timeout{300000};
    Duration upstream_timeout{60000};  // waiting for a response from upstream
    Duration upstream_keepalive_timeout{30000};
    // Idle upstream connections per destination (and route) per worker:
    // none = auto, as many as the destination's recent demand (at least 8);
    // a number is a fixed cap, 0 turns pooling off (worker/upstream_pool.h).
    std::optional<uint64_t> upstream_keepalive_per_destination;
    // Idle upstream connections per worker, all destinations together; the
    // pool keeps at most idle_upstream_limit() of them.
    uint64_t upstream_keepalive_max_idle = 1024;
    Duration dns_timeout{5000};
    // Size of the shared table (common/shared_table.h), fixed at first start.
    uint64_t shared_table_keys = 16384;    // distinct keys in use at once
    uint64_t shared_table_leases = 65536;  // leases held at once, all workers
    // Access-frequency budgets ([route] budgets in the contract's words):
    // requests and tunnels per second to one destination host from one
    // exit (source address or parent), across all workers; 0 = off.
    double destination_rate = 0;
    uint64_t destination_burst = 10;
    Duration destination_queue_timeout{0};  // wait this long for a token; 0 = refuse at once
};

struct AclConfig {
    std::vector<Cidr> allow_clients;
    std::vector<PortRange> connect_ports;
    bool deny_private_destinations = true;
};

struct ResolverConfig {
    // The DNS servers the workers ask, in order; empty = those of
    // /etc/resolv.conf.
    std::vector<SocketAddress> nameservers;
};

struct ProxyConfig {
    // Our pseudonym in Via (RFC 9110 §7.6.3) and Proxy-Status (RFC 9209):
    // a token. Two chained proxies need different names, or each sees the
    // other's Via entry as its own and refuses a loop.
    std::string name = "proxyd";
};

// A parent proxy ([parent NAME]): where requests go on instead of to their
// destination. The URL's credentials, if any, are ours for the parent.
enum class ParentScheme { kHttp, kHttps, kSocks5 };

struct ParentConfig {
    std::string name;  // from "[parent NAME]"
    ParentScheme scheme = ParentScheme::kHttp;
    std::string host;  // a DNS name or an IP literal (IPv6 without brackets)
    uint16_t port = 0;
    bool ipv6_literal = false;
    std::optional<std::pair<std::string, std::string>> credentials;  // user, password
    // "Proxy-Authorization: Basic TOKEN\r\n" for the credentials, made once
    // at load for CONNECT and plain requests alike; "" without credentials.
    std::string authorization;
    std::string ca_file;            // https: the CAs to verify it with; empty = the system's
    uint64_t max_failures = 3;      // consecutive failures that mark it down
    Duration retry_after{10000};    // how long it stays down before it is tried again
    tls::SharedSslCtx tls_context;  // https: made at load, verifies the certificate

    // Sets `credentials` and the `authorization` line made of them.
    void set_credentials(std::string user, std::string password);

    // "host:port" with brackets for IPv6, for logs and the CONNECT target.
    std::string authority() const;
};

enum class Rotation { kRoundRobin, kRandom, kLeastConnections };
enum class OnFailure { kRetryNext, kFail };

// How requests leave: over which parents (none: directly) and from which
// local addresses (none: the kernel's choice). The routes are every
// (parent or direct, source address) pair; see worker/route_table.h.
struct RouteConfig {
    std::vector<std::string> parents;  // [parent NAME]s, in order
    std::vector<SocketAddress> source_addresses;
    Rotation rotation = Rotation::kRoundRobin;
    Duration sticky_ttl{600000};
    OnFailure on_failure = OnFailure::kRetryNext;
};

// One account of the users file, with its limit resolved: [user NAME]
// max_sessions, else [auth] max_sessions_per_user; 0 = no limit.
struct UserAccount {
    std::string hash;  // crypt(3) string: bcrypt, yescrypt or SHA-512-crypt
    uint64_t max_sessions = 0;
};

struct AuthConfig {
    std::string users_file;  // empty: no accounts
    std::string realm = "proxyd";
    uint64_t max_sessions_per_user = 0;
    // Read from users_file at load time, so a reload re-reads it and a bad
    // file refuses the whole configuration. Keyed by name; std::less<> finds
    // a string_view without a copy.
    std::map<std::string, UserAccount, std::less<>> users;
};

// [cluster]: what several nodes share. With `redis` set, per-user session
// limits, sticky routes and destination budgets are kept in that Redis
// (worker/redis_shared_state.h) instead of this node's shared table.
enum class OnRedisDown { kLocal, kDeny };
struct ClusterConfig {
    // A numeric address: hiredis would resolve a name with a blocking call
    // on the worker's loop. None: off, the node keeps its state alone.
    std::optional<SocketAddress> redis;
    OnRedisDown on_redis_down = OnRedisDown::kLocal;
    // The node's name in `status`, logs and Redis holder ids (a token);
    // defaults to the host name.
    std::string node;
};

struct Config {
    std::string path;  // the file it was loaded from, as given
    ProxyConfig proxy;
    MasterConfig master;
    LogConfig log;
    MetricsConfig metrics;
    std::vector<ListenConfig> listeners;
    LimitsConfig limits;
    AclConfig acl;
    ResolverConfig resolver;
    AuthConfig auth;
    std::vector<ParentConfig> parents;  // every [parent NAME], in file order
    RouteConfig route;
    ClusterConfig cluster;

    // The [parent NAME] section called `name`; nullptr if there is none.
    const ParentConfig* parent(std::string_view name) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

// Splice pipes (worker/pipe_pool.h) one worker holds at once, busy or idle,
// two descriptors each; a relay that finds none copies through user space.
constexpr uint64_t kMaxSplicePipes = 64;
// Descriptors a worker holds whatever its traffic, with room to spare:
// standard streams, error and access logs, the event loop (epoll and its
// signal pipe), the channel to the master, the resolver's sockets (one per
// nameserver), and files opened for a moment (/proc/self/statm, a log
// being reopened). The listening sockets are counted apart.
constexpr uint64_t kFixedDescriptors = 64;

// The default upper bound of an elastic worker pool ("workers = auto").
constexpr int kDefaultWorkersMax = 32;
// The most client connections per worker "max_connections = auto" gives,
// however many descriptors there are: one worker's event loop is one CPU.
constexpr uint64_t kAutoMaxConnectionsCeiling = 100000;

// The idle upstream connections one worker keeps: upstream_keepalive_max_idle,
// but never more than max_connections.
uint64_t idle_upstream_limit(const LimitsConfig& limits);

// The descriptors one worker may hold at once, by holder. Every holder that
// grows with traffic is capped, so the sum is a bound; the master raises
// RLIMIT_NOFILE to total() (and workers inherit it).
struct DescriptorBudget {
    uint64_t sessions = 0;        // max_connections * 2: a client and its upstream
    uint64_t idle_upstreams = 0;  // idle_upstream_limit()
    uint64_t splice_pipes = 0;    // kMaxSplicePipes * 2
    uint64_t listeners = 0;       // inherited from the master, one per [listen]
    uint64_t fixed = 0;           // kFixedDescriptors

    uint64_t total() const { return sessions + idle_upstreams + splice_pipes + listeners + fixed; }
};
DescriptorBudget descriptor_budget(const Config& config);
// The most sessions one worker can hold inside `descriptor_limit` open files
// (everything else of descriptor_budget() counted); 0 if not even one fits.
uint64_t max_connections_within(const Config& config, uint64_t descriptor_limit);
// A copy of `config` whose max_connections is the value in force under
// `descriptor_limit`: auto becomes max_connections_within() (at most
// kAutoMaxConnectionsCeiling), and a number above it is lowered to it, with
// `note` saying so ("" when the configured value stands).
ConfigPtr resolve_max_connections(const ConfigPtr& config, uint64_t descriptor_limit,
                                  std::string& note);

// Loads and validates `path`. On failure returns nullptr and sets `error` to
// one line naming the file and line ("proxyd.conf:3: unknown key \"x\" in
// [master]") or the section and key when the problem spans lines.
ConfigPtr load_config(const std::string& path, std::string& error);

// Value parsers shared with the tests. Each returns nullopt and sets `error`
// to a short description of what is wrong with `text`.
std::optional<Duration> parse_duration(std::string_view text, std::string& error);
std::optional<uint64_t> parse_size(std::string_view text, std::string& error);
std::optional<bool> parse_bool(std::string_view text, std::string& error);
std::optional<uint64_t> parse_count(std::string_view text, std::string& error);

}  // namespace common
