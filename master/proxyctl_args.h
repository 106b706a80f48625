// proxyctl's command line. Options may come before or after the command
// (`proxyctl status --json` is `proxyctl --json status`); `--` ends them,
// for a command argument that starts with a dash.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace master::proxyctl {

struct Args {
    std::string socket_path;           // -s; "" to look it up (control_client.h)
    std::string config_path;           // -c
    bool json = false;                 // -j
    bool help = false;                 // -h: print the usage, nothing else
    bool version = false;              // -V: print the version, nothing else
    std::vector<std::string> command;  // the command and its arguments
    // top only:
    double delay_s = 1.0;  // -d: seconds between refreshes
    long iterations = 0;   // -n: refreshes before exiting; 0 = until q
};

// Limits of top's options: a refresh more often than 10 times a second
// would cost the master more than it shows the operator.
inline constexpr double kMinDelay = 0.1;
inline constexpr double kMaxDelay = 3600;

// Parses argv[1..] (`args` excludes the program name). On a usage error
// returns nullopt with `error` set to one line ("option -d needs a value").
// -h or -V alone is fine without a command.
std::optional<Args> parse_args(const std::vector<std::string>& args, std::string& error);

}  // namespace master::proxyctl
