// Reading untrusted JSON (see json_util.h); apart from json_util.cpp so that
// only the programs that parse link the parser.
#include <nlohmann/json.hpp>

#include "common/json_util.h"

namespace common {

Json parse_untrusted(std::string_view text, int max_depth) {
    // The callback sees the depth of every value; returning false drops it,
    // and the flag turns that into a refusal of the whole text. Depth
    // matters to the code that walks the result recursively (proxyctl's
    // printer, dump()), not to nlohmann's own parser.
    bool too_deep = false;
    Json::parser_callback_t limit = [&too_deep, max_depth](int depth, Json::parse_event_t, Json&) {
        if (depth > max_depth) too_deep = true;
        return !too_deep;
    };
    Json value = Json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/false);
    if (too_deep) return Json(Json::value_t::discarded);
    return value;
}

}  // namespace common
