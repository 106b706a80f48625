#include "master/listeners.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "master/upgrade.h"

namespace master {
namespace {

common::ListenConfig listen_config(const std::string& name, const std::string& host,
                                   uint16_t port) {
    common::ListenConfig c;
    c.name = name;
    c.address.host = host;
    c.address.port = port;
    return c;
}

// A reload keeps a socket whenever the address is the same: what its
// connections speak belongs to the new generation, and rebinding the same
// port while the old socket is open would fail.
TEST(Listeners, SameEndpointComparesTheAddressOnly) {
    common::ListenConfig a = listen_config("a", "127.0.0.1", 3128);
    common::ListenConfig b = a;
    b.name = "renamed";
    b.backlog = 5;
    EXPECT_TRUE(same_endpoint(a, b));
    b.protocol = common::ListenProtocol::kSocks5;
    EXPECT_TRUE(same_endpoint(a, b));
    b = a;
    b.tls_certificate = "cert.pem";
    EXPECT_TRUE(same_endpoint(a, b));
    b = a;
    b.address.host = "127.000.000.001";  // not a canonical literal: never equal
    EXPECT_FALSE(same_endpoint(a, b));
    common::ListenConfig v6 = listen_config("v6", "::1", 3128);
    common::ListenConfig v6_long = listen_config("v6", "0:0::1", 3128);
    EXPECT_TRUE(same_endpoint(v6, v6_long));
    b = a;
    b.address.port = 3129;
    EXPECT_FALSE(same_endpoint(a, b));
    b = a;
    b.address.host = "::1";
    EXPECT_FALSE(same_endpoint(a, b));
}

TEST(Listeners, BindsPortZeroAndReadsTheRealPort) {
    std::string error;
    auto sock = bind_socket(listen_config("main", "127.0.0.1", 0), error);
    ASSERT_TRUE(sock) << error;
    EXPECT_NE(sock->bound.port(), 0);
    EXPECT_EQ(sock->bound.host_string(), "127.0.0.1");
}

TEST(Listeners, BindsIpv6Only) {
    std::string error;
    int error_number = 0;
    auto sock = bind_socket(listen_config("v6", "::1", 0), error, &error_number);
    // Only a host without IPv6 justifies a skip: no ::1 address (IPv6 off on
    // the interfaces) or no IPv6 at all. Any other failure is a bug.
    if (!sock && (error_number == EADDRNOTAVAIL || error_number == EAFNOSUPPORT)) {
        GTEST_SKIP() << "no IPv6 loopback: " << error;
    }
    ASSERT_TRUE(sock) << error;
    int v6only = 0;
    socklen_t len = sizeof v6only;
    ASSERT_EQ(getsockopt(sock->fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    EXPECT_EQ(v6only, 1);
    EXPECT_EQ(sock->bound.to_string().front(), '[');
}

TEST(Listeners, BindErrorNamesAddressAndListener) {
    std::string error;
    auto first = bind_socket(listen_config("one", "127.0.0.1", 0), error);
    ASSERT_TRUE(first) << error;
    uint16_t port = first->bound.port();
    auto second = bind_socket(listen_config("main", "127.0.0.1", port), error);
    EXPECT_FALSE(second);
    EXPECT_EQ(error, "bind() to 127.0.0.1:" + std::to_string(port) +
                         " failed (98: Address already in use) for listener \"main\"");
}

TEST(Listeners, ReloadKeepsMatchingSocketsAndBindsNewOnes) {
    std::string error;
    std::map<std::string, int> none;
    std::vector<Listener> first;
    ASSERT_TRUE(open_listeners({listen_config("a", "127.0.0.1", 0)}, {}, none, first, error))
        << error;
    std::vector<Listener> second;
    ASSERT_TRUE(
        open_listeners({listen_config("a", "127.0.0.1", 0), listen_config("b", "127.0.0.1", 0)},
                       first, none, second, error))
        << error;
    ASSERT_EQ(second.size(), 2u);
    EXPECT_EQ(second[0].socket, first[0].socket);  // same descriptor, no dropped connection
    EXPECT_NE(second[1].fd(), first[0].fd());
}

TEST(Listeners, FailedReloadLeavesNothingBehind) {
    std::string error;
    std::map<std::string, int> none;
    std::vector<Listener> first;
    ASSERT_TRUE(open_listeners({listen_config("a", "127.0.0.1", 0)}, {}, none, first, error));
    std::vector<Listener> out;
    EXPECT_FALSE(
        open_listeners({listen_config("bad", "not-an-address", 80)}, first, none, out, error));
    EXPECT_NE(error.find("\"bad\""), std::string::npos) << error;
    EXPECT_TRUE(out.empty());
}

TEST(Listeners, AdoptsAnInheritedSocketByName) {
    std::string error;
    auto sock = bind_socket(listen_config("main", "127.0.0.1", 0), error);
    ASSERT_TRUE(sock) << error;
    int fd = dup(sock->fd.get());
    std::map<std::string, int> inherited{{"main", fd}};
    std::vector<Listener> out;
    ASSERT_TRUE(open_listeners({listen_config("main", "127.0.0.1", 0)}, {}, inherited, out, error));
    EXPECT_TRUE(inherited.empty());
    EXPECT_EQ(out[0].fd(), fd);
    EXPECT_EQ(out[0].socket->bound.port(), sock->bound.port());
}

TEST(Listeners, RefusesToAdoptAMismatchedSocket) {
    std::string error;
    auto sock = bind_socket(listen_config("main", "127.0.0.1", 0), error);
    ASSERT_TRUE(sock) << error;
    uint16_t other_port = sock->bound.port() == 65535 ? 1 : sock->bound.port() + 1;
    EXPECT_FALSE(adopt_socket(listen_config("main", "127.0.0.1", other_port), sock->fd.get()));
    int not_listening = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_FALSE(adopt_socket(listen_config("main", "127.0.0.1", 0), not_listening));
    close(not_listening);
}

TEST(Upgrade, ListenFdsRoundTrip) {
    std::map<std::string, int> fds;
    std::string error;
    ASSERT_TRUE(parse_listen_fds("main=3;admin=17", fds, error)) << error;
    EXPECT_EQ(fds.size(), 2u);
    EXPECT_EQ(fds["main"], 3);
    EXPECT_EQ(fds["admin"], 17);
    EXPECT_TRUE(parse_listen_fds("", fds, error));
    EXPECT_TRUE(fds.empty());
    for (const char* bad : {"main", "main=", "=3", "main=x", "main=1", "main=3;;", "a=3;b=-4"}) {
        EXPECT_FALSE(parse_listen_fds(bad, fds, error)) << bad;
    }
}

}  // namespace
}  // namespace master
