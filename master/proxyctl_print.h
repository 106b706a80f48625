// proxyctl's output for people: each answer of the control socket as
// tables, `key: value` lines, or a one-line confirmation for the commands
// whose answer carries nothing to show.
#pragma once

#include <string>
#include <vector>

#include "master/proxyctl_answer.h"

namespace master::proxyctl {

// Prints the ok `answer` to `command` (its words) on stdout.
void print_answer(const std::vector<std::string>& command, const Json& answer);

// The confirmation for a command that changes something ("reload: new
// generation 3 started"); "" for the commands that show data instead.
std::string confirmation(const std::vector<std::string>& command, const Json& answer);

}  // namespace master::proxyctl
