// Unit tests for worker/policy and worker/refusal: the pure decisions of the
// request pipeline's authorize stage and of the dialler, and the one table
// that says what each refusal means to each protocol.
#include "worker/policy.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/channel.h"
#include "common/socks_parser.h"
#include "worker/refusal.h"

namespace worker {
namespace {

namespace channel = common::channel;

common::SocketAddress address(const std::string& host, uint16_t port) {
    return *common::SocketAddress::from_numeric(host, port);
}

common::AclConfig acl(const std::string& clients, const std::string& ports) {
    common::AclConfig out;
    std::string error;
    out.allow_clients.push_back(*common::parse_cidr(clients, error));
    out.connect_ports.push_back(*common::parse_port_range(ports, error));
    return out;
}

Intent intent(Intent::Mode mode, uint16_t port) {
    Intent out;
    out.destination.host = "example.com";
    out.destination.port = port;
    out.mode = mode;
    return out;
}

TEST(Policy, ClientAllowedOnlyInsideAllowClients) {
    common::AclConfig rules = acl("127.0.0.0/8", "443");
    EXPECT_TRUE(client_allowed(rules, address("127.0.0.1", 5000)));
    EXPECT_TRUE(client_allowed(rules, address("127.200.1.1", 5000)));
    EXPECT_FALSE(client_allowed(rules, address("10.0.0.1", 5000)));
    EXPECT_FALSE(client_allowed(rules, address("::1", 5000)));
}

TEST(Policy, TunnelPortsAreCheckedForTunnelsOnly) {
    common::AclConfig rules = acl("127.0.0.0/8", "443");
    EXPECT_FALSE(authorize(rules, intent(Intent::Mode::kTunnel, 443)));
    auto refused = authorize(rules, intent(Intent::Mode::kTunnel, 22));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->cause, RefusalCause::kPortDenied);
    EXPECT_EQ(refused->http_status, 403);
    EXPECT_EQ(refused->socks_reply, common::socks::kRepNotAllowed);
    EXPECT_EQ(refused->error_class, channel::kErrDenied);
    EXPECT_EQ(refused->detail, "tunnel to port 22 is not allowed (connect_ports)");
    // A plain request to port 22 is not a tunnel: connect_ports does not apply.
    EXPECT_FALSE(authorize(rules, intent(Intent::Mode::kForward, 22)));
}

TEST(Policy, ViaLoopRefusedForEveryMode) {
    common::AclConfig rules = acl("127.0.0.0/8", "1-65535");
    for (auto mode : {Intent::Mode::kForward, Intent::Mode::kTunnel}) {
        Intent looping = intent(mode, 443);
        looping.via_names_us = true;
        auto refused = authorize(rules, looping);
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->cause, RefusalCause::kViaLoop);
        EXPECT_EQ(refused->http_status, 508);
        EXPECT_STREQ(refused->error_type, "proxy_loop_detected");
    }
}

TEST(Policy, PortIsCheckedBeforeTheLoop) {
    Intent both = intent(Intent::Mode::kTunnel, 22);
    both.via_names_us = true;
    auto refused = authorize(acl("127.0.0.0/8", "443"), both);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->cause, RefusalCause::kPortDenied);
}

TEST(Policy, DialledAddressOwnListenerExactAndThroughWildcard) {
    ConnectPolicy policy;
    policy.deny_private = false;
    policy.own_listeners = {address("127.0.0.1", 3128), address("0.0.0.0", 1080),
                            address("::", 9000)};
    EXPECT_EQ(check_dialled_address(policy, address("127.0.0.1", 3128)), DialVerdict::kOwnListener);
    EXPECT_EQ(check_dialled_address(policy, address("127.0.0.1", 3129)), DialVerdict::kAllowed);
    // A wildcard listener is reached through any loopback address.
    EXPECT_EQ(check_dialled_address(policy, address("127.9.9.9", 1080)), DialVerdict::kOwnListener);
    EXPECT_EQ(check_dialled_address(policy, address("::1", 9000)), DialVerdict::kOwnListener);
    // Odd spellings of our address are what they dial.
    EXPECT_EQ(check_dialled_address(policy, address("::ffff:127.0.0.1", 3128)),
              DialVerdict::kOwnListener);
    EXPECT_EQ(check_dialled_address(policy, address("0.0.0.0", 3128)), DialVerdict::kOwnListener);
}

TEST(Policy, DialledAddressPrivateOnlyWhenDenied) {
    ConnectPolicy policy;
    policy.deny_private = true;
    for (const char* host : {"10.1.2.3", "192.168.0.1", "172.16.0.1", "127.0.0.1", "169.254.1.1",
                             "::1", "fd00::1", "::ffff:10.0.0.1"}) {
        EXPECT_EQ(check_dialled_address(policy, address(host, 80)), DialVerdict::kPrivate) << host;
    }
    EXPECT_EQ(check_dialled_address(policy, address("93.184.216.34", 80)), DialVerdict::kAllowed);
    policy.deny_private = false;
    EXPECT_EQ(check_dialled_address(policy, address("10.1.2.3", 80)), DialVerdict::kAllowed);
}

// Each dialled address is judged by the IPv4 address an IPv6 form carries.
TEST(Policy, DialledIpv6CarryingAPrivateIpv4IsPrivate) {
    ConnectPolicy policy;
    policy.deny_private = true;
    for (const char* host : {"::ffff:0:127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b:1::8.8.8.8",
                             "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:80ff:fffe"}) {
        EXPECT_EQ(check_dialled_address(policy, address(host, 80)), DialVerdict::kPrivate) << host;
    }
    for (const char* host : {"::ffff:0:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
                             "2001:0:4136:e378:8000:63bf:f7f7:f7f7"}) {
        EXPECT_EQ(check_dialled_address(policy, address(host, 80)), DialVerdict::kAllowed) << host;
    }
}

TEST(Policy, AsDialledMapsV4MappedAndUnspecified) {
    EXPECT_EQ(as_dialled(address("::ffff:10.0.0.1", 80)).to_string(), "10.0.0.1:80");
    EXPECT_EQ(as_dialled(address("::", 80)).to_string(), "[::1]:80");
    EXPECT_EQ(as_dialled(address("0.0.0.0", 80)).to_string(), "127.0.0.1:80");
    EXPECT_EQ(as_dialled(address("192.0.2.1", 80)).to_string(), "192.0.2.1:80");
}

TEST(Refusal, EveryConnectErrorHasItsCause) {
    struct Row {
        ConnectError error;
        int status;
        uint8_t socks;
        const char* type;
        uint32_t error_class;
    };
    const Row rows[] = {
        {ConnectError::kResolve, 502, common::socks::kRepHostUnreachable, "dns_error",
         channel::kErrUpstreamConnect},
        {ConnectError::kDenied, 403, common::socks::kRepNotAllowed, "destination_ip_prohibited",
         channel::kErrDenied},
        {ConnectError::kResolveTimeout, 504, common::socks::kRepHostUnreachable, "dns_timeout",
         channel::kErrTimeout},
        {ConnectError::kLoop, 508, common::socks::kRepNotAllowed, "proxy_loop_detected",
         channel::kErrDenied},
        {ConnectError::kUnreachable, 502, common::socks::kRepNetworkUnreachable,
         "destination_ip_unroutable", channel::kErrUpstreamConnect},
        {ConnectError::kRefused, 502, common::socks::kRepConnectionRefused, "connection_refused",
         channel::kErrUpstreamConnect},
        {ConnectError::kTimeout, 504, common::socks::kRepTtlExpired, "connection_timeout",
         channel::kErrTimeout},
        {ConnectError::kNoResources, 500, common::socks::kRepGeneralFailure, "proxy_internal_error",
         channel::kErrInternal},
    };
    for (const Row& row : rows) {
        Refusal r = make_refusal(cause_of(row.error), "why");
        EXPECT_EQ(r.http_status, row.status) << cause_name(r.cause);
        EXPECT_EQ(r.socks_reply, row.socks) << cause_name(r.cause);
        EXPECT_STREQ(r.error_type, row.type);
        EXPECT_EQ(r.error_class, row.error_class) << cause_name(r.cause);
        EXPECT_EQ(r.detail, "why");
    }
    EXPECT_EQ(cause_of(ConnectError::kNone), RefusalCause::kInternal);
}

TEST(Refusal, CauseNamesAreUniqueAndEveryCauseHasARow) {
    std::set<std::string> names;
    for (int i = 0; i <= static_cast<int>(RefusalCause::kInternal); ++i) {
        auto cause = static_cast<RefusalCause>(i);
        Refusal r = make_refusal(cause, "");
        EXPECT_EQ(r.cause, cause);
        EXPECT_GE(r.http_status, 400);
        EXPECT_LT(r.error_class, channel::kErrorClassCount);
        names.insert(cause_name(cause));
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(RefusalCause::kInternal) + 1);
}

// Every refusal carries a Proxy-Status error type from RFC 9209's registry
// (§2.3), and the one that says what happened.
TEST(Refusal, ProxyStatusTypesAreRfc9209s) {
    const std::set<std::string> registry = {"dns_timeout",
                                            "dns_error",
                                            "destination_not_found",
                                            "destination_unavailable",
                                            "destination_ip_prohibited",
                                            "destination_ip_unroutable",
                                            "connection_refused",
                                            "connection_terminated",
                                            "connection_timeout",
                                            "connection_read_timeout",
                                            "connection_write_timeout",
                                            "connection_limit_reached",
                                            "tls_protocol_error",
                                            "tls_certificate_error",
                                            "tls_alert_received",
                                            "http_request_error",
                                            "http_request_denied",
                                            "http_response_incomplete",
                                            "http_response_header_section_size",
                                            "http_response_header_size",
                                            "http_response_body_size",
                                            "http_response_trailer_section_size",
                                            "http_response_trailer_size",
                                            "http_response_transfer_coding",
                                            "http_response_content_coding",
                                            "http_response_timeout",
                                            "http_upgrade_failed",
                                            "http_protocol_error",
                                            "proxy_internal_response",
                                            "proxy_internal_error",
                                            "proxy_configuration_error",
                                            "proxy_loop_detected"};
    for (int i = 0; i <= static_cast<int>(RefusalCause::kInternal); ++i) {
        auto cause = static_cast<RefusalCause>(i);
        EXPECT_EQ(registry.count(make_refusal(cause, "").error_type), 1u) << cause_name(cause);
    }
    auto type = [](RefusalCause cause) { return std::string(make_refusal(cause, "").error_type); };
    EXPECT_EQ(type(RefusalCause::kPortDenied), "http_request_denied");
    EXPECT_EQ(type(RefusalCause::kViaLoop), "proxy_loop_detected");
    EXPECT_EQ(type(RefusalCause::kAddressLoop), "proxy_loop_detected");
    EXPECT_EQ(type(RefusalCause::kUpstreamTimeout), "http_response_timeout");
    EXPECT_EQ(type(RefusalCause::kConnectTimeout), "connection_timeout");
    EXPECT_EQ(type(RefusalCause::kClientTimeout), "http_request_error");
    EXPECT_EQ(type(RefusalCause::kUpstreamHeadTooLarge), "http_response_header_section_size");
    EXPECT_EQ(type(RefusalCause::kUpstreamTransferCoding), "http_response_transfer_coding");
}

}  // namespace
}  // namespace worker
