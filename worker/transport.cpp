#include "worker/transport.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "common/channel.h"
#include "common/log.h"
#include "common/tls.h"
#include "worker/client_session.h"

namespace worker {

common::BufferEventPtr make_client_transport(event_base* base, evutil_socket_t fd,
                                             const common::ListenConfig& listener) {
    bufferevent* bev = nullptr;
    if (listener.tls_context) {
        SSL* ssl = SSL_new(listener.tls_context.get());
        if (ssl == nullptr) {
            LOG_ERROR("SSL_new() failed: %s", common::tls::take_openssl_errors().c_str());
            evutil_closesocket(fd);
            return nullptr;
        }
        // The bufferevent owns the SSL object and the socket from here on.
        bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == nullptr) {
            SSL_free(ssl);
        } else {
            // A client that closes without close_notify ends its stream,
            // like a TCP EOF; it is not an attack on a proxy's framing.
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        }
    } else {
        bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == nullptr) {
        LOG_ERROR("cannot create a bufferevent for listener \"%s\"", listener.name.c_str());
        evutil_closesocket(fd);
    }
    return common::BufferEventPtr(bev);
}

void set_io_size(bufferevent* bev, size_t bytes) {
    auto size = static_cast<ev_ssize_t>(bytes);
    bufferevent_set_max_single_read(bev, size);
    bufferevent_set_max_single_write(bev, size);
}

std::string transport_error(bufferevent* bev) {
    std::string text;
    while (unsigned long code = bufferevent_get_openssl_error(bev)) {
        char line[256];
        ERR_error_string_n(code, line, sizeof(line));
        if (!text.empty()) text += "; ";
        text += line;
    }
    return text;
}

}  // namespace worker

namespace worker {

void ClientSession::note_transport_error(bufferevent* bev, const std::string& client) {
    std::string tls_error = transport_error(bev);
    if (tls_error.empty()) return;
    context_.counters.errors[common::channel::kErrClientProtocol]++;
    LOG_INFO("TLS error with client %s: %s", client.c_str(), tls_error.c_str());
}

}  // namespace worker
