#include "worker/client_session.h"

#include <vector>

#include "common/channel.h"
#include "common/log.h"
#include "worker/transport.h"

namespace worker {

void ClientSession::close() {
    if (closed()) return;
    on_close();
    context_.sessions->retire(*this);
}

void ClientSession::note_transport_error(bufferevent* bev) {
    std::string tls_error = transport_error(bev);
    if (tls_error.empty()) return;
    context_.counters.errors[common::channel::kErrClientProtocol]++;
    LOG_INFO("TLS error with client %s: %s", client_text_.c_str(), tls_error.c_str());
}

void SessionList::open(std::unique_ptr<ClientSession> session) {
    if (!session->ready()) {
        context_.counters.errors[common::channel::kErrInternal]++;
        LOG_ERROR("event_new() failed for client %s: connection closed",
                  session->client_text_.c_str());
        return;  // its destructor closes the connection
    }
    session->serve();
    ClientSession& added = *session;
    added.entry_ = live_.insert(live_.end(), std::move(session));
    context_.counters.active_sessions++;
    if (added.counts_in_total()) context_.counters.total_sessions++;
}

void SessionList::retire(ClientSession& session) {
    std::unique_ptr<ClientSession> owned = std::move(*session.entry_);
    live_.erase(session.entry_);
    context_.counters.active_sessions--;
    context_.graveyard->defer(std::move(owned));
    if (on_closed_) on_closed_(on_closed_arg_);
}

void SessionList::drain_all() {
    std::vector<ClientSession*> sessions;
    sessions.reserve(live_.size());
    for (auto& session : live_) sessions.push_back(session.get());
    // on_drain() may close its session, which stays in memory (retired)
    // until the loop runs again.
    for (ClientSession* session : sessions) {
        if (!session->closed()) session->on_drain();
    }
}

void SessionList::close_all() {
    while (!live_.empty()) live_.front()->close();
}

}  // namespace worker
