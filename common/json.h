// A tiny JSON value: enough to write the control socket's answers and to
// read them back in proxyctl and the tests. Objects keep their members in
// insertion order (answers read the same every time); numbers are either
// 64-bit integers or doubles. Not a general-purpose library: no comments,
// no streaming, a nesting limit against hostile input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace common::json {

class Value {
  public:
    enum class Type { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
    using Member = std::pair<std::string, Value>;

    Value() = default;
    Value(std::nullptr_t) {}
    Value(bool b) : type_(Type::kBool), bool_(b) {}
    template <typename T,
              std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Value(T n) : type_(Type::kInt), int_(static_cast<int64_t>(n)) {}
    Value(double d) : type_(Type::kDouble), double_(d) {}
    Value(const char* s) : type_(Type::kString), string_(s) {}
    Value(std::string s) : type_(Type::kString), string_(std::move(s)) {}
    Value(std::string_view s) : type_(Type::kString), string_(s) {}

    static Value array() { return Value(Type::kArray); }
    static Value object() { return Value(Type::kObject); }

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::kNull; }
    bool is_bool() const { return type_ == Type::kBool; }
    bool is_number() const { return type_ == Type::kInt || type_ == Type::kDouble; }
    bool is_string() const { return type_ == Type::kString; }
    bool is_array() const { return type_ == Type::kArray; }
    bool is_object() const { return type_ == Type::kObject; }

    // Accessors return a neutral value (false, 0, "") on a type mismatch.
    bool as_bool() const { return type_ == Type::kBool && bool_; }
    int64_t as_int() const;
    double as_double() const;
    const std::string& as_string() const;

    // Arrays.
    Value& push(Value v);
    const std::vector<Value>& items() const { return items_; }
    // Objects: set() replaces an existing key or appends a new one.
    Value& set(std::string_view key, Value v);
    const std::vector<Member>& members() const { return members_; }
    // nullptr when absent or not an object.
    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    // A shared null Value when absent, so lookups chain: v["a"]["b"].
    const Value& operator[](std::string_view key) const;
    const Value& operator[](size_t index) const;
    size_t size() const;

    // Compact, one line, no trailing newline.
    std::string dump() const;

  private:
    explicit Value(Type type) : type_(type) {}
    void dump_to(std::string& out) const;

    Type type_ = Type::kNull;
    bool bool_ = false;
    int64_t int_ = 0;
    double double_ = 0;
    std::string string_;
    std::vector<Value> items_;
    std::vector<Member> members_;
};

// `text` as a JSON string literal, quotes included.
std::string quote(std::string_view text);

// Parses exactly one JSON value (surrounding whitespace allowed). Returns
// nullopt and sets `error` ("unexpected character 'x' at offset 12") on
// malformed input or nesting deeper than 64.
std::optional<Value> parse(std::string_view text, std::string& error);

}  // namespace common::json
