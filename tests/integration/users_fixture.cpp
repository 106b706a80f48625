// Users files made with htpasswd and mkpasswd (see users_fixture.h).
#include "tests/integration/users_fixture.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "tests/integration/harness.h"

namespace harness {

namespace {

using namespace std::chrono_literals;

// The first line of `text`, without its "\n".
std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

const char* hash_prefix(HashKind kind) {
    switch (kind) {
        case HashKind::kBcrypt:
            return "$2y$";
        case HashKind::kBcrypt2b:
            return "$2b$";
        case HashKind::kYescrypt:
            return "$y$";
        case HashKind::kSha512crypt:
            return "$6$";
    }
    return "";
}

// The tool's command line. htpasswd prints "NAME:HASH"; the name is a
// placeholder cut off again, so a password never depends on the name.
std::vector<std::string> tool_argv(HashKind kind, const std::string& password, int bcrypt_cost) {
    switch (kind) {
        case HashKind::kBcrypt:
            return {"htpasswd", "-nbB", "-C", std::to_string(bcrypt_cost), "user", password};
        case HashKind::kBcrypt2b:
            return {"mkpasswd", "-m", "bcrypt", password};
        case HashKind::kYescrypt:
            return {"mkpasswd", "-m", "yescrypt", password};
        case HashKind::kSha512crypt:
            return {"mkpasswd", "-m", "sha512crypt", password};
    }
    return {};
}

}  // namespace

const char* hash_kind_name(HashKind kind) {
    switch (kind) {
        case HashKind::kBcrypt:
            return "bcrypt";
        case HashKind::kBcrypt2b:
            return "bcrypt-2b";
        case HashKind::kYescrypt:
            return "yescrypt";
        case HashKind::kSha512crypt:
            return "sha512crypt";
    }
    return "?";
}

std::string make_password_hash(HashKind kind, const std::string& password, int bcrypt_cost) {
    std::vector<std::string> argv = tool_argv(kind, password, bcrypt_cost);
    // bcrypt at cost 12 takes ~0.3 s idle; a loaded machine may need many times that.
    CurlResult r = run_program(argv, 60s);
    std::string hash = first_line(r.out);
    if (kind == HashKind::kBcrypt && hash.rfind("user:", 0) == 0) hash.erase(0, 5);
    if (r.exit_code != 0 || hash.rfind(hash_prefix(kind), 0) != 0) {
        ADD_FAILURE() << argv[0] << " (" << hash_kind_name(kind) << ") failed with exit "
                      << r.exit_code << ": out \"" << r.out << "\", err \"" << r.err
                      << "\" (make deps installs apache2-utils and whois)";
        return "";
    }
    return hash;
}

bool UsersFile::add(const std::string& name, const std::string& password, HashKind kind,
                    int bcrypt_cost) {
    std::string hash = make_password_hash(kind, password, bcrypt_cost);
    if (hash.empty()) return false;
    lines_.emplace_back(name, name + ":" + hash);
    return true;
}

void UsersFile::add_raw_line(const std::string& line) {
    lines_.emplace_back("", line);
}

std::string UsersFile::text() const {
    std::string out;
    for (const auto& entry : lines_) out += entry.second + "\n";
    return out;
}

bool UsersFile::write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    if (!write_file(tmp, text())) return false;
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int UsersFile::line_of(const std::string& name) const {
    for (size_t i = 0; i < lines_.size(); ++i) {
        if (!name.empty() && lines_[i].first == name) return static_cast<int>(i) + 1;
    }
    return 0;
}

}  // namespace harness
