// JSON writing and a small recursive-descent parser. The parser is the long
// function family here; each production is one short method.
#include "common/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace common::json {

namespace {

const Value kNull;
const std::string kEmpty;

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Parser {
  public:
    Parser(std::string_view text, std::string& error) : text_(text), error_(error) {}

    std::optional<Value> parse_document() {
        std::optional<Value> v = parse_value(0);
        if (!v) return std::nullopt;
        skip_space();
        if (pos_ != text_.size()) return fail("trailing characters");
        return v;
    }

  private:
    static constexpr int kMaxDepth = 64;

    std::nullopt_t fail(const char* what) {
        char buf[128];
        if (pos_ < text_.size()) {
            unsigned char c = static_cast<unsigned char>(text_[pos_]);
            if (c >= 0x20 && c < 0x7f) {
                std::snprintf(buf, sizeof buf, "%s: unexpected character '%c' at offset %zu", what,
                              c, pos_);
            } else {
                std::snprintf(buf, sizeof buf, "%s: unexpected byte 0x%02x at offset %zu", what, c,
                              pos_);
            }
        } else {
            std::snprintf(buf, sizeof buf, "%s: unexpected end of input", what);
        }
        error_ = buf;
        return std::nullopt;
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                       text_[pos_] == '\n' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }

    bool consume_word(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    std::optional<Value> parse_value(int depth) {
        if (depth > kMaxDepth) return fail("nesting too deep");
        skip_space();
        if (pos_ >= text_.size()) return fail("expected a value");
        char c = text_[pos_];
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') {
            std::optional<std::string> s = parse_string();
            if (!s) return std::nullopt;
            return Value(std::move(*s));
        }
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        if (consume_word("true")) return Value(true);
        if (consume_word("false")) return Value(false);
        if (consume_word("null")) return Value();
        return fail("expected a value");
    }

    std::optional<Value> parse_object(int depth) {
        ++pos_;  // '{'
        Value obj = Value::object();
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '}') {
            ++pos_;
            return obj;
        }
        for (;;) {
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != '"') return fail("expected a key");
            std::optional<std::string> key = parse_string();
            if (!key) return std::nullopt;
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != ':') return fail("expected ':'");
            ++pos_;
            std::optional<Value> v = parse_value(depth + 1);
            if (!v) return std::nullopt;
            obj.set(*key, std::move(*v));
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < text_.size() && text_[pos_] == '}') {
                ++pos_;
                return obj;
            }
            return fail("expected ',' or '}'");
        }
    }

    std::optional<Value> parse_array(int depth) {
        ++pos_;  // '['
        Value arr = Value::array();
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == ']') {
            ++pos_;
            return arr;
        }
        for (;;) {
            std::optional<Value> v = parse_value(depth + 1);
            if (!v) return std::nullopt;
            arr.push(std::move(*v));
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < text_.size() && text_[pos_] == ']') {
                ++pos_;
                return arr;
            }
            return fail("expected ',' or ']'");
        }
    }

    std::optional<uint32_t> parse_hex4() {
        if (text_.size() - pos_ < 4) return fail("short \\u escape");
        uint32_t cp = 0;
        for (int i = 0; i < 4; ++i) {
            char h = text_[pos_];
            cp <<= 4;
            if (h >= '0' && h <= '9')
                cp |= h - '0';
            else if (h >= 'a' && h <= 'f')
                cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
                cp |= h - 'A' + 10;
            else
                return fail("bad \\u escape");
            ++pos_;
        }
        return cp;
    }

    // After the backslash of a \u escape; joins surrogate pairs.
    bool parse_unicode_escape(std::string& out) {
        std::optional<uint32_t> cp = parse_hex4();
        if (!cp) return false;
        if (*cp >= 0xD800 && *cp <= 0xDBFF) {
            if (!consume_word("\\u")) return fail("lone surrogate"), false;
            std::optional<uint32_t> low = parse_hex4();
            if (!low) return false;
            if (*low < 0xDC00 || *low > 0xDFFF) return fail("bad surrogate pair"), false;
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
        } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
            return fail("lone surrogate"), false;
        }
        append_utf8(out, *cp);
        return true;
    }

    std::optional<std::string> parse_string() {
        ++pos_;  // opening quote
        std::string out;
        while (pos_ < text_.size()) {
            char c = text_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) {
                --pos_;
                return fail("control character in string");
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) break;
            char e = text_[pos_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u':
                    if (!parse_unicode_escape(out)) return std::nullopt;
                    break;
                default:
                    --pos_;
                    return fail("bad escape");
            }
        }
        return fail("unterminated string");
    }

    std::optional<Value> parse_number() {
        size_t start = pos_;
        if (text_[pos_] == '-') ++pos_;
        if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') {
            return fail("bad number");
        }
        if (text_[pos_] == '0') {
            ++pos_;
        } else {
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
        }
        bool integral = true;
        if (pos_ < text_.size() && text_[pos_] == '.') {
            integral = false;
            ++pos_;
            size_t digits = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
            if (pos_ == digits) return fail("bad fraction");
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            integral = false;
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
            size_t digits = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
            if (pos_ == digits) return fail("bad exponent");
        }
        std::string literal(text_.substr(start, pos_ - start));
        if (integral) {
            errno = 0;
            char* end = nullptr;
            long long n = std::strtoll(literal.c_str(), &end, 10);
            if (errno == 0 && end && *end == '\0') return Value(static_cast<int64_t>(n));
        }
        return Value(std::strtod(literal.c_str(), nullptr));
    }

    std::string_view text_;
    std::string& error_;
    size_t pos_ = 0;
};

}  // namespace

int64_t Value::as_int() const {
    if (type_ == Type::kInt) return int_;
    if (type_ == Type::kDouble && std::isfinite(double_)) return static_cast<int64_t>(double_);
    return 0;
}

double Value::as_double() const {
    if (type_ == Type::kInt) return static_cast<double>(int_);
    if (type_ == Type::kDouble) return double_;
    return 0;
}

const std::string& Value::as_string() const {
    return type_ == Type::kString ? string_ : kEmpty;
}

Value& Value::push(Value v) {
    if (type_ != Type::kArray) *this = array();
    items_.push_back(std::move(v));
    return items_.back();
}

Value& Value::set(std::string_view key, Value v) {
    if (type_ != Type::kObject) *this = object();
    for (Member& m : members_) {
        if (m.first == key) {
            m.second = std::move(v);
            return m.second;
        }
    }
    members_.emplace_back(std::string(key), std::move(v));
    return members_.back().second;
}

const Value* Value::find(std::string_view key) const {
    if (type_ != Type::kObject) return nullptr;
    for (const Member& m : members_) {
        if (m.first == key) return &m.second;
    }
    return nullptr;
}

Value* Value::find(std::string_view key) {
    return const_cast<Value*>(static_cast<const Value*>(this)->find(key));
}

const Value& Value::operator[](std::string_view key) const {
    const Value* v = find(key);
    return v ? *v : kNull;
}

const Value& Value::operator[](size_t index) const {
    if (type_ != Type::kArray || index >= items_.size()) return kNull;
    return items_[index];
}

size_t Value::size() const {
    if (type_ == Type::kArray) return items_.size();
    if (type_ == Type::kObject) return members_.size();
    return 0;
}

std::string quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
    return out;
}

void Value::dump_to(std::string& out) const {
    switch (type_) {
        case Type::kNull:
            out += "null";
            return;
        case Type::kBool:
            out += bool_ ? "true" : "false";
            return;
        case Type::kInt:
            out += std::to_string(int_);
            return;
        case Type::kDouble: {
            if (!std::isfinite(double_)) {
                out += "null";
                return;
            }
            char buf[40];
            std::snprintf(buf, sizeof buf, "%.17g", double_);
            out += buf;
            // Keep it a double when read back ("-0" would become integer 0).
            if (std::strpbrk(buf, ".eE") == nullptr) out += ".0";
            return;
        }
        case Type::kString:
            out += quote(string_);
            return;
        case Type::kArray: {
            out += '[';
            for (size_t i = 0; i < items_.size(); ++i) {
                if (i) out += ',';
                items_[i].dump_to(out);
            }
            out += ']';
            return;
        }
        case Type::kObject: {
            out += '{';
            for (size_t i = 0; i < members_.size(); ++i) {
                if (i) out += ',';
                out += quote(members_[i].first);
                out += ':';
                members_[i].second.dump_to(out);
            }
            out += '}';
            return;
        }
    }
}

std::string Value::dump() const {
    std::string out;
    dump_to(out);
    return out;
}

std::optional<Value> parse(std::string_view text, std::string& error) {
    Parser parser(text, error);
    return parser.parse_document();
}

}  // namespace common::json
