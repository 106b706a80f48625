// proxyctl: the control socket's client. Sends one command line, reads the
// one JSON line back and prints it for people (master/proxyctl_print.h) or
// unchanged with --json; `top` refreshes a view of the workers
// (master/proxyctl_top.h).
//
// Exit status: 0 when the answer says ok, 1 when it does not or proxyd cannot
// be reached, 2 on a usage error.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/version.h"
#include "master/control_client.h"
#include "master/proxyctl_answer.h"
#include "master/proxyctl_args.h"
#include "master/proxyctl_print.h"
#include "master/proxyctl_top.h"

namespace {

using namespace master::proxyctl;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: proxyctl [-s SOCKET | -c FILE] [--json] COMMAND [ARGS]\n"
                 "       proxyctl [-s SOCKET | -c FILE] top [-d SECONDS] [-n COUNT]\n"
                 "       proxyctl -V | -h\n"
                 "\n"
                 "  -s, --socket SOCKET     control socket\n"
                 "  -c, --config FILE       read control_socket from this proxyd configuration\n"
                 "                          (default: conf/proxyd.conf when it exists, else\n"
                 "                          /etc/proxyd/proxyd.conf; without one, %s)\n"
                 "  -j, --json              print the answer's JSON line unchanged\n"
                 "  -d, --delay SECONDS     top: seconds between refreshes (default 1)\n"
                 "  -n, --iterations COUNT  top: exit after COUNT refreshes\n"
                 "  -V, --version           print the version\n"
                 "  -h, --help              print this help\n"
                 "\n"
                 "Options may follow the command; `--` ends them.\n"
                 "commands: status, workers, top, stats, users, routes, cluster, metrics, reload,\n"
                 "          scale N, drain PID, reopen, quit, stop, help\n",
                 kSystemSocket);
}

std::string join(const std::vector<std::string>& words) {
    std::string line;
    for (const std::string& w : words) line += (line.empty() ? "" : " ") + w;
    return line;
}

// One command, one answer, printed.
int run_command(const Args& args, const std::string& socket) {
    std::string line;
    std::string error;
    if (!exchange(socket, join(args.command), line, error)) {
        std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
        return kExitFailed;
    }
    const Json answer = common::parse_untrusted(line);
    const bool ok = as_bool(at(answer, "ok"));
    if (args.json) {
        std::printf("%s\n", line.c_str());
        return ok ? kExitOk : kExitFailed;
    }
    if (!answer.is_object()) {
        std::fprintf(stderr, "proxyctl: malformed answer: %s\n", line.c_str());
        return kExitFailed;
    }
    if (!ok) {
        std::fprintf(stderr, "proxyctl: %s\n",
                     explain_refusal(socket, as_string(at(answer, "error"))).c_str());
        return kExitFailed;
    }
    print_answer(args.command, answer);
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    std::string error;
    std::optional<Args> args =
        parse_args(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc), error);
    if (!args) {
        std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
        usage(stderr);
        return kExitUsage;
    }
    if (args->help) {
        usage(stdout);
        return kExitOk;
    }
    if (args->version) {
        std::printf("proxyctl %s\n", common::kVersion);
        return kExitOk;
    }
    std::string socket;
    std::string warning;
    if (!find_socket(args->socket_path, args->config_path, socket, warning, error)) {
        std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
        return kExitFailed;
    }
    if (!warning.empty()) std::fprintf(stderr, "proxyctl: warning: %s\n", warning.c_str());
    if (args->command.front() == "top") return run_top(socket, args->delay_s, args->iterations);
    return run_command(*args, socket);
}
