// The integration test harness (see harness.h).
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json_util.h"

extern char** environ;

namespace harness {

// ===========================================================================
// Utilities

namespace {

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

// poll() one fd for `events` until the deadline; true when ready.
bool poll_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

std::optional<std::string> find_header(
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& name) {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return std::nullopt;
}

// A listening TCP socket on 127.0.0.1:0; returns the fd and sets `port`.
int listen_loopback(uint16_t& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd, 512) != 0) {
        ::close(fd);
        return -1;
    }
    socklen_t len = sizeof sin;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    port = ntohs(sin.sin_port);
    return fd;
}

// Reads field `index` (1-based, as in proc(5)) of /proc/PID/stat.
std::optional<std::string> proc_stat_field(pid_t pid, int index) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty()) return std::nullopt;
    // comm (field 2) may contain spaces and parentheses: skip to the last ')'.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    if (index == 2) return stat.substr(stat.find('(') + 1, close - stat.find('(') - 1);
    std::istringstream rest(stat.substr(close + 1));
    std::string field;
    for (int i = 3; i <= index; ++i) {
        if (!(rest >> field)) return std::nullopt;
    }
    return field;
}

unsigned long long start_time(pid_t pid) {
    auto f = proc_stat_field(pid, 22);
    return f ? std::strtoull(f->c_str(), nullptr, 10) : 0;
}

}  // namespace

bool wait_for(const std::function<bool()>& predicate, Millis timeout, Millis poll) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (predicate()) return true;
        if (Clock::now() >= deadline) return predicate();
        std::this_thread::sleep_for(poll);
    }
}

std::string wait_for_line(const std::string& path, const std::vector<std::string>& needles,
                          Millis timeout) {
    std::string found;
    wait_for(
        [&] {
            std::istringstream in(read_file(path));
            std::string line;
            while (std::getline(in, line)) {
                bool all = std::all_of(needles.begin(), needles.end(), [&](const std::string& n) {
                    return line.find(n) != std::string::npos;
                });
                if (all) {
                    found = line;
                    return true;
                }
            }
            return false;
        },
        timeout, 50ms);
    return found;
}

Json wait_for_record(const std::string& path, const std::function<bool(const Json&)>& match,
                     Millis timeout) {
    Json found;
    wait_for(
        [&] {
            std::istringstream in(read_file(path));
            std::string line;
            while (std::getline(in, line)) {
                std::optional<Json> record = Json::parse(line);
                if (!record || !record->is_object()) {
                    ADD_FAILURE() << "access-log line that is not a JSON object: " << line;
                    return true;
                }
                if (match(*record)) {
                    found = *record;
                    return true;
                }
            }
            return false;
        },
        timeout, 50ms);
    return found;
}

bool field_has(const Json& record, const std::string& key, const std::string& needle) {
    return record[key].str().find(needle) != std::string::npos;
}

std::string pattern_bytes(size_t n, uint32_t seed) {
    std::string out(n, '\0');
    // xorshift32: deterministic, cheap, no short period.
    uint32_t x = 2463534242u ^ (seed * 2654435761u);
    if (x == 0) x = 1;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = static_cast<char>(x & 0xff);
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out += static_cast<char>(static_cast<uint8_t>(v));
    return out;
}

std::string hex(std::string_view data) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : data) {
        if (!out.empty()) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string make_temp_dir(const std::string& prefix) {
    std::string templ = "/tmp/" + prefix + "XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    return std::string(buf.data());
}

void remove_tree(const std::string& path) {
    if (path.empty() || path == "/") return;
    ::nftw(
        path.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) {
            return ::remove(p) == 0 ? 0 : 0;
        },
        16, FTW_DEPTH | FTW_PHYS);
}

bool write_file(const std::string& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    return static_cast<bool>(out);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool make_self_signed_cert(const std::string& cert_path, const std::string& key_path) {
    CurlResult r = run_program(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"},
        20s);
    if (r.exit_code != 0) {
        ADD_FAILURE() << "openssl req failed (" << r.exit_code << "): " << r.err;
        return false;
    }
    return true;
}

bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    auto state = proc_stat_field(pid, 3);
    if (!state) return false;  // gone between the two checks
    return *state != "Z" && *state != "X";
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || pid <= 0) continue;
        auto ppid = proc_stat_field(static_cast<pid_t>(pid), 4);
        auto state = proc_stat_field(static_cast<pid_t>(pid), 3);
        if (ppid && state && std::atol(ppid->c_str()) == parent && *state != "Z")
            out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(d);
    return out;
}

void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        data.remove_prefix(static_cast<size_t>(n));
    }
}

uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    socklen_t len = sizeof sin;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    ::close(fd);
    return ntohs(sin.sin_port);
}

int open_sockets(pid_t pid) {
    std::map<int, std::string> targets = descriptor_targets(pid);
    if (targets.empty()) return -1;
    return static_cast<int>(std::count_if(targets.begin(), targets.end(), [](const auto& t) {
        return t.second.rfind("socket:", 0) == 0;
    }));
}

uint64_t resident_bytes(pid_t pid) {
    std::string statm = read_file("/proc/" + std::to_string(pid) + "/statm");
    unsigned long long size = 0, resident = 0;
    if (std::sscanf(statm.c_str(), "%llu %llu", &size, &resident) != 2) return 0;
    return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// ===========================================================================
// Json

// The control socket's answers are parsed by nlohmann-json (through the
// same untrusted-input entry point proxyctl uses) and copied into this
// small tree, whose lookups never throw: tests chain them freely.
class JsonReader {
  public:
    static Json convert(const common::Json& in) {
        Json out;
        switch (in.type()) {
            case common::Json::value_t::boolean:
                out.type_ = Json::Type::kBool;
                out.boolean_ = in.get<bool>();
                break;
            case common::Json::value_t::number_integer:
            case common::Json::value_t::number_unsigned:
            case common::Json::value_t::number_float:
                out.type_ = Json::Type::kNumber;
                out.number_ = in.get<double>();
                break;
            case common::Json::value_t::string:
                out.type_ = Json::Type::kString;
                out.string_ = in.get<std::string>();
                break;
            case common::Json::value_t::array:
                out.type_ = Json::Type::kArray;
                for (const common::Json& item : in) out.values_.push_back(convert(item));
                break;
            case common::Json::value_t::object:
                out.type_ = Json::Type::kObject;
                for (const auto& [key, value] : in.items()) {
                    out.keys_.push_back(key);
                    out.values_.push_back(convert(value));
                }
                break;
            default:
                break;
        }
        return out;
    }
};

std::optional<Json> Json::parse(std::string_view text) {
    common::Json parsed = common::parse_untrusted(text);
    if (parsed.is_discarded()) return std::nullopt;
    return JsonReader::convert(parsed);
}

namespace {
const Json& null_json() {
    static const Json kNull;
    return kNull;
}
}  // namespace

bool Json::has(const std::string& key) const {
    return type_ == Type::kObject && std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

const Json& Json::operator[](const std::string& key) const {
    if (type_ != Type::kObject) return null_json();
    for (size_t i = 0; i < keys_.size(); ++i) {
        if (keys_[i] == key) return values_[i];
    }
    return null_json();
}

const Json& Json::operator[](size_t index) const {
    if (type_ != Type::kArray || index >= values_.size()) return null_json();
    return values_[index];
}

namespace {
// The answer as the test's failure message shows it.
std::string describe_answer(const Json& answer) {
    if (answer.is_null()) return "no answer (or not JSON)";
    if (!answer.is_object()) return "an answer that is not a JSON object";
    std::string text = "ok=";
    text += answer["ok"].type() == Json::Type::kBool ? (answer["ok"].boolean() ? "true" : "false")
                                                     : "(not a boolean)";
    if (answer.has("error")) text += ", error=\"" + answer["error"].str() + "\"";
    return text;
}
}  // namespace

::testing::AssertionResult is_ok(const Json& answer) {
    if (answer.is_object() && answer["ok"].type() == Json::Type::kBool && answer["ok"].boolean())
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected ok=true, got " << describe_answer(answer);
}

::testing::AssertionResult is_refusal(const Json& answer, std::string_view error) {
    if (answer.is_object() && answer["ok"].type() == Json::Type::kBool && !answer["ok"].boolean() &&
        answer["error"].str() == error)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "expected ok=false, error=\"" << error << "\", got " << describe_answer(answer);
}

// ===========================================================================
// ConfigBuilder

ConfigBuilder::ConfigBuilder() {
    set("master", "workers", "2");
    set("master", "pid_file", "${dir}/proxyd.pid");
    set("master", "control_socket", "${dir}/proxyd.sock");
    set("master", "heartbeat_interval", "200ms");
    set("master", "heartbeat_timeout", "5s");
    set("master", "graceful_timeout", "5s");
    set("log", "error_log", "${dir}/error.log");
    set("log", "level", "info");
    set("acl", "allow_clients", "127.0.0.0/8, ::1");
    set("acl", "deny_private_destinations", "no");
    set("acl", "connect_ports", "1-65535");
}

ConfigBuilder::Section& ConfigBuilder::section(const std::string& name) {
    for (auto& s : sections_) {
        if (s.name == name) return s;
    }
    sections_.push_back(Section{name, {}});
    if (name.rfind("listen ", 0) == 0) has_listener_ = true;
    return sections_.back();
}

ConfigBuilder& ConfigBuilder::set(const std::string& section_name, const std::string& key,
                                  const std::string& value) {
    Section& s = section(section_name);
    for (auto& kv : s.keys) {
        if (kv.first == key) {
            kv.second = value;
            return *this;
        }
    }
    s.keys.emplace_back(key, value);
    return *this;
}

ConfigBuilder& ConfigBuilder::unset(const std::string& section_name, const std::string& key) {
    for (auto& s : sections_) {
        if (s.name != section_name) continue;
        s.keys.erase(std::remove_if(s.keys.begin(), s.keys.end(),
                                    [&](const auto& kv) { return kv.first == key; }),
                     s.keys.end());
    }
    return *this;
}

ConfigBuilder& ConfigBuilder::add_listener(const std::string& name, const std::string& address,
                                           const std::string& protocol) {
    set("listen " + name, "address", address);
    set("listen " + name, "protocol", protocol);
    return *this;
}

ConfigBuilder& ConfigBuilder::raw(const std::string& text) {
    raw_ += text;
    if (!raw_.empty() && raw_.back() != '\n') raw_ += '\n';
    return *this;
}

ConfigBuilder& ConfigBuilder::no_default_listener() {
    default_listener_ = false;
    return *this;
}

std::string ConfigBuilder::render(const std::string& dir) const {
    std::string out = "; written by the integration test harness\n";
    auto emit = [&](const Section& s) {
        out += "\n[" + s.name + "]\n";
        for (const auto& [k, v] : s.keys) out += k + " = " + v + "\n";
    };
    for (const auto& s : sections_) emit(s);
    if (!has_listener_ && default_listener_)
        emit(Section{"listen main", {{"address", "127.0.0.1:0"}, {"protocol", "http"}}});
    if (!raw_.empty()) out += "\n" + raw_;
    std::string result;
    const std::string token = "${dir}";
    size_t pos = 0;
    for (;;) {
        size_t hit = out.find(token, pos);
        if (hit == std::string::npos) break;
        result += out.substr(pos, hit - pos) + dir;
        pos = hit + token.size();
    }
    result += out.substr(pos);
    return result;
}

std::optional<int> ConfigBuilder::workers() const {
    for (const auto& s : sections_) {
        if (s.name != "master") continue;
        for (const auto& [k, v] : s.keys) {
            if (k != "workers") continue;
            char* end = nullptr;
            long n = std::strtol(v.c_str(), &end, 10);
            if (end != v.c_str() && *end == '\0') return static_cast<int>(n);
            if (v == "auto") return static_cast<int>(std::thread::hardware_concurrency());
        }
    }
    return std::nullopt;
}

// ===========================================================================
// ProxydInstance

std::string proxyd_bin() {
    const char* env = std::getenv("PROXYD_BIN");
    return env != nullptr && *env != '\0' ? env : "build/proxyd";
}

std::string proxyctl_bin() {
    std::string bin = proxyd_bin();
    size_t slash = bin.rfind('/');
    return (slash == std::string::npos ? std::string() : bin.substr(0, slash + 1)) + "proxyctl";
}

pid_t spawn_process(const std::vector<std::string>& argv, int out_fd, int err_fd, bool search_path,
                    bool clear_proxy_env) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string var(*e);
        std::string name = lower(var.substr(0, var.find('=')));
        if (clear_proxy_env && (name == "http_proxy" || name == "https_proxy" ||
                                name == "all_proxy" || name == "no_proxy" || name == "curl_home"))
            continue;
        env_store.push_back(var);
    }
    std::vector<char*> env;
    for (auto& v : env_store) env.push_back(v.data());
    env.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0) posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    if (err_fd >= 0) posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    // The child must start with default signal dispositions and an empty mask.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    pid_t pid = -1;
    int rc = search_path ? posix_spawnp(&pid, args[0], &actions, &attr, args.data(), env.data())
                         : posix_spawn(&pid, args[0], &actions, &attr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -1;
}

namespace {

bool contains_bad_marker(const std::string& text, bool alerts_ok, std::string& line_out) {
    static const char* kMarkers[] = {"AddressSanitizer", "runtime error:", "LeakSanitizer",
                                     "ThreadSanitizer"};
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!alerts_ok && line.find("[alert]") != std::string::npos) {
            line_out = line;
            return true;
        }
        for (const char* m : kMarkers) {
            if (line.find(m) != std::string::npos) {
                line_out = line;
                return true;
            }
        }
    }
    return false;
}

std::string tail(const std::string& text, size_t lines) {
    size_t pos = text.size();
    for (size_t n = 0; n <= lines && pos > 0; ++n) {
        size_t prev = text.rfind('\n', pos - 1);
        if (prev == std::string::npos) return text;
        if (n < lines)
            pos = prev;
        else
            return text.substr(prev + 1);
    }
    return text.substr(pos);
}

}  // namespace

ProxydInstance::ProxydInstance(ConfigBuilder config)
    : config_(std::move(config)), dir_(make_temp_dir("proxyd-test-")) {}

ProxydInstance::~ProxydInstance() {
    stop();
    check_logs();
    check_worker_events();
    check_no_leftovers();
    if (::testing::Test::HasFailure()) dump_diagnostics();
    const char* keep = std::getenv("PROXYD_KEEP_TMP");
    if (keep != nullptr && *keep == '1') {
        std::fprintf(stderr, "harness: kept %s\n", dir_.c_str());
    } else {
        remove_tree(dir_);
    }
}

bool ProxydInstance::write_config() {
    return write_file(config_path(), config_.render(dir_));
}

bool ProxydInstance::spawn(const std::vector<std::string>& extra_args) {
    if (!write_config()) {
        ADD_FAILURE() << "cannot write " << config_path();
        return false;
    }
    std::vector<std::string> argv = {proxyd_bin(), "-c", config_path()};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    if (descriptor_limit_ != 0) {
        // prlimit sets its own limits and execs proxyd: the pid stays the master's.
        const std::string limit = std::to_string(descriptor_limit_);
        argv.insert(argv.begin(), {"prlimit", "--nofile=" + limit + ":" + limit, "--"});
    }
    int out = ::open(path("stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = ::open(path("stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_ = spawn_process(argv, out, err, descriptor_limit_ != 0, false);
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
    exit_status_.reset();
    stopped_ = false;
    if (pid_ < 0) {
        ADD_FAILURE() << "cannot spawn " << argv[0] << " (set PROXYD_BIN?)";
        return false;
    }
    return true;
}

bool ProxydInstance::start(Millis timeout) {
    if (!spawn()) return false;
    if (wait_ready(timeout)) return true;
    ADD_FAILURE() << "proxyd did not become ready within " << timeout.count() << " ms"
                  << "\n--- stderr:\n"
                  << tail(stderr_output(), 30) << "\n--- error log:\n"
                  << tail(error_log(), 30)
                  << "\n--- last status: " << control("status", 1s).value_or("(no answer)");
    return false;
}

bool ProxydInstance::wait_ready(Millis timeout) {
    return wait_for(
               [&] {
                   if (!running()) return true;  // ends the wait; checked below
                   Json s = status();
                   if (!s["ok"].boolean()) return false;
                   // The master's own count: with "workers = auto" that is
                   // the pool's size, which workers_min sets.
                   const Json& workers = s["workers"];
                   if (static_cast<int64_t>(workers.size()) < s["target_workers"].as_int()) {
                       return false;
                   }
                   for (const auto& w : workers.items()) {
                       if (w["state"].str() != "running") return false;
                   }
                   return true;
               },
               timeout, 50ms) &&
           running();
}

std::optional<std::string> ProxydInstance::control(const std::string& command, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string p = control_socket_path();
    if (p.size() >= sizeof sun.sun_path) {
        ::close(fd);
        return std::nullopt;
    }
    std::memcpy(sun.sun_path, p.c_str(), p.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        ::close(fd);
        return std::nullopt;
    }
    std::string line = command + "\n";
    size_t sent = 0;
    while (sent < line.size()) {
        if (!poll_fd(fd, POLLOUT, deadline)) break;
        ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        if (n > 0) sent += static_cast<size_t>(n);
    }
    std::string answer;
    if (sent == line.size()) {
        char buf[8192];
        while (answer.find('\n') == std::string::npos) {
            if (!poll_fd(fd, POLLIN, deadline)) break;
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n == 0) break;
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                break;
            }
            answer.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(fd);
    size_t nl = answer.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    return answer.substr(0, nl);
}

Json ProxydInstance::control_json(const std::string& command, Millis timeout) {
    auto line = control(command, timeout);
    if (!line) return Json();
    return Json::parse(*line).value_or(Json());
}

Json ProxydInstance::status() {
    Json s = control_json("status", 2s);
    for (const auto& w : s["workers"].items()) {
        pid_t pid = static_cast<pid_t>(w["pid"].as_int());
        if (pid > 0) remember_pid(pid);
    }
    return s;
}

void ProxydInstance::remember_pid(pid_t pid) {
    if (pid <= 0 || seen_pids_.count(pid) != 0) return;
    unsigned long long started = start_time(pid);
    if (started != 0) seen_pids_[pid] = started;  // 0: already gone
}

std::string ProxydInstance::listener_address(const std::string& name) {
    Json s = status();
    for (const auto& l : s["listeners"].items()) {
        if (l["name"].str() == name) return l["address"].str();
    }
    return "";
}

uint16_t ProxydInstance::listener_port(const std::string& name) {
    std::string address = listener_address(name);
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return 0;
    return static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1));
}

std::vector<pid_t> ProxydInstance::worker_pids() {
    std::vector<pid_t> pids;
    // Keep the answer alive: items() refers into it. A pid of 0 here would
    // make a test's kill() signal the whole process group.
    Json answer = status();
    for (const auto& w : answer["workers"].items()) {
        pid_t pid = static_cast<pid_t>(w["pid"].as_int());
        if (pid > 0) pids.push_back(pid);
    }
    return pids;
}

std::vector<ProxydInstance::Worker> ProxydInstance::workers() {
    std::vector<Worker> out;
    Json answer = status();
    for (const Json& w : answer["workers"].items()) {
        out.push_back({static_cast<pid_t>(w["pid"].as_int()), static_cast<int>(w["slot"].as_int()),
                       static_cast<int>(w["generation"].as_int()), w["state"].str(),
                       w["active_sessions"].as_int(), w["total_sessions"].as_int(),
                       w["paused"].boolean()});
    }
    return out;
}

bool ProxydInstance::exactly_running(size_t count) {
    std::vector<Worker> ws = workers();
    return ws.size() == count &&
           std::all_of(ws.begin(), ws.end(), [](const Worker& w) { return w.state == "running"; });
}

bool ProxydInstance::lists_worker(pid_t pid) {
    std::vector<Worker> ws = workers();
    return std::any_of(ws.begin(), ws.end(), [&](const Worker& w) { return w.pid == pid; });
}

bool ProxydInstance::running() {
    if (pid_ <= 0 || exit_status_) return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        exit_status_ = st;
        return false;
    }
    return r == 0;
}

bool ProxydInstance::signal(int sig) {
    if (!running()) return false;
    remember_children();
    return ::kill(pid_, sig) == 0;
}

std::optional<int> ProxydInstance::wait_exit(Millis timeout) {
    if (pid_ <= 0) return std::nullopt;
    wait_for([&] { return !running(); }, timeout, 10ms);
    return exit_status_;
}

std::optional<int> ProxydInstance::wait_exit_code(Millis timeout) {
    auto st = wait_exit(timeout);
    if (!st) return std::nullopt;
    if (WIFEXITED(*st)) return WEXITSTATUS(*st);
    if (WIFSIGNALED(*st)) return 128 + WTERMSIG(*st);
    return -1;
}

std::string ProxydInstance::error_log() const {
    return read_file(error_log_path());
}
std::string ProxydInstance::stdout_output() const {
    return read_file(path("stdout.txt"));
}
std::string ProxydInstance::stderr_output() const {
    return read_file(path("stderr.txt"));
}

std::vector<std::string> ProxydInstance::log_lines_with(const std::string& needle) const {
    std::vector<std::string> out;
    std::istringstream in(error_log());
    std::string line;
    while (std::getline(in, line)) {
        if (line.find(needle) != std::string::npos) out.push_back(line);
    }
    return out;
}

bool ProxydInstance::wait_for_log(const std::string& needle, Millis timeout) const {
    return wait_for([&] { return error_log().find(needle) != std::string::npos; }, timeout, 20ms);
}

void ProxydInstance::remember_children() {
    if (pid_ <= 0) return;
    for (pid_t child : children_of(pid_)) remember_pid(child);
}

void ProxydInstance::stop(Millis timeout) {
    if (stopped_ || pid_ <= 0) return;
    stopped_ = true;
    stop_other_master(timeout);
    if (running()) {
        remember_children();
        ::kill(pid_, SIGTERM);
        if (!wait_exit(timeout)) {
            ADD_FAILURE() << "proxyd master " << pid_ << " ignored SIGTERM for " << timeout.count()
                          << " ms; killing it";
            ::kill(pid_, SIGKILL);
            wait_exit(5s);
        } else if (exit_status_ && !(WIFEXITED(*exit_status_) && WEXITSTATUS(*exit_status_) == 0)) {
            ADD_FAILURE() << "proxyd master did not exit 0 on SIGTERM (wait status "
                          << *exit_status_ << ")";
        }
    } else if (exit_status_ && WIFSIGNALED(*exit_status_) && !alerts_expected_) {
        int sig = WTERMSIG(*exit_status_);
        if (sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS || sig == SIGFPE || sig == SIGILL)
            ADD_FAILURE() << "proxyd master died of signal " << sig;
    }
}

// After a hot upgrade the running master is not our child: the pid file
// names it. Stop it too, so no test leaves a master behind.
void ProxydInstance::stop_other_master(Millis timeout) {
    pid_t other = static_cast<pid_t>(std::atol(read_file(pid_file_path()).c_str()));
    if (other <= 0 || other == pid_ || !process_alive(other)) return;
    remember_pid(other);
    for (pid_t child : children_of(other)) remember_pid(child);
    ::kill(other, SIGTERM);
    if (!wait_for([&] { return !process_alive(other); }, timeout, 20ms)) {
        ADD_FAILURE() << "proxyd master " << other << " (from the pid file) ignored SIGTERM";
        ::kill(other, SIGKILL);
    }
}

void ProxydInstance::check_logs() {
    std::string line;
    if (contains_bad_marker(error_log(), alerts_expected_, line))
        ADD_FAILURE() << "error log of " << dir_ << " has: " << line;
    if (contains_bad_marker(stderr_output(), alerts_expected_, line))
        ADD_FAILURE() << "stderr of proxyd has: " << line;
}

namespace {

using WorkerEvent = ProxydInstance::WorkerEvent;

// How the master logs each worker event (master/supervisor.cpp). A line
// matches a row when it has the level and every fragment; the first row
// that matches decides. kNever rows are product bugs in any test. The
// SIGKILL of a fast stop (SIGTERM) is not an event: the stop promises one
// after a second, and a loaded machine may need it.
constexpr unsigned kNever = 0;
struct EventPattern {
    const char* level;  // "[warn]", "[error]"...; "" = any
    std::vector<const char*> fragments;
    unsigned event;
};

const std::vector<EventPattern>& event_patterns() {
    static const std::vector<EventPattern> kPatterns = {
        {"", {"malformed report"}, kNever},
        {"", {"report from worker", "claims slot"}, kNever},
        {"", {"sending SIGABRT"}, static_cast<unsigned>(WorkerEvent::kAborted)},
        {"", {"still alive after SIGABRT"}, static_cast<unsigned>(WorkerEvent::kAborted)},
        {"",
         {"starved of CPU for", "heartbeat_timeouts"},
         static_cast<unsigned>(WorkerEvent::kAborted)},
        // Killed by the master while not draining: only a hang does that.
        {"[warn]", {"worker ", ") killed by signal"}, static_cast<unsigned>(WorkerEvent::kAborted)},
        {"", {"exited unexpectedly"}, static_cast<unsigned>(WorkerEvent::kExited)},
        {"", {"cannot run with this configuration"}, static_cast<unsigned>(WorkerEvent::kExited)},
        {"[error]", {"worker ", ") exited with code"}, static_cast<unsigned>(WorkerEvent::kExited)},
        {"[error]", {"worker ", ") killed by signal"}, static_cast<unsigned>(WorkerEvent::kExited)},
        {"", {"is degraded"}, static_cast<unsigned>(WorkerEvent::kExited)},
        {"", {"recycling worker"}, static_cast<unsigned>(WorkerEvent::kReplaced)},
        {"", {"retiring worker"}, static_cast<unsigned>(WorkerEvent::kReplaced)},
        {"", {"shrinking the worker pool"}, static_cast<unsigned>(WorkerEvent::kReplaced)},
        {"", {"did not finish draining within"}, static_cast<unsigned>(WorkerEvent::kDrainKilled)},
        {"", {"too many generations draining"}, static_cast<unsigned>(WorkerEvent::kDrainKilled)},
    };
    return kPatterns;
}

// The event a log line reports; nullopt when it reports none.
std::optional<unsigned> worker_event_of(const std::string& line) {
    for (const EventPattern& p : event_patterns()) {
        if (*p.level != '\0' && line.find(p.level) == std::string::npos) continue;
        bool all = std::all_of(p.fragments.begin(), p.fragments.end(),
                               [&](const char* f) { return line.find(f) != std::string::npos; });
        if (all) return p.event;
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string> ProxydInstance::unexpected_worker_events() const {
    std::vector<std::string> out;
    std::istringstream in(error_log());
    std::string line;
    while (std::getline(in, line)) {
        std::optional<unsigned> event = worker_event_of(line);
        if (event && (*event == kNever || (*event & expected_events_) == 0)) out.push_back(line);
    }
    return out;
}

// A worker aborted as hung, gone without being asked, or replaced is a
// failure the requests of a test may never notice: the error log tells.
void ProxydInstance::check_worker_events() {
    for (const std::string& line : unexpected_worker_events()) {
        ADD_FAILURE() << "unexpected worker event (declare it with expect_worker_events() if the "
                         "test causes it): "
                      << line;
    }
}

void ProxydInstance::check_no_leftovers() {
    auto same_process = [&](pid_t pid, unsigned long long started) {
        return process_alive(pid) && (started == 0 || start_time(pid) == started);
    };
    // The contract gives workers 2 s to notice their master is gone.
    wait_for(
        [&] {
            for (const auto& [pid, started] : seen_pids_) {
                if (same_process(pid, started)) return false;
            }
            return true;
        },
        3s, 20ms);
    for (const auto& [pid, started] : seen_pids_) {
        if (!same_process(pid, started)) continue;
        ADD_FAILURE() << "proxyd process " << pid << " still alive after the master exited";
        ::kill(pid, SIGKILL);
    }
}

void ProxydInstance::dump_diagnostics() const {
    std::fprintf(stderr, "--- proxyd error log (%s, tail):\n%s\n--- proxyd stderr (tail):\n%s\n",
                 dir_.c_str(), tail(error_log(), 40).c_str(), tail(stderr_output(), 20).c_str());
}

// ===========================================================================
// Origins: a connection is a socket, optionally wrapped in TLS.

namespace {
constexpr auto kPollSlice = 100ms;  // how often blocked threads look at the stop flag
constexpr auto kOriginIdle = 30s;   // an origin connection idle this long is closed
constexpr size_t kMaxHeader = 256 * 1024;
}  // namespace

struct HttpOrigin::Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    int id = 0;
    std::string peer;  // "IP:PORT" of the client
    std::string in;    // received, not yet consumed
    std::atomic<bool> closed{false};

    ~Conn() {
        if (ssl != nullptr) SSL_free(ssl);
        if (fd >= 0) ::close(fd);
    }
    // Reads more into `in`; false on EOF, error, stop, or idle timeout.
    bool fill(const std::atomic<bool>& stopping, Clock::time_point deadline) {
        char buf[65536];
        for (;;) {
            if (stopping.load() || Clock::now() >= deadline) return false;
            if (ssl == nullptr || SSL_pending(ssl) == 0) {
                auto slice = std::min(Clock::now() + kPollSlice, deadline);
                if (!poll_fd(fd, POLLIN, slice)) continue;
            }
            if (ssl != nullptr) {
                int n = SSL_read(ssl, buf, sizeof buf);
                if (n > 0) {
                    in.append(buf, static_cast<size_t>(n));
                    return true;
                }
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
                return false;
            }
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                in.append(buf, static_cast<size_t>(n));
                return true;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            return false;
        }
    }
    bool write_all(std::string_view data) {
        auto deadline = Clock::now() + 10s;
        size_t off = 0;
        while (off < data.size()) {
            if (Clock::now() >= deadline) return false;
            if (ssl != nullptr) {
                int n = SSL_write(ssl, data.data() + off, static_cast<int>(data.size() - off));
                if (n > 0) {
                    off += static_cast<size_t>(n);
                    continue;
                }
                int e = SSL_get_error(ssl, n);
                if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return false;
                poll_fd(fd, POLLOUT, std::min(Clock::now() + kPollSlice, deadline));
                continue;
            }
            ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                poll_fd(fd, POLLOUT, std::min(Clock::now() + kPollSlice, deadline));
                continue;
            }
            return false;
        }
        return true;
    }
};

HttpOrigin::HttpOrigin() {
    start();
}

HttpOrigin::HttpOrigin(const std::string& cert_path, const std::string& key_path) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
        ADD_FAILURE() << "TLS origin: cannot load " << cert_path << " / " << key_path;
    }
    if (ctx != nullptr) SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ssl_ctx_ = ctx;
    start();
}

HttpOrigin::~HttpOrigin() {
    stop();
    if (ssl_ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

void HttpOrigin::start() {
    listen_fd_ = listen_loopback(port_);
    if (listen_fd_ < 0) {
        ADD_FAILURE() << "origin: cannot listen on 127.0.0.1";
        return;
    }
    acceptor_ = std::thread([this] { accept_loop(); });
}

std::string HttpOrigin::host_port() const {
    return "127.0.0.1:" + std::to_string(port_);
}

std::string HttpOrigin::url(const std::string& path) const {
    return std::string(ssl_ctx_ != nullptr ? "https://" : "http://") + host_port() + path;
}

size_t HttpOrigin::request_count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
}

std::vector<ReceivedRequest> HttpOrigin::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::optional<ReceivedRequest> HttpOrigin::last_request() const {
    std::lock_guard lock(mutex_);
    if (requests_.empty()) return std::nullopt;
    return requests_.back();
}

bool HttpOrigin::wait_requests(size_t n, Millis timeout) const {
    return wait_for([&] { return request_count() >= n; }, timeout, 10ms);
}

void HttpOrigin::clear() {
    std::lock_guard lock(mutex_);
    requests_.clear();
    accepted_ = 0;
}

void HttpOrigin::stop() {
    if (stopping_.exchange(true)) return;
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        for (auto& c : conns_) ::shutdown(c->fd, SHUT_RDWR);
        threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    std::lock_guard lock(mutex_);
    conns_.clear();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
}

void HttpOrigin::accept_loop() {
    while (!stopping_.load()) {
        if (!poll_fd(listen_fd_, POLLIN, Clock::now() + kPollSlice)) continue;
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        auto conn = std::make_shared<Conn>();
        conn->fd = fd;
        conn->id = ++accepted_;
        char ip[INET_ADDRSTRLEN] = "?";
        ::inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        conn->peer = std::string(ip) + ":" + std::to_string(ntohs(from.sin_port));
        std::lock_guard lock(mutex_);
        // Reap finished threads now and then so a long test doesn't pile them up.
        conns_.push_back(conn);
        threads_.emplace_back([this, conn] { serve(conn); });
    }
}

void HttpOrigin::serve(std::shared_ptr<Conn> conn) {
    if (ssl_ctx_ != nullptr) {
        conn->ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
        SSL_set_fd(conn->ssl, conn->fd);
        auto deadline = Clock::now() + 10s;
        for (;;) {
            int r = SSL_accept(conn->ssl);
            if (r == 1) break;
            int e = SSL_get_error(conn->ssl, r);
            short ev = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
            if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || stopping_.load() ||
                Clock::now() >= deadline) {
                ::shutdown(conn->fd, SHUT_RDWR);
                conn->closed = true;
                return;
            }
            poll_fd(conn->fd, ev, std::min(Clock::now() + kPollSlice, deadline));
        }
    }
    bool keep_alive = true;
    while (keep_alive && !stopping_.load()) {
        if (!serve_one(*conn, keep_alive)) break;
    }
    if (conn->ssl != nullptr) SSL_shutdown(conn->ssl);
    ::shutdown(conn->fd, SHUT_RDWR);
    conn->closed = true;
}

namespace {

// Parses a request head from the front of `in`; nullopt when incomplete.
// `bad` is set when what's there can't be a request.
std::optional<ReceivedRequest> parse_request_head(const std::string& in, size_t& head_len,
                                                  bool& bad) {
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) {
        bad = in.size() > kMaxHeader;
        return std::nullopt;
    }
    head_len = end + 4;
    ReceivedRequest req;
    std::istringstream lines(in.substr(0, end));
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream first(line);
    if (!(first >> req.method >> req.target >> req.version)) {
        bad = true;
        return std::nullopt;
    }
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) {
            bad = true;
            return std::nullopt;
        }
        req.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }
    return req;
}

std::string reason_for(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 500:
            return "Internal Server Error";
        default:
            return "Status";
    }
}

std::string route_path(const std::string& target) {
    std::string path = target;
    // An origin may get an absolute URI too (RFC 9112 3.2.2): keep its path.
    if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
        size_t slash = path.find('/', path.find("//") + 2);
        path = slash == std::string::npos ? "/" : path.substr(slash);
    }
    return path.substr(0, path.find('?'));
}

size_t number_after(const std::string& path, const std::string& prefix) {
    return static_cast<size_t>(std::strtoull(path.c_str() + prefix.size(), nullptr, 10));
}

}  // namespace

// Reads one request (head and body) and answers it. Returns false when the
// connection must end (EOF, error, stop, or a route that closes).
bool HttpOrigin::serve_one(Conn& conn, bool& keep_alive) {
    auto deadline = Clock::now() + kOriginIdle;
    size_t head_len = 0;
    bool bad = false;
    std::optional<ReceivedRequest> head;
    while (!(head = parse_request_head(conn.in, head_len, bad))) {
        if (bad) {
            conn.write_all(
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return false;
        }
        if (!conn.fill(stopping_, deadline)) return false;
    }
    ReceivedRequest req = std::move(*head);
    req.connection_id = conn.id;
    req.peer = conn.peer;
    conn.in.erase(0, head_len);
    // Like real servers, invite the body of an Expect: 100-continue request.
    auto expect = find_header(req.headers, "Expect");
    if (expect && iequals(*expect, "100-continue") && req.version == "HTTP/1.1" &&
        !conn.write_all("HTTP/1.1 100 Continue\r\n\r\n"))
        return false;

    // The body: chunked or Content-Length (anything else has none).
    auto te = find_header(req.headers, "Transfer-Encoding");
    if (te && lower(*te).find("chunked") != std::string::npos) {
        req.chunked = true;
        for (;;) {
            size_t eol;
            while ((eol = conn.in.find("\r\n")) == std::string::npos) {
                if (!conn.fill(stopping_, deadline)) return false;
            }
            size_t size = std::strtoull(conn.in.c_str(), nullptr, 16);
            conn.in.erase(0, eol + 2);
            if (size == 0) {
                // Trailer section: up to an empty line.
                for (;;) {
                    while ((eol = conn.in.find("\r\n")) == std::string::npos) {
                        if (!conn.fill(stopping_, deadline)) return false;
                    }
                    conn.in.erase(0, eol + 2);
                    if (eol == 0) break;
                }
                break;
            }
            while (conn.in.size() < size + 2) {
                if (!conn.fill(stopping_, deadline)) return false;
            }
            req.body.append(conn.in, 0, size);
            conn.in.erase(0, size + 2);
        }
    } else if (auto cl = find_header(req.headers, "Content-Length")) {
        size_t length = std::strtoull(cl->c_str(), nullptr, 10);
        while (conn.in.size() < length) {
            if (!conn.fill(stopping_, deadline)) return false;
        }
        req.body = conn.in.substr(0, length);
        conn.in.erase(0, length);
    }
    {
        std::lock_guard lock(mutex_);
        requests_.push_back(req);
    }

    auto connection = find_header(req.headers, "Connection");
    keep_alive = !(connection && lower(*connection).find("close") != std::string::npos) &&
                 req.version == "HTTP/1.1";
    const bool head_only = req.method == "HEAD";
    const std::string path = route_path(req.target);

    int status = 200;
    std::string body;
    std::vector<std::string> extra;
    bool chunked = false, close_after = false, truncate = false;

    if (path.rfind("/bytes/", 0) == 0) {
        body = pattern_bytes(number_after(path, "/bytes/"));
    } else if (path.rfind("/chunked/", 0) == 0) {
        body = pattern_bytes(number_after(path, "/chunked/"));
        chunked = true;
    } else if (path.rfind("/status/", 0) == 0) {
        status = static_cast<int>(number_after(path, "/status/"));
        if (status != 204 && status != 304 && status >= 200) body = std::to_string(status) + "\n";
    } else if (path == "/echo") {
        body = req.body;
        extra.push_back("X-Body-Length: " + std::to_string(req.body.size()));
        extra.push_back("X-Body-Sha256: " + sha256_hex(req.body));
        extra.push_back(std::string("X-Body-Chunked: ") + (req.chunked ? "yes" : "no"));
    } else if (path == "/headers") {
        for (const auto& [k, v] : req.headers) body += k + ": " + v + "\n";
    } else if (path == "/peer") {
        body = conn.peer;
    } else if (path == "/silent") {
        // Hold the connection without answering until the peer or the test gives up.
        while (conn.fill(stopping_, deadline)) conn.in.clear();
        return false;
    } else if (path.rfind("/close-mid-body/", 0) == 0) {
        body = pattern_bytes(number_after(path, "/close-mid-body/"));
        truncate = true;
    } else if (path == "/close") {
        body = "bye\n";
        close_after = true;
    } else {
        body = "hello\n";
    }
    if (close_after) keep_alive = false;

    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_for(status) + "\r\n";
    out += "Server: harness-origin\r\n";
    for (const auto& h : extra) out += h + "\r\n";
    const bool no_body = status == 204 || status == 304 || status < 200;
    if (chunked) {
        out += "Transfer-Encoding: chunked\r\n";
    } else if (!no_body) {
        out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    if (!keep_alive) out += "Connection: close\r\n";
    out += "\r\n";
    if (!conn.write_all(out)) return false;
    if (head_only || no_body) return keep_alive;

    if (truncate) {
        conn.write_all(std::string_view(body).substr(0, body.size() / 2));
        return false;
    }
    if (chunked) {
        // Uneven chunk sizes exercise the proxy's chunk framing.
        size_t off = 0, step = 1;
        while (off < body.size()) {
            size_t n = std::min(body.size() - off, step);
            char size_line[32];
            std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
            std::string chunk = size_line;
            chunk.append(body, off, n);
            chunk += "\r\n";
            if (!conn.write_all(chunk)) return false;
            off += n;
            step = step * 7 + 3;
            if (step > 300000) step = 1;
        }
        if (!conn.write_all("0\r\n\r\n")) return false;
        return keep_alive;
    }
    if (!conn.write_all(body)) return false;
    return keep_alive;
}

TlsOrigin::CertDir::CertDir() : dir(make_temp_dir("proxyd-cert-")) {
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    make_self_signed_cert(cert, key);
}

TlsOrigin::TlsOrigin() : TlsOrigin(CertDir()) {}

TlsOrigin::TlsOrigin(CertDir certs)
    : HttpOrigin(certs.cert, certs.key), dir_(certs.dir), cert_(certs.cert), key_(certs.key) {}

TlsOrigin::~TlsOrigin() {
    stop();
    remove_tree(dir_);
}

// ===========================================================================
// RawTcpServer

RawTcpServer::RawTcpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = listen_loopback(port_);
    if (listen_fd_ < 0) {
        ADD_FAILURE() << "raw server: cannot listen";
        return;
    }
    acceptor_ = std::thread([this] {
        while (!stopping_.load()) {
            if (!poll_fd(listen_fd_, POLLIN, Clock::now() + kPollSlice)) continue;
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++accepted_;
            std::lock_guard lock(mutex_);
            fds_.push_back(fd);
            threads_.emplace_back([this, fd] {
                handler_(fd, stopping_);
                std::lock_guard inner(mutex_);
                fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
                ::close(fd);
            });
        }
    });
}

RawTcpServer::~RawTcpServer() {
    stop();
}

void RawTcpServer::stop() {
    if (stopping_.exchange(true)) return;
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
        threads.swap(threads_);
    }
    for (auto& t : threads) t.join();  // each thread closes its own fd
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
}

// ===========================================================================
// Clients

namespace {

CurlResult run_captured(const std::vector<std::string>& argv, Millis timeout, bool clear_proxy) {
    CurlResult result;
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        return result;
    }
    pid_t pid = spawn_process(argv, out_pipe[1], err_pipe[1], true, clear_proxy);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (pid < 0) {
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        result.err = "cannot spawn " + argv[0];
        return result;
    }
    auto deadline = Clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        int left = remaining_ms(deadline);
        if (left == 0) {
            result.timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        int n = ::poll(fds, 2, left);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                sinks[i]->append(buf, static_cast<size_t>(r));
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& p : fds) {
        if (p.fd >= 0) ::close(p.fd);
    }
    int st = 0;
    // After both pipes closed the child exits promptly; bound the wait anyway.
    auto reap_deadline = Clock::now() + 5s;
    while (::waitpid(pid, &st, WNOHANG) == 0) {
        if (Clock::now() >= reap_deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            result.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    result.exit_code = WIFEXITED(st) && !result.timed_out ? WEXITSTATUS(st) : -1;
    return result;
}

}  // namespace

CurlResult run_program(const std::vector<std::string>& argv, Millis timeout) {
    return run_captured(argv, timeout, false);
}

CurlResult run_curl(const std::vector<std::string>& args, Millis timeout) {
    // --max-time is what ends a stuck transfer; the kill is the backstop.
    double seconds = static_cast<double>(timeout.count()) / 1000.0;
    char max_time[32];
    std::snprintf(max_time, sizeof max_time, "%.3f", seconds);
    std::vector<std::string> argv = {"curl", "-q", "-sS", "--max-time", max_time};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_captured(argv, timeout + 1s, true);
}

CurlResult curl_via(uint16_t proxy_port, const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> all = {"-x", "http://127.0.0.1:" + std::to_string(proxy_port)};
    all.insert(all.end(), args.begin(), args.end());
    return run_curl(all, timeout);
}

std::optional<std::string> HttpResponse::header(const std::string& name) const {
    return find_header(headers, name);
}

std::optional<std::string> ReceivedRequest::header(const std::string& name) const {
    return find_header(headers, name);
}

std::optional<HttpResponse> parse_response(std::string_view data, bool head, size_t& consumed,
                                           bool& need_more, bool eof) {
    need_more = false;
    consumed = 0;
    size_t end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        need_more = true;
        return std::nullopt;
    }
    HttpResponse resp;
    std::string head_text(data.substr(0, end));
    std::istringstream lines(head_text);
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t sp1 = line.find(' ');
    if (sp1 == std::string::npos || line.rfind("HTTP/", 0) != 0) return std::nullopt;
    resp.version = line.substr(0, sp1);
    resp.status = std::atoi(line.c_str() + sp1 + 1);
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 != std::string::npos) resp.reason = line.substr(sp2 + 1);
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) return std::nullopt;
        resp.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }
    size_t pos = end + 4;
    if (head || resp.status < 200 || resp.status == 204 || resp.status == 304) {
        consumed = pos;
        return resp;
    }
    auto te = resp.header("Transfer-Encoding");
    if (te && lower(*te).find("chunked") != std::string::npos) {
        for (;;) {
            size_t eol = data.find("\r\n", pos);
            if (eol == std::string_view::npos) {
                need_more = true;
                return std::nullopt;
            }
            size_t size =
                std::strtoull(std::string(data.substr(pos, eol - pos)).c_str(), nullptr, 16);
            pos = eol + 2;
            if (size == 0) {
                for (;;) {
                    eol = data.find("\r\n", pos);
                    if (eol == std::string_view::npos) {
                        need_more = true;
                        return std::nullopt;
                    }
                    bool empty = eol == pos;
                    pos = eol + 2;
                    if (empty) break;
                }
                consumed = pos;
                return resp;
            }
            if (data.size() < pos + size + 2) {
                need_more = true;
                return std::nullopt;
            }
            resp.body.append(data.substr(pos, size));
            pos += size + 2;
        }
    }
    if (auto cl = resp.header("Content-Length")) {
        size_t length = std::strtoull(cl->c_str(), nullptr, 10);
        if (data.size() < pos + length) {
            need_more = true;
            return std::nullopt;
        }
        resp.body = std::string(data.substr(pos, length));
        consumed = pos + length;
        return resp;
    }
    // Delimited by EOF.
    if (!eof) {
        need_more = true;
        return std::nullopt;
    }
    resp.body = std::string(data.substr(pos));
    consumed = data.size();
    return resp;
}

RawClient::~RawClient() {
    close();
}

bool RawClient::connect(uint16_t port, Millis timeout, const std::string& host) {
    close();
    auto deadline = Clock::now() + timeout;
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        len = sizeof *sin;
    } else if (::inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        len = sizeof *sin6;
    } else {
        return false;
    }
    fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        if (errno != EINPROGRESS || !poll_fd(fd_, POLLOUT, deadline)) {
            close();
            return false;
        }
        int err = 0;
        socklen_t elen = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            close();
            return false;
        }
    }
    return true;
}

bool RawClient::send(std::string_view data, Millis timeout) {
    if (fd_ < 0) return false;
    auto deadline = Clock::now() + timeout;
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!poll_fd(fd_, POLLOUT, deadline)) return false;
            continue;
        }
        return false;
    }
    return true;
}

bool RawClient::fill(Clock::time_point deadline) {
    if (fd_ < 0 || eof_) return false;
    char buf[65536];
    for (;;) {
        if (!poll_fd(fd_, POLLIN, deadline)) return false;
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            buffer_.append(buf, static_cast<size_t>(n));
            return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        eof_ = true;  // EOF or reset
        return false;
    }
}

std::string RawClient::recv_some(Millis timeout) {
    if (buffer_.empty()) fill(Clock::now() + timeout);
    std::string out;
    out.swap(buffer_);
    return out;
}

std::optional<HttpResponse> RawClient::read_response(Millis timeout, bool head) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        size_t consumed = 0;
        bool need_more = false;
        auto resp = parse_response(buffer_, head, consumed, need_more, eof_);
        if (resp) {
            buffer_.erase(0, consumed);
            return resp;
        }
        if (!need_more) return std::nullopt;
        if (eof_) return std::nullopt;
        if (!fill(deadline)) {
            if (!eof_) return std::nullopt;  // timeout
            // EOF: a body delimited by close is complete now.
            resp = parse_response(buffer_, head, consumed, need_more, true);
            if (resp) buffer_.erase(0, consumed);
            return resp;
        }
    }
}

std::string RawClient::read_until_close(Millis timeout, bool* closed) {
    auto deadline = Clock::now() + timeout;
    while (!eof_ && fill(deadline)) {
    }
    if (closed != nullptr) *closed = eof_;
    std::string out;
    out.swap(buffer_);
    return out;
}

bool RawClient::wait_closed(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    while (!eof_) {
        if (!fill(deadline)) break;
        buffer_.clear();
    }
    return eof_;
}

void RawClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    eof_ = false;
    buffer_.clear();
}

void RawClient::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

// ===========================================================================
// --- shared socket helpers (issue 13)

bool wait_ready(int fd, short events, const std::atomic<bool>& stopping,
                Clock::time_point deadline) {
    while (!stopping.load() && Clock::now() < deadline) {
        pollfd p{fd, events, 0};
        if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
}

bool send_all(int fd, std::string_view data, const std::atomic<bool>& stopping, Millis timeout,
              bool* peer_gone) {
    const auto deadline = Clock::now() + timeout;
    size_t off = 0;
    while (off < data.size()) {
        if (stopping.load() || Clock::now() >= deadline) return false;
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            wait_ready(fd, POLLOUT, stopping, std::min(deadline, Clock::now() + Millis(50)));
        } else {
            if (peer_gone != nullptr) *peer_gone = true;
            return false;
        }
    }
    return true;
}

std::string read_at_least(RawClient& client, size_t n, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    std::string out;
    while (out.size() < n && Clock::now() < deadline) {
        auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        std::string part = client.recv_some(std::max(left, Millis(1)));
        if (part.empty()) break;  // timeout or EOF
        out += part;
    }
    return out;
}

RawTcpServer::Handler echo_handler() {
    return [](int fd, const std::atomic<bool>& stopping) {
        char buf[4096];
        while (!stopping) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return;
            send_all(fd, std::string_view(buf, static_cast<size_t>(n)));
        }
    };
}

bool wait_peer_close(int fd, const std::atomic<bool>& stopping, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (wait_ready(fd, POLLIN, stopping, deadline)) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return true;
    }
    return false;
}

std::string read_request_head(int fd, std::string& in, const std::atomic<bool>& stopping,
                              Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[16384];
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!wait_ready(fd, POLLIN, stopping, deadline)) return "";
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return "";
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return "";
        }
        in.append(buf, static_cast<size_t>(n));
    }
    std::string head = in.substr(0, end + 4);
    in.erase(0, end + 4);
    return head;
}

void reset_on_close(int fd) {
    linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
}

std::map<int, std::string> descriptor_targets(pid_t pid) {
    std::map<int, std::string> targets;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return targets;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[256] = {};
        ssize_t len = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
        if (len > 0) targets[std::atoi(e->d_name)] = std::string(target, static_cast<size_t>(len));
    }
    ::closedir(d);
    return targets;
}

std::string base64(std::string_view in) {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (unsigned char c : in) {
        bits = (bits << 8) | c;
        count += 8;
        while (count >= 6) out += kAlphabet[(bits >> (count -= 6)) & 63];
    }
    if (count > 0) out += kAlphabet[(bits << (6 - count)) & 63];
    while (out.size() % 4 != 0) out += '=';
    return out;
}

std::string basic(const std::string& user, const std::string& password) {
    return "Proxy-Authorization: Basic " + base64(user + ":" + password) + "\r\n";
}

int connect_from(const std::string& source, uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in from{};
    from.sin_family = AF_INET;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::optional<HttpResponse> read_connect_answer(RawClient& client, Millis timeout) {
    std::optional<HttpResponse> head = client.read_response(timeout, /*head=*/true);
    if (!head || head->status == 200) return head;
    size_t length = std::strtoul(head->header("Content-Length").value_or("0").c_str(), nullptr, 10);
    head->body = read_at_least(client, length, timeout);
    return head;
}

}  // namespace harness
