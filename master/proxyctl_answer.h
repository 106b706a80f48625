// Reading the control socket's answers in proxyctl. An answer comes from a
// socket: it is read without trusting its shape. A missing key, a wrong type
// or an out-of-range number reads as null, 0, "" or false, never as an
// exception (nlohmann's own accessors would throw, or assert on a missing
// key of a const object).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json_util.h"

namespace master::proxyctl {

using common::Json;

// object[key], or null when `object` is not an object or has no such key.
const Json& at(const Json& object, std::string_view key);
// The elements of an array; nothing for anything else.
const Json& elements(const Json& array);

int64_t as_int(const Json& v);
std::string as_string(const Json& v);
bool as_bool(const Json& v);
// A number, or the sum of an object's numbers, nested ones included (a
// metric by label); 0 for anything else. The recursion is bounded by the
// depth limit of common::parse_untrusted().
int64_t as_total(const Json& v);
// A scalar as people read it: strings unquoted, null as "-".
std::string scalar(const Json& v);

// 512B, 1.5K, 3.0M...: sizes in powers of 1024.
std::string human_bytes(double bytes);

}  // namespace master::proxyctl
