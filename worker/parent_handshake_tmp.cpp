// TEMPORARY until the handshake branch lands.
#include "worker/parent_handshake.h"
namespace worker {
bool is_route_failure(ParentError error) {
    return error == ParentError::kTls || error == ParentError::kProtocol ||
           error == ParentError::kClosed || error == ParentError::kTimeout;
}
void append_parent_authorization(const common::ParentConfig&, std::string&) {}
ParentHandshake::ParentHandshake(event_base*, const common::ParentConfig&, std::string_view,
                                 std::chrono::milliseconds, size_t) {}
void ParentHandshake::start(common::BufferEventPtr connection, std::optional<TunnelTarget>,
                            Callback callback) {
    ParentResult result;
    result.connection = std::move(connection);
    callback(std::move(result));
}
}  // namespace worker
