// Fuzzes the channel record decoders and the control-socket JSON parser:
// no input may crash them, and whatever decodes must re-encode to the same
// bytes (records) or re-parse to the same value (JSON).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "common/channel.h"
#include "common/json.h"

namespace ch = common::channel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ch::Report report;
    if (ch::decode_report(data, size, report) == ch::DecodeStatus::kOk) {
        if (size != sizeof report || std::memcmp(&report, data, size) != 0) std::abort();
        if (report.state > 2 || report.accepting > 1) std::abort();
        if (report.layout != common::metrics::kLayout) std::abort();
    }
    ch::Command command;
    if (ch::decode_command(data, size, command) == ch::DecodeStatus::kOk) {
        if (size != sizeof command || std::memcmp(&command, data, size) != 0) std::abort();
    }
    (void)ch::describe(ch::DecodeStatus::kBadValue);

    std::string error;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::optional<common::json::Value> value = common::json::parse(text, error);
    if (value) {
        std::string dumped = value->dump();
        std::optional<common::json::Value> again = common::json::parse(dumped, error);
        if (!again || again->dump() != dumped) std::abort();
    }
    return 0;
}
