// libevent takes timeouts as struct timeval; the configuration holds
// std::chrono durations. One conversion for both.
#pragma once

#include <sys/time.h>

#include <chrono>

namespace common {

inline timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

}  // namespace common
