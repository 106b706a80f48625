// Where proxyd looks for its configuration when no -c is given, and so
// where proxyctl looks for the control socket: the two must agree, or an
// installed proxyctl talks to a socket the installed proxyd never opened.
#pragma once

#include <string>

namespace common {

// The configuration of a source tree first (conf/proxyd.conf, relative to
// the current directory, when it exists), else the installed one.
inline constexpr const char* kLocalConfig = "conf/proxyd.conf";
inline constexpr const char* kSystemConfig = "/etc/proxyd/proxyd.conf";

// kLocalConfig when it exists, else kSystemConfig. Never fails: whether the
// file it names can be read is the caller's question.
std::string default_config_path();

}  // namespace common
