// libFuzzer target for common/http_parser.
//
// The input is used as-is (so seeds are plain HTTP messages) as a request
// head, a response head and a chunked body, each with the default limits and
// with small limits derived from the data. Besides memory errors it checks
// the contract: views stay inside the buffer, limits hold, a complete head
// does not change when more bytes arrive, and a chunked body decodes the same
// whole, split in two, and byte at a time.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_parser.h"

namespace {

using namespace common::http;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

uint32_t mix(std::string_view data) {
    uint32_t h = 2166136261u;
    for (unsigned char c : data) h = (h ^ c) * 16777619u;
    return h;
}

bool inside(std::string_view outer, std::string_view part) {
    return part.empty() || (part.data() >= outer.data() &&
                            part.data() + part.size() <= outer.data() + outer.size());
}

void check_result(const ParseResult& r) {
    check((r.status == ParseStatus::kError) == (r.error != ParseError::kNone));
    if (r.status == ParseStatus::kError) {
        const int s = status_for(r.error);
        check(s == 400 || s == 414 || s == 431 || s == 501 || s == 502 || s == 505);
        check(describe(r.error) != nullptr);
    }
}

template <typename Head>
void check_fields(std::string_view buf, const Limits& limits, const Head& head) {
    check(head.head_length >= 2 && head.head_length <= buf.size());
    check(head.head_length <= limits.max_header_size);
    check(buf.substr(head.head_length - 2, 2) == "\r\n");
    check(head.header_count <= limits.max_headers && head.header_count <= kMaxHeaders);
    for (size_t i = 0; i < head.header_count; ++i) {
        const Header& h = head.headers[i];
        check(!h.name.empty() && inside(buf.substr(0, head.head_length), h.name));
        check(inside(buf.substr(0, head.head_length), h.value));
        check(h.value.empty() || (h.value.front() != ' ' && h.value.back() != ' '));
    }
}

void check_framing(const BodyFraming& f, bool request) {
    if (f.error != ParseError::kNone) check(f.kind == BodyKind::kNone && f.length == 0);
    if (request) check(f.kind != BodyKind::kUntilClose);
    // A declared length comes only with a bodiless response (HEAD, 304).
    if (f.length_declared)
        check(!request && f.kind == BodyKind::kNone && f.error == ParseError::kNone);
    if (f.kind != BodyKind::kContentLength && !f.length_declared) check(f.length == 0);
}

// A prefix that parses completely must give the same head as the full input;
// a prefix that fails means the full input fails too.
void check_prefix(const ParseResult& part, size_t part_length, size_t split,
                  const ParseResult& full, size_t full_length) {
    if (part.status == ParseStatus::kComplete) {
        check(full.status == ParseStatus::kComplete && full_length == part_length);
    }
    if (part.status == ParseStatus::kError) check(full.status == ParseStatus::kError);
    if (full.status == ParseStatus::kComplete && full_length <= split) {
        check(part.status == ParseStatus::kComplete);
    }
}

void fuzz_request(std::string_view buf, size_t split, const Limits& limits) {
    static RequestHead head, part;
    const ParseResult r = parse_request_head(buf, limits, head);
    check_result(r);
    if (r.status == ParseStatus::kComplete) {
        check_fields(buf, limits, head);
        check(!head.method.empty() && inside(buf, head.method) && inside(buf, head.target));
        check(!head.target.empty() && head.target.size() <= limits.max_target_length);
        check(head.version_minor == 0 || head.version_minor == 1);
        check_framing(request_body_framing(head), true);
    }
    const ParseResult p = parse_request_head(buf.substr(0, split), limits, part);
    check_result(p);
    check_prefix(p, part.head_length, split, r, head.head_length);
}

void fuzz_response(std::string_view buf, size_t split, const Limits& limits) {
    static ResponseHead head, part;
    const ParseResult r = parse_response_head(buf, limits, head);
    check_result(r);
    if (r.status == ParseStatus::kComplete) {
        check_fields(buf, limits, head);
        check(head.status >= 100 && head.status <= 599 && inside(buf, head.reason));
        for (const char* method : {"GET", "HEAD", "CONNECT", "POST"}) {
            check_framing(response_body_framing(head, method), false);
        }
    }
    const ParseResult p = parse_response_head(buf.substr(0, split), limits, part);
    check_result(p);
    check_prefix(p, part.head_length, split, r, head.head_length);
}

struct Decoded {
    ParseStatus status = ParseStatus::kNeedMore;
    ParseError error = ParseError::kNone;
    std::string data;
    size_t framing = 0;  // framing bytes consumed
};

// The caller loop of a session: pieces arrive at `cuts`, chunk data is moved
// out as soon as it is known to be data, framing is parsed from the rest.
Decoded decode(std::string_view input, size_t step, const Limits& limits) {
    ChunkedDecoder decoder(limits);
    Decoded out;
    std::string pending;
    size_t fed = 0;
    do {
        const size_t n = std::min(step, input.size() - fed);
        pending.append(input.substr(fed, n));
        fed += n;
        for (;;) {
            if (decoder.data_remaining() > 0) {
                const size_t take = static_cast<size_t>(
                    std::min<uint64_t>(decoder.data_remaining(), pending.size()));
                if (take == 0) break;
                out.data.append(pending, 0, take);
                pending.erase(0, take);
                const uint64_t before = decoder.data_remaining();
                decoder.consume_data(take);
                check(decoder.data_remaining() == before - take);
                continue;
            }
            const ChunkedDecoder::Step s = decoder.parse_framing(pending);
            check(s.consumed <= pending.size());
            check((s.status == ParseStatus::kError) == (s.error != ParseError::kNone));
            check((s.status == ParseStatus::kComplete) == decoder.done());
            if (s.status != ParseStatus::kNeedMore) check(decoder.data_remaining() == 0);
            pending.erase(0, s.consumed);
            out.framing += s.consumed;
            out.status = s.status;
            out.error = s.error;
            if (s.status != ParseStatus::kNeedMore) return out;
            if (decoder.data_remaining() == 0) break;
        }
    } while (fed < input.size());
    return out;
}

void fuzz_chunked(std::string_view input, size_t split, const Limits& limits) {
    const Decoded whole = decode(input, input.size() + 1, limits);
    check(whole.framing + whole.data.size() <= input.size());
    const Decoded halves = decode(input, split == 0 ? 1 : split, limits);
    const bool small = input.size() <= 8192;
    const Decoded bytes = small ? decode(input, 1, limits) : whole;
    for (const Decoded* d : {&halves, &bytes}) {
        check(d->status == whole.status && d->error == whole.error);
        check(d->data == whole.data && d->framing == whole.framing);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    const uint32_t h = mix(buf);
    const size_t split = size == 0 ? 0 : h % (size + 1);
    Limits small;
    small.max_header_size = 16 + (h >> 8) % 512;
    small.max_target_length = (h >> 4) % 64;
    small.max_headers = (h >> 16) % 12;
    for (const Limits& limits : {Limits(), small}) {
        fuzz_request(buf, split, limits);
        fuzz_response(buf, split, limits);
        fuzz_chunked(buf, split, limits);
    }
    // The body after a complete head, as a session would decode it.
    static RequestHead head;
    if (parse_request_head(buf, Limits(), head).status == ParseStatus::kComplete) {
        fuzz_chunked(buf.substr(head.head_length), split / 2, Limits());
    }
    return 0;
}
