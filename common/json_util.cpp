// Writing JSON. Parsing is in json_parse.cpp: objects of a static library
// are linked one by one, so proxyd, which never parses JSON, does not carry
// nlohmann's lexer and parser (55 KB of its code, measured).
#include "common/json_util.h"

#include <nlohmann/json.hpp>

namespace common {

std::string to_line(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace common
