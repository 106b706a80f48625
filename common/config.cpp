#include "common/config.h"

#include <ini.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "common/credentials.h"
#include "common/http_parser.h"
#include "common/parent_url.h"
#include "common/users_file.h"

namespace common {

namespace {

// Debian's inih reads lines into a 200-byte buffer, NUL included; a line of
// 199 bytes leaves its newline for the next read, which inih then counts as
// a line of its own, so every later line number would be off by one.
constexpr size_t kMaxLineLength = 198;
constexpr int kMaxWorkers = 1024;
// Each nameserver holds a socket in every worker, out of kFixedDescriptors.
constexpr size_t kMaxNameservers = 8;
// Routes are parents x source addresses; each is a row of `proxyctl routes`
// and of every worker's health table.
constexpr size_t kMaxSourceAddresses = 256;

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// Splits "a, b,c" into trimmed elements. A trailing comma is allowed, since
// it is how a list announces a continuation line; any other empty element is
// an error (a stray comma is more likely a typo than an intent).
bool split_list(std::string_view text, std::vector<std::string_view>& out, std::string& error) {
    text = trim(text);
    if (!text.empty() && text.back() == ',') text = trim(text.substr(0, text.size() - 1));
    if (text.empty()) return true;
    while (true) {
        size_t comma = text.find(',');
        std::string_view item = trim(text.substr(0, comma));
        if (item.empty()) {
            error = "empty element in list";
            return false;
        }
        out.push_back(item);
        if (comma == std::string_view::npos) return true;
        text = text.substr(comma + 1);
    }
}

// Reads leading decimal digits; false on no digits or overflow.
bool parse_digits(std::string_view& text, uint64_t& value) {
    size_t i = 0;
    value = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        uint64_t digit = static_cast<uint64_t>(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    text.remove_prefix(i);
    return i > 0;
}

bool multiply(uint64_t value, uint64_t factor, uint64_t& out) {
    if (value != 0 && factor > UINT64_MAX / value) return false;
    out = value * factor;
    return true;
}

// One key of the schema: how to store its value, and whether it takes a list
// (continuation lines append) or a single value (a second line is an error).
struct KeyRule {
    bool list = false;
    std::function<bool(Config&, std::string_view, std::string&)> apply;
};

template <typename T>
using Parser = std::optional<T> (*)(std::string_view, std::string&);

template <typename T>
KeyRule scalar(T Config::*section_member, auto field,
               Parser<std::remove_cvref_t<decltype(std::declval<T>().*field)>> parse) {
    return KeyRule{false, [=](Config& config, std::string_view value, std::string& error) {
                       auto parsed = parse(value, error);
                       if (!parsed) return false;
                       (config.*section_member).*field = *parsed;
                       return true;
                   }};
}

std::optional<std::string> parse_string(std::string_view text, std::string&) {
    return std::string(text);
}

std::optional<std::string> parse_path_or_off(std::string_view text, std::string&) {
    if (text == "off") return std::string();
    return std::string(text);
}

// A pseudonym goes into Via and Proxy-Status as is: it must be a token.
std::optional<std::string> parse_proxy_name(std::string_view text, std::string& error) {
    if (text.size() > 64 || !http::is_token(text)) {
        error = "\"" + std::string(text) +
                "\" is not a name (1-64 letters, digits or !#$%&'*+-.^_`|~, no spaces)";
        return std::nullopt;
    }
    return std::string(text);
}

// The realm goes into Proxy-Authenticate as a quoted-string, and browsers
// show it: printable ASCII without the two characters quoting would need.
std::optional<std::string> parse_realm(std::string_view text, std::string& error) {
    bool printable = std::all_of(text.begin(), text.end(), [](char c) {
        return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
    });
    if (text.empty() || text.size() > 64 || !printable) {
        error = "\"" + std::string(text) +
                "\" is not a realm (1-64 printable ASCII characters without '\"' or '\\')";
        return std::nullopt;
    }
    return std::string(text);
}

// A rate in requests per second: a decimal number, 0 (off) to 1000000.
std::optional<double> parse_rate(std::string_view text, std::string& error) {
    std::string copy(trim(text));
    char* end = nullptr;
    double rate = copy.empty() || copy.find_first_not_of("0123456789.") != std::string::npos
                      ? -1
                      : std::strtod(copy.c_str(), &end);
    if (rate < 0 || end == nullptr || *end != '\0' || rate > 1e6) {
        error = "\"" + std::string(text) + "\" is not a rate (requests per second, e.g. 2 or 0.5)";
        return std::nullopt;
    }
    return rate;
}

std::optional<Rotation> parse_rotation(std::string_view text, std::string& error) {
    if (text == "round-robin") return Rotation::kRoundRobin;
    if (text == "random") return Rotation::kRandom;
    if (text == "least-connections") return Rotation::kLeastConnections;
    error = "\"" + std::string(text) +
            "\" is not a rotation (round-robin, random or least-connections)";
    return std::nullopt;
}

std::optional<AccessLogFormat> parse_access_log_format(std::string_view text, std::string& error) {
    if (text == "combined") return AccessLogFormat::kCombined;
    if (text == "json") return AccessLogFormat::kJson;
    error = "\"" + std::string(text) + "\" is not an access log format (combined or json)";
    return std::nullopt;
}

std::optional<OnFailure> parse_on_failure(std::string_view text, std::string& error) {
    if (text == "retry-next") return OnFailure::kRetryNext;
    if (text == "fail") return OnFailure::kFail;
    error = "\"" + std::string(text) + "\" is not a failure policy (retry-next or fail)";
    return std::nullopt;
}

// "host:port" or "[v6]:port" with a numeric host: a server the worker
// talks to must not need a (blocking) name lookup of its own. `what` ends
// the error ("a nameserver must be ...").
std::optional<SocketAddress> parse_numeric_address(std::string_view text, const char* what,
                                                   std::string& error) {
    auto host_port = parse_host_port(text, error);
    if (!host_port) {
        error = "\"" + std::string(text) + "\": " + error;
        return std::nullopt;
    }
    auto address = SocketAddress::from_numeric(host_port->host, host_port->port);
    if (!address) error = "\"" + std::string(text) + "\": " + what;
    return address;
}

// "off", or the Redis server's numeric host:port.
std::optional<std::optional<SocketAddress>> parse_redis(std::string_view text, std::string& error) {
    if (text == "off") return std::optional<SocketAddress>();
    auto address = parse_numeric_address(
        text, "the Redis server must be off or a numeric address (e.g. 127.0.0.1:6379)", error);
    if (!address) return std::nullopt;
    return address;
}

std::optional<OnRedisDown> parse_on_redis_down(std::string_view text, std::string& error) {
    if (text == "local") return OnRedisDown::kLocal;
    if (text == "deny") return OnRedisDown::kDeny;
    error = "\"" + std::string(text) + "\" is not a policy (local or deny)";
    return std::nullopt;
}

// The host name, cut to the characters a token allows, for the node name.
std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) != 0) return "proxyd";
    std::string token;
    for (const char* c = name; *c != '\0' && token.size() < 64; ++c) {
        if (http::is_token(std::string_view(c, 1))) token.push_back(*c);
    }
    return token.empty() ? "proxyd" : token;
}

// A local address to dial from: numeric, IPv4 or IPv6 (no brackets, no
// port: the kernel picks the port when connecting).
std::optional<std::vector<SocketAddress>> parse_source_list(std::string_view text,
                                                            std::string& error) {
    std::vector<std::string_view> items;
    if (!split_list(text, items, error)) return std::nullopt;
    std::vector<SocketAddress> out;
    for (auto item : items) {
        auto address = SocketAddress::from_numeric(item, 0);
        if (!address) {
            error = "\"" + std::string(item) +
                    "\" is not a numeric IP address (e.g. 192.0.2.7 or 2001:db8::7, no port)";
            return std::nullopt;
        }
        out.push_back(*address);
    }
    return out;
}

std::optional<std::vector<std::string>> parse_name_list(std::string_view text, std::string& error) {
    std::vector<std::string_view> items;
    if (!split_list(text, items, error)) return std::nullopt;
    return std::vector<std::string>(items.begin(), items.end());
}

// [metrics] listen: "off", or a numeric host and a port like a listener's.
std::optional<std::optional<HostPort>> parse_metrics_listen(std::string_view text,
                                                            std::string& error) {
    if (text == "off") return std::optional<HostPort>();
    auto host_port = parse_host_port(text, error, /*allow_port_zero=*/true);
    if (!host_port) return std::nullopt;
    if (!SocketAddress::from_numeric(host_port->host, 0)) {
        error = "\"" + std::string(text) +
                "\" is not off or a numeric address and port (e.g. 127.0.0.1:9145 or [::1]:9145)";
        return std::nullopt;
    }
    return std::optional<HostPort>(*host_port);
}

std::optional<int> parse_workers(std::string_view text, std::string& error) {
    if (text == "auto") {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return cpus > 0 ? static_cast<int>(std::min<long>(cpus, kMaxWorkers)) : 1;
    }
    auto count = parse_count(text, error);
    if (!count || *count < 1 || *count > kMaxWorkers) {
        error = "\"" + std::string(text) + "\" is not a worker count (1-1024 or auto)";
        return std::nullopt;
    }
    return static_cast<int>(*count);
}

// "workers": "auto" makes the pool elastic; a number fixes the count.
KeyRule workers_rule() {
    return KeyRule{false, [](Config& config, std::string_view value, std::string& error) {
                       auto parsed = parse_workers(value, error);
                       if (!parsed) return false;
                       config.master.workers_auto = value == "auto";
                       config.master.workers = *parsed;
                       return true;
                   }};
}

// "max_connections": a count, or "auto" (0) for what the descriptor limit
// allows.
std::optional<uint64_t> parse_max_connections(std::string_view text, std::string& error) {
    if (text == "auto") return 0;
    auto count = parse_count(text, error);
    if (count && *count == 0) {
        error = "\"0\" is not a connection count (at least 1, or auto)";
        return std::nullopt;
    }
    return count;
}

// upstream_keepalive_per_destination: "auto" (none) or a fixed count.
std::optional<std::optional<uint64_t>> parse_count_or_auto(std::string_view text,
                                                           std::string& error) {
    if (text == "auto") return std::optional<uint64_t>();
    auto count = parse_count(text, error);
    if (!count) {
        error = "\"" + std::string(text) + "\" is not a whole number or auto";
        return std::nullopt;
    }
    return std::optional<uint64_t>(*count);
}

std::optional<LogLevel> parse_level(std::string_view text, std::string& error) {
    LogLevel level;
    if (parse_log_level(std::string(text), level)) return level;
    error = "\"" + std::string(text) + "\" is not a log level (error, warn, info, debug)";
    return std::nullopt;
}

std::optional<std::vector<Cidr>> parse_cidr_list(std::string_view text, std::string& error) {
    std::vector<std::string_view> items;
    if (!split_list(text, items, error)) return std::nullopt;
    std::vector<Cidr> out;
    for (auto item : items) {
        auto cidr = parse_cidr(item, error);
        if (!cidr) return std::nullopt;
        out.push_back(*cidr);
    }
    return out;
}

std::optional<std::vector<PortRange>> parse_port_list(std::string_view text, std::string& error) {
    std::vector<std::string_view> items;
    if (!split_list(text, items, error)) return std::nullopt;
    std::vector<PortRange> out;
    for (auto item : items) {
        auto range = parse_port_range(item, error);
        if (!range) return std::nullopt;
        out.push_back(*range);
    }
    return out;
}

// A nameserver: "host:port", "[v6]:port", or a bare IPv4 address for port
// 53 (a bare IPv6 one would be ambiguous: is "::1:53" a port?). The host
// must be numeric: the resolver cannot resolve its own servers.
std::optional<SocketAddress> parse_nameserver(std::string_view text, std::string& error) {
    constexpr uint16_t kDnsPort = 53;
    if (text.find(':') == std::string_view::npos) {
        if (auto bare = SocketAddress::from_numeric(text, kDnsPort)) return bare;
    }
    return parse_numeric_address(
        text, "a nameserver must be a numeric IP address (e.g. 127.0.0.1:53 or [::1]:53)", error);
}

std::optional<std::vector<SocketAddress>> parse_nameserver_list(std::string_view text,
                                                                std::string& error) {
    std::vector<std::string_view> items;
    if (!split_list(text, items, error)) return std::nullopt;
    std::vector<SocketAddress> out;
    for (auto item : items) {
        auto address = parse_nameserver(item, error);
        if (!address) return std::nullopt;
        out.push_back(*address);
    }
    return out;
}

KeyRule nameserver_list() {
    return KeyRule{true, [](Config& config, std::string_view value, std::string& error) {
                       auto parsed = parse_nameserver_list(value, error);
                       if (!parsed) return false;
                       auto& target = config.resolver.nameservers;
                       target.insert(target.end(), parsed->begin(), parsed->end());
                       return true;
                   }};
}

// A list key of [route]: continuation lines append.
template <typename T>
KeyRule route_list(std::vector<T> RouteConfig::*field,
                   std::optional<std::vector<T>> (*parse)(std::string_view, std::string&)) {
    return KeyRule{true, [=](Config& config, std::string_view value, std::string& error) {
                       auto parsed = parse(value, error);
                       if (!parsed) return false;
                       auto& target = config.route.*field;
                       target.insert(target.end(), parsed->begin(), parsed->end());
                       return true;
                   }};
}

template <typename T>
KeyRule list_of(std::vector<T> AclConfig::*field,
                std::optional<std::vector<T>> (*parse)(std::string_view, std::string&)) {
    return KeyRule{true, [=](Config& config, std::string_view value, std::string& error) {
                       auto parsed = parse(value, error);
                       if (!parsed) return false;
                       auto& target = config.acl.*field;
                       target.insert(target.end(), parsed->begin(), parsed->end());
                       return true;
                   }};
}

const std::map<std::string, std::map<std::string, KeyRule>>& schema() {
    static const std::map<std::string, std::map<std::string, KeyRule>> kSchema = {
        {"master",
         {
             {"workers", workers_rule()},
             {"workers_min", scalar(&Config::master, &MasterConfig::workers_min, parse_workers)},
             {"workers_max", scalar(&Config::master, &MasterConfig::workers_max, parse_workers)},
             {"pid_file", scalar(&Config::master, &MasterConfig::pid_file, parse_string)},
             {"control_socket",
              scalar(&Config::master, &MasterConfig::control_socket, parse_string)},
             {"user", scalar(&Config::master, &MasterConfig::user, parse_string)},
             {"group", scalar(&Config::master, &MasterConfig::group, parse_string)},
             {"heartbeat_interval",
              scalar(&Config::master, &MasterConfig::heartbeat_interval, parse_duration)},
             {"heartbeat_timeout",
              scalar(&Config::master, &MasterConfig::heartbeat_timeout, parse_duration)},
             {"graceful_timeout",
              scalar(&Config::master, &MasterConfig::graceful_timeout, parse_duration)},
             {"worker_max_rss", scalar(&Config::master, &MasterConfig::worker_max_rss, parse_size)},
             {"worker_max_sessions",
              scalar(&Config::master, &MasterConfig::worker_max_sessions, parse_count)},
             {"max_draining_generations",
              KeyRule{false,
                      [](Config& config, std::string_view value, std::string& error) {
                          auto count = parse_count(value, error);
                          if (!count || *count < 1 || *count > 16) {
                              error = "must be a number from 1 to 16";
                              return false;
                          }
                          config.master.max_draining_generations = static_cast<int>(*count);
                          return true;
                      }}},
         }},
        {"log",
         {
             {"error_log", scalar(&Config::log, &LogConfig::error_log, parse_string)},
             {"level", scalar(&Config::log, &LogConfig::level, parse_level)},
             {"access_log", scalar(&Config::log, &LogConfig::access_log, parse_path_or_off)},
             {"access_log_format",
              scalar(&Config::log, &LogConfig::access_log_format, parse_access_log_format)},
         }},
        {"metrics",
         {
             {"listen", scalar(&Config::metrics, &MetricsConfig::listen, parse_metrics_listen)},
         }},
        {"limits",
         {
             {"max_connections",
              scalar(&Config::limits, &LimitsConfig::max_connections, parse_max_connections)},
             {"max_header_size",
              scalar(&Config::limits, &LimitsConfig::max_header_size, parse_size)},
             {"max_headers", scalar(&Config::limits, &LimitsConfig::max_headers, parse_count)},
             {"buffer_size", scalar(&Config::limits, &LimitsConfig::buffer_size, parse_size)},
             {"connect_timeout",
              scalar(&Config::limits, &LimitsConfig::connect_timeout, parse_duration)},
             {"header_timeout",
              scalar(&Config::limits, &LimitsConfig::header_timeout, parse_duration)},
             {"idle_timeout", scalar(&Config::limits, &LimitsConfig::idle_timeout, parse_duration)},
             {"tunnel_idle_timeout",
              scalar(&Config::limits, &LimitsConfig::tunnel_idle_timeout, parse_duration)},
             {"upstream_timeout",
              scalar(&Config::limits, &LimitsConfig::upstream_timeout, parse_duration)},
             {"upstream_keepalive_timeout",
              scalar(&Config::limits, &LimitsConfig::upstream_keepalive_timeout, parse_duration)},
             {"upstream_keepalive_per_destination",
              scalar(&Config::limits, &LimitsConfig::upstream_keepalive_per_destination,
                     parse_count_or_auto)},
             {"upstream_keepalive_max_idle",
              scalar(&Config::limits, &LimitsConfig::upstream_keepalive_max_idle, parse_count)},
             {"dns_timeout", scalar(&Config::limits, &LimitsConfig::dns_timeout, parse_duration)},
             {"shared_table_keys",
              scalar(&Config::limits, &LimitsConfig::shared_table_keys, parse_count)},
             {"shared_table_leases",
              scalar(&Config::limits, &LimitsConfig::shared_table_leases, parse_count)},
             {"destination_rate",
              scalar(&Config::limits, &LimitsConfig::destination_rate, parse_rate)},
             {"destination_burst",
              scalar(&Config::limits, &LimitsConfig::destination_burst, parse_count)},
             {"destination_queue_timeout",
              scalar(&Config::limits, &LimitsConfig::destination_queue_timeout, parse_duration)},
         }},
        {"route",
         {
             {"parents", route_list(&RouteConfig::parents, parse_name_list)},
             {"source_addresses", route_list(&RouteConfig::source_addresses, parse_source_list)},
             {"rotation", scalar(&Config::route, &RouteConfig::rotation, parse_rotation)},
             {"sticky_ttl", scalar(&Config::route, &RouteConfig::sticky_ttl, parse_duration)},
             {"on_failure", scalar(&Config::route, &RouteConfig::on_failure, parse_on_failure)},
         }},
        {"cluster",
         {
             {"redis", scalar(&Config::cluster, &ClusterConfig::redis, parse_redis)},
             {"on_redis_down",
              scalar(&Config::cluster, &ClusterConfig::on_redis_down, parse_on_redis_down)},
             {"node", scalar(&Config::cluster, &ClusterConfig::node, parse_proxy_name)},
         }},
        {"acl",
         {
             {"allow_clients", list_of(&AclConfig::allow_clients, parse_cidr_list)},
             {"connect_ports", list_of(&AclConfig::connect_ports, parse_port_list)},
             {"deny_private_destinations",
              scalar(&Config::acl, &AclConfig::deny_private_destinations, parse_bool)},
         }},
        {"resolver",
         {
             {"nameservers", nameserver_list()},
         }},
        {"proxy",
         {
             {"name", scalar(&Config::proxy, &ProxyConfig::name, parse_proxy_name)},
         }},
        {"auth",
         {
             {"users_file", scalar(&Config::auth, &AuthConfig::users_file, parse_string)},
             {"realm", scalar(&Config::auth, &AuthConfig::realm, parse_realm)},
             {"max_sessions_per_user",
              scalar(&Config::auth, &AuthConfig::max_sessions_per_user, parse_count)},
         }},
    };
    return kSchema;
}

bool apply_listen_key(ListenConfig& listen, std::string_view key, std::string_view value,
                      std::string& error) {
    if (key == "address") {
        auto host_port = parse_host_port(value, error, /*allow_port_zero=*/true);
        if (!host_port) return false;
        if (!SocketAddress::from_numeric(host_port->host, 0)) {
            error = "host must be a numeric IP address (e.g. 127.0.0.1:3128 or [::1]:3128)";
            return false;
        }
        listen.address = *host_port;
    } else if (key == "protocol") {
        if (value == "http") {
            listen.protocol = ListenProtocol::kHttp;
        } else if (value == "socks5") {
            listen.protocol = ListenProtocol::kSocks5;
        } else {
            error = "\"" + std::string(value) + "\" is not a protocol (http or socks5)";
            return false;
        }
    } else if (key == "auth") {
        if (value == "none") {
            listen.auth = ListenAuth::kNone;
        } else if (value == "password") {
            listen.auth = ListenAuth::kPassword;
        } else {
            error = "\"" + std::string(value) + "\" is not an authentication (none or password)";
            return false;
        }
    } else if (key == "tls_certificate") {
        listen.tls_certificate = value;
    } else if (key == "tls_key") {
        listen.tls_key = value;
    } else if (key == "backlog") {
        auto backlog = parse_count(value, error);
        if (!backlog || *backlog < 1 || *backlog > 65535) {
            error = "must be a number from 1 to 65535";
            return false;
        }
        listen.backlog = static_cast<int>(*backlog);
    } else if (key == "proxy_protocol") {
        auto on = parse_bool(value, error);
        if (!on) return false;
        listen.proxy_protocol = *on;
    } else if (key == "proxy_protocol_from") {
        auto ranges = parse_cidr_list(value, error);
        if (!ranges) return false;
        // Empty would refuse every connection; it also marks "not set".
        if (ranges->empty()) {
            error = "needs at least one address or CIDR (e.g. 127.0.0.1, 10.0.0.0/8, ::1)";
            return false;
        }
        listen.proxy_protocol_from = std::move(*ranges);
    } else {
        error = "unknown key";
        return false;
    }
    return true;
}

bool apply_parent_key(ParentConfig& parent, std::string_view key, std::string_view value,
                      std::string& error) {
    if (key == "url") {
        auto url = parse_parent_url(value, error);
        if (!url) return false;
        parent.scheme = url->scheme;
        parent.host = std::move(url->host);
        parent.port = url->port;
        parent.ipv6_literal = url->ipv6_literal;
        parent.credentials.reset();
        parent.authorization.clear();
        if (url->credentials) {
            parent.set_credentials(std::move(url->credentials->first),
                                   std::move(url->credentials->second));
        }
    } else if (key == "ca_file") {
        parent.ca_file = value;
    } else if (key == "max_failures") {
        auto count = parse_count(value, error);
        if (!count || *count < 1 || *count > 1000) {
            error = "must be a number from 1 to 1000";
            return false;
        }
        parent.max_failures = *count;
    } else if (key == "retry_after") {
        auto duration = parse_duration(value, error);
        if (!duration) return false;
        if (duration->count() <= 0) {
            error = "must be greater than 0";
            return false;
        }
        parent.retry_after = *duration;
    } else {
        error = "unknown key";
        return false;
    }
    return true;
}

// Collects values from inih's callbacks. inih (Debian's build) tells the
// handler no line number; it returns the first line whose handler returned
// 0, so the loader keeps only the first message and pairs it with that line.
struct Loader {
    Config config;
    std::string first_error;
    std::set<std::string> seen;  // "section\nkey" of single-valued keys
    std::set<std::string> list_keys_seen;
    std::set<std::string> listen_names;
    // Every [user NAME] section (even one without keys) and its
    // max_sessions, checked and applied once the users file is read.
    std::map<std::string, std::optional<uint64_t>> user_sections;
    bool acl_allow_clients_set = false;
    bool acl_connect_ports_set = false;

    bool fail(const std::string& message) {
        if (first_error.empty()) first_error = message;
        return false;
    }

    ParentConfig* parent(const std::string& name) {
        for (auto& p : config.parents) {
            if (p.name == name) return &p;
        }
        config.parents.push_back(ParentConfig{});
        config.parents.back().name = name;
        return &config.parents.back();
    }

    ListenConfig* listener(const std::string& name) {
        for (auto& l : config.listeners) {
            if (l.name == name) return &l;
        }
        config.listeners.push_back(ListenConfig{});
        config.listeners.back().name = name;
        return &config.listeners.back();
    }

    bool on_value(std::string_view section, std::string_view key, std::string_view value);
    bool on_user_value(std::string_view section, std::string_view key, std::string_view value);
};

std::string describe_key(std::string_view section, std::string_view key) {
    return "\"" + std::string(key) + "\" in [" + std::string(section) + "]";
}

bool Loader::on_value(std::string_view section, std::string_view key, std::string_view value) {
    std::string error;
    const std::string id = std::string(section) + "\n" + std::string(key);
    if (section.substr(0, 7) == "listen ") {
        std::string name(trim(section.substr(7)));
        if (name.empty()) return fail("[listen NAME] needs a name");
        if (seen.count(id)) return fail("duplicate key " + describe_key(section, key));
        seen.insert(id);
        if (!apply_listen_key(*listener(name), key, value, error)) {
            return fail((error == "unknown key" ? "unknown key " : "invalid value for ") +
                        describe_key(section, key) + (error == "unknown key" ? "" : ": " + error));
        }
        return true;
    }
    if (section.substr(0, 7) == "parent ") {
        std::string name(trim(section.substr(7)));
        if (seen.count(id)) return fail("duplicate key " + describe_key(section, key));
        seen.insert(id);
        if (!apply_parent_key(*parent(name), key, value, error)) {
            return fail((error == "unknown key" ? "unknown key " : "invalid value for ") +
                        describe_key(section, key) + (error == "unknown key" ? "" : ": " + error));
        }
        return true;
    }
    if (section.substr(0, 5) == "user ") return on_user_value(section, key, value);
    auto section_rules = schema().find(std::string(section));
    if (section_rules == schema().end()) {
        if (section == "listen") return fail("[listen] needs a name: [listen NAME]");
        return fail("unknown section [" + std::string(section) + "]");
    }
    auto rule = section_rules->second.find(std::string(key));
    if (rule == section_rules->second.end())
        return fail("unknown key " + describe_key(section, key));
    if (!rule->second.list) {
        if (seen.count(id)) {
            return fail("duplicate key " + describe_key(section, key) +
                        " (or a continuation line for a single-valued key)");
        }
        seen.insert(id);
    } else if (!list_keys_seen.count(id)) {
        // The first line of a list key replaces the built-in default.
        list_keys_seen.insert(id);
        if (key == "allow_clients") config.acl.allow_clients.clear();
        if (key == "connect_ports") config.acl.connect_ports.clear();
    }
    if (!rule->second.apply(config, value, error)) {
        return fail("invalid value for " + describe_key(section, key) + ": " + error);
    }
    return true;
}

// [user NAME]: per-user overrides. Whether NAME is a user is only known
// once the users file is read (load_users()).
bool Loader::on_user_value(std::string_view section, std::string_view key, std::string_view value) {
    std::string name(trim(section.substr(5)));
    if (name.empty()) return fail("[user NAME] needs a name");
    std::string id = "user " + name + "\n" + std::string(key);
    if (seen.count(id)) return fail("duplicate key " + describe_key(section, key));
    seen.insert(id);
    if (key != "max_sessions") return fail("unknown key " + describe_key(section, key));
    std::string error;
    auto count = parse_count(value, error);
    if (!count) return fail("invalid value for " + describe_key(section, key) + ": " + error);
    user_sections[name] = *count;
    return true;
}

int on_ini_value(void* user, const char* section, const char* key, const char* value) {
    return static_cast<Loader*>(user)->on_value(section, key, value) ? 1 : 0;
}

bool is_wildcard(const SocketAddress& address) {
    const std::string host = address.host_string();
    return host == "0.0.0.0" || host == "::";
}

// [parent NAME] sections and [route]: every parent has a URL and is used,
// every name [route] lists is a parent, TLS contexts for https parents.
bool validate_routing(Config& config, std::string& error) {
    std::set<std::string_view> listed;
    for (const std::string& name : config.route.parents) {
        if (!config.parent(name)) {
            error = "[route]: \"parents\" names \"" + name + "\", which is no [parent NAME]";
            return false;
        }
        if (!listed.insert(name).second) {
            error = "[route]: \"parents\" names \"" + name + "\" twice";
            return false;
        }
    }
    for (ParentConfig& parent : config.parents) {
        std::string where = "[parent " + parent.name + "]: ";
        if (parent.host.empty()) {
            error = where + "\"url\" is required";
            return false;
        }
        if (!listed.count(parent.name)) {
            error = where + "not used: list it in [route] parents";
            return false;
        }
        if (parent.scheme != ParentScheme::kHttps) {
            if (!parent.ca_file.empty()) {
                error = where + "\"ca_file\" is for https:// parents only";
                return false;
            }
            continue;
        }
        std::string tls_error;
        parent.tls_context = tls::create_client_context(parent.ca_file, tls_error);
        if (!parent.tls_context) {
            error = where + tls_error;
            return false;
        }
    }
    if (config.route.source_addresses.size() > kMaxSourceAddresses) {
        error = "[route]: \"source_addresses\" lists more than " +
                std::to_string(kMaxSourceAddresses) + " addresses";
        return false;
    }
    if (config.route.sticky_ttl.count() <= 0) {
        error = "[route]: \"sticky_ttl\" must be greater than 0";
        return false;
    }
    const LimitsConfig& limits = config.limits;
    if (limits.destination_rate > 0 &&
        (limits.destination_burst < 1 || limits.destination_burst > 1000000)) {
        error = "[limits]: \"destination_burst\" must be from 1 to 1000000";
        return false;
    }
    return true;
}

// The metrics endpoint must not take a listener's address: binding it would
// fail at start, or worse, a wildcard would take clients' connections.
bool validate_metrics(const MetricsConfig& metrics,
                      const std::vector<std::pair<SocketAddress, std::string>>& listeners,
                      std::string& error) {
    if (!metrics.listen || metrics.listen->port == 0) return true;
    auto address = SocketAddress::from_numeric(metrics.listen->host, metrics.listen->port);
    if (!address) return true;  // checked when parsed
    for (const auto& [other, name] : listeners) {
        const bool overlap = other.family() == address->family() &&
                             other.port() == address->port() &&
                             (is_wildcard(other) || is_wildcard(*address));
        if (other == *address || overlap) {
            error = "[metrics]: \"listen\" " + address->to_string() +
                    " is the address of [listen " + name + "]";
            return false;
        }
    }
    return true;
}

// proxy_protocol_from alone is refused rather than ignored: it reads as if
// the listener took PROXY headers, and it would not.
bool validate_proxy_protocol(ListenConfig& l, const std::string& where, std::string& error) {
    if (!l.proxy_protocol) {
        if (l.proxy_protocol_from.empty()) return true;
        error = where + "\"proxy_protocol_from\" needs \"proxy_protocol = yes\"";
        return false;
    }
    if (l.proxy_protocol_from.empty()) {
        std::string unused;
        l.proxy_protocol_from.push_back(*parse_cidr("127.0.0.1", unused));
    }
    return true;
}

// workers_min and workers_max bound an elastic pool: they mean nothing to a
// fixed count, and a reader of such a file would expect them to.
bool validate_worker_pool(MasterConfig& m, std::string& error) {
    if (!m.workers_auto) {
        if (m.workers_min != 0 || m.workers_max != 0) {
            error =
                "[master]: \"workers_min\" and \"workers_max\" apply only to \"workers = auto\"";
            return false;
        }
        return true;
    }
    std::string unused;
    if (m.workers_min == 0) m.workers_min = *parse_workers("auto", unused);
    if (m.workers_max == 0) m.workers_max = std::max(kDefaultWorkersMax, m.workers_min);
    if (m.workers_min > m.workers_max) {
        error = "[master]: \"workers_min\" (" + std::to_string(m.workers_min) +
                ") is above \"workers_max\" (" + std::to_string(m.workers_max) + ")";
        return false;
    }
    m.workers = m.workers_min;
    return true;
}

// Checks that need the whole file: required keys and relations between keys.
// Errors name the section and key, since they belong to no single line.
bool validate(Config& config, std::string& error) {
    if (config.listeners.empty()) {
        error = "no [listen NAME] section: nothing to serve";
        return false;
    }
    std::vector<std::pair<SocketAddress, std::string>> addresses;  // and the listener's name
    for (ListenConfig& l : config.listeners) {
        std::string where = "[listen " + l.name + "]: ";
        if (l.address.host.empty()) {
            error = where + "\"address\" is required";
            return false;
        }
        // Compared as addresses, so "[::1]:80" and "[0:0::1]:80" are one.
        auto address = SocketAddress::from_numeric(l.address.host, l.address.port);
        if (address && l.address.port != 0) {
            for (const auto& [other, other_name] : addresses) {
                if (other == *address) {
                    error =
                        where + "address " + address->to_string() + " is used by another listener";
                    return false;
                }
                // A wildcard address takes the port on every address of its
                // family: binding both fails (IPv6 sockets are V6ONLY).
                if (other.family() == address->family() && other.port() == address->port() &&
                    (is_wildcard(other) || is_wildcard(*address))) {
                    error = where + "address " + address->to_string() + " overlaps " +
                            other.to_string() + " of [listen " + other_name + "]";
                    return false;
                }
            }
            addresses.emplace_back(*address, l.name);
        }
        if (l.auth == ListenAuth::kPassword && config.auth.users_file.empty()) {
            error = where + "\"auth = password\" needs a users file ([auth] users_file)";
            return false;
        }
        if (l.tls_certificate.empty() != l.tls_key.empty()) {
            error = where + "\"tls_certificate\" and \"tls_key\" must be set together";
            return false;
        }
        if (!validate_proxy_protocol(l, where, error)) return false;
        if (l.tls()) {
            std::string tls_error;
            l.tls_context = tls::create_server_context(l.tls_certificate, l.tls_key, tls_error);
            if (!l.tls_context) {
                error = where + tls_error;
                return false;
            }
        }
    }
    if (!validate_metrics(config.metrics, addresses, error)) return false;
    const MasterConfig& m = config.master;
    if (m.heartbeat_interval.count() <= 0) {
        error = "[master]: \"heartbeat_interval\" must be greater than 0";
        return false;
    }
    if (m.heartbeat_timeout <= m.heartbeat_interval * 2) {
        error = "[master]: \"heartbeat_timeout\" must be more than twice \"heartbeat_interval\"";
        return false;
    }
    if (!validate_worker_pool(config.master, error)) return false;
    const LimitsConfig& limits = config.limits;
    if (limits.max_header_size < 1024 || limits.max_header_size > 1024 * 1024) {
        error = "[limits]: \"max_header_size\" must be from 1k to 1M";
        return false;
    }
    if (limits.max_headers < 1 || limits.max_headers > 256) {
        error = "[limits]: \"max_headers\" must be from 1 to 256";
        return false;
    }
    if (limits.buffer_size < 4096 || limits.buffer_size > 64 * 1024 * 1024) {
        error = "[limits]: \"buffer_size\" must be from 4k to 64M";
        return false;
    }
    if (limits.shared_table_keys < 16 || limits.shared_table_keys > 1048576) {
        error = "[limits]: \"shared_table_keys\" must be from 16 to 1048576";
        return false;
    }
    if (limits.shared_table_leases < 16 || limits.shared_table_leases > 4194304) {
        error = "[limits]: \"shared_table_leases\" must be from 16 to 4194304";
        return false;
    }
    if (config.resolver.nameservers.size() > kMaxNameservers) {
        error = "[resolver]: \"nameservers\" lists more than " + std::to_string(kMaxNameservers) +
                " servers";
        return false;
    }
    if (!validate_routing(config, error)) return false;
    const Duration* positive[] = {
        &limits.connect_timeout,           &limits.header_timeout,   &limits.idle_timeout,
        &limits.tunnel_idle_timeout,       &limits.upstream_timeout, &limits.dns_timeout,
        &limits.upstream_keepalive_timeout};
    for (const Duration* d : positive) {
        if (d->count() <= 0) {
            error = "[limits]: timeouts must be greater than 0";
            return false;
        }
    }
    return true;
}

// Reads the users file named in [auth] and resolves each user's limit.
// Errors from the file itself read "FILE:LINE: message"; the others are
// about our sections and start with ": [" for the caller to prefix.
bool load_users(AuthConfig& auth,
                const std::map<std::string, std::optional<uint64_t>>& user_sections,
                std::string& error) {
    if (auth.users_file.empty()) {
        if (!user_sections.empty()) {
            error = ": [user " + user_sections.begin()->first +
                    "]: there is no users file ([auth] users_file)";
            return false;
        }
        return true;
    }
    auto file = accounts::load_users_file(auth.users_file, error);
    if (!file) return false;
    for (accounts::UserEntry& entry : file->users) {
        auth.users.emplace(std::move(entry.name),
                           UserAccount{std::move(entry.hash), auth.max_sessions_per_user});
    }
    for (const auto& [name, limit] : user_sections) {
        auto user = auth.users.find(name);
        if (user == auth.users.end()) {
            error = ": [user " + name + "]: no user \"" + name + "\" in " + auth.users_file;
            return false;
        }
        if (limit) user->second.max_sessions = *limit;
    }
    return true;
}

bool known_section(std::string_view name) {
    return schema().count(std::string(name)) || name.substr(0, 7) == "listen " ||
           name.substr(0, 5) == "user " || name.substr(0, 7) == "parent ";
}

// A pass before inih for what it cannot report: lines longer than its buffer
// (it would silently split them) and section headers with no keys under them
// (it never calls the handler for those). Returns "LINE: message" or "".
struct SectionNames {
    std::vector<std::string> listeners;  // [listen NAME]
    std::vector<std::string> users;      // [user NAME]
    std::vector<std::string> parents;    // [parent NAME]
};

std::string prescan(const std::string& text, SectionNames& names) {
    std::istringstream lines(text);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > kMaxLineLength) {
            return std::to_string(number) + ": line longer than " + std::to_string(kMaxLineLength) +
                   " bytes";
        }
        std::string_view view = trim(line);
        if (view.empty() || view.front() != '[') continue;
        size_t close = view.find(']');
        if (close == std::string_view::npos) continue;  // inih reports it
        std::string_view name = trim(view.substr(1, close - 1));
        if (name == "listen")
            return std::to_string(number) + ": [listen] needs a name: [listen NAME]";
        if (name == "user") return std::to_string(number) + ": [user] needs a name: [user NAME]";
        if (name == "parent") {
            return std::to_string(number) + ": [parent] needs a name: [parent NAME]";
        }
        if (!known_section(name)) {
            return std::to_string(number) + ": unknown section [" + std::string(name) + "]";
        }
        if (name.substr(0, 7) == "listen ") names.listeners.emplace_back(trim(name.substr(7)));
        if (name.substr(0, 5) == "user ") names.users.emplace_back(trim(name.substr(5)));
        if (name.substr(0, 7) == "parent ") {
            std::string parent(trim(name.substr(7)));
            if (!http::is_token(parent) || parent.size() > 64) {
                return std::to_string(number) + ": [parent " + parent +
                       "]: a parent's name is 1-64 letters, digits or !#$%&'*+-.^_`|~";
            }
            if (parent == "direct") {
                return std::to_string(number) +
                       ": [parent direct]: \"direct\" names the routes without a parent";
            }
            names.parents.push_back(parent);
        }
    }
    return "";
}

// inih returns the first failing line, whether the handler refused a value
// there or the line was not INI at all. Parsing just the lines up to it again
// tells the two apart, so the message always belongs to the line it names.
std::string message_for_line(const std::string& text, int line) {
    size_t end = std::string::npos;
    size_t next = 0;
    for (int i = 0; i < line; ++i) {
        end = text.find('\n', next);
        if (end == std::string::npos) break;
        next = end + 1;
    }
    std::string head = end == std::string::npos ? text : text.substr(0, end + 1);
    Loader probe;
    ini_parse_string(head.c_str(), on_ini_value, &probe);
    if (!probe.first_error.empty()) return probe.first_error;
    return "syntax error (expected \"[section]\" or \"key = value\")";
}

Config defaults() {
    Config config;
    std::string unused;
    config.master.workers = *parse_workers("auto", unused);
    config.master.workers_auto = true;
    config.acl.allow_clients = *parse_cidr_list("127.0.0.0/8, ::1", unused);
    config.acl.connect_ports = *parse_port_list("443", unused);
    config.cluster.node = host_name();
    return config;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string& error) {
    std::string_view rest = trim(text);
    uint64_t value = 0;
    if (!parse_digits(rest, value)) {
        error = "\"" + std::string(text) + "\" is not a duration (e.g. 500ms, 10s, 5m, 1h)";
        return std::nullopt;
    }
    static const struct {
        const char* suffix;
        uint64_t ms;
    } kUnits[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000}};
    for (const auto& unit : kUnits) {
        uint64_t ms = 0;
        if (rest != unit.suffix) continue;
        if (!multiply(value, unit.ms, ms) || ms > 365ull * 24 * 3600000) {
            error = "\"" + std::string(text) + "\" is too long a duration";
            return std::nullopt;
        }
        return Duration(static_cast<int64_t>(ms));
    }
    error = "\"" + std::string(text) + "\" is not a duration (e.g. 500ms, 10s, 5m, 1h)";
    return std::nullopt;
}

std::optional<uint64_t> parse_size(std::string_view text, std::string& error) {
    std::string_view rest = trim(text);
    uint64_t value = 0;
    uint64_t factor = 1;
    bool ok = parse_digits(rest, value);
    if (ok && rest.size() == 1) {
        switch (rest[0]) {
            case 'k':
            case 'K':
                factor = 1ull << 10;
                break;
            case 'm':
            case 'M':
                factor = 1ull << 20;
                break;
            case 'g':
            case 'G':
                factor = 1ull << 30;
                break;
            default:
                ok = false;
        }
    } else if (ok && !rest.empty()) {
        ok = false;
    }
    uint64_t bytes = 0;
    if (!ok || !multiply(value, factor, bytes)) {
        error = "\"" + std::string(text) + "\" is not a size (e.g. 4096, 32k, 512M, 1G)";
        return std::nullopt;
    }
    return bytes;
}

std::optional<bool> parse_bool(std::string_view text, std::string& error) {
    for (const char* yes : {"yes", "on", "true", "1"}) {
        if (text == yes) return true;
    }
    for (const char* no : {"no", "off", "false", "0"}) {
        if (text == no) return false;
    }
    error = "\"" + std::string(text) + "\" is not a boolean (yes or no)";
    return std::nullopt;
}

std::optional<uint64_t> parse_count(std::string_view text, std::string& error) {
    std::string_view rest = trim(text);
    uint64_t value = 0;
    if (!parse_digits(rest, value) || !rest.empty()) {
        error = "\"" + std::string(text) + "\" is not a whole number";
        return std::nullopt;
    }
    return value;
}

ConfigPtr load_config(const std::string& path, std::string& error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        error = path + ": cannot open configuration file: " + std::strerror(errno);
        return nullptr;
    }
    std::stringstream contents;
    contents << file.rdbuf();
    std::string text = contents.str();
    SectionNames sections;
    if (std::string problem = prescan(text, sections); !problem.empty()) {
        error = path + ":" + problem;
        return nullptr;
    }
    Loader loader;
    loader.config = defaults();
    // inih never reports a section without keys; an empty [listen NAME]
    // must still fail validation ("address" is required), not vanish.
    for (const std::string& name : sections.listeners) loader.listener(name);
    for (const std::string& name : sections.users) loader.user_sections[name];
    for (const std::string& name : sections.parents) loader.parent(name);
    int line = ini_parse_string(text.c_str(), on_ini_value, &loader);
    if (line != 0) {
        error = path + ":" + std::to_string(line) + ": " + message_for_line(text, line);
        return nullptr;
    }
    std::string problem;
    if (!validate(loader.config, problem)) {
        error = path + ": " + problem;
        return nullptr;
    }
    // Its errors name the users file and its line, not ours.
    if (!load_users(loader.config.auth, loader.user_sections, problem)) {
        error = problem.find(':') == 0 ? path + problem : problem;
        return nullptr;
    }
    loader.config.path = path;
    return std::make_shared<const Config>(std::move(loader.config));
}

void ParentConfig::set_credentials(std::string user, std::string password) {
    authorization =
        "Proxy-Authorization: Basic " + accounts::encode_basic_token(user, password) + "\r\n";
    credentials.emplace(std::move(user), std::move(password));
}

std::string ParentConfig::authority() const {
    return (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const ParentConfig* Config::parent(std::string_view name) const {
    for (const ParentConfig& p : parents) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

uint64_t idle_upstream_limit(const LimitsConfig& limits) {
    return std::min(limits.upstream_keepalive_max_idle, limits.max_connections);
}

uint64_t max_connections_within(const Config& config, uint64_t descriptor_limit) {
    DescriptorBudget fixed = descriptor_budget(config);
    const uint64_t overhead = fixed.splice_pipes + fixed.listeners + fixed.fixed;
    if (descriptor_limit <= overhead) return 0;
    const uint64_t room = descriptor_limit - overhead;
    // Each session costs two descriptors (client and upstream) and, up to
    // upstream_keepalive_max_idle sessions, one idle pooled upstream more.
    const uint64_t max_idle = config.limits.upstream_keepalive_max_idle;
    if (room >= max_idle * 3) return (room - max_idle) / 2;
    return room / 3;
}

ConfigPtr resolve_max_connections(const ConfigPtr& config, uint64_t descriptor_limit,
                                  std::string& note) {
    note.clear();
    const uint64_t configured = config->limits.max_connections;
    const uint64_t fits = std::max<uint64_t>(1, max_connections_within(*config, descriptor_limit));
    uint64_t resolved = configured;
    if (configured == 0) {
        resolved = std::min(fits, kAutoMaxConnectionsCeiling);
    } else if (configured > fits) {
        resolved = fits;
        note = "max_connections = " + std::to_string(configured) + " needs " +
               std::to_string(descriptor_budget(*config).total()) +
               " descriptors per worker but the limit of open files is " +
               std::to_string(descriptor_limit) + ": each worker takes at most " +
               std::to_string(resolved) +
               " connections (raise the limit with ulimit -n or LimitNOFILE=)";
    }
    if (resolved == configured) return config;
    auto copy = std::make_shared<Config>(*config);
    copy->limits.max_connections = resolved;
    return copy;
}

DescriptorBudget descriptor_budget(const Config& config) {
    DescriptorBudget budget;
    budget.sessions = config.limits.max_connections * 2;
    budget.idle_upstreams = idle_upstream_limit(config.limits);
    budget.splice_pipes = kMaxSplicePipes * 2;
    budget.listeners = config.listeners.size();
    budget.fixed = kFixedDescriptors;
    return budget;
}

}  // namespace common
