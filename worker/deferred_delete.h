// Deferred deletion, as Envoy's dispatcher does it: an object that is done
// (a session, an HTTP exchange) is handed to the worker's graveyard instead
// of being deleted, and the graveyard is emptied by the loop after the
// callbacks under way have returned. So nothing is freed inside its own
// callee: a Tunnel's done callback, an UpstreamConnect's result or a
// SocketRelay's end may end the object that owns them and still return
// into memory that is theirs.
//
// A retired object is inert until it is freed (the rest of this loop
// iteration): every entry into it from the loop, its own libevent callbacks
// and its helpers' callbacks alike, goes through live(), which turns a
// retired object away. Its connections close when it is freed.
#pragma once

#include <event2/event.h>

#include <memory>
#include <vector>

#include "common/libevent_handles.h"

namespace worker {

class Deferrable {
  public:
    Deferrable() = default;
    virtual ~Deferrable() = default;
    Deferrable(const Deferrable&) = delete;
    Deferrable& operator=(const Deferrable&) = delete;

    bool retired() const { return retired_; }

  protected:
    // The object behind a callback's `arg`, or nullptr once it is retired.
    template <typename T>
    static T* live(void* arg) {
        auto* object = static_cast<T*>(arg);
        return object->retired() ? nullptr : object;
    }

  private:
    friend class DeferredDeleter;
    bool retired_ = false;
};

class DeferredDeleter {
  public:
    DeferredDeleter() = default;
    ~DeferredDeleter() { free_now(); }
    DeferredDeleter(const DeferredDeleter&) = delete;
    DeferredDeleter& operator=(const DeferredDeleter&) = delete;

    // False when the loop's event cannot be made; objects are then freed
    // only by free_now().
    bool start(event_base* base);
    // Marks `object` retired and frees it once the current callbacks return.
    void defer(std::unique_ptr<Deferrable> object);
    void free_now();
    size_t pending() const { return graveyard_.size(); }

  private:
    static void on_graveyard(evutil_socket_t, short, void* arg) noexcept;

    std::vector<std::unique_ptr<Deferrable>> graveyard_;
    // What free_now() is destroying; it trades places with graveyard_, so
    // both keep their capacity and retiring allocates nothing.
    std::vector<std::unique_ptr<Deferrable>> dying_;
    common::EventPtr event_;
};

}  // namespace worker
