// Routes libevent's own diagnostics into proxyd's error log, so they carry
// the time, pid and role like every other line instead of going to stderr
// raw. A libevent fatal error is logged as an alert before the abort.
#pragma once

namespace common {

void route_libevent_logs();

}  // namespace common
