// The master <-> worker channel: one SOCK_SEQPACKET socketpair per worker,
// carrying small fixed-size, versioned binary records. SEQPACKET keeps record
// boundaries, so one recv() is one record and a short or oversized datagram
// is simply malformed.
//
// Worker -> master: a Report every heartbeat_interval (the report is the
// heartbeat; the first one also says "ready"), followed by UserSessions
// records when users were admitted since the last one and RouteStats records
// when a route's counters or health changed. Master -> worker: a Command.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/error_class.h"
#include "common/metrics.h"

namespace common::channel {

constexpr uint32_t kMagic = 0x50524f58;  // "PROX"
// 2: the counters are a metrics::Counters, checked by Report::layout.
constexpr uint16_t kVersion = 2;

enum class RecordType : uint16_t {
    kReport = 1,
    kCommand = 2,
    kUserSessions = 3,
    kRouteStats = 4,
    kClusterStatus = 5,
};

struct RecordHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t type;    // RecordType
    uint32_t length;  // whole record, header included
    uint32_t reserved;
};

enum class WorkerState : uint32_t { kStarting = 0, kRunning = 1, kDraining = 2 };

struct Report {
    RecordHeader header;
    int32_t pid;
    uint32_t slot;
    uint32_t generation;
    uint32_t state;              // WorkerState
    uint32_t accepting;          // 1 while the worker accepts new connections
    uint32_t layout;             // metrics::kLayout: which metric table wrote `counters`
    metrics::Counters counters;  // every metric of common/metrics.h
};

// Sessions admitted per user since the worker's last UserSessions record:
// the per-user totals of `users` and `stats` are their sum. Deltas, so a
// record lost with a dying worker loses only its own counts. Names are
// those of the users file (1 to kMaxUserName bytes, no NUL).
constexpr size_t kMaxUserName = 64;
constexpr size_t kUsersPerRecord = 32;

struct UserSessionCount {
    uint64_t sessions;
    uint8_t name_length;
    char name[kMaxUserName];
    uint8_t reserved[7];
};

struct UserSessions {
    RecordHeader header;
    int32_t pid;
    uint32_t count;  // entries of `users` in use, 1..kUsersPerRecord
    UserSessionCount users[kUsersPerRecord];
};

// The routes whose counters or health changed since the worker's last
// RouteStats record (worker/route_reports.h). `active` and `down` are the
// worker's state now, and replace what it said before; `total_delta` and
// `failures_delta` count since its last record and add up to the totals of
// `proxyctl routes`, so a record lost with a dying worker loses only its own
// counts.
//
// A route's name is "direct", "direct@SOURCE", "PARENT" or "PARENT@SOURCE"
// (1 to kMaxRouteName bytes, no NUL). A parent's name is an HTTP token, which
// has no '@', so the name splits at its first '@'. `parent_length` says which
// kind it is, since "direct" is also a valid parent name: 0 for a direct
// route, else the length of the parent's name, which is the name's prefix up
// to its '@' or its end.
constexpr size_t kMaxRouteName = 128;
constexpr size_t kRoutesPerRecord = 32;

struct RouteStat {
    uint64_t active;          // sessions using the route now (a gauge)
    uint64_t total_delta;     // sessions that went out by it since the last record
    uint64_t failures_delta;  // dials that failed for reasons of the route, since then
    uint8_t down;             // 1 while this worker holds the route down, else 0
    uint8_t name_length;      // 1..kMaxRouteName
    uint8_t parent_length;    // 0: direct; else the parent's name is name[0, parent_length)
    uint8_t reserved[5];      // 0
    char name[kMaxRouteName];
};

struct RouteStats {
    RecordHeader header;
    int32_t pid;
    uint32_t count;  // entries of `routes` in use, 1..kRoutesPerRecord
    RouteStat routes[kRoutesPerRecord];
};

// The worker's connection to the cluster store ([cluster] redis), with
// every heartbeat while it is set (worker/redis_shared_state.h). Its
// counters (commands, errors, fallbacks...) travel in the Report's metrics;
// this carries what is not a number to add up.
enum class ClusterState : uint32_t { kOff = 0, kConnecting = 1, kUp = 2, kDown = 3 };
constexpr size_t kMaxClusterError = 160;

struct ClusterStatus {
    RecordHeader header;
    int32_t pid;
    uint32_t state;            // ClusterState
    uint64_t latency_ewma_us;  // of the replies
    uint64_t latency_max_us;   // since the last record
    int64_t error_at_ms;       // Unix time of last_error; 0: none yet
    uint16_t error_length;     // 0..kMaxClusterError
    uint8_t reserved[6];       // 0
    char error[kMaxClusterError];
};

enum class CommandCode : uint32_t {
    kDrain = 1,        // stop accepting, finish sessions, exit
    kPauseAccept = 2,  // accept balancing: stop taking new connections
    kResumeAccept = 3,
    kReopenLogs = 4,
    kStop = 5,  // exit now
};

struct Command {
    RecordHeader header;
    uint32_t code;  // CommandCode
    uint32_t reserved;
};

Report make_report();
Command make_command(CommandCode code);
UserSessions make_user_sessions();
RouteStats make_route_stats();
ClusterStatus make_cluster_status();

// Sets the name and the kind of `entry` from a route's name and its parent's
// name (empty for a direct route). False, with `entry`'s names unusable,
// when they cannot travel: a name out of 1..kMaxRouteName bytes or with a
// NUL, or a parent that is not the name's part before '@' (a direct route's
// is "direct").
bool set_route_names(RouteStat& entry, std::string_view name, std::string_view parent);
// A valid entry's name, and its parts: the parent's name ("" for a direct
// route) and the source address ("" for the kernel's choice).
std::string_view route_name(const RouteStat& entry);
std::string_view route_parent(const RouteStat& entry);
std::string_view route_source(const RouteStat& entry);

enum class DecodeStatus { kOk, kBadLength, kBadMagic, kBadVersion, kBadType, kBadValue };
const char* describe(DecodeStatus status);

// Validates `size` bytes received as one record and copies them into `out`.
// Nothing about the bytes is trusted: length, magic, version, type, the
// metric table's fingerprint and enum values are all checked.
// The type of the record in `data` (a header's worth is checked: magic and
// version), or nullopt when it has none; then decode it by that type.
std::optional<RecordType> record_type(const void* data, size_t size);
DecodeStatus decode_report(const void* data, size_t size, Report& out);
// Also checks each entry: a count in range, names 1..kMaxUserName bytes
// without NUL.
DecodeStatus decode_user_sessions(const void* data, size_t size, UserSessions& out);
// Also checks each entry: a count in range, names that set_route_names()
// accepts, `down` 0 or 1, reserved bytes 0.
DecodeStatus decode_route_stats(const void* data, size_t size, RouteStats& out);
// Also checks the state, the error's length (no NUL in it) and reserved bytes.
DecodeStatus decode_cluster_status(const void* data, size_t size, ClusterStatus& out);
DecodeStatus decode_command(const void* data, size_t size, Command& out);

}  // namespace common::channel
