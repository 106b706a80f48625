#include "tests/integration/dns_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace harness {

namespace {

// RFC 1035 §4.1.1 header, §2.3.4 size limits.
constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxUdpMessage = 512;
constexpr size_t kMaxLabelLength = 63;
constexpr size_t kMaxNameLength = 255;  // on the wire, length bytes included
constexpr uint16_t kClassIn = 1;

constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kOpcodeMask = 0x7800;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kFlagZ = 0x0040;  // must be zero (RFC 1035; AD and CD are allowed)
constexpr uint16_t kRcodeMask = 0x000f;

constexpr uint16_t kRcodeFormErr = 1;
constexpr uint16_t kRcodeNxDomain = 3;
constexpr uint16_t kRcodeNotImp = 4;

// A compression pointer to the question's name, which starts right after
// the header (RFC 1035 §4.1.4).
constexpr uint16_t kPointerToQuestion = 0xc000 | kHeaderSize;

constexpr Millis kPollInterval = 50ms;

uint16_t get16(const std::string& data, size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(data[at]) << 8 |
                                 static_cast<uint8_t>(data[at + 1]));
}

void put16(std::string& out, uint16_t value) {
    out += static_cast<char>(value >> 8);
    out += static_cast<char>(value & 0xff);
}

void put32(std::string& out, uint32_t value) {
    put16(out, static_cast<uint16_t>(value >> 16));
    put16(out, static_cast<uint16_t>(value & 0xffff));
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// "Origin.Test." and "origin.test" are one name.
std::string canonical(const std::string& name) {
    std::string out = lower(name);
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

struct Question {
    std::string name;  // lower-cased, labels joined by dots
    uint16_t type = 0;
    size_t end = 0;  // offset just after the question
};

// The one question that follows the header. Strict: plain labels only (a
// query has nothing to point back to), each 1-63 bytes and free of dots, the
// whole name at most 255 bytes, class IN. nullopt when malformed.
std::optional<Question> parse_question(const std::string& packet) {
    Question q;
    size_t at = kHeaderSize;
    size_t wire_length = 0;
    while (true) {
        if (at >= packet.size()) return std::nullopt;
        size_t length = static_cast<uint8_t>(packet[at++]);
        wire_length += 1 + length;
        if (wire_length > kMaxNameLength) return std::nullopt;
        if (length == 0) break;
        if (length > kMaxLabelLength || at + length > packet.size()) return std::nullopt;
        std::string label = packet.substr(at, length);
        if (label.find('.') != std::string::npos) return std::nullopt;
        if (!q.name.empty()) q.name += '.';
        q.name += lower(label);
        at += length;
    }
    if (at + 4 > packet.size()) return std::nullopt;
    q.type = get16(packet, at);
    if (get16(packet, at + 2) != kClassIn) return std::nullopt;
    q.end = at + 4;
    return q;
}

// A reply header: the query's id, opcode and RD echoed, as an authority
// that offers recursion.
std::string reply_header(const std::string& query, uint16_t rcode, uint16_t questions,
                         uint16_t answers) {
    std::string out;
    put16(out, get16(query, 0));
    uint16_t flags = get16(query, 2);
    put16(out, kFlagQr | (flags & (kOpcodeMask | kFlagRd)) | kFlagAa | kFlagRa | rcode);
    put16(out, questions);
    put16(out, answers);
    put16(out, 0);  // NSCOUNT
    put16(out, 0);  // ARCOUNT
    return out;
}

}  // namespace

DnsServer::DnsServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(sin);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length) != 0) {
        ADD_FAILURE() << "DnsServer: cannot bind a UDP socket: " << std::strerror(errno);
        return;
    }
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] { serve(); });
}

DnsServer::~DnsServer() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
}

std::string DnsServer::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void DnsServer::set_addresses(const std::string& name, const std::vector<std::string>& addresses,
                              uint32_t ttl) {
    Entry entry;
    entry.ttl = ttl;
    for (const std::string& address : addresses) {
        in_addr v4{};
        in6_addr v6{};
        if (::inet_pton(AF_INET, address.c_str(), &v4) == 1) {
            entry.records.push_back({kTypeA, std::string(reinterpret_cast<char*>(&v4), 4)});
        } else if (::inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
            entry.records.push_back({kTypeAAAA, std::string(reinterpret_cast<char*>(&v6), 16)});
        } else {
            ADD_FAILURE() << "DnsServer: \"" << address << "\" is not an IP address";
        }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    table_[canonical(name)] = std::move(entry);
}

void DnsServer::set_silent(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    table_[canonical(name)] = Entry{true, 0, {}};
}

std::vector<DnsServer::Query> DnsServer::queries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queries_;
}

size_t DnsServer::queries_for(const std::string& name, uint16_t type) const {
    const std::string wanted = canonical(name);
    std::lock_guard<std::mutex> lock(mutex_);
    return std::count_if(queries_.begin(), queries_.end(), [&](const Query& q) {
        return q.name == wanted && (type == 0 || q.type == type);
    });
}

bool DnsServer::wait_queries(const std::string& name, size_t n, uint16_t type,
                             Millis timeout) const {
    return wait_for([&] { return queries_for(name, type) >= n; }, timeout);
}

// Polls with a short timeout so the destructor's stop flag is seen promptly.
void DnsServer::serve() {
    std::string buffer(65536, '\0');  // the largest UDP payload
    while (!stopping_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(kPollInterval.count())) <= 0) continue;
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof(peer);
        ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0,
                               reinterpret_cast<sockaddr*>(&peer), &peer_length);
        if (n < 0) continue;
        std::string reply = answer(buffer.substr(0, static_cast<size_t>(n)));
        if (reply.empty()) continue;
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                 peer_length);
    }
}

std::string DnsServer::answer(const std::string& packet) {
    // Too short to carry an id, or itself a response: nothing to answer
    // (answering a response could start a loop between two servers).
    if (packet.size() < kHeaderSize || (get16(packet, 2) & kFlagQr)) {
        ++malformed_;
        return "";
    }
    const uint16_t flags = get16(packet, 2);
    if ((flags & kOpcodeMask) != 0) {
        ++malformed_;
        return reply_header(packet, kRcodeNotImp, 0, 0);
    }
    const bool counts_ok = get16(packet, 4) == 1 && get16(packet, 6) == 0 &&
                           get16(packet, 8) == 0 && get16(packet, 10) == 0;
    const bool flags_ok = (flags & (kFlagTc | kFlagZ | kRcodeMask)) == 0;
    auto question = counts_ok && flags_ok && packet.size() <= kMaxUdpMessage
                        ? parse_question(packet)
                        : std::nullopt;
    if (!question || question->end != packet.size()) {
        ++malformed_;
        return reply_header(packet, kRcodeFormErr, 0, 0);
    }
    return answer_question(packet, question->type, question->end, question->name);
}

// Records the query, then answers it from the table: the question echoed
// byte for byte, then the name's records of the asked type, in table order.
std::string DnsServer::answer_question(const std::string& packet, uint16_t type,
                                       size_t question_end, const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    queries_.push_back({name, type});
    std::string body = packet.substr(kHeaderSize, question_end - kHeaderSize);
    auto entry = table_.find(name);
    if (entry == table_.end()) return reply_header(packet, kRcodeNxDomain, 1, 0) + body;
    if (entry->second.silent) return "";
    uint16_t answers = 0;
    bool truncated = false;
    for (const Record& record : entry->second.records) {
        if (record.type != type) continue;
        std::string rr;
        put16(rr, kPointerToQuestion);
        put16(rr, record.type);
        put16(rr, kClassIn);
        put32(rr, entry->second.ttl);
        put16(rr, static_cast<uint16_t>(record.data.size()));
        rr += record.data;
        if (kHeaderSize + body.size() + rr.size() > kMaxUdpMessage) {
            truncated = true;
            break;
        }
        body += rr;
        ++answers;
    }
    std::string reply = reply_header(packet, 0, 1, answers) + body;
    if (truncated) reply[2] = static_cast<char>(reply[2] | (kFlagTc >> 8));
    return reply;
}

}  // namespace harness
