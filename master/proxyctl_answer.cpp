#include "master/proxyctl_answer.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace master::proxyctl {

namespace {
const Json& null_json() {
    static const Json kNull;
    return kNull;
}
}  // namespace

const Json& at(const Json& object, std::string_view key) {
    if (!object.is_object()) return null_json();
    auto it = object.find(key);
    return it == object.end() ? null_json() : *it;
}

const Json& elements(const Json& array) {
    static const Json kEmpty = Json::array();
    return array.is_array() ? array : kEmpty;
}

int64_t as_int(const Json& v) {
    if (v.is_number_unsigned()) {
        return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        // Out of range (or NaN) would make the conversion undefined.
        return d > -9.2e18 && d < 9.2e18 ? static_cast<int64_t>(d) : 0;
    }
    return 0;
}

std::string as_string(const Json& v) {
    return v.is_string() ? v.get<std::string>() : std::string();
}

bool as_bool(const Json& v) {
    return v.is_boolean() && v.get<bool>();
}

int64_t as_total(const Json& v) {
    if (!v.is_object()) return as_int(v);
    int64_t n = 0;
    for (const Json& count : v) n += as_total(count);
    return n;
}

std::string scalar(const Json& v) {
    if (v.is_string()) return as_string(v);
    if (v.is_null()) return "-";
    return common::to_line(v);
}

std::string human_bytes(double bytes) {
    const char* units[] = {"B", "K", "M", "G", "T"};
    double value = bytes;
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f%s" : "%.1f%s", value, units[unit]);
    return buf;
}

}  // namespace master::proxyctl
