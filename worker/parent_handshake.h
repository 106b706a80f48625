// PLACEHOLDER until the handshake branch lands (same interface).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/libevent_handles.h"
#include "worker/deferred_delete.h"

namespace worker {

enum class ParentError { kNone, kTls, kAuth, kRefused, kProtocol, kClosed, kTimeout, kNoResources };

struct ParentResult {
    ParentError error = ParentError::kNone;
    std::string detail;
    int http_status = 0;
    uint8_t socks_reply = 0;
    common::BufferEventPtr connection;
};

struct TunnelTarget {
    std::string host;
    uint16_t port = 0;
    bool ip_literal = false;
};

bool is_route_failure(ParentError error);
void append_parent_authorization(const common::ParentConfig& parent, std::string& out);

class ParentHandshake final : public Deferrable {
  public:
    using Callback = std::function<void(ParentResult&&)>;
    ParentHandshake(event_base* base, const common::ParentConfig& parent,
                    std::string_view pseudonym, std::chrono::milliseconds timeout,
                    size_t max_head);
    void start(common::BufferEventPtr connection, std::optional<TunnelTarget> tunnel_to,
               Callback callback);
};

}  // namespace worker
