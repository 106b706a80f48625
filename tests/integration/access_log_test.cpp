// The access log as operators' tools read it: a real proxyd serves a mix of
// requests (GET, CONNECT, SOCKS5, origin and proxy errors, clients outside
// allow_clients, awkward user agents, heads cut short by header_timeout or
// max_header_size), then
//   - combined: goaccess --log-format=COMBINED counts every line valid and
//     none invalid, and each request line is the one the client sent;
//   - json: every line parses (nlohmann) and its fields match the requests.
// And the papercut of issue 16: with `user = nobody` the master opens the
// log in a root-owned directory before it drops its privileges.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"
#include "tests/integration/users_fixture.h"

namespace {

using namespace harness;
using nlohmann::json;

// Sends `data` from `source` and returns what came back before the proxy
// closed (at most 5 s).
std::string exchange_from(const std::string& source, uint16_t port, const std::string& data) {
    int fd = connect_from(source, port);
    if (fd < 0) return "";
    send_all(fd, data);
    std::string out;
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::istringstream in(read_file(path));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

const std::string kLongAgent = "LongAgent/" + std::string(3000, 'x');
// A quote, a backslash and a tab (allowed in a field value), and UTF-8.
const std::string kAwkwardAgent = "Awkward \"quoted\" back\\slash\ttab caf\xc3\xa9";

class AccessLog : public ::testing::Test {
  protected:
    ConfigBuilder config(const std::string& format) {
        ConfigBuilder c;
        c.set("master", "workers", "1");
        c.set("log", "access_log", "${dir}/access.log");
        c.set("log", "access_log_format", format);
        c.set("acl", "allow_clients", "127.0.0.1/32");
        c.set("limits", "header_timeout", "1s");
        c.set("limits", "max_header_size", "4k");
        c.add_listener("main");
        c.add_listener("socks", "127.0.0.1:0", "socks5");
        return c;
    }

    std::optional<HttpResponse> request(uint16_t port, const std::string& head) {
        RawClient client;
        if (!client.connect(port)) return std::nullopt;
        client.send(head);
        return client.read_response();
    }

    std::string get(const std::string& url, const std::string& fields = "") {
        return "GET " + url + " HTTP/1.1\r\nHost: " + origin_.host_port() + "\r\n" + fields +
               "Connection: close\r\n\r\n";
    }

    // Every kind of line, each one request; returns how many it made.
    int make_traffic(ProxydInstance& proxy) {
        const uint16_t http = proxy.listener_port("main");
        const uint16_t socks_port = proxy.listener_port("socks");
        int n = 0;
        auto expect_status = [&](const std::string& head, int status) {
            auto r = request(http, head);
            EXPECT_TRUE(r && r->status == status)
                << head.substr(0, 200) << " -> " << (r ? r->status : 0);
            ++n;
        };
        expect_status(get(origin_.url("/bytes/100"),
                          "User-Agent: Plain/1.0\r\nReferer: http://referer.test/page\r\n"),
                      200);
        expect_status(get(origin_.url("/status/404")), 404);
        expect_status(get("http://127.0.0.1:" + std::to_string(closed_port()) + "/refused"), 502);
        expect_status(get(origin_.url("/awkward"), "User-Agent: " + kAwkwardAgent + "\r\n"), 200);
        expect_status(get(origin_.url("/long"), "User-Agent: " + kLongAgent + "\r\n"), 200);
        // A control byte in a field is malformed: 400, and still a line.
        expect_status(get(origin_.url("/control"), "User-Agent: bell\x07here\r\n"), 400);
        expect_status("NOT A REQUEST LINE AT ALL\r\n\r\n", 400);
        expect_status(get(origin_.url("/big"), "X-Big: " + std::string(5000, 'b') + "\r\n"), 431);
        {
            // A head that never ends: 408 after header_timeout.
            RawClient slow;
            EXPECT_TRUE(slow.connect(http));
            slow.send("GET " + origin_.url("/slow") + " HTTP/1.1\r\nHost: x\r\n");
            auto r = slow.read_response(10s);
            EXPECT_TRUE(r && r->status == 408);
            ++n;
        }
        {
            RawClient tunnel;
            EXPECT_TRUE(tunnel.connect(http));
            tunnel.send("CONNECT " + origin_.host_port() + " HTTP/1.1\r\nHost: " +
                        origin_.host_port() + "\r\nUser-Agent: Tunnel/1.0\r\n\r\n");
            // A tunnel's 200 has no body length: read its head only.
            std::string head = read_at_least(tunnel, 12);
            EXPECT_TRUE(starts_with(head, "HTTP/1.1 200")) << head;
            tunnel.close();
            ++n;
        }
        {
            RawClient s;
            EXPECT_TRUE(s.connect(socks_port));
            s.send(socks::kGreetingNoAuth);
            EXPECT_EQ(s.recv_some(), socks::kMethodNoAuth);
            s.send(socks::connect_ipv4(origin_.port()));
            EXPECT_EQ(read_at_least(s, 10).substr(0, 2), bytes({5, 0}));
            s.close();
            ++n;
        }
        // Outside allow_clients: refused in each protocol, and logged.
        std::string denied = exchange_from("127.0.0.2", http, get(origin_.url("/denied")));
        EXPECT_TRUE(starts_with(denied, "HTTP/1.1 403 ")) << denied;
        ++n;
        std::string socks5 = exchange_from(
            "127.0.0.2", socks_port, socks::kGreetingNoAuth + socks::connect_ipv4(origin_.port()));
        EXPECT_EQ(hex(socks5), hex(socks::kMethodNoAuth + socks::failure(socks::kNotAllowed)));
        ++n;
        std::string socks4 =
            exchange_from("127.0.0.2", socks_port,
                          socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4));
        EXPECT_EQ(hex(socks4), hex(socks::kSocks4Rejected));
        ++n;
        return n;
    }

    // Waits until `count` lines are in the access log (the worker flushes
    // at each heartbeat).
    std::vector<std::string> wait_lines(ProxydInstance& proxy, size_t count) {
        const std::string path = proxy.path("access.log");
        wait_for([&] { return lines_of(path).size() >= count; }, 10s);
        return lines_of(path);
    }

    HttpOrigin origin_;
};

const std::string* find_line(const std::vector<std::string>& lines, const std::string& needle) {
    for (const std::string& line : lines) {
        if (line.find(needle) != std::string::npos) return &line;
    }
    return nullptr;
}

TEST_F(AccessLog, CombinedIsReadByGoaccessWithoutInvalidLines) {
    ProxydInstance proxy(config("combined"));
    ASSERT_TRUE(proxy.start());
    const int made = make_traffic(proxy);
    std::vector<std::string> lines = wait_lines(proxy, static_cast<size_t>(made));
    ASSERT_EQ(lines.size(), static_cast<size_t>(made)) << read_file(proxy.path("access.log"));

    // Fields where log tools look for them.
    const std::string o = origin_.url("");
    auto line = [&](const std::string& needle) {
        const std::string* l = find_line(lines, needle);
        EXPECT_NE(l, nullptr) << "no line with " << needle << ":\n"
                              << read_file(proxy.path("access.log"));
        return l ? *l : std::string();
    };
    EXPECT_TRUE(std::regex_search(
        line("/bytes/100"),
        std::regex("^127\\.0\\.0\\.1 - - \\[\\d\\d/[A-Z][a-z]{2}/\\d{4}:\\d\\d:\\d\\d:\\d\\d "
                   "[+-]\\d{4}\\] \"GET " +
                   o +
                   "/bytes/100 HTTP/1\\.1\" 200 \\d+ \"http://referer\\.test/page\" "
                   "\"Plain/1\\.0\"$")))
        << line("/bytes/100");
    EXPECT_NE(line("/awkward")
                  .find("\"Awkward \\x22quoted\\x22 back\\x5Cslash\\x09tab "
                        "caf\\xC3\\xA9\""),
              std::string::npos);
    EXPECT_NE(line("/long").find(kLongAgent), std::string::npos);
    EXPECT_NE(line("\"CONNECT " + origin_.host_port() + " HTTP/1.1\" 200").find("\"Tunnel/1.0\""),
              std::string::npos);
    line("\"CONNECT " + origin_.host_port() + " SOCKS5\" 200 ");
    EXPECT_TRUE(starts_with(line("/denied HTTP/1.1\" 403 "), "127.0.0.2 - - ["));
    line("127.0.0.2 - - ");
    line("\"CONNECT 127.0.0.1:" + std::to_string(origin_.port()) + " SOCKS4\" 403 ");
    // Early errors keep the request line they received.
    line("\"GET " + o + "/slow HTTP/1.1\" 408 ");
    line("\"GET " + o + "/big HTTP/1.1\" 431 ");
    line("\"NOT A REQUEST LINE AT ALL\" 400 ");
    EXPECT_NE(proxy.error_log().find("request: \"GET " + o + "/slow\""), std::string::npos)
        << proxy.error_log();
    for (const std::string& l : lines) {
        for (char c : l) ASSERT_TRUE(c >= 0x20 && c < 0x7f) << l;
    }

    const std::string report = proxy.path("report.json");
    CurlResult run = run_program(
        {"goaccess", proxy.path("access.log"), "--log-format=COMBINED", "-o", report}, 30s);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    json parsed = json::parse(read_file(report), nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << read_file(report).substr(0, 500);
    EXPECT_EQ(parsed["general"]["failed_requests"], 0) << parsed["general"].dump();
    EXPECT_EQ(parsed["general"]["valid_requests"], made) << parsed["general"].dump();
}

// A target longer than the head limit is answered 414 as soon as it fills
// the limit, and its line keeps the start of it (up to the 4 KiB kept of a
// request line). Not in the goaccess test above: goaccess reads lines of up
// to 4 KiB, and counts a longer one as invalid, whoever wrote it.
TEST_F(AccessLog, TargetTooLongKeepsItsStart) {
    ProxydInstance proxy(config("combined"));
    ASSERT_TRUE(proxy.start());
    auto r = request(proxy.listener_port("main"), get(origin_.url("/" + std::string(5000, 'u'))));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 414);
    std::vector<std::string> lines = wait_lines(proxy, 1);
    ASSERT_EQ(lines.size(), 1u) << read_file(proxy.path("access.log"));
    EXPECT_NE(lines[0].find("\"GET " + origin_.url("/uuuuuuuu")), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("\" 414 "), std::string::npos) << lines[0];
    EXPECT_EQ(origin_.request_count(), 0u);
}

TEST_F(AccessLog, JsonLinesParseAndMatchTheRequests) {
    ProxydInstance proxy(config("json"));
    ASSERT_TRUE(proxy.start());
    const pid_t worker = proxy.worker_pids().at(0);
    const int made = make_traffic(proxy);
    std::vector<std::string> lines = wait_lines(proxy, static_cast<size_t>(made));
    ASSERT_EQ(lines.size(), static_cast<size_t>(made)) << read_file(proxy.path("access.log"));
    std::vector<json> records;
    for (const std::string& l : lines) {
        json j = json::parse(l, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << l;
        for (const char* key :
             {"time", "client", "client_port", "user", "listener", "method", "target", "protocol",
              "status", "bytes_from_client", "bytes_to_client", "duration", "upstream", "route",
              "refusal", "reason", "referer", "user_agent", "pid"}) {
            EXPECT_TRUE(j.contains(key)) << key << " missing: " << l;
        }
        EXPECT_EQ(j["pid"], worker) << l;
        records.push_back(std::move(j));
    }
    // The HTTP record of `method` whose target contains `target`.
    auto record = [&](const std::string& target, const std::string& method = "GET") {
        for (const json& j : records) {
            if (j["target"].is_string() && j["method"] == method && j["protocol"] != "SOCKS5" &&
                j["protocol"] != "SOCKS4" &&
                j["target"].get<std::string>().find(target) != std::string::npos) {
                return j;
            }
        }
        ADD_FAILURE() << "no record of " << method << " " << target;
        return json::object();
    };
    json ok = record("/bytes/100");
    EXPECT_EQ(ok["client"], "127.0.0.1");
    EXPECT_TRUE(ok["user"].is_null());
    EXPECT_EQ(ok["listener"], "main");
    EXPECT_EQ(ok["target"], origin_.url("/bytes/100"));
    EXPECT_EQ(ok["protocol"], "HTTP/1.1");
    EXPECT_EQ(ok["status"], 200);
    EXPECT_GT(ok["bytes_to_client"].get<int64_t>(), 100);
    EXPECT_GT(ok["bytes_from_client"].get<int64_t>(), 50);
    EXPECT_GE(ok["duration"].get<double>(), 0.0);
    EXPECT_EQ(ok["upstream"], origin_.host_port());
    EXPECT_EQ(ok["route"], "direct");
    EXPECT_TRUE(ok["refusal"].is_null());
    EXPECT_EQ(ok["referer"], "http://referer.test/page");
    EXPECT_EQ(ok["user_agent"], "Plain/1.0");
    EXPECT_EQ(record("/awkward")["user_agent"], kAwkwardAgent);
    EXPECT_EQ(record("/long")["user_agent"], kLongAgent);
    json refused = record("/refused");
    EXPECT_EQ(refused["status"], 502);
    EXPECT_EQ(refused["refusal"], "connection_refused");
    json tunnel = record(origin_.host_port(), "CONNECT");
    EXPECT_EQ(tunnel["status"], 200);
    EXPECT_EQ(tunnel["user_agent"], "Tunnel/1.0");
    int socks5 = 0, socks4 = 0;
    for (const json& j : records) {
        if (j["protocol"] == "SOCKS5" && j["status"] == 200) {
            ++socks5;
            EXPECT_EQ(j["listener"], "socks");
            EXPECT_EQ(j["method"], "CONNECT");
            EXPECT_EQ(j["upstream"], origin_.host_port());
        }
        if (j["protocol"] == "SOCKS4") {
            ++socks4;
            EXPECT_EQ(j["refusal"], "client_denied");
            EXPECT_EQ(j["client"], "127.0.0.2");
        }
    }
    EXPECT_EQ(socks5, 1);
    EXPECT_EQ(socks4, 1);
    json denied = record("/denied");
    EXPECT_EQ(denied["status"], 403);
    EXPECT_EQ(denied["client"], "127.0.0.2");
    EXPECT_EQ(denied["refusal"], "client_denied");
    EXPECT_TRUE(denied["upstream"].is_null());
    json slow = record("/slow");
    EXPECT_EQ(slow["status"], 408);
    EXPECT_EQ(slow["refusal"], "client_timeout");
    EXPECT_EQ(record("/big")["status"], 431);
    // The counters: three clients refused by allow_clients are errors of
    // class denied.
    EXPECT_TRUE(wait_for(
        [&] { return proxy.control_json("stats")["errors_by_class"]["denied"].as_int() == 3; }, 5s))
        << proxy.control("stats").value_or("");
}

// On a SOCKS5 listener with passwords, a client outside allow_clients is
// never asked for one (nothing to guess against): it gets no-auth, then
// reply 02 to its CONNECT, and its line.
TEST(AccessLogDenied, Socks5PasswordListenerRefusesWithoutAskingForAPassword) {
    ConfigBuilder c;
    c.set("master", "workers", "1");
    c.set("log", "access_log", "${dir}/access.log");
    c.set("acl", "allow_clients", "127.0.0.1/32");
    c.set("auth", "users_file", "${dir}/users");
    c.add_listener("socks", "127.0.0.1:0", "socks5");
    c.set("listen socks", "auth", "password");
    ProxydInstance proxy(c);
    UsersFile users;
    ASSERT_TRUE(users.add("alice", "secret"));
    ASSERT_TRUE(users.write(proxy.path("users")));
    ASSERT_TRUE(proxy.start());
    HttpOrigin origin;
    // Offers no-auth and username/password (as curl does).
    std::string answer = exchange_from("127.0.0.2", proxy.listener_port("socks"),
                                       bytes({5, 2, 0, 2}) + socks::connect_ipv4(origin.port()));
    EXPECT_EQ(hex(answer), hex(socks::kMethodNoAuth + socks::failure(socks::kNotAllowed)));
    EXPECT_NE(wait_for_line(proxy.path("access.log"), {"127.0.0.2 - - [", " SOCKS5\" 403 "}), "")
        << read_file(proxy.path("access.log"));
    EXPECT_EQ(origin.request_count(), 0u);

    // Offers username/password only: no method is acceptable for a client
    // outside allow_clients (its password is never asked for), and the line
    // says why it was refused: 403, not a protocol error.
    answer = exchange_from("127.0.0.2", proxy.listener_port("socks"), bytes({5, 1, 2}));
    EXPECT_EQ(hex(answer), hex(bytes({5, 0xff})));
    std::string line =
        wait_for_line(proxy.path("access.log"), {"127.0.0.2 - - [", "\"CONNECT - SOCKS5\" 403 "});
    EXPECT_NE(line, "") << read_file(proxy.path("access.log"));
}

// A reload that changes the path opens the new file in the master (a path
// it cannot open refuses the reload, naming it); the new workers write there,
// in the new format.
TEST(AccessLogReload, NewPathIsOpenedByTheMaster) {
    ConfigBuilder c;
    c.set("master", "workers", "1");
    c.set("log", "access_log", "${dir}/first.log");
    ProxydInstance proxy(c);
    ASSERT_TRUE(proxy.start());
    HttpOrigin origin;
    EXPECT_EQ(curl_via(proxy.listener_port(), {origin.url("/one")}).exit_code, 0);
    EXPECT_NE(wait_for_line(proxy.path("first.log"), {"/one HTTP/1.1\" 200"}), "");

    proxy.config().set("log", "access_log", "${dir}/missing/second.log");
    ASSERT_TRUE(proxy.write_config());
    Json refused = proxy.control_json("reload");
    EXPECT_FALSE(refused["ok"].boolean());
    EXPECT_NE(refused["error"].str().find("[log] \"access_log\": cannot open access log \"" +
                                          proxy.path("missing/second.log") + "\""),
              std::string::npos)
        << refused["error"].str();

    proxy.config().set("log", "access_log", "${dir}/second.log");
    proxy.config().set("log", "access_log_format", "json");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(proxy.control_json("reload")["ok"].boolean());
    Json record;
    EXPECT_TRUE(wait_for(
        [&] {
            curl_via(proxy.listener_port(), {origin.url("/two")});
            record = wait_for_record(
                proxy.path("second.log"),
                [](const Json& r) { return field_has(r, "target", "/two"); }, 200ms);
            return !record.is_null();
        },
        10s))
        << read_file(proxy.path("second.log"));
    EXPECT_EQ(record["status"].as_int(), 200);
    EXPECT_EQ(read_file(proxy.path("first.log")).find("/two"), std::string::npos);
}

// The papercut of issue 16: `user = nobody` and a log directory only root
// may write to. The master opens the log before it drops its privileges,
// gives the file to nobody (so a reopen of the same file works), and the
// pid file's directory it made is nobody's, so a stop removes the pid file.
TEST(AccessLogPrivileges, UnprivilegedWorkersLogIntoRootOwnedDirectory) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges";
    ConfigBuilder c;
    c.set("master", "workers", "1");
    c.set("master", "user", "nobody");
    c.set("master", "pid_file", "${dir}/run/proxyd.pid");
    c.set("log", "access_log", "${dir}/logs/access.log");
    ProxydInstance proxy(c);
    ASSERT_EQ(::chmod(proxy.dir().c_str(), 0711), 0);  // nobody may pass, not write
    ASSERT_EQ(::mkdir(proxy.path("logs").c_str(), 0755), 0);
    ASSERT_TRUE(proxy.start());
    HttpOrigin origin;
    CurlResult r = curl_via(proxy.listener_port(), {origin.url("/before")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string log = proxy.path("logs/access.log");
    EXPECT_NE(wait_for_line(log, {"/before HTTP/1.1\" 200"}), "") << read_file(log);
    struct stat st;
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u) << "the log is given to the user the master becomes";

    // A reopen of the same path works as nobody; after a rotation too,
    // when the new file is made for it (logrotate's `create`).
    ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
    ASSERT_TRUE(write_file(log, ""));
    ASSERT_EQ(::chown(log.c_str(), 65534, 65534), 0);
    ASSERT_TRUE(proxy.signal(SIGUSR1));
    ASSERT_TRUE(proxy.wait_for_log("reopening logs"));
    EXPECT_TRUE(wait_for(
        [&] {
            curl_via(proxy.listener_port(), {origin.url("/after")});
            return read_file(log).find("/after HTTP/1.1\" 200") != std::string::npos;
        },
        10s))
        << read_file(log);
    EXPECT_EQ(proxy.log_lines_with("reopening the access log failed").size(), 0u);

    proxy.stop();
    EXPECT_NE(::access(proxy.path("run/proxyd.pid").c_str(), F_OK), 0)
        << "the pid file is left behind";
    EXPECT_EQ(proxy.log_lines_with("proxyd.pid").size(), 0u) << proxy.error_log();
}

}  // namespace
