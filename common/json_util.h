// JSON for the control socket, on top of nlohmann-json. This header only
// forward-declares the library: what includes it does not pay for parsing
// json.hpp; the .cpp files that build or read values include
// <nlohmann/json.hpp> themselves.
//
// Answers use nlohmann::ordered_json, so fields come out in the order they
// were set and read the same every time.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace common {

using Json = nlohmann::ordered_json;

// `value` as one compact line, no newline (strings escape theirs). Never
// throws on content: bytes that are not UTF-8 (a path, a config line) come
// out as U+FFFD instead of the exception dump() would raise, which matters
// because answers are built inside noexcept libevent callbacks.
std::string to_line(const Json& value);

// The nesting an answer ever needs, with room to spare.
constexpr int kMaxJsonDepth = 64;

// Parses `text` that nobody vouches for (an answer read from a socket, fuzz
// input). Never throws. Returns a discarded value (is_discarded()) when the
// text is not exactly one JSON value or nests deeper than `max_depth`.
Json parse_untrusted(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace common
