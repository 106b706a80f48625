// What every kind of client session (HTTP, SOCKS) is to the worker: an
// entry in the worker's session list, counted in its reports, that can be
// asked to drain or to close at once. Sessions own themselves: they are
// created by the acceptor and delete themselves when the connection ends.
#pragma once

#include <event2/bufferevent.h>

#include <list>
#include <string>

#include "worker/tunnel.h"
#include "worker/worker_context.h"

namespace worker {

class ClientSession {
  public:
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    // The worker began draining: finish what is in flight, take nothing new.
    virtual void on_drain() = 0;
    // Close now and delete this session.
    void destroy() { delete this; }

  protected:
    explicit ClientSession(WorkerContext& context) : context_(context) {
        entry_ = context_.sessions.insert(context_.sessions.end(), this);
        context_.counters.active_sessions++;
        context_.counters.total_sessions++;
    }
    virtual ~ClientSession() {
        context_.sessions.erase(entry_);
        context_.counters.active_sessions--;
        if (context_.on_session_closed) context_.on_session_closed(context_.worker);
    }

    // Counts and logs (at info: it is the client's doing) a TLS failure on
    // the client's transport after an error event; nothing for plain TCP.
    void note_transport_error(bufferevent* bev, const std::string& client);

    // Adds a finished tunnel's bytes to the worker's counters: every byte
    // was read on one side and written on the other.
    void count_tunnel(const TunnelTotals& totals) {
        uint64_t relayed = totals.client_to_upstream + totals.upstream_to_client;
        context_.counters.bytes_in += relayed;
        context_.counters.bytes_out += relayed;
    }

    WorkerContext& context_;

  private:
    std::list<ClientSession*>::iterator entry_;
};

}  // namespace worker
