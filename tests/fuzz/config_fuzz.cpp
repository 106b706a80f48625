// libFuzzer target for common/config.
//
// The input is written as-is to one temp file (named once, rewritten for
// each input) and loaded with load_config(), so seeds are plain .conf files.
// Besides memory errors and crashes it checks the loader's contract: exactly
// one of a config or an error, the error names the file, and a loaded config
// satisfies every validation rule.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

// The name is reserved once with mkstemp; the file is rewritten for each
// input and unlinked after it, so no exit path (libFuzzer may _Exit) leaves
// it behind.
const std::string& temp_path() {
    static const std::string path = [] {
        char tmpl[] = "/tmp/proxyd-config-fuzz-XXXXXX";
        int fd = mkstemp(tmpl);
        check(fd >= 0);
        close(fd);
        return std::string(tmpl);
    }();
    return path;
}

void write_input(const uint8_t* data, size_t size) {
    int fd = open(temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    check(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        check(n > 0);
        done += static_cast<size_t>(n);
    }
    check(close(fd) == 0);
}

void check_config(const common::Config& c) {
    check(c.path == temp_path());
    check(!c.listeners.empty());
    for (const common::ListenConfig& l : c.listeners) {
        check(!l.name.empty() && !l.address.host.empty());
        check(l.backlog >= 1 && l.backlog <= 65535);
        check(l.tls_certificate.empty() == l.tls_key.empty());
    }
    check(c.master.workers >= 1 && c.master.workers <= 1024);
    if (c.master.workers_auto) {
        check(c.master.workers_min >= 1 && c.master.workers_min <= c.master.workers_max);
        check(c.master.workers_max <= 1024 && c.master.workers == c.master.workers_min);
    } else {
        check(c.master.workers_min == 0 && c.master.workers_max == 0);
    }
    check(c.master.heartbeat_interval.count() > 0);
    check(c.master.heartbeat_timeout > c.master.heartbeat_interval * 2);
    check(c.master.max_draining_generations >= 1 && c.master.max_draining_generations <= 16);
    check(c.limits.max_header_size >= 1024 && c.limits.max_header_size <= 1024 * 1024);
    check(c.limits.max_headers >= 1 && c.limits.max_headers <= 256);
    check(c.limits.buffer_size >= 4096 && c.limits.buffer_size <= 64 * 1024 * 1024);
    check(c.limits.connect_timeout.count() > 0 && c.limits.dns_timeout.count() > 0);
    for (const common::PortRange& r : c.acl.connect_ports) check(r.first >= 1 && r.first <= r.last);
    for (const common::Cidr& r : c.acl.allow_clients) {
        check(r.prefix >= 0 && r.prefix <= (r.family == AF_INET ? 32 : 128));
    }
}

// max_connections is a number or auto (0); whichever, what the master makes
// of it under a limit of open files leaves each worker at least one session
// and a budget inside the limit, and never raises a number.
void check_descriptor_fit(const common::ConfigPtr& config) {
    constexpr uint64_t kLimit = 20000;
    std::string note;
    common::ConfigPtr resolved = common::resolve_max_connections(config, kLimit, note);
    const uint64_t configured = config->limits.max_connections;
    check(resolved->limits.max_connections >= 1);
    check(configured == 0 || resolved->limits.max_connections <= configured);
    check(common::descriptor_budget(*resolved).total() <= kLimit);
    check(note.empty() == (configured == 0 || resolved->limits.max_connections == configured));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    write_input(data, size);
    std::string error;
    common::ConfigPtr config = common::load_config(temp_path(), error);
    unlink(temp_path().c_str());
    if (config) {
        check(error.empty());
        check_config(*config);
        check_descriptor_fit(config);
    } else {
        check(error.rfind(temp_path() + ":", 0) == 0);
        check(error.size() > temp_path().size() + 1);
    }
    return 0;
}
