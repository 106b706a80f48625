// Unit tests for common/users_file: real hashes from the operators' tools
// (each verified with libxcrypt), every error with the line it names, the
// limits, and load_users_file() on real files.
#include "common/users_file.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace common::accounts {
namespace {

using namespace std::string_literals;

// Test data, not secrets: every hash is of the password "secret", made once
// with the command above it.

// htpasswd -nbB -C 4 alice secret
constexpr const char* kHtpasswdBcrypt =
    "alice:$2y$04$uALT.wYYEPO54g4lkJ8eUOo8Lf3raN/CcNicDQN4eI.Svvtb9Rm1G";
constexpr const char* kBcrypt2y = "$2y$04$uALT.wYYEPO54g4lkJ8eUOo8Lf3raN/CcNicDQN4eI.Svvtb9Rm1G";
// mkpasswd -m bcrypt -R 4 secret (libxcrypt raises the cost to 05)
constexpr const char* kBcrypt2b = "$2b$05$poDl1VQBjf.EM3pAPI3JUeEzluhSqzVYr.04833Hnz8waVfYHzMPy";
// mkpasswd -m bcrypt-a -R 4 secret
constexpr const char* kBcrypt2a = "$2a$05$vzhfX.vLvgX9ShYi1uRZ4.QzaXMEaxX6K8lRohzSDS4Vd5LiTijse";
// mkpasswd -m yescrypt secret
constexpr const char* kYescrypt =
    "$y$j9T$ozmvHIbYrj0Jzjsb73Jbr/$ZFHnpK883rwAwNrOlezrslX7X.vIxeBbs/GvKPGEp61";
// mkpasswd -m sha512crypt secret
constexpr const char* kSha512 =
    "$6$M4Hu1djjy1X7WJ4j$ixdpu68ZRlfHuySqSS0cvNyt1vl."
    "agwDDhknraYfYS6fJEAkhx0N2rCeZDuA6vd4SBeiuvWZbh1"
    "urOpUnW3n91";
// mkpasswd -m sha512crypt -R 5000 secret (5000 is the default: no "rounds=")
constexpr const char* kSha512R5000 =
    "$6$Fg.ldjNv2R/HHG0q$Fr1wo5RqO6Fp79b4XHoFCcjkc4xWg88po0wZpyNB/lO0HeakNWNV3cONbMXJcZyd/"
    "lvHZJBWGg56HvnWn6yV./";
// mkpasswd -m sha512crypt -R 10000 secret
constexpr const char* kSha512Rounds =
    "$6$rounds=10000$LiOWRyAvlLXC.Qa0$QhMCOQRNt/oJrz3tpgpVDbGVG2CDpza8BRuGearMUE/"
    "1ZG1fmVI7xcPXN.m0LCvmeKwOqGIUCXTPaTa21rnis/";

// Refused: htpasswd -nbm alice secret (Apache MD5), then mkpasswd -m md5crypt,
// sha256crypt, gost-yescrypt, scrypt, descrypt, bsdicrypt, sunmd5 and
// htpasswd -nbs (SHA-1), all of "secret".
constexpr const char* kHtpasswdMd5 = "alice:$apr1$xfUctqol$vE.1jQudfTuNm5375Tcz3/";
constexpr const char* kMd5Crypt = "$1$3NlD7Twg$pAaJl82aT57dEkAtPuhQa/";
constexpr const char* kSha256 = "$5$D28d1CMkU6SGJm62$PqfnF5TftY27IcQME2C5HzPVE6AVoifRSegF9QjwoR1";
constexpr const char* kGostYescrypt =
    "$gy$j9T$nOUF8lrhdnuAP77vXEI5M.$kcYKW..W9pojjjUGspEsxdvvl3I1RjBjWiuepRQYBp5";
constexpr const char* kScrypt =
    "$7$CU..../....FB3LuRn5bDUSaLUcxAoEr0$9croc2r5AXs9fJ7mtcQe49lLp0GyM4cNzC5r1h4bzz.";
constexpr const char* kDesCrypt = "PWoKEpfYPKKzE";
constexpr const char* kBsdiCrypt = "_J9..iXhzA/DJvSNlegw";
constexpr const char* kSunMd5 = "$md5,rounds=90063$cNKSEfJw$$ZBk/UEYUwD/xW4TN9XrAF1";
constexpr const char* kHtpasswdSha1 = "alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

constexpr const char* kUnsupported =
    " is an unsupported password hash (use htpasswd -B, or mkpasswd -m yescrypt or sha512crypt)";

UsersFile parsed(const std::string& text) {
    std::string error;
    const auto file = parse_users_file(text, "users", error);
    EXPECT_TRUE(file.has_value()) << error << "\n--- file:\n" << text;
    return file.value_or(UsersFile{});
}

// The whole message for `text` named "users".
std::string error_for(const std::string& text) {
    std::string error;
    const auto file = parse_users_file(text, "users", error);
    EXPECT_FALSE(file.has_value()) << "--- file:\n" << text;
    return error;
}

// The message for the single line `line`, without "users:1: ".
std::string line_error(const std::string& line) {
    const std::string error = error_for(line + "\n");
    EXPECT_EQ(error.rfind("users:1: ", 0), 0u) << error;
    return error.substr(std::min<size_t>(error.size(), 9));
}

std::string hash_error(const std::string& hash) {
    return line_error("alice:" + hash);
}

// A minimal yescrypt hash of the shape the parser wants (50 bytes): the
// shortest well-formed line, for the size and count limits.
std::string short_hash() {
    return "$y$j$s$" + std::string(43, 'h');
}

// --- accepted ---------------------------------------------------------------------

TEST(UsersFile, FixturesAreRealHashesOfSecret) {
    // What the parser accepts must be what libxcrypt verifies.
    for (const char* hash :
         {kBcrypt2y, kBcrypt2b, kBcrypt2a, kYescrypt, kSha512, kSha512R5000, kSha512Rounds}) {
        crypt_data data{};
        const char* out = crypt_r("secret", hash, &data);
        ASSERT_NE(out, nullptr) << hash;
        EXPECT_STREQ(out, hash);
    }
}

TEST(UsersFile, HtpasswdOutputAsItIs) {
    // htpasswd -n prints the line and an empty one.
    const UsersFile file = parsed(kHtpasswdBcrypt + "\n\n"s);
    ASSERT_EQ(file.users.size(), 1u);
    EXPECT_EQ(file.users[0].name, "alice");
    EXPECT_EQ(file.users[0].hash, kBcrypt2y);
    EXPECT_EQ(file.users[0].kind, HashKind::kBcrypt);
}

TEST(UsersFile, EverySupportedKindInFileOrder) {
    const UsersFile file =
        parsed("# proxyd users\n"s + "b2y:" + kBcrypt2y + "\n" + "b2b:" + kBcrypt2b + "\n" +
               "b2a:" + kBcrypt2a + "\n\n" + "yes:" + kYescrypt + "\n" + "sha:" + kSha512 + "\n" +
               "sha5000:" + kSha512R5000 + "\n" + "rounds:" + kSha512Rounds);
    ASSERT_EQ(file.users.size(), 7u);
    const struct {
        const char* name;
        const char* hash;
        HashKind kind;
    } expected[] = {
        {"b2y", kBcrypt2y, HashKind::kBcrypt},
        {"b2b", kBcrypt2b, HashKind::kBcrypt},
        {"b2a", kBcrypt2a, HashKind::kBcrypt},
        {"yes", kYescrypt, HashKind::kYescrypt},
        {"sha", kSha512, HashKind::kSha512Crypt},
        {"sha5000", kSha512R5000, HashKind::kSha512Crypt},
        {"rounds", kSha512Rounds, HashKind::kSha512Crypt},
    };
    for (size_t i = 0; i < file.users.size(); ++i) {
        EXPECT_EQ(file.users[i].name, expected[i].name);
        EXPECT_EQ(file.users[i].hash, expected[i].hash);
        EXPECT_EQ(file.users[i].kind, expected[i].kind) << expected[i].name;
    }
}

TEST(UsersFile, LastLineWithoutNewline) {
    EXPECT_EQ(parsed("a:"s + kYescrypt + "\nb:" + kSha512).users.size(), 2u);
}

TEST(UsersFile, EmptyAndCommentOnly) {
    EXPECT_TRUE(parsed("").users.empty());
    EXPECT_TRUE(parsed("\n\n\n").users.empty());
    EXPECT_TRUE(parsed("# nobody yet\n#\n# alice:x:y \xff\x01\n").users.empty());
}

TEST(UsersFile, NamesAreAnyVcharButColon) {
    const std::string name = "a.b@example.com!#$%&'*+/=?^_`{|}~-\"()<>[]\\;,";
    EXPECT_EQ(parsed(name + ":" + kYescrypt).users[0].name, name);
    EXPECT_EQ(parsed("alice-session:"s + kYescrypt).users[0].name, "alice-session");
    EXPECT_EQ(parsed("a#b:"s + kYescrypt).users[0].name, "a#b");
}

TEST(UsersFile, NamesAreCaseSensitive) {
    EXPECT_EQ(parsed("alice:"s + kYescrypt + "\nAlice:" + kYescrypt).users.size(), 2u);
}

TEST(UsersFile, NameOf64Bytes) {
    const std::string name(64, 'n');
    EXPECT_EQ(parsed(name + ":" + kYescrypt).users[0].name, name);
}

TEST(UsersFile, Sha512RoundsBounds) {
    const std::string tail = "$salt$" + std::string(86, 'd');
    EXPECT_EQ(parsed("a:$6$rounds=1000" + tail).users.size(), 1u);
    EXPECT_EQ(parsed("a:$6$rounds=999999999" + tail).users.size(), 1u);
    EXPECT_EQ(parsed("a:$6$rounds=5000" + tail).users.size(), 1u);
}

TEST(UsersFile, Sha512SaltOf1To16) {
    const std::string digest = "$" + std::string(86, 'd');
    EXPECT_EQ(parsed("a:$6$s" + digest).users.size(), 1u);
    EXPECT_EQ(parsed("a:$6$" + std::string(16, 's') + digest).users.size(), 1u);
}

TEST(UsersFile, BcryptCostBounds) {
    const std::string digest = "$" + std::string(53, 'd');
    EXPECT_EQ(parsed("a:$2b$04" + digest).users.size(), 1u);
    EXPECT_EQ(parsed("a:$2b$31" + digest).users.size(), 1u);
}

// --- line-level errors -------------------------------------------------------------

TEST(UsersFile, CarriageReturnAnywhere) {
    const std::string crlf = "carriage return (the file has CRLF line ends)";
    EXPECT_EQ(error_for(kHtpasswdBcrypt + "\r\n"s), "users:1: " + crlf);
    EXPECT_EQ(error_for("# comment\r\n"), "users:1: " + crlf);
    EXPECT_EQ(error_for("\r\n"), "users:1: " + crlf);
    EXPECT_EQ(error_for("\n# x\n\nal\rice:x\n"), "users:4: " + crlf);
    EXPECT_EQ(error_for("a:"s + kYescrypt + "\r"), "users:1: " + crlf);
}

TEST(UsersFile, LineNumbersCountSkippedLines) {
    EXPECT_EQ(error_for("# users\n\nalice:"s + kYescrypt + "\n\n#\nbob\n"),
              "users:6: no ':' between the user name and the hash");
}

TEST(UsersFile, NoColon) {
    EXPECT_EQ(line_error("alice"), "no ':' between the user name and the hash");
    EXPECT_EQ(line_error(kYescrypt), "no ':' between the user name and the hash");
    EXPECT_EQ(line_error("al ice"), "no ':' between the user name and the hash");
    EXPECT_EQ(line_error("j\xC3\xB6rg"), "no ':' between the user name and the hash");
}

TEST(UsersFile, SecondColon) {
    // Apache's "name:hash:comment".
    EXPECT_EQ(line_error(kHtpasswdBcrypt + ":Alice Liddell"s),
              "user \"alice\": second ':' (\"NAME:HASH:comment\" is not supported)");
    EXPECT_EQ(line_error("alice::"),
              "user \"alice\": second ':' (\"NAME:HASH:comment\" is not "
              "supported)");
}

TEST(UsersFile, EmptyName) {
    EXPECT_EQ(line_error(":"s + kYescrypt), "empty user name");
}

TEST(UsersFile, Spaces) {
    EXPECT_EQ(line_error(" alice:"s + kYescrypt), "space before the user name");
    EXPECT_EQ(line_error("alice :"s + kYescrypt), "space between the user name and ':'");
    EXPECT_EQ(line_error("al ice:"s + kYescrypt), "space in user name");
    EXPECT_EQ(line_error(" "), "a line of white space (empty lines must be empty)");
    EXPECT_EQ(line_error(" \t "), "a line of white space (empty lines must be empty)");
    EXPECT_EQ(line_error("   # indented comment"), "'#' starts a comment only in the first column");
    EXPECT_EQ(line_error("\t# indented comment"), "'#' starts a comment only in the first column");
    EXPECT_EQ(line_error("  # a: b"), "space before the user name");
}

TEST(UsersFile, NameBytesOutsideVchar) {
    EXPECT_EQ(line_error("al\tice:"s + kYescrypt),
              "byte 0x09 in user name (only printable ASCII is allowed)");
    EXPECT_EQ(line_error("j\xC3\xB6rg:"s + kYescrypt),
              "byte 0xC3 in user name (only printable ASCII is allowed)");
    EXPECT_EQ(line_error("\xEF\xBB\xBF"
                         "alice:"s +
                         kYescrypt),
              "byte 0xEF in user name (only printable ASCII is allowed)");
    EXPECT_EQ(line_error("a\0b:"s + kYescrypt),
              "byte 0x00 in user name (only printable ASCII is allowed)");
    EXPECT_EQ(line_error("a\x7f:"s + kYescrypt),
              "byte 0x7F in user name (only printable ASCII is allowed)");
}

TEST(UsersFile, NameNotVcharIsNeverPrinted) {
    // Even when a later check would name the user.
    const std::string error = error_for("ev\x1b[31mil:x:y\n");
    EXPECT_EQ(error.find('\x1b'), std::string::npos);
    EXPECT_EQ(error, "users:1: byte 0x1B in user name (only printable ASCII is allowed)");
}

TEST(UsersFile, NameLongerThan64) {
    const std::string name(65, 'n');
    EXPECT_EQ(line_error(name + ":" + kYescrypt), "user name longer than 64 bytes (65)");
    // Not printed: it may be anything up to 64 MiB.
    EXPECT_EQ(line_error(std::string(100000, 'n') + ":" + kYescrypt),
              "user name longer than 64 bytes (100000)");
    EXPECT_EQ(line_error(std::string(60, 'n') + "-session-:" + kYescrypt),
              "user name longer than 64 bytes (69)");
}

TEST(UsersFile, NameWithParameters) {
    EXPECT_EQ(line_error("alice-session-1:"s + kYescrypt),
              "user name \"alice-session-1\" contains \"-session-\", which starts a user-name "
              "parameter: this user could never log in");
    EXPECT_EQ(line_error("alice-ttl-5m:"s + kYescrypt),
              "user name \"alice-ttl-5m\" contains \"-ttl-\", which starts a user-name "
              "parameter: this user could never log in");
    EXPECT_EQ(line_error("-ttl-:"s + kYescrypt),
              "user name \"-ttl-\" contains \"-ttl-\", which starts a user-name "
              "parameter: this user could never log in");
}

// --- unsupported hashes ---------------------------------------------------------------

TEST(UsersFile, ApacheMd5IsRefused) {
    EXPECT_EQ(line_error(kHtpasswdMd5), "user \"alice\": Apache MD5 (\"$apr1$\")"s + kUnsupported);
}

TEST(UsersFile, OtherUnsupportedHashes) {
    const struct {
        std::string line;
        std::string kind;
    } cases[] = {
        {"alice:"s + kMd5Crypt, "MD5-crypt (\"$1$\")"},
        {kHtpasswdSha1, "SHA-1 (\"{SHA}\")"},
        {"alice:"s + kSha256, "SHA-256-crypt (\"$5$\")"},
        {"alice:"s + kGostYescrypt, "GOST yescrypt (\"$gy$\")"},
        {"alice:"s + kScrypt, "scrypt (\"$7$\")"},
        {"alice:"s + kDesCrypt, "DES crypt"},
        {"alice:"s + kBsdiCrypt, "BSDi DES crypt (\"_\")"},
        {"alice:"s + kSunMd5, "SunMD5 (\"$md5\")"},
        {"alice:", "an empty hash"},
        {"alice:$2x$05$" + std::string(53, 'd'), "an unknown \"$\" scheme"},
        {"alice:$3$", "an unknown \"$\" scheme"},
        {"alice:$", "an unknown \"$\" scheme"},
        {"alice:$Y$j9T$salt$" + std::string(43, 'd'), "an unknown \"$\" scheme"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(line_error(c.line), "user \"alice\": " + c.kind + kUnsupported) << c.line;
    }
}

TEST(UsersFile, PlainTextIsRefusedWithoutPrintingIt) {
    const std::string error = line_error("alice:hunter2 is my password");
    EXPECT_EQ(error, "user \"alice\": plain text or an unknown hash"s + kUnsupported);
    EXPECT_EQ(error.find("hunter2"), std::string::npos);
    EXPECT_EQ(line_error("alice:secret"),
              "user \"alice\": plain text or an unknown hash"s + kUnsupported);
}

// --- malformed supported hashes ---------------------------------------------------------

TEST(UsersFile, MalformedBcrypt) {
    const std::string malformed =
        "user \"alice\": malformed bcrypt hash (expected \"$2a$\", \"$2b$\" or \"$2y$\", a "
        "two-digit cost, \"$\" and 53 characters of [./A-Za-z0-9])";
    const std::string bcrypt = kBcrypt2y;
    EXPECT_EQ(hash_error(bcrypt.substr(0, 59)), malformed);
    EXPECT_EQ(hash_error(bcrypt + "x"), malformed);
    EXPECT_EQ(hash_error("$2y$"), malformed);
    EXPECT_EQ(hash_error("$2y$4$" + std::string(54, 'd')), malformed);
    EXPECT_EQ(hash_error("$2y$04" + std::string(54, 'd')), malformed);
    EXPECT_EQ(hash_error("$2y$04$" + std::string(52, 'd') + "-"), malformed);
    EXPECT_EQ(hash_error("$2y$04$" + std::string(52, 'd') + "$"), malformed);
    EXPECT_EQ(hash_error("$2y$04$" + std::string(52, 'd') + " "), malformed);
}

TEST(UsersFile, BcryptCostOutOfRange) {
    const std::string digest = "$" + std::string(53, 'd');
    EXPECT_EQ(hash_error("$2y$03" + digest), "user \"alice\": bcrypt cost must be 04 to 31");
    EXPECT_EQ(hash_error("$2y$32" + digest), "user \"alice\": bcrypt cost must be 04 to 31");
    EXPECT_EQ(hash_error("$2b$00" + digest), "user \"alice\": bcrypt cost must be 04 to 31");
    EXPECT_EQ(hash_error("$2a$99" + digest), "user \"alice\": bcrypt cost must be 04 to 31");
}

TEST(UsersFile, MalformedSha512) {
    const std::string malformed =
        "user \"alice\": malformed SHA-512-crypt hash (expected \"$6$\", optionally "
        "\"rounds=N$\", a salt of 1 to 16 characters, \"$\" and 86 characters of [./A-Za-z0-9])";
    const std::string digest(86, 'd');
    EXPECT_EQ(hash_error("$6$"), malformed);
    EXPECT_EQ(hash_error("$6$salt"), malformed);
    EXPECT_EQ(hash_error("$6$$" + digest), malformed);  // empty salt
    EXPECT_EQ(hash_error("$6$" + std::string(17, 's') + "$" + digest), malformed);
    EXPECT_EQ(hash_error("$6$sa-lt$" + digest), malformed);
    EXPECT_EQ(hash_error("$6$salt$" + digest.substr(1)), malformed);
    EXPECT_EQ(hash_error("$6$salt$" + digest + "d"), malformed);
    EXPECT_EQ(hash_error("$6$salt$" + digest.substr(1) + "="), malformed);
    EXPECT_EQ(hash_error("$6$salt$x$" + digest), malformed);
    EXPECT_EQ(hash_error("$6$rounds=5000$" + digest), malformed);  // no salt
    EXPECT_EQ(hash_error("$6$rounds=5000"), malformed);
}

TEST(UsersFile, Sha512RoundsOutOfRange) {
    const std::string tail = "$salt$" + std::string(86, 'd');
    const std::string rounds = "user \"alice\": SHA-512-crypt rounds must be 1000 to 999999999";
    EXPECT_EQ(hash_error("$6$rounds=999" + tail), rounds);
    EXPECT_EQ(hash_error("$6$rounds=1000000000" + tail), rounds);
    EXPECT_EQ(hash_error("$6$rounds=01000" + tail), rounds);
    EXPECT_EQ(hash_error("$6$rounds=" + tail), rounds);
    EXPECT_EQ(hash_error("$6$rounds=5k" + tail), rounds);
    EXPECT_EQ(hash_error("$6$rounds=-5000" + tail), rounds);
}

TEST(UsersFile, MalformedYescrypt) {
    const std::string malformed =
        "user \"alice\": malformed yescrypt hash (expected \"$y$\", parameters, \"$\", a salt, "
        "\"$\" and 43 characters of [./A-Za-z0-9])";
    const std::string digest(43, 'd');
    EXPECT_EQ(hash_error("$y$"), malformed);
    EXPECT_EQ(hash_error("$y$j9T"), malformed);
    EXPECT_EQ(hash_error("$y$j9T$salt"), malformed);
    EXPECT_EQ(hash_error("$y$$salt$" + digest), malformed);
    EXPECT_EQ(hash_error("$y$j9T$$" + digest), malformed);
    EXPECT_EQ(hash_error("$y$j9T$salt$" + digest.substr(1)), malformed);
    EXPECT_EQ(hash_error("$y$j9T$salt$" + digest + "d"), malformed);
    EXPECT_EQ(hash_error("$y$j9T$salt$" + digest + "$"), malformed);
    EXPECT_EQ(hash_error("$y$j9T$sa-lt$" + digest), malformed);
    EXPECT_EQ(hash_error("$y$j 9T$salt$" + digest), malformed);
    EXPECT_EQ(hash_error("$y$j9T$salt$x$" + digest), malformed);
}

// --- whole-file errors --------------------------------------------------------------------

TEST(UsersFile, DuplicateUser) {
    EXPECT_EQ(error_for("alice:"s + kYescrypt + "\n# x\nbob:" + kSha512 + "\nalice:" + kBcrypt2y),
              "users:4: duplicate user \"alice\" (first on line 1)");
}

TEST(UsersFile, FileNameIsGivenBack) {
    std::string error;
    EXPECT_FALSE(parse_users_file("bob\n", "/etc/proxyd/users", error).has_value());
    EXPECT_EQ(error, "/etc/proxyd/users:1: no ':' between the user name and the hash");
}

TEST(UsersFile, FirstErrorWins) {
    EXPECT_EQ(error_for("bob\nal ice:\n"), "users:1: no ':' between the user name and the hash");
}

TEST(UsersFile, LargerThan64MiB) {
    // A comment of 64 MiB and a newline: one byte over.
    std::string text(kMaxUsersFileSize, '#');
    text += "\n";
    EXPECT_EQ(error_for(text), "users: larger than 64 MiB");
    text.pop_back();
    EXPECT_TRUE(parsed(text).users.empty());
}

TEST(UsersFile, AMillionUsers) {
    // The shortest lines: 1,000,000 of them stay under 64 MiB.
    std::string text;
    const std::string line_tail = ":" + short_hash() + "\n";
    text.reserve(kMaxUsers * (8 + line_tail.size()));
    for (size_t i = 0; i < kMaxUsers; ++i) text += "u" + std::to_string(i) + line_tail;
    ASSERT_LE(text.size(), kMaxUsersFileSize);
    EXPECT_EQ(parsed(text).users.size(), kMaxUsers);
    text += "one-more" + line_tail;
    EXPECT_EQ(error_for(text), "users:1000001: more than 1000000 users");
}

TEST(UsersFile, ErrorIsOnlySetOnFailure) {
    std::string error = "untouched";
    ASSERT_TRUE(parse_users_file(kHtpasswdBcrypt, "users", error).has_value());
    EXPECT_EQ(error, "untouched");
}

// --- load_users_file --------------------------------------------------------------------------

class UsersFileLoad : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/proxyd-users-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write(const std::string& text) {
        const std::string path = dir_ + "/users";
        std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
        return path;
    }

    std::string dir_;
};

TEST_F(UsersFileLoad, ReadsAFile) {
    const std::string path = write(kHtpasswdBcrypt + "\nbob:"s + kYescrypt + "\n");
    std::string error;
    const auto file = load_users_file(path, error);
    ASSERT_TRUE(file.has_value()) << error;
    ASSERT_EQ(file->users.size(), 2u);
    EXPECT_EQ(file->users[1].name, "bob");
    EXPECT_EQ(file->users[1].kind, HashKind::kYescrypt);
}

TEST_F(UsersFileLoad, ParseErrorsNameThePath) {
    const std::string path = write("# users\n"s + kHtpasswdMd5 + "\n");
    std::string error;
    EXPECT_FALSE(load_users_file(path, error).has_value());
    EXPECT_EQ(error, path + ":2: user \"alice\": Apache MD5 (\"$apr1$\")" + kUnsupported);
}

TEST_F(UsersFileLoad, MissingFile) {
    std::string error;
    EXPECT_FALSE(load_users_file(dir_ + "/nope", error).has_value());
    EXPECT_EQ(error, dir_ + "/nope: cannot read: No such file or directory");
}

TEST_F(UsersFileLoad, Directory) {
    std::string error;
    EXPECT_FALSE(load_users_file(dir_, error).has_value());
    EXPECT_EQ(error, dir_ + ": cannot read: Is a directory");
}

TEST_F(UsersFileLoad, OversizedFileIsReadOnlyUpToTheLimit) {
    const std::string path = write(std::string(kMaxUsersFileSize + 100000, '#'));
    std::string error;
    EXPECT_FALSE(load_users_file(path, error).has_value());
    EXPECT_EQ(error, path + ": larger than 64 MiB");
}

}  // namespace
}  // namespace common::accounts
