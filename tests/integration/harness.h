// The integration test harness: runs the real proxyd binary in a temporary
// prefix with its own config, and gives tests real origins and real clients.
//
// In the spirit of nginx-tests: each test writes its own config, starts the
// binary (env PROXYD_BIN, default build/proxyd) in the foreground, talks to
// it over loopback only, and at teardown the harness asserts that the error
// log holds no alert and no sanitizer report and that no process is left.
//
// Every blocking call here is bounded by a timeout; every thread it starts is
// joined in a destructor.
//
//   harness::ConfigBuilder config;
//   config.set("limits", "upstream_timeout", "1s");
//   harness::ProxydInstance proxy(config);
//   ASSERT_TRUE(proxy.start());
//   harness::HttpOrigin origin;
//   auto r = harness::curl_via(proxy.listener_port("main"), {origin.url("/bytes/10")});
//   EXPECT_EQ(r.out, harness::pattern_bytes(10));
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace harness {

// True in the AddressSanitizer build (make asan): its shadow memory and
// quarantine make RSS numbers meaningless, so memory-bound checks skip.
constexpr bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    return false;
#endif
}

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Time elapsed since `start`, in whole milliseconds.
inline Millis since(Clock::time_point start) {
    return std::chrono::duration_cast<Millis>(Clock::now() - start);
}
// The same as a plain number, for printf's %lld.
inline long long ms_since(Clock::time_point start) {
    return since(start).count();
}

// ---------------------------------------------------------------------------
// Small utilities

// Polls `predicate` every `poll` until it returns true or `timeout` passes.
// Returns the predicate's last value.
bool wait_for(const std::function<bool()>& predicate, Millis timeout, Millis poll = 20ms);

// Deterministic content: byte i of pattern_bytes(n, seed) depends on i and
// seed only, and is not periodic with any small power of two.
std::string pattern_bytes(size_t n, uint32_t seed = 0);
// The first line of file `path` holding every one of `needles`, waiting
// up to `timeout` for it to be written (workers flush their access log
// every heartbeat); "" when none came.
std::string wait_for_line(const std::string& path, const std::vector<std::string>& needles,
                          Millis timeout = 10s);
// Access-log records of `access_log_format = json`, for tests that check a
// field the combined format does not carry (route, reason, upstream...):
// the first record for which `match` holds, waiting up to `timeout` for it
// (workers flush every heartbeat); a null Json when none came. A line that
// does not parse fails the test.
class Json;
Json wait_for_record(const std::string& path, const std::function<bool(const Json&)>& match,
                     Millis timeout = 10s);
// Does the record's string field `key` contain `needle`?
bool field_has(const Json& record, const std::string& key, const std::string& needle);
// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// The bytes of `values` (each 0..255): bytes({5, 1, 0}).
std::string bytes(std::initializer_list<int> values);
// Lower-case hex bytes separated by spaces ("05 00"): binary in a failure
// message that a reader can compare.
std::string hex(std::string_view data);

// mkdtemp("/tmp/<prefix>XXXXXX"); aborts the test binary when that fails.
std::string make_temp_dir(const std::string& prefix = "proxyd-test-");
// rm -rf without a shell; errors are ignored.
void remove_tree(const std::string& path);
bool write_file(const std::string& path, std::string_view data);
// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);

// Writes a self-signed EC certificate for 127.0.0.1 / localhost / ::1 with
// the openssl CLI. Returns false (and ADD_FAILUREs) when that failed.
bool make_self_signed_cert(const std::string& cert_path, const std::string& key_path);

// Is process `pid` alive (exists and is not a zombie)?
bool process_alive(pid_t pid);
// Pids whose parent is `parent` (read from /proc), zombies excluded.
std::vector<pid_t> children_of(pid_t parent);
// Blocking send of all of `data` on a socket (a RawTcpServer handler's);
// stops at the first error.
void send_all(int fd, std::string_view data);
// A loopback port nothing listens on: bound, then closed.
uint16_t closed_port();
// The resident set of `pid` now, from /proc/PID/statm; 0 when it is gone.
uint64_t resident_bytes(pid_t pid);
// Sockets process `pid` holds (its /proc/PID/fd entries that are sockets);
// -1 when it is gone.
int open_sockets(pid_t pid);

// The binaries under test: env PROXYD_BIN (default build/proxyd), and the
// proxyctl beside it.
std::string proxyd_bin();
std::string proxyctl_bin();

// ---------------------------------------------------------------------------
// JSON: the control socket's answers, parsed by nlohmann-json and held in a
// tree whose lookups never throw: missing keys and out-of-range indexes
// yield a null value, so chains like j["workers"][0]["state"].str() are safe
// in any assertion. (nlohmann's own operator[] asserts on a missing key of a
// const object; this keeps every test's reading of answers as it was.)
class Json {
  public:
    enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

    // nullopt when `text` is not one complete JSON value.
    static std::optional<Json> parse(std::string_view text);

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::kNull; }
    bool is_object() const { return type_ == Type::kObject; }
    bool is_array() const { return type_ == Type::kArray; }
    bool has(const std::string& key) const;
    const Json& operator[](const std::string& key) const;
    const Json& operator[](size_t index) const;
    // Elements of an array or values of an object; 0 otherwise.
    size_t size() const { return values_.size(); }
    const std::vector<Json>& items() const { return values_; }
    const std::vector<std::string>& keys() const { return keys_; }

    const std::string& str() const { return string_; }  // "" unless a string
    double num() const { return number_; }              // 0 unless a number
    int64_t as_int() const { return static_cast<int64_t>(number_); }
    bool boolean() const { return boolean_; }  // false unless true

  private:
    friend class JsonReader;
    Type type_ = Type::kNull;
    bool boolean_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<std::string> keys_;  // objects: keys_[i] names values_[i]
    std::vector<Json> values_;
};

// The control socket's verdict on a command, asserted whole: an answer came,
// it is a JSON object, "ok" is the boolean expected, and a refusal's "error"
// is exactly `error`. (EXPECT_FALSE(answer["ok"].boolean()) alone also holds
// when nothing answered.)
::testing::AssertionResult is_ok(const Json& answer);
::testing::AssertionResult is_refusal(const Json& answer, std::string_view error);

// ---------------------------------------------------------------------------
// Config

// Builds the proxyd config of one test. Starts from the harness defaults:
//
//   [master] workers = 2, pid_file/control_socket in the temp dir,
//            heartbeat_interval = 200ms (reports come fast for tests to
//            read), heartbeat_timeout = 5s (the shipped default: a test of
//            the heartbeat sets a short one), graceful_timeout = 5s
//   [log]    error_log = <dir>/error.log, level = info
//   [acl]    allow_clients = 127.0.0.0/8, ::1; deny_private_destinations = no;
//            connect_ports = 1-65535
//   [listen main] address = 127.0.0.1:0, protocol = http
//            (only when the test adds no listener of its own)
//
// The literal text "${dir}" in any value or raw text is replaced with the
// instance's temp dir when the config is rendered.
class ConfigBuilder {
  public:
    ConfigBuilder();

    // Sets (or replaces) `key = value` in `section` ("master", "listen main"...).
    ConfigBuilder& set(const std::string& section, const std::string& key,
                       const std::string& value);
    // Removes a key, default or not, so the binary's own default applies.
    ConfigBuilder& unset(const std::string& section, const std::string& key);
    // Adds "[listen NAME]" with address and protocol.
    ConfigBuilder& add_listener(const std::string& name, const std::string& address = "127.0.0.1:0",
                                const std::string& protocol = "http");
    // Appended verbatim after the sections (e.g. a deliberately bad line).
    ConfigBuilder& raw(const std::string& text);
    // Don't add the default "[listen main]" even when no listener was added.
    ConfigBuilder& no_default_listener();

    // The config text with "${dir}" replaced by `dir`.
    std::string render(const std::string& dir) const;
    // The configured worker count, when it is a plain number.
    std::optional<int> workers() const;

  private:
    struct Section {
        std::string name;
        std::vector<std::pair<std::string, std::string>> keys;
    };
    Section& section(const std::string& name);
    std::vector<Section> sections_;
    std::string raw_;
    bool has_listener_ = false;
    bool default_listener_ = true;
};

// ---------------------------------------------------------------------------
// The proxyd instance

// A proxyd master running as a child of the test process, in its own temp
// dir. The destructor stops it and checks the logs (see the file comment).
class ProxydInstance {
  public:
    explicit ProxydInstance(ConfigBuilder config = ConfigBuilder());
    ~ProxydInstance();
    ProxydInstance(const ProxydInstance&) = delete;
    ProxydInstance& operator=(const ProxydInstance&) = delete;

    // Writes the config, spawns the binary and waits until `status` shows
    // every worker running (wait_ready). False, with ADD_FAILURE and the
    // stderr/error log quoted, when it did not get there in time.
    bool start(Millis timeout = 10s);
    // Spawns `PROXYD_BIN -c <config> extra_args...` without waiting.
    // stdout and stderr go to files in the temp dir (stdout(), stderr_output()).
    bool spawn(const std::vector<std::string>& extra_args = {});
    // Starts the master under this limit of open files, soft and hard, as
    // prlimit(1) does (root cannot raise it back on every machine, so it is
    // set in the child only). 0: this process's own limits.
    void set_descriptor_limit(uint64_t limit) { descriptor_limit_ = limit; }
    // Waits until the control socket answers `status` with ok, at least the
    // configured number of workers, all "running". False on timeout or when
    // the master exited.
    bool wait_ready(Millis timeout = 10s);

    const std::string& dir() const { return dir_; }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string config_path() const { return path("proxyd.conf"); }
    std::string control_socket_path() const { return path("proxyd.sock"); }
    std::string pid_file_path() const { return path("proxyd.pid"); }
    std::string error_log_path() const { return path("error.log"); }
    ConfigBuilder& config() { return config_; }
    // Re-renders config() into config_path() (e.g. before a reload).
    bool write_config();

    // Sends one command line, returns the one-line answer without its "\n";
    // nullopt on connect failure, EOF or timeout.
    std::optional<std::string> control(const std::string& command, Millis timeout = 5s);
    // control() parsed; a null Json when there was no answer or it is not JSON.
    Json control_json(const std::string& command, Millis timeout = 5s);
    // control_json("status"); remembers every worker pid it lists.
    Json status();

    // "127.0.0.1:41234", from status.listeners[name].address ("" if absent).
    std::string listener_address(const std::string& name = "main");
    // The port of that address; 0 when absent.
    uint16_t listener_port(const std::string& name = "main");

    // Worker pids listed by `status` now (also remembered for teardown).
    std::vector<pid_t> worker_pids();
    // The workers `status` lists now; empty when it did not answer.
    struct Worker {
        pid_t pid = 0;
        int slot = 0;
        int generation = 0;
        std::string state;  // starting | running | draining
        int64_t active_sessions = 0;
        int64_t total_sessions = 0;
        bool paused = false;  // accepting paused by the master's balancing
    };
    std::vector<Worker> workers();
    // Exactly `count` workers listed, every one running.
    bool exactly_running(size_t count);
    // Is `pid` among the listed workers?
    bool lists_worker(pid_t pid);
    // The spawned master's pid; -1 before spawn.
    pid_t master_pid() const { return pid_; }
    bool running();  // the master has not exited yet
    bool signal(int sig);
    // Waits for the master to exit; its wait status (as from waitpid), or
    // nullopt on timeout. May be called again after it returned a status.
    std::optional<int> wait_exit(Millis timeout = 10s);
    // Convenience: WIFEXITED ? exit code : 128 + signal; nullopt on timeout.
    std::optional<int> wait_exit_code(Millis timeout = 10s);

    std::string error_log() const;
    std::string stdout_output() const;
    std::string stderr_output() const;
    // Error log lines containing `needle`.
    std::vector<std::string> log_lines_with(const std::string& needle) const;
    // Waits until the error log contains `needle`.
    bool wait_for_log(const std::string& needle, Millis timeout = 5s) const;

    // This test causes alerts on purpose: teardown won't fail on "[alert]"
    // lines (sanitizer reports still fail).
    void expect_alerts() { alerts_expected_ = true; }
    // Worker life events teardown fails on (read from the error log) unless
    // the test declares it causes them. A crash is an alert (expect_alerts).
    enum class WorkerEvent : unsigned {
        kAborted = 1u << 0,      // silent past heartbeat_timeout: SIGABRT, then SIGKILL
        kExited = 1u << 1,       // exited or was killed without being asked to stop
        kReplaced = 1u << 2,     // recycled (worker_max_rss/_sessions) or retired
        kDrainKilled = 1u << 3,  // still draining at graceful_timeout, or one
                                 // generation too many: SIGKILL
    };
    void expect_worker_events(std::initializer_list<WorkerEvent> events) {
        for (WorkerEvent e : events) expected_events_ |= static_cast<unsigned>(e);
    }
    // Error log lines of worker events this test did not declare (teardown
    // fails on each). A malformed report is never expected.
    std::vector<std::string> unexpected_worker_events() const;
    // Adds `pid` to the processes teardown requires gone (each is matched by
    // its start time, so a reused pid is never blamed). Worker pids listed by
    // status() and the master's children at stop/signal time are added
    // automatically.
    void remember_pid(pid_t pid);

    // SIGTERM, then SIGKILL after `timeout` (a failure unless the master exits
    // 0 in time). A live master named by the pid file that is not our child
    // (after a hot upgrade) is stopped too. Called by the destructor (which
    // then checks logs and leftovers); safe to call more than once.
    void stop(Millis timeout = 5s);

  private:
    void check_logs();
    void check_worker_events();
    void check_no_leftovers();
    void dump_diagnostics() const;
    void remember_children();
    void stop_other_master(Millis timeout);

    ConfigBuilder config_;
    std::string dir_;
    pid_t pid_ = -1;
    std::optional<int> exit_status_;
    // pid -> start time (field 22 of /proc/PID/stat), so a reused pid is
    // never mistaken for a leftover worker.
    std::map<pid_t, unsigned long long> seen_pids_;
    bool alerts_expected_ = false;
    unsigned expected_events_ = 0;  // WorkerEvent bits
    bool stopped_ = false;
    uint64_t descriptor_limit_ = 0;
};

// ---------------------------------------------------------------------------
// Origins

// One request as an origin received it.
struct ReceivedRequest {
    std::string method;
    std::string target;
    std::string version;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, as received
    std::string body;  // decoded (chunked bodies de-chunked)
    bool chunked = false;
    int connection_id = 0;  // 1-based, in order of accept
    std::string peer;       // "IP:PORT" of the connection's client, as accepted

    // First value of header `name` (case-insensitive); nullopt if absent.
    std::optional<std::string> header(const std::string& name) const;
    bool has_header(const std::string& name) const { return header(name).has_value(); }
};

// An HTTP/1.1 origin server on 127.0.0.1:0 with a thread per connection.
// Keep-alive by default. Routes (by target path, query ignored):
//
//   /bytes/N            200, Content-Length N, body pattern_bytes(N)
//   /chunked/N          200, chunked, body pattern_bytes(N) in uneven chunks
//   /status/CODE        that status; 204 and 304 without a body, others "CODE\n"
//   /echo               200, the decoded request body; headers
//                       X-Body-Length, X-Body-Sha256 describe it
//   /headers            200, body = received header lines "name: value\n"
//   /peer               200, body = the connection's client address "IP:PORT"
//                       (what a proxy dialed from: tests of source addresses)
//   /silent             reads the request and never answers
//   /close-mid-body/N   Content-Length N, sends N/2 bytes, closes
//   /close              200 "bye\n" with Connection: close, then closes
//   anything else       200 "hello\n"
//
// HEAD to any route gets the GET route's headers and no body. A request with
// "Expect: 100-continue" gets "100 Continue" first. Every request is recorded
// (requests()), whatever the route, once its body has arrived.
class HttpOrigin {
  public:
    HttpOrigin();  // plain
    // TLS with the given certificate and key (PEM files).
    HttpOrigin(const std::string& cert_path, const std::string& key_path);
    virtual ~HttpOrigin();
    HttpOrigin(const HttpOrigin&) = delete;
    HttpOrigin& operator=(const HttpOrigin&) = delete;

    uint16_t port() const { return port_; }
    // "http://127.0.0.1:PORT" + path (https for TLS).
    std::string url(const std::string& path = "/") const;
    std::string host_port() const;  // "127.0.0.1:PORT"

    int connections_accepted() const { return accepted_.load(); }
    size_t request_count() const;
    std::vector<ReceivedRequest> requests() const;
    std::optional<ReceivedRequest> last_request() const;
    // Waits until at least n requests arrived.
    bool wait_requests(size_t n, Millis timeout = 5s) const;
    void clear();  // forget recorded requests (connection count too)

    // Stops accepting, closes every connection, joins every thread.
    void stop();

  protected:
    struct Conn;

  private:
    void start();
    void accept_loop();
    void serve(std::shared_ptr<Conn> conn);
    bool serve_one(Conn& conn, bool& keep_alive);

    void* ssl_ctx_ = nullptr;  // SSL_CTX*, owned
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::thread acceptor_;
    mutable std::mutex mutex_;
    std::vector<std::thread> threads_;
    std::vector<std::shared_ptr<Conn>> conns_;
    std::vector<ReceivedRequest> requests_;
};

// HttpOrigin over TLS with a fresh self-signed certificate (in its own temp
// dir, removed by the destructor). Clients verify it with --cacert
// cert_path() or skip verification with -k.
class TlsOrigin : public HttpOrigin {
  public:
    TlsOrigin();
    ~TlsOrigin() override;
    const std::string& cert_path() const { return cert_; }
    const std::string& key_path() const { return key_; }

  private:
    struct CertDir {
        CertDir();
        std::string dir, cert, key;
    };
    explicit TlsOrigin(CertDir certs);
    std::string dir_, cert_, key_;
};

// A TCP server on 127.0.0.1:0 that hands every accepted connection to
// `handler` on its own thread (for upstream faults: reset, garbage, stall).
// The handler gets the fd and a stop flag it should poll; the fd is closed
// by the server after the handler returns (handlers use shutdown(), never close();
// set SO_LINGER {1, 0} to make that close a reset).
class RawTcpServer {
  public:
    using Handler = std::function<void(int fd, const std::atomic<bool>& stopping)>;
    explicit RawTcpServer(Handler handler);
    ~RawTcpServer();
    RawTcpServer(const RawTcpServer&) = delete;
    RawTcpServer& operator=(const RawTcpServer&) = delete;

    uint16_t port() const { return port_; }
    int connections_accepted() const { return accepted_.load(); }
    void stop();

  private:
    Handler handler_;
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<std::thread> threads_;
    std::vector<int> fds_;
};

// ---------------------------------------------------------------------------
// Clients

struct CurlResult {
    int exit_code = -1;  // curl's exit status; -1 if it could not run or was killed
    bool timed_out = false;
    std::string out;  // stdout bytes
    std::string err;  // stderr text
};

// Runs `curl -q -sS --max-time <timeout> args...` with the proxy variables
// removed from its environment; kills it one second after `timeout`.
CurlResult run_curl(const std::vector<std::string>& args, Millis timeout = 10s);
// run_curl with "-x http://127.0.0.1:<proxy_port>" in front of `args`.
CurlResult curl_via(uint16_t proxy_port, const std::vector<std::string>& args,
                    Millis timeout = 10s);

// posix_spawn with stdin from /dev/null and stdout/stderr to the given fds
// (or inherited when -1); argv[0] looked up in PATH with `search_path`, the
// proxy variables removed from the environment with `clear_proxy_env`.
// Returns the pid or -1.
pid_t spawn_process(const std::vector<std::string>& argv, int out_fd, int err_fd, bool search_path,
                    bool clear_proxy_env);

// Runs any program with argv (argv[0] looked up in PATH), capturing output.
CurlResult run_program(const std::vector<std::string>& argv, Millis timeout = 10s);

struct HttpResponse {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  // decoded

    std::optional<std::string> header(const std::string& name) const;
    bool has_header(const std::string& name) const { return header(name).has_value(); }
};

// A blocking TCP client with timeouts on every call, for bytes curl won't send.
class RawClient {
  public:
    RawClient() = default;
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    // Connects to 127.0.0.1:port (or `host`). False on failure or timeout.
    bool connect(uint16_t port, Millis timeout = 5s, const std::string& host = "127.0.0.1");
    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // Writes all of `data`; false on error or timeout.
    bool send(std::string_view data, Millis timeout = 5s);
    // Whatever arrives within `timeout` after the first byte (at most one
    // read); "" on timeout, EOF or error (see eof()).
    std::string recv_some(Millis timeout = 5s);
    // Reads one full response (Content-Length, chunked, or to EOF; no body
    // for HEAD (pass head=true), 1xx, 204, 304). nullopt on timeout, EOF
    // before a complete response, or unparsable bytes (see buffered()).
    std::optional<HttpResponse> read_response(Millis timeout = 5s, bool head = false);
    // Reads until the peer closes; everything read (including buffered()).
    // `closed` tells whether EOF came before the timeout.
    std::string read_until_close(Millis timeout, bool* closed = nullptr);
    // True when the peer closed (EOF or reset) within `timeout`, discarding
    // any data that arrives meanwhile.
    bool wait_closed(Millis timeout = 5s);
    bool eof() const { return eof_; }
    const std::string& buffered() const { return buffer_; }
    void close();
    void shutdown_write();

  private:
    // Appends one read to buffer_ within the deadline; false on timeout/EOF/error.
    bool fill(Clock::time_point deadline);
    int fd_ = -1;
    bool eof_ = false;
    std::string buffer_;
};

// Base64 (RFC 4648, with padding), as Basic credentials carry them.
std::string base64(std::string_view in);
// The "Proxy-Authorization: Basic ...\r\n" line of `user` and `password`.
std::string basic(const std::string& user, const std::string& password);
// A blocking TCP connection from `source` (an address of 127/8, so the
// proxy sees another client) to 127.0.0.1:port, with 5 s send and receive
// timeouts; -1 on failure.
int connect_from(const std::string& source, uint16_t port);
// Reads the answer to a CONNECT: the head, and for a refusal its
// Content-Length body (a 200 has none: the tunnel follows).
std::optional<HttpResponse> read_connect_answer(RawClient& client, Millis timeout);

// Parses one response from the front of `data`. Returns the response and
// sets `consumed`; nullopt when incomplete (need_more=true) or malformed.
std::optional<HttpResponse> parse_response(std::string_view data, bool head, size_t& consumed,
                                           bool& need_more, bool eof = false);

// ---------------------------------------------------------------------------
// --- shared socket helpers (issue 13)
// For the handlers of a RawTcpServer (which get a blocking socket and a stop
// flag) and for tests that look at a worker's descriptors. Every call is
// bounded by its timeout and by the stop flag.

// Waits until `fd` is ready for `events` (POLLIN, POLLOUT), polling in 50 ms
// steps so a stop is seen; false on stop or at the deadline.
bool wait_ready(int fd, short events, const std::atomic<bool>& stopping,
                Clock::time_point deadline);
// Sends all of `data` without blocking past `timeout` or a stop. False when
// the peer closed or reset the connection (then `peer_gone`, when given, is
// set), or on stop or timeout.
bool send_all(int fd, std::string_view data, const std::atomic<bool>& stopping,
              Millis timeout = 10s, bool* peer_gone = nullptr);
// Waits for the peer to close its end (EOF or reset), discarding what it
// sends meanwhile; true when it did within `timeout`.
bool wait_peer_close(int fd, const std::atomic<bool>& stopping, Millis timeout);

// Reads from `client` until at least `n` bytes arrived, EOF or `timeout`;
// returns all it read.
std::string read_at_least(RawClient& client, size_t n, Millis timeout = std::chrono::seconds(5));

// A RawTcpServer handler for tunnels: echoes every byte back until the
// client closes or the test ends, so a tunnel stays open exactly as long as
// its client.
RawTcpServer::Handler echo_handler();
// Reads one request head (through the blank line) from `fd`; bytes read
// past it stay in `in` (pass what earlier reads left there). The head, or ""
// on EOF, error, stop or `timeout`.
std::string read_request_head(int fd, std::string& in, const std::atomic<bool>& stopping,
                              Millis timeout = 5s);
// Makes the close of `fd` a reset (SO_LINGER {1, 0}): a handler calls it
// and returns, and the server's close sends RST.
void reset_on_close(int fd);
// The descriptors of `pid`, from /proc/PID/fd: number -> what it refers to
// ("socket:[N]", "pipe:[N]", a path...). Empty when the process is gone.
std::map<int, std::string> descriptor_targets(pid_t pid);

}  // namespace harness
