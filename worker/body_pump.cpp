#include "worker/body_pump.h"

#include <algorithm>
#include <string>

#include "worker/http_forwarding.h"
#include "worker/transport.h"

namespace worker {

namespace http = common::http;

namespace {

constexpr size_t kFramingPeek = 256;

}  // namespace

void BodyPump::count(size_t n) const {
    counters.bytes_in += n;
    counters.bytes_out += n;
    recorded += n;
    upstream_recorded += n;
}

bool BodyPump::hold_if_receiver_full() const {
    if (evbuffer_get_length(bufferevent_get_output(to)) <= high_mark) return false;
    bufferevent_disable(from, EV_READ);
    bufferevent_setwatermark(to, EV_WRITE, high_mark / 2, 0);
    return true;
}

size_t BodyPump::move(uint64_t limit, evbuffer* prefix) const {
    evbuffer* input = bufferevent_get_input(from);
    size_t n = static_cast<size_t>(std::min<uint64_t>(evbuffer_get_length(input), limit));
    if (prefix != nullptr && evbuffer_get_length(prefix) > 0) {
        evbuffer_remove_buffer(input, prefix, n);  // head and body in one write
        send_or_queue(to, prefix, evbuffer_get_length(prefix));
    } else if (n > 0) {
        send_or_queue(to, input, n);
    }
    if (n == 0) return 0;
    count(n);
    hold_if_receiver_full();
    return n;
}

bool BodyPump::move_chunked(http::ChunkedDecoder& decoder, bool reencode, bool& done) const {
    evbuffer* input = bufferevent_get_input(from);
    evbuffer* output = bufferevent_get_output(to);
    while (!done) {
        size_t available = evbuffer_get_length(input);
        if (available == 0) return true;
        if (decoder.data_remaining() > 0) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(available, decoder.data_remaining()));
            if (reencode) {
                std::string size_line;
                append_chunk_header(size_line, n);
                evbuffer_add(output, size_line.data(), size_line.size());
            }
            evbuffer_remove_buffer(input, output, n);
            if (reencode) evbuffer_add(output, "\r\n", 2);
            decoder.consume_data(n);
            count(n);
            if (hold_if_receiver_full()) return true;
            continue;
        }
        // Framing lines are short; peek a little first, more only if needed.
        size_t peek = std::min(available, kFramingPeek);
        http::ChunkedDecoder::Step step{};
        while (true) {
            const char* data = reinterpret_cast<const char*>(
                evbuffer_pullup(input, static_cast<ev_ssize_t>(peek)));
            step = decoder.parse_framing({data, peek});
            bool stuck = step.status == http::ParseStatus::kNeedMore && step.consumed == 0 &&
                         decoder.data_remaining() == 0;
            if (!stuck || peek == available) break;
            peek = std::min(available, peek * 8);
        }
        evbuffer_drain(input, step.consumed);
        recorded += step.consumed;
        upstream_recorded += step.consumed;
        if (step.status == http::ParseStatus::kError) return false;
        if (step.status == http::ParseStatus::kComplete) done = true;
        if (step.status == http::ParseStatus::kNeedMore && step.consumed == 0 &&
            decoder.data_remaining() == 0) {
            return true;  // wait for more input
        }
    }
    return true;
}

}  // namespace worker
