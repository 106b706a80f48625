// The Prometheus endpoint: `[metrics] listen = host:port`, served by the
// master itself on its own event loop (libevent's evhttp), so it answers
// while workers are busy, hung or stopped. It is never a proxy:
//
//   request                                   answer
//   ----------------------------------------  -------------------------------
//   GET or HEAD /metrics (a query is ignored)  200, text format 0.0.4
//   another method on /metrics                 405, Allow: GET, HEAD
//   any other path, absolute-form, CONNECT     404
//   a method libevent does not know, a head    400 (libevent)
//   over kMaxHeadersSize, a body over
//   kMaxBodySize
//
// Connections idle for kTimeoutSeconds are closed, and so is every
// connection after a refused request. The socket is bound by
// open() before the master drops its privileges (a port below 1024 works),
// and handed to a hot upgrade's new master like the listeners (under the
// name kHandoverName). A reload never rebinds it: a changed `listen` takes
// effect at the next start or hot upgrade, and the reload says so.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <event2/event.h>
#include <event2/http.h>

#include "common/config.h"
#include "master/listeners.h"

namespace master {

class MetricsEndpoint {
  public:
    static constexpr const char* kHandoverName = "[metrics]";
    static constexpr int kTimeoutSeconds = 10;
    static constexpr size_t kMaxHeadersSize = 8192;
    static constexpr size_t kMaxBodySize = 1024;

    // Produces the exposition text; called once per GET.
    using Render = std::function<std::string()>;

    // Binds `config.listen`, or adopts the descriptor a hot upgrade handed
    // over under kHandoverName (erased from `inherited` when adopted; closed
    // and bound anew when it listens elsewhere). A config without `listen`
    // gives an endpoint that serves nothing. nullptr with `error`.
    static std::unique_ptr<MetricsEndpoint> open(const common::MetricsConfig& config,
                                                 std::map<std::string, int>& inherited,
                                                 std::string& error);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    // Starts serving on `base`. False with `error` when evhttp cannot be set up.
    bool start(event_base* base, Render render, std::string& error);

    // "127.0.0.1:9145" as bound (port 0 resolved), or "off".
    std::string address() const;
    // The address as configured, to tell a reload that changed it.
    const common::MetricsConfig& config() const { return config_; }
    // The socket as a listener, for a hot upgrade's handover; none when off.
    std::optional<Listener> handover() const;

  private:
    MetricsEndpoint() = default;
    static void on_request(evhttp_request* request, void* arg) noexcept;
    void answer(evhttp_request* request);

    common::MetricsConfig config_;
    std::shared_ptr<const ListenSocket> socket_;
    evhttp* http_ = nullptr;
    Render render_;
};

// Binds a socket for `address` as open() does, with bind_socket()'s error
// and errno (for proxyd -t, master/preflight.h).
std::shared_ptr<const ListenSocket> bind_metrics_socket(const common::HostPort& address,
                                                        std::string& error,
                                                        int* error_number = nullptr);

// Whether `method` and `uri` (as the request line has them) ask for the
// metrics: 200, 404 or 405, the table above. Pure, for the tests.
int metrics_status(evhttp_cmd_type method, const char* uri);

}  // namespace master
