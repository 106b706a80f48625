// What every kind of client session (HTTP, SOCKS) is to the worker, and who
// owns it: the worker's SessionList, never the session itself. A session
// that is done calls close(): it leaves the live list at once (its count,
// the acceptor's limit and a drain see it gone) and goes to the worker's
// graveyard (deferred_delete.h), so it is freed only after the callback
// that closed it has returned.
#pragma once

#include <event2/bufferevent.h>

#include <list>
#include <memory>
#include <string>

#include "common/address.h"
#include "common/config.h"
#include "worker/deferred_delete.h"
#include "worker/worker_context.h"

namespace worker {

class ClientSession : public Deferrable {
  public:
    // The worker began draining: finish what is in flight, take nothing new.
    virtual void on_drain() = 0;
    // Whether construction got every timer it needs (libevent may be out of
    // memory); only a ready session is served.
    virtual bool ready() const = 0;
    // Starts reading and arms the session's first timeout.
    virtual void serve() = 0;
    // Whether opening it counts in total_sessions. A step before the real
    // session (the PROXY header, proxy_header.h) is not counted: the
    // session it starts is.
    virtual bool counts_in_total() const { return true; }
    // Ends the session now; idempotent.
    void close();
    bool closed() const { return retired(); }

  protected:
    ClientSession(WorkerContext& context, const common::ListenConfig& listener,
                  const common::SocketAddress& client)
        : context_(context),
          listener_(listener),
          client_address_(client),
          client_text_(client.to_string()) {}

    // Runs once as close() begins: let go of helpers that must not act any
    // more (an HTTP exchange).
    virtual void on_close() {}

    // Counts and logs (at info: it is the client's doing) a TLS failure on
    // the client's transport after an error event; nothing for plain TCP.
    void note_transport_error(bufferevent* bev);

    WorkerContext& context_;
    const common::ListenConfig& listener_;  // the listener that accepted the client
    const common::SocketAddress client_address_;
    const std::string client_text_;  // "address:port", for logs

  private:
    friend class SessionList;
    std::list<std::unique_ptr<ClientSession>>::iterator entry_;
};

// The worker's live sessions.
class SessionList {
  public:
    // `on_closed(arg)` runs after each session leaves the list.
    SessionList(WorkerContext& context, void (*on_closed)(void*), void* arg)
        : context_(context), on_closed_(on_closed), on_closed_arg_(arg) {}
    ~SessionList() { close_all(); }
    SessionList(const SessionList&) = delete;
    SessionList& operator=(const SessionList&) = delete;

    // Takes a new session: serves and counts it when it is ready, else
    // closes its connection at once (counted as an internal error).
    void open(std::unique_ptr<ClientSession> session);
    bool empty() const { return live_.empty(); }
    // Asks every live session to drain, or closes every one.
    void drain_all();
    void close_all();

  private:
    friend class ClientSession;
    // From ClientSession::close(): hands the session to the graveyard.
    void retire(ClientSession& session);

    WorkerContext& context_;
    void (*on_closed_)(void*);
    void* on_closed_arg_;
    std::list<std::unique_ptr<ClientSession>> live_;
};

}  // namespace worker
