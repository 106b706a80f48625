// libFuzzer target for common/proxy_protocol.
//
// The input is used as-is (so seeds are plain headers, often followed by a
// client's first bytes). Besides memory errors it checks the contract:
//   - consumed never exceeds the input; it is 0 unless the header is done;
//     an error is set exactly when the header is malformed;
//   - with kMaxHeaderSize bytes or more the answer is never "need more";
//   - kDone only for a header that is valid: a v1 line starts "PROXY ",
//     ends at its first CRLF within 107 bytes, and (TCP4/TCP6) writes back
//     to the same line; a v2 header carries the signature, the length it
//     declares, and (PROXY over TCP) the address block it was read from;
//     LOCAL and UNKNOWN carry no address; addresses come in pairs of one
//     family;
//   - fed a byte at a time, or in the chunks a socket might deliver, the
//     first answer that is not "need more" is the answer for the whole, and
//     bytes after a done header never change it.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/proxy_protocol.h"

namespace {

using namespace common::proxy_protocol;
using common::SocketAddress;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

uint32_t mix(std::string_view data) {
    uint32_t h = 2166136261u;
    for (unsigned char c : data) h = (h ^ c) * 16777619u;
    return h;
}

bool same_address(const std::optional<SocketAddress>& a, const std::optional<SocketAddress>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || *a == *b;
}

bool same(const Result& a, const Result& b) {
    return a.status == b.status && a.error == b.error && a.version == b.version &&
           a.consumed == b.consumed && a.command == b.command && same_address(a.source, b.source) &&
           same_address(a.destination, b.destination);
}

std::string host_text(const SocketAddress& address) {
    char text[INET6_ADDRSTRLEN];
    const void* bytes = address.family() == AF_INET
                            ? static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in*>(address.get())->sin_addr)
                            : static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_addr);
    check(inet_ntop(address.family(), bytes, text, sizeof(text)) != nullptr);
    return text;
}

// The line a TCP4/TCP6 result writes back to, in the canonical spelling.
std::string v1_line(const Result& r) {
    return std::string("PROXY ") + (r.source->family() == AF_INET ? "TCP4 " : "TCP6 ") +
           host_text(*r.source) + " " + host_text(*r.destination) + " " +
           std::to_string(r.source->port()) + " " + std::to_string(r.destination->port()) + "\r\n";
}

void check_v1(std::string_view header, const Result& r) {
    check(header.size() <= kMaxV1Size && header.substr(0, 6) == "PROXY ");
    check(header.find("\r\n") == header.size() - 2);
    check(header.find('\n') == header.size() - 1);
    if (!r.source) {
        check(r.command == Command::kProxy && header.substr(6, 7) == "UNKNOWN");
        return;
    }
    const std::string line = v1_line(r);
    if (r.source->family() == AF_INET) {
        check(line == header);  // dotted quads have one spelling
        return;
    }
    const Result again = parse(line);
    check(again.status == Status::kDone && again.consumed == line.size());
    check(same_address(again.source, r.source) && same_address(again.destination, r.destination));
}

// Appends the address bytes of `address`, network order.
void append_address(std::string& out, const SocketAddress& address) {
    if (address.family() == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.get());
        out.append(reinterpret_cast<const char*>(&v4->sin_addr), 4);
    } else {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.get());
        out.append(reinterpret_cast<const char*>(&v6->sin6_addr), 16);
    }
}

void append_port(std::string& out, uint16_t port) {
    out.push_back(static_cast<char>(port >> 8));
    out.push_back(static_cast<char>(port & 0xff));
}

// A v2 PROXY over TCP: the address block is the one the result came from.
void check_v2_addresses(std::string_view header, const Result& r) {
    const bool v4 = r.source->family() == AF_INET;
    check(static_cast<uint8_t>(header[13]) == (v4 ? 0x11 : 0x21));
    std::string block;
    append_address(block, *r.source);
    append_address(block, *r.destination);
    append_port(block, r.source->port());
    append_port(block, r.destination->port());
    check(header.substr(16, block.size()) == block);
}

void check_v2(std::string_view header, const Result& r) {
    check(header.size() >= 16 &&
          header.substr(0, 12) == std::string_view("\r\n\r\n\0\r\nQUIT\n", 12));
    const size_t length = static_cast<uint8_t>(header[14]) << 8 | static_cast<uint8_t>(header[15]);
    check(header.size() == 16 + length);
    const uint8_t command = static_cast<uint8_t>(header[12]);
    check(command == 0x20 || command == 0x21);
    check((command == 0x20) == (r.command == Command::kLocal));
    if (r.source) check_v2_addresses(header, r);
}

void check_result(std::string_view input, const Result& r) {
    check(r.consumed <= input.size());
    check((r.status == Status::kMalformed) == (r.error != Error::kNone));
    check(describe(r.error) != nullptr);
    if (input.size() >= kMaxHeaderSize) check(r.status != Status::kNeedMore);
    if (r.status != Status::kDone) {
        check(r.consumed == 0 && !r.source && !r.destination);
        return;
    }
    check(r.consumed > 0 && r.consumed <= kMaxHeaderSize);
    check(r.source.has_value() == r.destination.has_value());
    if (r.command == Command::kLocal) check(!r.source);
    if (r.source) {
        check(r.source->family() == AF_INET || r.source->family() == AF_INET6);
        check(r.source->family() == r.destination->family());
    }
    const std::string_view header = input.substr(0, r.consumed);
    check(r.version == 1 || r.version == 2);
    if (r.version == 1) {
        check_v1(header, r);
    } else {
        check_v2(header, r);
    }
}

// A stream fed in pieces: the first answer that is not "need more" is the
// whole input's, whatever the pieces.
void check_incremental(std::string_view input, const Result& whole, uint32_t seed) {
    size_t have = 0;
    while (true) {
        const Result part = parse(input.substr(0, have));
        check_result(input.substr(0, have), part);
        if (part.status != Status::kNeedMore) {
            check(same(part, whole));
            return;
        }
        if (have == input.size()) {
            check(whole.status == Status::kNeedMore);
            return;
        }
        seed = seed * 1103515245u + 12345u;
        const size_t step = seed % 4 == 0 ? 1 + (seed >> 8) % 64 : 1;
        have = std::min(input.size(), have + step);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const Result whole = parse(input);
    check_result(input, whole);
    check_incremental(input, whole, 0);  // a byte at a time
    check_incremental(input, whole, mix(input) | 1);
    if (whole.status == Status::kDone) {
        // What follows the header is the client's: it never changes the answer.
        std::string longer(input);
        longer += "GET / HTTP/1.1\r\n\r\n";
        check(same(parse(longer), whole));
        check(same(parse(input.substr(0, whole.consumed)), whole));
    }
    return 0;
}
