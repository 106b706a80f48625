// Encoding and validation of channel records. The records are plain structs
// copied byte for byte; a SEQPACKET datagram is one record, so validation is
// a matter of checking the size against the header and every enum against
// its range before anyone reads a field.
#include "common/channel.h"

#include <cstring>
#include <string_view>
#include <type_traits>

namespace common::channel {

static_assert(std::is_trivially_copyable_v<Report>);
static_assert(std::is_trivially_copyable_v<Command>);
static_assert(std::is_trivially_copyable_v<UserSessions>);
static_assert(std::is_trivially_copyable_v<RouteStats>);
static_assert(std::is_trivially_copyable_v<ClusterStatus>);
static_assert(sizeof(ClusterStatus) ==
              sizeof(RecordHeader) + 8 + 3 * sizeof(uint64_t) + 8 + kMaxClusterError);
// No padding inside an entry: every byte of it is checked or carried.
static_assert(sizeof(RouteStat) == 3 * sizeof(uint64_t) + 8 + kMaxRouteName);

namespace {

RecordHeader make_header(RecordType type, uint32_t length) {
    RecordHeader header{};
    header.magic = kMagic;
    header.version = kVersion;
    header.type = static_cast<uint16_t>(type);
    header.length = length;
    header.reserved = 0;
    return header;
}

// Checks what every record shares: exact size, magic, version, type.
DecodeStatus check_header(const void* data, size_t size, RecordType type, size_t expected) {
    if (data == nullptr || size < sizeof(RecordHeader)) return DecodeStatus::kBadLength;
    RecordHeader header;
    std::memcpy(&header, data, sizeof header);
    if (header.magic != kMagic) return DecodeStatus::kBadMagic;
    if (header.version != kVersion) return DecodeStatus::kBadVersion;
    if (header.type != static_cast<uint16_t>(type)) return DecodeStatus::kBadType;
    if (size != expected || header.length != expected) return DecodeStatus::kBadLength;
    return DecodeStatus::kOk;
}

constexpr std::string_view kDirect = "direct";

// The rule of RouteStat's comment: "HEAD" or "HEAD@SOURCE" with one '@' at
// most and a source after it, where HEAD is the parent's name
// (parent_length bytes) or, for a direct route, "direct".
bool valid_route_names(const RouteStat& entry) {
    if (entry.name_length < 1 || entry.name_length > kMaxRouteName) return false;
    const std::string_view name(entry.name, entry.name_length);
    if (name.find('\0') != std::string_view::npos) return false;
    const size_t at = name.find('@');
    if (at != std::string_view::npos &&
        (at + 1 == name.size() || name.find('@', at + 1) != std::string_view::npos)) {
        return false;
    }
    const std::string_view head = name.substr(0, at);
    if (entry.parent_length == 0) return head == kDirect;
    return head.size() == entry.parent_length;
}

bool zero(const uint8_t* bytes, size_t size) {
    for (size_t i = 0; i < size; ++i) {
        if (bytes[i] != 0) return false;
    }
    return true;
}

}  // namespace

Report make_report() {
    Report report{};
    report.header = make_header(RecordType::kReport, sizeof(Report));
    report.layout = metrics::kLayout;
    return report;
}

UserSessions make_user_sessions() {
    UserSessions record{};
    record.header = make_header(RecordType::kUserSessions, sizeof(UserSessions));
    return record;
}

RouteStats make_route_stats() {
    RouteStats record{};
    record.header = make_header(RecordType::kRouteStats, sizeof(RouteStats));
    return record;
}

ClusterStatus make_cluster_status() {
    ClusterStatus record{};
    record.header = make_header(RecordType::kClusterStatus, sizeof(ClusterStatus));
    return record;
}

bool set_route_names(RouteStat& entry, std::string_view name, std::string_view parent) {
    if (name.empty() || name.size() > kMaxRouteName || parent.size() > name.size()) return false;
    std::memcpy(entry.name, name.data(), name.size());
    entry.name_length = static_cast<uint8_t>(name.size());
    entry.parent_length = static_cast<uint8_t>(parent.size());
    return valid_route_names(entry) && name.substr(0, parent.size()) == parent;
}

std::string_view route_name(const RouteStat& entry) {
    return std::string_view(entry.name, entry.name_length);
}

std::string_view route_parent(const RouteStat& entry) {
    return route_name(entry).substr(0, entry.parent_length);
}

std::string_view route_source(const RouteStat& entry) {
    const std::string_view name = route_name(entry);
    const size_t at = name.find('@');
    return at == std::string_view::npos ? std::string_view() : name.substr(at + 1);
}

Command make_command(CommandCode code) {
    Command command{};
    command.header = make_header(RecordType::kCommand, sizeof(Command));
    command.code = static_cast<uint32_t>(code);
    return command;
}

const char* describe(DecodeStatus status) {
    switch (status) {
        case DecodeStatus::kOk:
            return "ok";
        case DecodeStatus::kBadLength:
            return "bad record length";
        case DecodeStatus::kBadMagic:
            return "bad magic";
        case DecodeStatus::kBadVersion:
            return "unsupported record version";
        case DecodeStatus::kBadType:
            return "unexpected record type";
        case DecodeStatus::kBadValue:
            return "field out of range";
    }
    return "unknown decode status";
}

DecodeStatus decode_report(const void* data, size_t size, Report& out) {
    DecodeStatus status = check_header(data, size, RecordType::kReport, sizeof(Report));
    if (status != DecodeStatus::kOk) return status;
    Report report;
    std::memcpy(&report, data, sizeof report);
    // Same size, other table (fields renamed or reordered): not readable.
    if (report.layout != metrics::kLayout) return DecodeStatus::kBadVersion;
    if (report.state > static_cast<uint32_t>(WorkerState::kDraining))
        return DecodeStatus::kBadValue;
    if (report.accepting > 1) return DecodeStatus::kBadValue;
    if (report.pid <= 0) return DecodeStatus::kBadValue;
    out = report;
    return DecodeStatus::kOk;
}

std::optional<RecordType> record_type(const void* data, size_t size) {
    if (data == nullptr || size < sizeof(RecordHeader)) return std::nullopt;
    RecordHeader header;
    std::memcpy(&header, data, sizeof header);
    if (header.magic != kMagic || header.version != kVersion) return std::nullopt;
    switch (static_cast<RecordType>(header.type)) {
        case RecordType::kReport:
        case RecordType::kCommand:
        case RecordType::kUserSessions:
        case RecordType::kRouteStats:
        case RecordType::kClusterStatus:
            return static_cast<RecordType>(header.type);
    }
    return std::nullopt;
}

namespace {

// A record of per-name entries (UserSessions, RouteStats): the header, a
// sending pid, a count in range, and every entry in use valid by `valid`.
template <typename Record, typename Entry, size_t N, typename Valid>
DecodeStatus decode_entries(const void* data, size_t size, RecordType type,
                            Entry (Record::*entries)[N], Valid valid, Record& out) {
    DecodeStatus status = check_header(data, size, type, sizeof(Record));
    if (status != DecodeStatus::kOk) return status;
    Record record;
    std::memcpy(&record, data, sizeof record);
    if (record.pid <= 0 || record.count < 1 || record.count > N) return DecodeStatus::kBadValue;
    for (uint32_t i = 0; i < record.count; ++i) {
        if (!valid((record.*entries)[i])) return DecodeStatus::kBadValue;
    }
    out = record;
    return DecodeStatus::kOk;
}

}  // namespace

DecodeStatus decode_user_sessions(const void* data, size_t size, UserSessions& out) {
    return decode_entries(
        data, size, RecordType::kUserSessions, &UserSessions::users,
        [](const UserSessionCount& user) {
            return user.name_length >= 1 && user.name_length <= kMaxUserName &&
                   std::memchr(user.name, '\0', user.name_length) == nullptr;
        },
        out);
}

DecodeStatus decode_route_stats(const void* data, size_t size, RouteStats& out) {
    return decode_entries(
        data, size, RecordType::kRouteStats, &RouteStats::routes,
        [](const RouteStat& route) {
            return route.down <= 1 && zero(route.reserved, sizeof route.reserved) &&
                   valid_route_names(route);
        },
        out);
}

DecodeStatus decode_cluster_status(const void* data, size_t size, ClusterStatus& out) {
    DecodeStatus status =
        check_header(data, size, RecordType::kClusterStatus, sizeof(ClusterStatus));
    if (status != DecodeStatus::kOk) return status;
    ClusterStatus record;
    std::memcpy(&record, data, sizeof record);
    if (record.pid <= 0 || record.state > static_cast<uint32_t>(ClusterState::kDown) ||
        record.error_length > kMaxClusterError || !zero(record.reserved, sizeof record.reserved) ||
        std::memchr(record.error, '\0', record.error_length) != nullptr) {
        return DecodeStatus::kBadValue;
    }
    out = record;
    return DecodeStatus::kOk;
}

DecodeStatus decode_command(const void* data, size_t size, Command& out) {
    DecodeStatus status = check_header(data, size, RecordType::kCommand, sizeof(Command));
    if (status != DecodeStatus::kOk) return status;
    Command command;
    std::memcpy(&command, data, sizeof command);
    if (command.code < static_cast<uint32_t>(CommandCode::kDrain) ||
        command.code > static_cast<uint32_t>(CommandCode::kStop)) {
        return DecodeStatus::kBadValue;
    }
    out = command;
    return DecodeStatus::kOk;
}

}  // namespace common::channel
