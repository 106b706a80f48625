#include "master/silence.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "common/libevent_handles.h"

namespace master {

namespace {

using std::chrono::duration_cast;
using Nanos = std::chrono::nanoseconds;

// Reads one decimal field followed by a space, a newline or the end.
bool read_field(std::string_view& text, uint64_t& value) {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr == text.data()) return false;
    text.remove_prefix(static_cast<size_t>(ptr - text.data()));
    if (!text.empty() && text.front() != ' ' && text.front() != '\n') return false;
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    return true;
}

// The start of /proc/PID/FILE; "" when unreadable.
std::string read_proc(pid_t pid, const char* file) {
    const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return "";
    char buf[512];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

Nanos between(uint64_t from, uint64_t to) {
    return Nanos{static_cast<int64_t>(to - from)};
}

bool backwards(const SchedSample& from, const SchedSample& to) {
    return to.cpu_ns < from.cpu_ns || to.wait_ns < from.wait_ns;
}

}  // namespace

std::optional<SchedSample> parse_schedstat(std::string_view text) {
    SchedSample sample;
    uint64_t timeslices = 0;
    if (!read_field(text, sample.cpu_ns) || !read_field(text, sample.wait_ns) ||
        !read_field(text, timeslices)) {
        return std::nullopt;
    }
    if (!text.empty() && text != "\n") return std::nullopt;
    return sample;
}

char parse_stat_state(std::string_view text) {
    // The command name may hold anything, ")" included: the last one ends it.
    size_t close = text.rfind(')');
    if (close == std::string_view::npos || close + 2 >= text.size() || text[close + 1] != ' ') {
        return '?';
    }
    return text[close + 2];
}

std::optional<SchedSample> read_sched_sample(pid_t pid) {
    std::optional<SchedSample> sample = parse_schedstat(read_proc(pid, "schedstat"));
    if (sample) sample->state = parse_stat_state(read_proc(pid, "stat"));
    return sample;
}

SchedTrack start_track(const std::optional<SchedSample>& sample) {
    SchedTrack track;
    track.first = sample;
    track.last = sample;
    track.broken = !sample;
    return track;
}

void add_reading(SchedTrack& track, const std::optional<SchedSample>& sample,
                 common::Duration elapsed) {
    if (track.broken || !track.last || !sample || backwards(*track.last, *sample)) {
        track.broken = true;
        return;
    }
    if (track.last->state == 'R' && sample->state == 'R') {
        Nanos idle = duration_cast<Nanos>(elapsed) - between(track.last->cpu_ns, sample->cpu_ns);
        if (idle.count() > 0) track.queued += duration_cast<common::Duration>(idle);
    }
    track.last = sample;
}

const char* silence_name(Silence silence) {
    switch (silence) {
        case Silence::kStarved:
            return "starved";
        case Silence::kSpinning:
            return "spinning";
        case Silence::kBlocked:
            return "blocked";
        case Silence::kUnknown:
            return "unknown";
    }
    return "unknown";
}

Silence classify_silence(const SchedTrack& track, common::Duration silent,
                         common::Duration heartbeat_interval) {
    if (track.broken || !track.first || !track.last) return Silence::kUnknown;
    const SchedSample& first = *track.first;
    const SchedSample& last = *track.last;
    const Nanos ran = between(first.cpu_ns, last.cpu_ns);
    const Nanos waited =
        std::max(between(first.wait_ns, last.wait_ns), duration_cast<Nanos>(track.queued));
    if (ran * 2 > heartbeat_interval * 3) return Silence::kSpinning;
    if (waited * 4 >= silent) return Silence::kStarved;
    return Silence::kBlocked;
}

std::string describe_track(const SchedTrack& track) {
    if (track.broken || !track.first || !track.last) return "no scheduler counters";
    const SchedSample& first = *track.first;
    const SchedSample& last = *track.last;
    auto ms = [](Nanos n) { return std::to_string(n.count() / 1000000) + " ms"; };
    const Nanos waited =
        std::max(between(first.wait_ns, last.wait_ns), duration_cast<Nanos>(track.queued));
    return "ran " + ms(between(first.cpu_ns, last.cpu_ns)) + ", waited " + ms(waited) +
           " to run, state " + std::string(1, last.state);
}

}  // namespace master
