// A real HAProxy (Debian's haproxy package) in front of proxyd nodes, run
// by a test in the foreground (haproxy -db) in a temp dir of its own, with
// the configuration the cluster demo ships: conf/cluster/haproxy.cfg
// (TCP mode, roundrobin, send-proxy-v2, health checks that send the PROXY
// header), its ports and `server` lines filled in here. So the tests that
// use it also prove the shipped file works.
//
//   if (std::string why = harness::Haproxy::missing(); !why.empty()) GTEST_SKIP() << why;
//   harness::Haproxy balancer({{"node1", node1.listener_port()},
//                              {"node2", node2.listener_port()}});
//   ASSERT_TRUE(balancer.start());      // listening, every node UP
//   ... clients connect to balancer.port() ...
//   EXPECT_TRUE(balancer.wait_status("node1", "DOWN", 10s));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace harness {

class Haproxy {
  public:
    struct Server {
        std::string name;   // the `server` name, as the stats page shows it
        uint16_t port = 0;  // a node's listener on 127.0.0.1
    };

    // Nothing runs until start(). When haproxy is not installed, available()
    // is false and skip_reason() says so (`make deps` installs it).
    // `config_template` is read relative to the current directory, which is
    // the repository's root when tests run (make test, tests/run_tests.sh).
    explicit Haproxy(std::vector<Server> servers,
                     std::string config_template = "conf/cluster/haproxy.cfg");
    ~Haproxy();
    Haproxy(const Haproxy&) = delete;
    Haproxy& operator=(const Haproxy&) = delete;

    bool available() const { return available_; }
    const std::string& skip_reason() const { return skip_reason_; }
    // The same before any instance exists (a fixture's SetUp): "" when
    // haproxy is installed, else why the test skips.
    static std::string missing();

    // Renders the template, checks it (haproxy -c), starts haproxy and
    // waits until its frontend accepts and every server is UP. False, with
    // ADD_FAILURE quoting its log, when that did not happen within `timeout`.
    bool start(Millis timeout = 20s);
    // SIGTERM, then SIGKILL after 5 s; reaps it. Safe to call more than once.
    void stop();

    pid_t pid() const { return pid_; }
    // The frontend clients connect to, on 127.0.0.1.
    uint16_t port() const { return port_; }
    uint16_t stats_port() const { return stats_port_; }
    const std::string& config_path() const { return config_path_; }

    // The state of server `name` as the stats page shows it: "UP", "DOWN",
    // "UP 1/2" (going down), "DOWN 1/2" (coming up), "MAINT"...; "" when the
    // page did not answer or lists no such server.
    std::string server_status(const std::string& name) const;
    // Waits until server_status(name) is exactly `status`.
    bool wait_status(const std::string& name, const std::string& status, Millis timeout) const;
    // haproxy's stdout and stderr: its warnings, state changes and the
    // connection log (option tcplog), for failure messages.
    std::string log() const;

  private:
    bool launch(Millis timeout);
    bool render();
    bool all_up() const;

    std::vector<Server> servers_;
    std::string template_;
    bool available_ = false;
    std::string skip_reason_;
    std::string binary_;
    std::string dir_;
    std::string config_path_;
    uint16_t port_ = 0;
    uint16_t stats_port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace harness
