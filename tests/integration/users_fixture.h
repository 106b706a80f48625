// Users files for the accounts tests (issue 14), made the way an operator
// makes them: every hash comes from the operators' own tools, run as
// subprocesses (htpasswd from apache2-utils, mkpasswd from whois), never
// computed by the test. A file is "NAME:HASH\n" lines, as htpasswd writes.
//
//   harness::UsersFile users;
//   users.add("alice", "secret");                                  // bcrypt, cost 5
//   users.add("bob", "hunter2", harness::HashKind::kYescrypt);
//   ASSERT_TRUE(users.write(proxy.path("users")));
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace harness {

enum class HashKind {
    kBcrypt,       // htpasswd -nbB -C COST NAME PASS: "$2y$COST$..."
    kBcrypt2b,     // mkpasswd -m bcrypt PASS: "$2b$05$..." (the same cipher, OpenBSD's prefix)
    kYescrypt,     // mkpasswd -m yescrypt PASS: "$y$..."
    kSha512crypt,  // mkpasswd -m sha512crypt PASS: "$6$..."
};

// htpasswd's own default cost: cheap enough that a test can authenticate
// many times on a loaded machine.
inline constexpr int kDefaultBcryptCost = 5;

// "bcrypt", "bcrypt-2b", "yescrypt", "sha512crypt": for test names and messages.
const char* hash_kind_name(HashKind kind);

// The hash of `password` as the tool of `kind` prints it (bcrypt at
// `bcrypt_cost`, 4..17). "" (with ADD_FAILURE quoting the tool's output)
// when the tool failed or printed something that is not a hash of `kind`.
std::string make_password_hash(HashKind kind, const std::string& password,
                               int bcrypt_cost = kDefaultBcryptCost);

class UsersFile {
  public:
    // Hashes `password` now (one tool run); false (with ADD_FAILURE) when
    // the tool failed.
    bool add(const std::string& name, const std::string& password,
             HashKind kind = HashKind::kBcrypt, int bcrypt_cost = kDefaultBcryptCost);
    // A line written verbatim (without its "\n"), e.g. a deliberately bad one.
    void add_raw_line(const std::string& line);

    // The file's text: one "NAME:HASH\n" per entry, in the order added.
    std::string text() const;
    // Writes text() to `path` through a temporary file and rename(), so a
    // reader never sees half a file. False on error.
    bool write(const std::string& path) const;

    // The 1-based line of `name` in text(); 0 when absent.
    int line_of(const std::string& name) const;

  private:
    std::vector<std::pair<std::string, std::string>> lines_;  // name ("" for raw), line
};

}  // namespace harness
