#include "master/metrics_endpoint.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/libevent_handles.h"
#include "common/log.h"
#include "master/prometheus.h"

namespace master {

namespace {

common::ListenConfig as_listen_config(const common::HostPort& address) {
    common::ListenConfig config;
    config.name = "metrics";
    config.address = address;
    config.backlog = 64;
    return config;
}

// The port `fd` is bound to; 0 when it cannot be read.
uint16_t bound_port(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
    if (address.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    }
    if (address.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    }
    return 0;
}

struct EvhttpUriDeleter {
    void operator()(evhttp_uri* uri) const { evhttp_uri_free(uri); }
};
using EvhttpUriPtr = std::unique_ptr<evhttp_uri, EvhttpUriDeleter>;

}  // namespace

std::shared_ptr<const ListenSocket> bind_metrics_socket(const common::HostPort& address,
                                                        std::string& error, int* error_number) {
    return bind_socket(as_listen_config(address), error, error_number);
}

int metrics_status(evhttp_cmd_type method, const char* uri) {
    // Origin form only: "http://host/metrics" is a proxy request, never ours.
    if (uri == nullptr || uri[0] != '/') return 404;
    EvhttpUriPtr parsed(evhttp_uri_parse_with_flags(uri, EVHTTP_URI_NONCONFORMANT));
    if (!parsed || evhttp_uri_get_host(parsed.get()) != nullptr) return 404;
    const char* path = evhttp_uri_get_path(parsed.get());
    if (path == nullptr || std::strcmp(path, "/metrics") != 0) return 404;
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) return 405;
    return 200;
}

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::open(const common::MetricsConfig& config,
                                                       std::map<std::string, int>& inherited,
                                                       std::string& error) {
    std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
    endpoint->config_ = config;
    auto handed = inherited.find(kHandoverName);
    int fd = -1;
    if (handed != inherited.end()) {
        fd = handed->second;
        inherited.erase(handed);
    }
    if (!config.listen) {
        if (fd >= 0) ::close(fd);
        return endpoint;
    }
    common::ListenConfig listen = as_listen_config(*config.listen);
    // "Any port" is the port the old master had: a hot upgrade keeps it.
    if (fd >= 0 && listen.address.port == 0) listen.address.port = bound_port(fd);
    if (fd >= 0) {
        endpoint->socket_ = adopt_socket(listen, fd);
        if (!endpoint->socket_) ::close(fd);  // listens elsewhere: bound anew below
    }
    if (!endpoint->socket_) endpoint->socket_ = bind_metrics_socket(*config.listen, error);
    if (!endpoint->socket_) {
        error = "[metrics] \"listen\": " + error;
        return nullptr;
    }
    return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
    if (http_ != nullptr) evhttp_free(http_);
}

bool MetricsEndpoint::start(event_base* base, Render render, std::string& error) {
    if (!socket_) return true;
    render_ = std::move(render);
    http_ = evhttp_new(base);
    if (http_ == nullptr) {
        error = "evhttp_new() failed for the metrics endpoint";
        return false;
    }
    evhttp_set_timeout(http_, kTimeoutSeconds);
    evhttp_set_max_headers_size(http_, kMaxHeadersSize);
    evhttp_set_max_body_size(http_, kMaxBodySize);
    // Every method libevent parses reaches answer(), which says 404 or 405;
    // libevent itself would answer 501 to those it was not allowed.
    evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                          EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(http_, on_request, this);
    // evhttp closes what it is given: a duplicate, so the socket itself
    // stays ours to hand to a hot upgrade.
    const int fd = ::fcntl(socket_->fd.get(), F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || evhttp_accept_socket_with_handle(http_, fd) == nullptr) {
        error = std::string("cannot serve the metrics endpoint on ") + address() + " (" +
                std::strerror(errno) + ")";
        if (fd >= 0) ::close(fd);
        return false;
    }
    LOG_INFO("serving Prometheus metrics on http://%s/metrics", address().c_str());
    return true;
}

std::string MetricsEndpoint::address() const {
    return socket_ ? socket_->bound.to_string() : "off";
}

std::optional<Listener> MetricsEndpoint::handover() const {
    if (!socket_) return std::nullopt;
    common::ListenConfig config = as_listen_config(*config_.listen);
    config.name = kHandoverName;
    return Listener{std::move(config), socket_};
}

void MetricsEndpoint::on_request(evhttp_request* request, void* arg) noexcept {
    static_cast<MetricsEndpoint*>(arg)->answer(request);
}

void MetricsEndpoint::answer(evhttp_request* request) {
    evkeyvalq* headers = evhttp_request_get_output_headers(request);
    const int status =
        metrics_status(evhttp_request_get_command(request), evhttp_request_get_uri(request));
    common::EvBufferPtr body(evbuffer_new());
    if (!body) {
        evhttp_send_error(request, 500, "Internal Server Error");
        return;
    }
    // Not evhttp_send_error(): it drops the headers set here (Allow).
    const char* reason = status == 200 ? "OK" : status == 405 ? "Method Not Allowed" : "Not Found";
    const std::string text = status == 200 ? render_() : std::string(reason) + "\n";
    // evhttp would write a HEAD's body too: it gets the GET's length only.
    const bool head = evhttp_request_get_command(request) == EVHTTP_REQ_HEAD;
    if (head && status == 200) {
        evhttp_add_header(headers, "Content-Length", std::to_string(text.size()).c_str());
    } else {
        evbuffer_add(body.get(), text.data(), text.size());
    }
    if (status == 405) evhttp_add_header(headers, "Allow", "GET, HEAD");
    // A refused request gets no second chance on the connection. evhttp
    // writes no Content-Length in an answer to CONNECT (and closes it only
    // at the timeout): the length is given here, so the client need not
    // wait for the close to read the body.
    if (status != 200) {
        evhttp_add_header(headers, "Connection", "close");
        evhttp_add_header(headers, "Content-Length", std::to_string(text.size()).c_str());
    }
    evhttp_add_header(headers, "Content-Type",
                      status == 200 ? prometheus::kContentType : "text/plain; charset=utf-8");
    evhttp_send_reply(request, status, reason, body.get());
}

}  // namespace master
