// What proxyd adds on top of nlohmann-json: answers that are always one line
// and never throw, and a parser for untrusted text that never throws and
// bounds nesting.
#include "common/json_util.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace common {
namespace {

TEST(JsonUtil, LinesKeepInsertionOrderAndEscapeNewlines) {
    Json v;
    v["ok"] = true;
    v["n"] = 42;
    v["big"] = uint64_t{1} << 40;
    v["s"] = "a\"b\\c\n";
    v["none"] = nullptr;
    v["list"] = Json::array({1, "x"});
    EXPECT_EQ(
        to_line(v),
        R"({"ok":true,"n":42,"big":1099511627776,"s":"a\"b\\c\n","none":null,"list":[1,"x"]})");
    EXPECT_EQ(to_line(Json(std::string("a\x01\x7f", 3))), "\"a\\u0001\x7f\"");
}

TEST(JsonUtil, LinesReplaceInvalidUtf8InsteadOfThrowing) {
    Json v;
    v["path"] = std::string("/tmp/\xff\xfe.conf");
    std::string line;
    ASSERT_NO_THROW(line = to_line(v));
    EXPECT_EQ(line, "{\"path\":\"/tmp/\xef\xbf\xbd\xef\xbf\xbd.conf\"}");
}

TEST(JsonUtil, ParsesWhatItWrites) {
    Json v = parse_untrusted(R"( {"ok": false, "error": "unknown command \"x\"", "n": -3,
                                 "d": 1.5e2, "a": [true, null, {"k": []}],
                                 "u": "\u00e9\ud83d\ude00"} )");
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v["error"], "unknown command \"x\"");
    EXPECT_EQ(v["n"], -3);
    EXPECT_DOUBLE_EQ(v["d"].get<double>(), 150.0);
    EXPECT_EQ(v["u"], "\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_EQ(v.begin().key(), "ok");  // order as in the text
    EXPECT_EQ(to_line(parse_untrusted(to_line(v))), to_line(v));
}

TEST(JsonUtil, RejectsMalformedInputWithoutThrowing) {
    const char* bad[] = {"",         "{",     "[1,]",  "{\"a\" 1}", "\"abc",   "01",
                         "1.",       "-",     "tru",   "{} x",      "\"\\q\"", "\"\\ud800\"",
                         "\"a\nb\"", "[1 2]", "{1:2}", "\"\xff\""};
    for (const char* text : bad) {
        Json v;
        ASSERT_NO_THROW(v = parse_untrusted(text)) << text;
        EXPECT_TRUE(v.is_discarded()) << text;
    }
}

TEST(JsonUtil, LimitsNesting) {
    std::string deep(100, '[');
    deep += std::string(100, ']');
    EXPECT_TRUE(parse_untrusted(deep).is_discarded());
    std::string deep_objects;
    for (int i = 0; i < 100; ++i) deep_objects += "{\"a\":";
    deep_objects += "1" + std::string(100, '}');
    EXPECT_TRUE(parse_untrusted(deep_objects).is_discarded());
    std::string ok(30, '[');
    ok += std::string(30, ']');
    EXPECT_FALSE(parse_untrusted(ok).is_discarded());
    EXPECT_TRUE(parse_untrusted(ok, 10).is_discarded());
}

}  // namespace
}  // namespace common
