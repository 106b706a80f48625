#include "master/proxyctl_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace master::proxyctl {

namespace {

struct OptionSpec {
    char short_name;
    const char* long_name;
    bool takes_value;
};

constexpr OptionSpec kSpecs[] = {
    {'s', "socket", true},   {'c', "config", true}, {'j', "json", false},      {'h', "help", false},
    {'V', "version", false}, {'d', "delay", true},  {'n', "iterations", true},
};

const OptionSpec* find_short(char c) {
    for (const OptionSpec& s : kSpecs)
        if (s.short_name == c) return &s;
    return nullptr;
}

const OptionSpec* find_long(const std::string& name) {
    for (const OptionSpec& s : kSpecs)
        if (name == s.long_name) return &s;
    return nullptr;
}

bool parse_delay(const std::string& text, double& out) {
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(d)) return false;
    if (d < kMinDelay || d > kMaxDelay) return false;
    out = d;
    return true;
}

bool parse_iterations(const std::string& text, long& out) {
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || n < 1 || n > 1000000000) return false;
    out = n;
    return true;
}

// Splits "--name=value", "--name", "-xVALUE" or "-x" into its option and
// its attached value. Short flags do not cluster ("-jV" is an error), so a
// mistyped option never turns into something else. nullptr with `error`.
const OptionSpec* split_option(const std::string& word, std::string& value, bool& has_value,
                               std::string& error) {
    const OptionSpec* spec = nullptr;
    if (word[1] == '-') {
        const size_t eq = word.find('=');
        spec = find_long(word.substr(2, eq == std::string::npos ? eq : eq - 2));
        if (spec != nullptr && eq != std::string::npos) {
            value = word.substr(eq + 1);
            has_value = true;
        }
    } else {
        spec = find_short(word[1]);
        if (spec != nullptr && word.size() > 2) {
            value = word.substr(2);
            has_value = true;
        }
    }
    if (spec == nullptr || (has_value && !spec->takes_value)) {
        error = spec == nullptr || word[1] != '-'
                    ? "unknown option \"" + word + "\""
                    : "option --" + std::string(spec->long_name) + " takes no value";
        return nullptr;
    }
    return spec;
}

// Applies one option. `top_option` records that one of top's appeared, so
// it can be refused with another command.
bool apply(const OptionSpec& spec, const std::string& value, Args& args, bool& top_option,
           std::string& error) {
    switch (spec.short_name) {
        case 's':
            args.socket_path = value;
            return true;
        case 'c':
            args.config_path = value;
            return true;
        case 'j':
            args.json = true;
            return true;
        case 'h':
            args.help = true;
            return true;
        case 'V':
            args.version = true;
            return true;
        case 'd':
            top_option = true;
            if (parse_delay(value, args.delay_s)) return true;
            error = "bad delay \"" + value + "\" (seconds, 0.1 to 3600)";
            return false;
        default:
            top_option = true;
            if (parse_iterations(value, args.iterations)) return true;
            error = "bad iteration count \"" + value + "\" (1 or more)";
            return false;
    }
}

// The checks that need the whole line.
bool check(Args& args, bool top_option, std::string& error) {
    if (args.help || args.version) return true;
    if (args.command.empty()) {
        error = "no command given";
        return false;
    }
    const bool top = args.command.front() == "top";
    if (top_option && !top) {
        error = "-d and -n are options of top only";
        return false;
    }
    if (top && args.json) {
        error = "top has no --json: use `proxyctl --json workers` in a loop";
        return false;
    }
    if (top && args.command.size() > 1) {
        error = "top takes no arguments";
        return false;
    }
    return true;
}

}  // namespace

// A small parser of its own rather than getopt: getopt keeps global state
// (optind), which makes it awkward to test, and permuting GNU getopt would
// also take a command argument such as "-5" for an option silently.
std::optional<Args> parse_args(const std::vector<std::string>& argv, std::string& error) {
    Args args;
    bool top_option = false;
    bool options_ended = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& word = argv[i];
        if (options_ended || word.size() < 2 || word[0] != '-') {
            args.command.push_back(word);
            continue;
        }
        if (word == "--") {
            options_ended = true;
            continue;
        }
        std::string value;
        bool has_value = false;
        const OptionSpec* spec = split_option(word, value, has_value, error);
        if (spec == nullptr) return std::nullopt;
        if (spec->takes_value && !has_value) {
            if (i + 1 >= argv.size()) {
                error = "option " + word + " needs a value";
                return std::nullopt;
            }
            value = argv[++i];
        }
        if (!apply(*spec, value, args, top_option, error)) return std::nullopt;
    }
    if (!check(args, top_option, error)) return std::nullopt;
    return args;
}

}  // namespace master::proxyctl
