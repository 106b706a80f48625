#include "common/libevent_log.h"

#include <event2/event.h>

#include <cstdlib>

#include "common/log.h"

namespace common {

namespace {

void on_libevent_log(int severity, const char* message) noexcept {
    switch (severity) {
        case EVENT_LOG_DEBUG:
            LOG_DEBUG("libevent: %s", message);
            break;
        case EVENT_LOG_MSG:
            LOG_INFO("libevent: %s", message);
            break;
        case EVENT_LOG_WARN:
            LOG_WARN("libevent: %s", message);
            break;
        default:
            LOG_ERROR("libevent: %s", message);
            break;
    }
}

[[noreturn]] void on_libevent_fatal(int error) noexcept {
    LOG_ALERT("libevent fatal error %d", error);
    std::abort();
}

}  // namespace

void route_libevent_logs() {
    event_set_log_callback(on_libevent_log);
    event_set_fatal_callback(on_libevent_fatal);
}

}  // namespace common
