#include "common/json.h"

#include <gtest/gtest.h>

namespace common::json {
namespace {

TEST(Json, DumpsObjectsInInsertionOrder) {
    Value v = Value::object();
    v.set("ok", true);
    v.set("n", 42);
    v.set("big", uint64_t{1} << 40);
    v.set("s", "a\"b\\c\n");
    v.set("none", nullptr);
    Value arr = Value::array();
    arr.push(1);
    arr.push("x");
    v.set("list", std::move(arr));
    EXPECT_EQ(
        v.dump(),
        R"({"ok":true,"n":42,"big":1099511627776,"s":"a\"b\\c\n","none":null,"list":[1,"x"]})");
}

TEST(Json, SetReplacesExistingKey) {
    Value v = Value::object();
    v.set("a", 1);
    v.set("a", 2);
    EXPECT_EQ(v.dump(), R"({"a":2})");
}

TEST(Json, QuotesControlCharacters) {
    EXPECT_EQ(quote(std::string("a\x01\x7f", 3)), "\"a\\u0001\\u007f\"");
    EXPECT_EQ(quote("tab\there"), "\"tab\\there\"");
}

TEST(Json, ParsesWhatItWrites) {
    std::string error;
    std::optional<Value> v =
        parse(R"( {"ok": false, "error": "unknown command \"x\"", "n": -3, "d": 1.5e2,
                   "a": [true, null, {"k": []}], "u": "\u00e9\ud83d\ude00"} )",
              error);
    ASSERT_TRUE(v) << error;
    EXPECT_FALSE((*v)["ok"].as_bool());
    EXPECT_TRUE((*v)["ok"].is_bool());
    EXPECT_EQ((*v)["error"].as_string(), "unknown command \"x\"");
    EXPECT_EQ((*v)["n"].as_int(), -3);
    EXPECT_DOUBLE_EQ((*v)["d"].as_double(), 150.0);
    EXPECT_TRUE((*v)["a"][0].as_bool());
    EXPECT_TRUE((*v)["a"][1].is_null());
    EXPECT_TRUE((*v)["a"][2]["k"].is_array());
    EXPECT_EQ((*v)["u"].as_string(), "\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_TRUE((*v)["missing"]["deeper"].is_null());
    std::optional<Value> again = parse(v->dump(), error);
    ASSERT_TRUE(again) << error;
    EXPECT_EQ(again->dump(), v->dump());
}

TEST(Json, RejectsMalformedInput) {
    const char* bad[] = {"",    "{",    "[1,]",    "{\"a\" 1}",   "\"abc",    "01",    "1.",   "-",
                         "tru", "{} x", "\"\\q\"", "\"\\ud800\"", "\"a\nb\"", "[1 2]", "{1:2}"};
    for (const char* text : bad) {
        std::string error;
        EXPECT_FALSE(parse(text, error)) << text;
        EXPECT_FALSE(error.empty()) << text;
    }
}

// Found by the fuzzer: "-0e7" is the double -0.0 and must stay one.
TEST(Json, DoublesStayDoublesWhenWrittenBack) {
    std::string error;
    for (const char* text : {"-0e7", "1e2", "2.5", "-0.0"}) {
        std::optional<Value> v = parse(text, error);
        ASSERT_TRUE(v) << text;
        std::optional<Value> again = parse(v->dump(), error);
        ASSERT_TRUE(again) << v->dump();
        EXPECT_EQ(again->type(), Value::Type::kDouble) << text;
        EXPECT_EQ(again->dump(), v->dump()) << text;
    }
}

TEST(Json, LimitsNesting) {
    std::string deep(100, '[');
    deep += std::string(100, ']');
    std::string error;
    EXPECT_FALSE(parse(deep, error));
    EXPECT_NE(error.find("deep"), std::string::npos) << error;
    std::string ok(30, '[');
    ok += std::string(30, ']');
    EXPECT_TRUE(parse(ok, error)) << error;
}

TEST(Json, AccessorsAreNeutralOnTypeMismatch) {
    Value v("text");
    EXPECT_EQ(v.as_int(), 0);
    EXPECT_FALSE(v.as_bool());
    EXPECT_EQ(v.size(), 0u);
    EXPECT_EQ(Value(7).as_string(), "");
}

}  // namespace
}  // namespace common::json
