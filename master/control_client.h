// proxyctl's side of the control socket (master/control_socket.h): finding
// the socket the way proxyd finds its configuration, and exchanging one
// command line for one answer line, with errors an operator can act on.
#pragma once

#include <string>

namespace master::proxyctl {

// Where an installed proxyd puts its socket (CONTRACT.md, installed layout).
inline constexpr const char* kSystemSocket = "/run/proxyd/proxyd.sock";

// The socket to talk to: `socket_option` (-s) when given; else the
// control_socket of `config_option` (-c), read with proxyd's own config
// loader; else that of the default configuration
// (common::default_config_path()) when it can be read; else kSystemSocket.
// An -c file that does not load is an error (false, `error` says why); a
// default configuration that does not load is skipped with a `warning`,
// since the operator did not name it.
bool find_socket(const std::string& socket_option, const std::string& config_option,
                 std::string& path, std::string& warning, std::string& error);

// Sends `command` and reads the one line back into `answer` (without its
// newline). False with `error` set to a sentence for the operator: "proxyd
// is not running (no socket S)", "permission denied on S (run as root or the
// proxyd user)", no answer within 10 s... A refusal the master sent (for
// instance to a uid it does not serve) is an answer, not an error.
bool exchange(const std::string& path, const std::string& command, std::string& answer,
              std::string& error);

// The sentence for the master's refusal of a connection whose uid it does
// not serve ({"ok":false,"error":"permission denied"}), else `error` as is.
std::string explain_refusal(const std::string& path, const std::string& error);

}  // namespace master::proxyctl
