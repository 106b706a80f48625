// Moving an HTTP body from one connection to the other, with backpressure:
// when the receiving side's output passes the high mark, the sending side
// stops reading and the receiver's write watermark is set to half of it;
// the receiver's write callback resumes the sender (HttpExchange).
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <cstddef>
#include <cstdint>

#include "common/http_parser.h"
#include "worker/worker_context.h"

namespace worker {

struct BodyPump {
    bufferevent* from;
    bufferevent* to;
    uint64_t& recorded;  // the exchange record's byte count for this direction
    // Its count on the upstream's side: what the upstream sent (toward the
    // client) or was sent (from the client); bodies count the same bytes
    // on both sides.
    uint64_t& upstream_recorded;
    Counters& counters;
    size_t high_mark;

    // Moves up to `limit` bytes and returns how many moved. A non-empty
    // `prefix` (a staged response head) goes out in the same write.
    size_t move(uint64_t limit, evbuffer* prefix = nullptr) const;
    // Chunked: decodes from `from` and forwards the data, re-encoded as
    // chunks of our own (extensions and trailers are not passed on) or
    // plain when the receiver cannot read chunked. Sets `done` at the last
    // chunk; returns false on bad framing.
    bool move_chunked(common::http::ChunkedDecoder& decoder, bool reencode, bool& done) const;

    // When the receiver's output is past the high mark: stops reading the
    // sender, sets the receiver's write watermark, and returns true.
    bool hold_if_receiver_full() const;

  private:
    void count(size_t n) const;
};

}  // namespace worker
