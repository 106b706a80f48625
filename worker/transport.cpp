#include "worker/transport.h"

#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/tls.h"

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

namespace {

bool can_send_now(bufferevent* bev) {
    return evbuffer_get_length(bufferevent_get_output(bev)) == 0 && is_plain_tcp(bev);
}

}  // namespace

void send_or_queue(bufferevent* bev, const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    if (can_send_now(bev)) {
        ssize_t sent = send(bufferevent_getfd(bev), bytes, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            bytes += sent;
            size -= static_cast<size_t>(sent);
        }
    }
    if (size == 0) return;
    bufferevent_write(bev, bytes, size);
    enable_writing(bev);
}

void send_or_queue(bufferevent* bev, evbuffer* from, size_t size) {
    if (can_send_now(bev)) {
        int sent =
            evbuffer_write_atmost(from, bufferevent_getfd(bev), static_cast<ev_ssize_t>(size));
        if (sent > 0) size -= static_cast<size_t>(sent);
    }
    if (size == 0) return;
    evbuffer_remove_buffer(from, bufferevent_get_output(bev), size);
    enable_writing(bev);
}

void enable_writing(bufferevent* bev) {
    if (!(bufferevent_get_enabled(bev) & EV_WRITE)) bufferevent_enable(bev, EV_WRITE);
}

bool is_plain_tcp(bufferevent* bev) {
    return bufferevent_openssl_get_ssl(bev) == nullptr;
}

bool reset_by_peer(bufferevent* bev) {
    tcp_info info{};
    socklen_t length = sizeof info;
    if (getsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
        return false;
    }
    return info.tcpi_state == TCP_CLOSE;
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
