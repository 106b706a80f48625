// Fuzzes the channel record decoders and the JSON proxyctl reads from the
// control socket (common/json_util.h over nlohmann-json): no input may crash
// or throw, and whatever decodes must re-encode to the same bytes (records)
// or re-parse to the same line (JSON), within the nesting limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/channel.h"
#include "common/json_util.h"

namespace ch = common::channel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ch::Report report;
    if (ch::decode_report(data, size, report) == ch::DecodeStatus::kOk) {
        if (size != sizeof report || std::memcmp(&report, data, size) != 0) std::abort();
        if (report.state > 2 || report.accepting > 1) std::abort();
        if (report.layout != common::metrics::kLayout) std::abort();
    }
    ch::Command command;
    if (ch::decode_command(data, size, command) == ch::DecodeStatus::kOk) {
        if (size != sizeof command || std::memcmp(&command, data, size) != 0) std::abort();
    }
    ch::UserSessions sessions;
    if (ch::decode_user_sessions(data, size, sessions) == ch::DecodeStatus::kOk) {
        if (size != sizeof sessions || std::memcmp(&sessions, data, size) != 0) std::abort();
    }
    ch::RouteStats routes;
    if (ch::decode_route_stats(data, size, routes) == ch::DecodeStatus::kOk) {
        if (size != sizeof routes || std::memcmp(&routes, data, size) != 0) std::abort();
    }
    ch::ClusterStatus cluster;
    if (ch::decode_cluster_status(data, size, cluster) == ch::DecodeStatus::kOk) {
        if (size != sizeof cluster || std::memcmp(&cluster, data, size) != 0) std::abort();
        if (cluster.error_length > ch::kMaxClusterError || cluster.state > 3) std::abort();
    }
    // Whatever decodes has the type its header says.
    std::optional<ch::RecordType> type = ch::record_type(data, size);
    if (ch::decode_report(data, size, report) == ch::DecodeStatus::kOk &&
        type != ch::RecordType::kReport) {
        std::abort();
    }
    // The input as the entries of a record with a valid header, so the
    // per-entry checks are reached: every accepted entry is a usable name.
    ch::UserSessions built = ch::make_user_sessions();
    std::memcpy(reinterpret_cast<unsigned char*>(&built) + sizeof built.header, data,
                std::min(size, sizeof built - sizeof built.header));
    if (ch::decode_user_sessions(&built, sizeof built, sessions) == ch::DecodeStatus::kOk) {
        if (sessions.count < 1 || sessions.count > ch::kUsersPerRecord || sessions.pid <= 0) {
            std::abort();
        }
        for (uint32_t i = 0; i < sessions.count; ++i) {
            const ch::UserSessionCount& user = sessions.users[i];
            if (user.name_length < 1 || user.name_length > ch::kMaxUserName) std::abort();
            if (std::memchr(user.name, '\0', user.name_length) != nullptr) std::abort();
        }
    }
    // The same for route stats: every accepted entry has a usable name whose
    // parts the master can read, and a name that is valid travels again.
    ch::RouteStats built_routes = ch::make_route_stats();
    std::memcpy(reinterpret_cast<unsigned char*>(&built_routes) + sizeof built_routes.header, data,
                std::min(size, sizeof built_routes - sizeof built_routes.header));
    if (ch::decode_route_stats(&built_routes, sizeof built_routes, routes) ==
        ch::DecodeStatus::kOk) {
        if (routes.count < 1 || routes.count > ch::kRoutesPerRecord || routes.pid <= 0) {
            std::abort();
        }
        for (uint32_t i = 0; i < routes.count; ++i) {
            const ch::RouteStat& route = routes.routes[i];
            const std::string_view name = ch::route_name(route);
            if (name.empty() || name.size() > ch::kMaxRouteName || route.down > 1) std::abort();
            if (name.find('\0') != std::string_view::npos) std::abort();
            const std::string_view parent = ch::route_parent(route);
            const std::string_view source = ch::route_source(route);
            const std::string_view head = parent.empty() ? "direct" : parent;
            if (name != (source.empty() ? std::string(head)
                                        : std::string(head) + "@" + std::string(source))) {
                std::abort();
            }
            ch::RouteStat again{};
            if (!ch::set_route_names(again, name, parent)) std::abort();
            if (again.parent_length != route.parent_length) std::abort();
        }
    }
    (void)ch::describe(ch::DecodeStatus::kBadValue);

    // Exceptions are failures too: parse_untrusted() and to_line() promise
    // none, and libFuzzer reports an escaping one as a crash.
    std::string_view text(reinterpret_cast<const char*>(data), size);
    common::Json value = common::parse_untrusted(text);
    if (!value.is_discarded()) {
        std::string line = common::to_line(value);
        if (line.find('\n') != std::string::npos) std::abort();
        common::Json again = common::parse_untrusted(line);
        if (again.is_discarded() || common::to_line(again) != line) std::abort();
    }
    return 0;
}
