#include "tests/integration/haproxy.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

namespace harness {

namespace {

// Debian installs it in /usr/sbin, which is not in every user's PATH.
std::string find_haproxy() {
    for (const char* path : {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"}) {
        if (::access(path, X_OK) == 0) return path;
    }
    return "";
}

// `text` with every `token` replaced by `value`; false when it had none
// (a template that no longer has a token the tests fill in).
bool replace_all(std::string& text, const std::string& token, const std::string& value) {
    bool found = false;
    for (size_t at = text.find(token); at != std::string::npos;
         at = text.find(token, at + value.size())) {
        text.replace(at, token.size(), value);
        found = true;
    }
    return found;
}

// Field `index` (0-based) of a CSV line without quoted fields, which the
// stats page's name and status columns never have.
std::string csv_field(const std::string& line, size_t index) {
    std::istringstream in(line);
    std::string field;
    for (size_t i = 0; std::getline(in, field, ','); ++i) {
        if (i == index) return field;
    }
    return "";
}

}  // namespace

std::string Haproxy::missing() {
    return find_haproxy().empty() ? "haproxy is not installed (make deps installs it)" : "";
}

Haproxy::Haproxy(std::vector<Server> servers, std::string config_template)
    : servers_(std::move(servers)), template_(std::move(config_template)) {
    binary_ = find_haproxy();
    if (binary_.empty()) {
        skip_reason_ = missing();
        return;
    }
    available_ = true;
    dir_ = make_temp_dir("proxyd-haproxy-");
    config_path_ = dir_ + "/haproxy.cfg";
}

Haproxy::~Haproxy() {
    stop();
    if (!dir_.empty()) remove_tree(dir_);
}

// The shipped template with this test's ports and one `server` line per
// node (the line that is only "@SERVERS@"); false (ADD_FAILURE) when the
// template is missing or a token is not where the tests expect it.
bool Haproxy::render() {
    std::string text = read_file(template_);
    if (text.empty()) {
        ADD_FAILURE() << "cannot read " << template_ << " (tests run from the repository's root)";
        return false;
    }
    std::string lines;
    for (const Server& s : servers_)
        lines += "    server " + s.name + " 127.0.0.1:" + std::to_string(s.port) + "\n";
    bool ok = replace_all(text, "\n@SERVERS@\n", "\n" + lines) &&
              replace_all(text, "@FRONTEND_PORT@", std::to_string(port_)) &&
              replace_all(text, "@STATS_PORT@", std::to_string(stats_port_));
    if (!ok || text.find('@') != std::string::npos) {
        ADD_FAILURE() << template_ << ": its tokens are not the ones the tests fill in:\n" << text;
        return false;
    }
    return write_file(config_path_, text);
}

bool Haproxy::start(Millis timeout) {
    if (!available_) {
        ADD_FAILURE() << skip_reason_;
        return false;
    }
    // The ports are picked free, then given to haproxy, which may lose them
    // to another process in between: a few tries.
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = closed_port();
        stats_port_ = closed_port();
        if (port_ == stats_port_) continue;
        if (!render()) return false;
        CurlResult check = run_program({binary_, "-c", "-q", "-f", config_path_});
        if (check.exit_code != 0) {
            ADD_FAILURE() << "haproxy -c refuses " << config_path_ << ":\n"
                          << check.out << check.err << read_file(config_path_);
            return false;
        }
        if (launch(timeout)) return true;
        stop();
    }
    ADD_FAILURE() << "haproxy did not come up with every server UP; its log:\n" << log();
    return false;
}

bool Haproxy::launch(Millis timeout) {
    int out =
        ::open((dir_ + "/haproxy.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    // -db: in the foreground, as a child of the test, which reaps it.
    pid_ = spawn_process({binary_, "-db", "-f", config_path_}, out, out, false, true);
    if (out >= 0) ::close(out);
    if (pid_ < 0) return false;
    return wait_for(
               [&] {
                   int status = 0;
                   if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                       pid_ = -1;  // died (a port taken): stop waiting
                       return true;
                   }
                   return all_up();
               },
               timeout, 100ms) &&
           pid_ > 0;
}

void Haproxy::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool gone = wait_for([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 5s, 20ms);
    if (!gone) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
}

std::string Haproxy::server_status(const std::string& name) const {
    RawClient client;
    if (!client.connect(stats_port_, 2s)) return "";
    if (!client.send("GET /;csv HTTP/1.1\r\nHost: stats\r\nConnection: close\r\n\r\n", 2s))
        return "";
    std::optional<HttpResponse> r = client.read_response(3s);
    if (!r || r->status != 200) return "";
    // "# pxname,svname,...,status,..." then a line per proxy and server;
    // column 17 (0-based) is the status.
    std::istringstream lines(r->body);
    std::string line;
    while (std::getline(lines, line)) {
        if (csv_field(line, 0) == "proxyd_nodes" && csv_field(line, 1) == name)
            return csv_field(line, 17);
    }
    return "";
}

bool Haproxy::wait_status(const std::string& name, const std::string& status,
                          Millis timeout) const {
    return wait_for([&] { return server_status(name) == status; }, timeout, 100ms);
}

bool Haproxy::all_up() const {
    for (const Server& s : servers_) {
        if (server_status(s.name) != "UP") return false;
    }
    return true;
}

std::string Haproxy::log() const {
    return read_file(dir_ + "/haproxy.log");
}

}  // namespace harness
