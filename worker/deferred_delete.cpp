#include "worker/deferred_delete.h"

namespace worker {

bool DeferredDeleter::start(event_base* base) {
    event_.reset(event_new(base, -1, 0, on_graveyard, this));
    return event_ != nullptr;
}

void DeferredDeleter::defer(std::unique_ptr<Deferrable> object) {
    if (!object) return;
    object->retired_ = true;
    graveyard_.push_back(std::move(object));
    // An activated event runs in this same loop iteration, after the
    // callbacks already under way.
    if (graveyard_.size() == 1 && event_) event_active(event_.get(), 0, 0);
}

void DeferredDeleter::free_now() {
    // A destructor may retire more objects (a session its exchange): they
    // go to graveyard_ while dying_ is cleared; loop until nothing is left.
    // The swap keeps both vectors' capacity: a vector made here per loop
    // turn cost a malloc and a free on each (issue 18).
    while (!graveyard_.empty()) {
        dying_.swap(graveyard_);
        dying_.clear();
    }
}

void DeferredDeleter::on_graveyard(evutil_socket_t, short, void* arg) noexcept {
    static_cast<DeferredDeleter*>(arg)->free_now();
}

}  // namespace worker
