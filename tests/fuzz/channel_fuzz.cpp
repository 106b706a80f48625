// Fuzzes the channel record decoders and the JSON proxyctl reads from the
// control socket (common/json_util.h over nlohmann-json): no input may crash
// or throw, and whatever decodes must re-encode to the same bytes (records)
// or re-parse to the same line (JSON), within the nesting limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/channel.h"
#include "common/json_util.h"

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

    // Exceptions are failures too: parse_untrusted() and to_line() promise
    // none, and libFuzzer reports an escaping one as a crash.
    std::string_view text(reinterpret_cast<const char*>(data), size);
    common::Json value = common::parse_untrusted(text);
    if (!value.is_discarded()) {
        std::string line = common::to_line(value);
        if (line.find('\n') != std::string::npos) std::abort();
        common::Json again = common::parse_untrusted(line);
        if (again.is_discarded() || common::to_line(again) != line) std::abort();
    }
    return 0;
}
