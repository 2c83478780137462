#include "common/jsonpath.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace sluice::common {

namespace {

using Kind = JsonDoc::Kind;
using Node = JsonDoc::Node;

constexpr int kMaxDepth = 64;
constexpr size_t kMaxNumberChars = 100;
constexpr size_t kMaxPathBytes = 8192;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON number's text as sign, significant digits and exponent (value = 0.d1d2.. x 10^exp).
struct Decimal {
  int sign = 0;  // 0 for zero
  std::string_view int_part, frac_part;
  size_t skip = 0;    // leading zeros of int_part + frac_part
  size_t digits = 0;  // significant digits (trailing zeros dropped)
  long exp = 0;

  char Digit(size_t k) const {
    k += skip;
    return k < int_part.size() ? int_part[k] : frac_part[k - int_part.size()];
  }
};

// `text` is a number as JSON or this file's path literals write it (validated before).
Decimal ParseDecimal(std::string_view text) {
  Decimal d;
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && text[i] == '-') {
    negative = true;
    ++i;
  }
  size_t start = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  d.int_part = text.substr(start, i - start);
  if (i < text.size() && text[i] == '.') {
    start = ++i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    d.frac_part = text.substr(start, i - start);
  }
  long e = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) eneg = text[i++] == '-';
    while (i < text.size() && IsDigit(text[i])) e = std::min<long>(e * 10 + (text[i++] - '0'), 1'000'000'000L);
    if (eneg) e = -e;
  }
  const size_t total = d.int_part.size() + d.frac_part.size();
  auto at = [&](size_t k) { return k < d.int_part.size() ? d.int_part[k] : d.frac_part[k - d.int_part.size()]; };
  while (d.skip < total && at(d.skip) == '0') ++d.skip;
  if (d.skip == total) return d;  // zero, whatever its sign
  size_t end = total;
  while (end > d.skip && at(end - 1) == '0') --end;
  d.digits = end - d.skip;
  d.sign = negative ? -1 : 1;
  d.exp = static_cast<long>(d.int_part.size()) - static_cast<long>(d.skip) + e;
  return d;
}

// Where the unsigned number starting at s[i] ends: `(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]{1,3})?`,
// at most kMaxNumberChars long. npos for anything else (a leading zero before a digit, an
// exponent of 4 digits or more: numeric's range is narrower than JSON's, and it takes at
// most 131072 digits before the point and 16383 after; comparing costs a step per digit
// here): PostgreSQL is left to judge those.
size_t ScanNumber(std::string_view s, size_t i) {
  constexpr size_t npos = std::string_view::npos;
  const size_t start = i;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    return i - from;
  };
  if (i >= s.size() || !IsDigit(s[i])) return npos;
  if (s[i] == '0') {
    if (++i < s.size() && IsDigit(s[i])) return npos;
  } else {
    digits();
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return npos;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t n = digits();
    if (n == 0 || n > 3) return npos;
  }
  return i - start > kMaxNumberChars ? npos : i;
}

}  // namespace

int CompareJsonNumbers(std::string_view a, std::string_view b) {
  const Decimal x = ParseDecimal(a), y = ParseDecimal(b);
  if (x.sign != y.sign) return x.sign < y.sign ? -1 : 1;
  if (x.sign == 0) return 0;
  int magnitude = 0;  // |x| against |y|
  if (x.exp != y.exp) {
    magnitude = x.exp < y.exp ? -1 : 1;
  } else {
    const size_t n = std::min(x.digits, y.digits);
    for (size_t k = 0; k < n && magnitude == 0; ++k)
      if (x.Digit(k) != y.Digit(k)) magnitude = x.Digit(k) < y.Digit(k) ? -1 : 1;
    if (magnitude == 0 && x.digits != y.digits) magnitude = x.digits < y.digits ? -1 : 1;
  }
  return x.sign * magnitude;
}

// ---- JSON ------------------------------------------------------------------------------

class JsonDocParser {
 public:
  JsonDocParser(std::string_view text, JsonDoc& doc) : s_(text), doc_(doc) {}

  absl::Status Run() {
    doc_.nodes_.reserve(s_.size() / 8 + 4);
    SkipSpace();
    uint32_t root = 0;
    if (auto st = Value(0, root); !st.ok()) return st;
    SkipSpace();
    if (i_ != s_.size()) return Fail("text after the value");
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(std::string_view what) const {
    return absl::InvalidArgumentError(Cat("JSON at byte ", i_, ": ", what));
  }
  void SkipSpace() {
    // JSON's whitespace (jsonb's parser takes the same four).
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  absl::Status Value(int depth, uint32_t& out) {
    if (depth >= kMaxDepth) return Fail("nested too deep");
    if (i_ >= s_.size()) return Fail("a value is missing");
    out = static_cast<uint32_t>(doc_.nodes_.size());
    doc_.nodes_.emplace_back();
    const char c = s_[i_];
    if (c == '{') return Container(depth, out, true);
    if (c == '[') return Container(depth, out, false);
    if (c == '"') {
      doc_.nodes_[out].kind = Kind::kString;
      std::string_view v;
      if (auto st = String(v); !st.ok()) return st;
      doc_.nodes_[out].text = v;
      return absl::OkStatus();
    }
    if (c == '-' || IsDigit(c)) return Number(out);
    if (Literal("true")) {
      doc_.nodes_[out].kind = Kind::kBool;
      doc_.nodes_[out].boolean = true;
    } else if (Literal("false")) {
      doc_.nodes_[out].kind = Kind::kBool;
    } else if (Literal("null")) {
      doc_.nodes_[out].kind = Kind::kNull;
    } else {
      return Fail("not a JSON value");
    }
    return absl::OkStatus();
  }

  absl::Status Container(int depth, uint32_t self, bool object) {
    doc_.nodes_[self].kind = object ? Kind::kObject : Kind::kArray;
    ++i_;
    SkipSpace();
    const char close = object ? '}' : ']';
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
      return absl::OkStatus();
    }
    uint32_t last = 0;
    std::vector<std::string_view> keys;
    while (true) {
      std::string_view key;
      if (object) {
        if (i_ >= s_.size() || s_[i_] != '"') return Fail("a member name is missing");
        if (auto st = String(key); !st.ok()) return st;
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != ':') return Fail("':' is missing");
        ++i_;
        SkipSpace();
        keys.push_back(key);
      }
      uint32_t child = 0;
      if (auto st = Value(depth + 1, child); !st.ok()) return st;
      doc_.nodes_[child].key = key;
      if (last == 0)
        doc_.nodes_[self].first = child;
      else
        doc_.nodes_[last].next = child;
      last = child;
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        SkipSpace();
        continue;
      }
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
        break;
      }
      return Fail("',' or the closing bracket is missing");
    }
    if (keys.size() > 1) {
      // jsonb keeps the last of duplicate keys: such a document is left to PostgreSQL.
      std::sort(keys.begin(), keys.end());
      if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) return Fail("a duplicate member name");
    }
    return absl::OkStatus();
  }

  absl::Status Number(uint32_t self) {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    const size_t end = ScanNumber(s_, i_);
    if (end == std::string_view::npos) return Fail("a malformed number, or one PostgreSQL is to judge");
    i_ = end;
    doc_.nodes_[self].kind = Kind::kNumber;
    doc_.nodes_[self].text = s_.substr(start, i_ - start);
    return absl::OkStatus();
  }

  // At the opening quote; leaves i_ after the closing one.
  absl::Status String(std::string_view& out) {
    const size_t start = ++i_;
    bool escaped = false;
    while (true) {
      if (i_ >= s_.size()) return Fail("an unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') break;
      if (c < 0x20) return Fail("a control character in a string");
      if (c == '\\') {
        escaped = true;
        i_ += 2;
        continue;
      }
      if (c >= 0x80) {
        const size_t n = Utf8SequenceLength(s_, i_);
        if (n == 0) return Fail("invalid UTF-8");
        i_ += n;
        continue;
      }
      ++i_;
    }
    if (i_ > s_.size()) return Fail("an unterminated string");
    const std::string_view raw = s_.substr(start, i_ - start);
    ++i_;
    if (!escaped) {
      out = raw;
      return absl::OkStatus();
    }
    std::string value;
    for (size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] != '\\') {
        value.push_back(raw[k]);
        continue;
      }
      if (++k >= raw.size()) return Fail("a malformed escape");
      switch (raw[k]) {
        case '"': value.push_back('"'); break;
        case '\\': value.push_back('\\'); break;
        case '/': value.push_back('/'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'n': value.push_back('\n'); break;
        case 'r': value.push_back('\r'); break;
        case 't': value.push_back('\t'); break;
        case 'u': {
          auto hex4 = [&](size_t at, uint32_t& cp) {
            if (at + 4 > raw.size()) return false;
            cp = 0;
            for (size_t h = at; h < at + 4; ++h) {
              const int v = HexValue(raw[h]);
              if (v < 0) return false;
              cp = cp * 16 + static_cast<uint32_t>(v);
            }
            return true;
          };
          uint32_t cp = 0;
          if (!hex4(k + 1, cp)) return Fail("a malformed \\u escape");
          k += 4;
          if (cp == 0) return Fail("\\u0000");  // jsonb refuses it
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("an unpaired surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (k + 2 >= raw.size() || raw[k + 1] != '\\' || raw[k + 2] != 'u' || !hex4(k + 3, low) || low < 0xDC00 ||
                low > 0xDFFF)
              return Fail("an unpaired surrogate");
            k += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, value);
          break;
        }
        default: return Fail("a malformed escape");
      }
    }
    out = *doc_.unescaped_.emplace_back(std::make_unique<std::string>(std::move(value)));
    return absl::OkStatus();
  }

  std::string_view s_;
  size_t i_ = 0;
  JsonDoc& doc_;
};

absl::StatusOr<JsonDoc> JsonDoc::Parse(std::string_view text) {
  JsonDoc doc;
  JsonDocParser p(text, doc);
  if (auto st = p.Run(); !st.ok()) return st;
  return doc;
}

// ---- paths -----------------------------------------------------------------------------

namespace {

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };
enum class Tri { kFalse, kTrue, kUnknown };

struct Pred;

struct Step {
  enum class Kind { kKey, kAnyKey, kAnyIndex, kIndex, kFilter } kind;
  std::string key;
  uint32_t index = 0;
  std::shared_ptr<Pred> filter;
};

struct Path {
  enum class Start { kRoot, kCurrent, kLiteral } start = Start::kRoot;
  std::string literal_text;  // owns what `literal` points into
  Node literal;
  std::vector<Step> steps;
};

struct Pred {
  enum class Kind { kCmp, kAnd, kOr, kNot, kExists, kIsUnknown, kStartsWith } kind;
  CmpOp op = CmpOp::kEq;
  Path lhs, rhs;  // kCmp, kStartsWith (rhs: the prefix literal), kExists (lhs)
  std::shared_ptr<Pred> a, b;
};

absl::Status Unimplemented(std::string_view what) { return absl::UnimplementedError(std::string(what)); }

class PathParser {
 public:
  explicit PathParser(std::string_view s) : s_(s) {}

  // The whole path: either a path expression (`path` set) or a predicate (`pred` set).
  absl::Status Top(std::unique_ptr<Path>& path, std::shared_ptr<Pred>& pred) {
    Space();
    if (Keyword("strict")) return Unimplemented("strict mode");
    (void)Keyword("lax");
    Item item;
    if (auto st = Or(item); !st.ok()) return st;
    Space();
    if (i_ != s_.size()) return Unimplemented("text this evaluator does not read");
    if (item.pred) {
      pred = std::move(item.pred);
    } else {
      path = std::make_unique<Path>(std::move(item.path));
    }
    return absl::OkStatus();
  }

 private:
  // What a term parsed to: a predicate, or a bare path (allowed only as the whole path).
  struct Item {
    std::shared_ptr<Pred> pred;
    Path path;
  };

  void Space() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  bool Peek(std::string_view t) {
    Space();
    return s_.substr(i_, t.size()) == t;
  }
  bool Take(std::string_view t) {
    if (!Peek(t)) return false;
    i_ += t.size();
    return true;
  }
  // A lower-case keyword standing alone.
  bool Keyword(std::string_view word) {
    Space();
    if (s_.substr(i_, word.size()) != word) return false;
    if (i_ + word.size() < s_.size() && IsIdentChar(s_[i_ + word.size()])) return false;
    i_ += word.size();
    return true;
  }

  absl::Status Or(Item& out) {
    if (auto st = And(out); !st.ok()) return st;
    while (Take("||")) {
      Item rhs;
      if (auto st = And(rhs); !st.ok()) return st;
      if (auto st = Combine(Pred::Kind::kOr, out, rhs); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  absl::Status And(Item& out) {
    if (auto st = Unary(out); !st.ok()) return st;
    while (Take("&&")) {
      Item rhs;
      if (auto st = Unary(rhs); !st.ok()) return st;
      if (auto st = Combine(Pred::Kind::kAnd, out, rhs); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  static absl::Status Combine(Pred::Kind kind, Item& out, Item& rhs) {
    if (!out.pred || !rhs.pred) return Unimplemented("a logical operator on a non-predicate");
    auto p = std::make_shared<Pred>();
    p->kind = kind;
    p->a = std::move(out.pred);
    p->b = std::move(rhs.pred);
    out.pred = std::move(p);
    return absl::OkStatus();
  }

  // '!' delimited | '(' predicate ')' [is unknown] | exists '(' path ')' | comparison | starts with | path
  absl::Status Unary(Item& out) {
    if (++depth_ > kMaxDepth) return Unimplemented("nested too deep");
    absl::Status st = UnaryBody(out);
    --depth_;
    return st;
  }
  absl::Status UnaryBody(Item& out) {
    if (Peek("!") && !Peek("!=")) {
      ++i_;
      Item inner;
      if (!Peek("(") && !PeekKeyword("exists")) return Unimplemented("'!' before something not in parentheses");
      if (auto st = Delimited(inner, /*allow_is_unknown=*/false); !st.ok()) return st;
      auto p = std::make_shared<Pred>();
      p->kind = Pred::Kind::kNot;
      p->a = std::move(inner.pred);
      out.pred = std::move(p);
      return absl::OkStatus();
    }
    if (Peek("(") || PeekKeyword("exists")) return Delimited(out, /*allow_is_unknown=*/true);
    Path lhs;
    if (auto st = Operand(lhs); !st.ok()) return st;
    CmpOp op;
    if (ComparisonOp(op)) {
      auto p = std::make_shared<Pred>();
      p->kind = Pred::Kind::kCmp;
      p->op = op;
      p->lhs = std::move(lhs);
      if (auto st = Operand(p->rhs); !st.ok()) return st;
      out.pred = std::move(p);
      return absl::OkStatus();
    }
    if (Keyword("starts")) {
      if (!Keyword("with")) return Unimplemented("'starts' without 'with'");
      auto p = std::make_shared<Pred>();
      p->kind = Pred::Kind::kStartsWith;
      p->lhs = std::move(lhs);
      Space();
      if (i_ >= s_.size() || s_[i_] != '"') return Unimplemented("starts with something other than a string");
      if (auto st = Operand(p->rhs); !st.ok()) return st;
      out.pred = std::move(p);
      return absl::OkStatus();
    }
    out.path = std::move(lhs);
    return absl::OkStatus();
  }
  bool PeekKeyword(std::string_view word) {
    const size_t at = i_;
    const bool found = Keyword(word);
    i_ = at;
    return found;
  }

  absl::Status Delimited(Item& out, bool allow_is_unknown) {
    if (Keyword("exists")) {
      if (!Take("(")) return Unimplemented("exists without '('");
      auto p = std::make_shared<Pred>();
      p->kind = Pred::Kind::kExists;
      Item inner;
      if (auto st = Or(inner); !st.ok()) return st;
      if (inner.pred) return Unimplemented("exists over a predicate");
      p->lhs = std::move(inner.path);
      if (!Take(")")) return Unimplemented("exists without ')'");
      out.pred = std::move(p);
      return absl::OkStatus();
    }
    if (!Take("(")) return Unimplemented("'(' expected");
    Item inner;
    if (auto st = Or(inner); !st.ok()) return st;
    if (!inner.pred) return Unimplemented("a parenthesized expression");
    if (!Take(")")) return Unimplemented("')' expected");
    if (allow_is_unknown && PeekKeyword("is")) {
      (void)Keyword("is");
      if (!Keyword("unknown")) return Unimplemented("'is' without 'unknown'");
      auto p = std::make_shared<Pred>();
      p->kind = Pred::Kind::kIsUnknown;
      p->a = std::move(inner.pred);
      out.pred = std::move(p);
      return absl::OkStatus();
    }
    out.pred = std::move(inner.pred);
    return absl::OkStatus();
  }

  bool ComparisonOp(CmpOp& op) {
    Space();
    const std::string_view rest = s_.substr(i_);
    auto take = [&](std::string_view t, CmpOp o) {
      if (rest.substr(0, t.size()) != t) return false;
      i_ += t.size();
      op = o;
      return true;
    };
    return take("==", CmpOp::kEq) || take("!=", CmpOp::kNe) || take("<>", CmpOp::kNe) || take("<=", CmpOp::kLe) ||
           take(">=", CmpOp::kGe) || take("<", CmpOp::kLt) || take(">", CmpOp::kGt);
  }

  // $ | @ | a literal, then accessors (none after a literal).
  absl::Status Operand(Path& p) {
    Space();
    if (i_ >= s_.size()) return Unimplemented("an operand is missing");
    const char c = s_[i_];
    if (c == '$') {
      ++i_;
      if (i_ < s_.size() && (IsIdentChar(s_[i_]) || s_[i_] == '"')) return Unimplemented("a variable");
      p.start = Path::Start::kRoot;
    } else if (c == '@') {
      if (filters_ == 0) return Unimplemented("'@' outside a filter");
      ++i_;
      p.start = Path::Start::kCurrent;
    } else {
      if (auto st = LiteralValue(p); !st.ok()) return st;
      Space();
      if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == '[' || s_[i_] == '?'))
        return Unimplemented("an accessor after a literal");
      return absl::OkStatus();
    }
    while (true) {
      Space();
      if (i_ >= s_.size()) return absl::OkStatus();
      if (s_[i_] == '.') {
        ++i_;
        if (i_ < s_.size() && s_[i_] == '*') {
          ++i_;
          if (i_ < s_.size() && s_[i_] == '*') return Unimplemented(".**");
          p.steps.push_back({.kind = Step::Kind::kAnyKey});
          continue;
        }
        Step step{.kind = Step::Kind::kKey};
        if (i_ < s_.size() && s_[i_] == '"') {
          if (auto st = StringLiteral(step.key); !st.ok()) return st;
        } else if (i_ < s_.size() && IsIdentStart(s_[i_])) {
          const size_t start = i_;
          while (i_ < s_.size() && IsIdentChar(s_[i_])) ++i_;
          // Past ASCII (or a character PostgreSQL reads into a name): its lexer decides.
          if (i_ < s_.size() && static_cast<unsigned char>(s_[i_]) >= 0x80)
            return Unimplemented("a non-ASCII member name");
          step.key = std::string(s_.substr(start, i_ - start));
          if (Peek("(")) return Unimplemented("an item method");
        } else {
          return Unimplemented("a member accessor of another form");
        }
        p.steps.push_back(std::move(step));
        continue;
      }
      if (s_[i_] == '[') {
        ++i_;
        if (Take("*")) {
          if (!Take("]")) return Unimplemented("an array accessor of another form");
          p.steps.push_back({.kind = Step::Kind::kAnyIndex});
          continue;
        }
        Space();
        const size_t start = i_;
        while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
        const std::string_view digits = s_.substr(start, i_ - start);
        if (digits.empty() || digits.size() > 6 || (digits.size() > 1 && digits[0] == '0') ||
            (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')))
          return Unimplemented("an array subscript of another form");
        uint32_t index = 0;
        for (char d : digits) index = index * 10 + static_cast<uint32_t>(d - '0');
        if (!Take("]")) return Unimplemented("an array subscript of another form");
        p.steps.push_back({.kind = Step::Kind::kIndex, .index = index});
        continue;
      }
      if (s_[i_] == '?') {
        ++i_;
        if (!Take("(")) return Unimplemented("a filter without '('");
        ++filters_;
        Item inner;
        absl::Status st = Or(inner);
        --filters_;
        if (!st.ok()) return st;
        if (!inner.pred) return Unimplemented("a filter that is not a predicate");
        if (!Take(")")) return Unimplemented("a filter without ')'");
        p.steps.push_back({.kind = Step::Kind::kFilter, .filter = std::move(inner.pred)});
        continue;
      }
      return absl::OkStatus();
    }
  }

  absl::Status LiteralValue(Path& p) {
    p.start = Path::Start::kLiteral;
    const char c = s_[i_];
    if (c == '"') {
      if (auto st = StringLiteral(p.literal_text); !st.ok()) return st;
      p.literal.kind = Kind::kString;
      return absl::OkStatus();
    }
    if (c == '-' || IsDigit(c)) {
      if (c == '-') {
        ++i_;
        Space();  // `- 1` is the negated literal too
      }
      const size_t digits = i_;
      const size_t end = ScanNumber(s_, i_);
      if (end == std::string_view::npos) return Unimplemented("an expression or a number of another form");
      i_ = end;
      if (i_ < s_.size() && (IsIdentChar(s_[i_]) || s_[i_] == '.')) return Unimplemented("a number of another form");
      p.literal_text = std::string(c == '-' ? "-" : "") + std::string(s_.substr(digits, i_ - digits));
      p.literal.kind = Kind::kNumber;
      return absl::OkStatus();
    }
    if (Keyword("true")) {
      p.literal.kind = Kind::kBool;
      p.literal.boolean = true;
    } else if (Keyword("false")) {
      p.literal.kind = Kind::kBool;
    } else if (Keyword("null")) {
      p.literal.kind = Kind::kNull;
    } else {
      return Unimplemented("an operand of another form");
    }
    return absl::OkStatus();
  }

  // At the opening quote.
  absl::Status StringLiteral(std::string& out) {
    ++i_;
    while (true) {
      if (i_ >= s_.size()) return absl::InvalidArgumentError("an unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') break;
      if (c < 0x20) return Unimplemented("a control character in a string");
      if (c >= 0x80) {
        const size_t n = Utf8SequenceLength(s_, i_);
        if (n == 0) return Unimplemented("invalid UTF-8");
        out.append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      ++i_;
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return Unimplemented("a malformed escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          for (int h = 0; h < 4; ++h) {
            if (i_ >= s_.size() || HexValue(s_[i_]) < 0) return Unimplemented("a \\u escape of another form");
            cp = cp * 16 + static_cast<uint32_t>(HexValue(s_[i_++]));
          }
          if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return Unimplemented("a \\u escape of another form");
          AppendUtf8(cp, out);
          break;
        }
        default: return Unimplemented("an escape of another form");
      }
    }
    ++i_;
    return absl::OkStatus();
  }

  std::string_view s_;
  size_t i_ = 0;
  int filters_ = 0;  // filters open around the parser
  int depth_ = 0;
};

// Points each literal node's text at the string that owns it (after the tree stopped moving).
void Anchor(Path& p);
void Anchor(Pred& p) {
  Anchor(p.lhs);
  Anchor(p.rhs);
  if (p.a) Anchor(*p.a);
  if (p.b) Anchor(*p.b);
}
void Anchor(Path& p) {
  p.literal.text = p.literal_text;
  for (auto& s : p.steps)
    if (s.filter) Anchor(*s.filter);
}

using Seq = std::vector<const Node*>;

class Evaluator {
 public:
  Evaluator(const JsonDoc& doc, size_t budget) : doc_(doc), budget_(budget) {}

  bool exhausted() const { return budget_ == 0; }

  // The items `p` selects, at most `limit` of them (`@?` and exists() need only one).
  void Eval(const Path& p, const Node* current, Seq& out, size_t limit = SIZE_MAX) const {
    const Node* start = p.start == Path::Start::kRoot      ? &doc_.node(0)
                        : p.start == Path::Start::kCurrent ? current
                                                           : &p.literal;
    Apply(p, 0, start, true, current, out, limit);
  }

  Tri Test(const Pred& p, const Node* current) const {
    switch (p.kind) {
      case Pred::Kind::kAnd: {
        const Tri a = Test(*p.a, current);
        if (a == Tri::kFalse) return Tri::kFalse;
        const Tri b = Test(*p.b, current);
        return b == Tri::kTrue ? a : b;
      }
      case Pred::Kind::kOr: {
        const Tri a = Test(*p.a, current);
        if (a == Tri::kTrue) return Tri::kTrue;
        const Tri b = Test(*p.b, current);
        return b == Tri::kFalse ? a : b;
      }
      case Pred::Kind::kNot: {
        const Tri a = Test(*p.a, current);
        return a == Tri::kUnknown ? a : (a == Tri::kTrue ? Tri::kFalse : Tri::kTrue);
      }
      case Pred::Kind::kIsUnknown: return Test(*p.a, current) == Tri::kUnknown ? Tri::kTrue : Tri::kFalse;
      case Pred::Kind::kExists: {
        Seq items;
        Eval(p.lhs, current, items, 1);
        return items.empty() ? Tri::kFalse : Tri::kTrue;
      }
      case Pred::Kind::kCmp:
      case Pred::Kind::kStartsWith: {
        // Lax mode: both sides' arrays unwrapped (a starts-with prefix is a literal); true
        // if any pair is, else unknown if any pair is, else false.
        Seq left, right;
        Unwrapped(p.lhs, current, left);
        Unwrapped(p.rhs, current, right);
        bool unknown = false;
        for (const Node* l : left)
          for (const Node* r : right) {
            if (!Spend()) return Tri::kUnknown;
            const Tri t = p.kind == Pred::Kind::kCmp ? Compare(p.op, *l, *r) : StartsWith(*l, *r);
            if (t == Tri::kTrue) return Tri::kTrue;
            if (t == Tri::kUnknown) unknown = true;
          }
        return unknown ? Tri::kUnknown : Tri::kFalse;
      }
    }
    return Tri::kUnknown;
  }

 private:
  void Unwrapped(const Path& p, const Node* current, Seq& out) const {
    Seq items;
    Eval(p, current, items);
    for (const Node* n : items) {
      if (n->kind == Kind::kArray) {
        ForEachChild(*n, [&](const Node& c) { out.push_back(&c); });
      } else if (Spend()) {
        out.push_back(n);
      }
    }
  }

  template <class F>
  void ForEachChild(const Node& n, F&& f) const {
    for (uint32_t c = n.first; c != 0 && Spend(); c = doc_.node(c).next) f(doc_.node(c));
  }

  // Spends one unit of the budget; false once it is gone (the answer is then abandoned).
  bool Spend() const {
    if (budget_ == 0) return false;
    --budget_;
    return true;
  }

  void Apply(const Path& p, size_t step, const Node* item, bool unwrap, const Node* current, Seq& out,
             size_t limit) const {
    if (out.size() >= limit || !Spend()) return;
    if (step == p.steps.size()) {
      out.push_back(item);
      return;
    }
    const Step& s = p.steps[step];
    const bool is_array = item->kind == Kind::kArray;
    switch (s.kind) {
      case Step::Kind::kKey:
        if (item->kind == Kind::kObject) {
          ForEachChild(*item, [&](const Node& c) {
            if (c.key == s.key) Apply(p, step + 1, &c, true, current, out, limit);
          });
        } else if (unwrap && is_array) {
          ForEachChild(*item, [&](const Node& c) { Apply(p, step, &c, false, current, out, limit); });
        }
        return;
      case Step::Kind::kAnyKey:
        if (item->kind == Kind::kObject) {
          ForEachChild(*item, [&](const Node& c) { Apply(p, step + 1, &c, true, current, out, limit); });
        } else if (unwrap && is_array) {
          ForEachChild(*item, [&](const Node& c) { Apply(p, step, &c, false, current, out, limit); });
        }
        return;
      case Step::Kind::kAnyIndex:
        if (is_array) {
          ForEachChild(*item, [&](const Node& c) { Apply(p, step + 1, &c, true, current, out, limit); });
        } else {
          Apply(p, step + 1, item, true, current, out, limit);  // lax: an item is an array of itself
        }
        return;
      case Step::Kind::kIndex:
        if (is_array) {
          uint32_t k = 0;
          for (uint32_t c = item->first; c != 0 && Spend(); c = doc_.node(c).next, ++k)
            if (k == s.index) {
              Apply(p, step + 1, &doc_.node(c), true, current, out, limit);
              break;
            }
        } else if (s.index == 0) {
          Apply(p, step + 1, item, true, current, out, limit);
        }
        return;
      case Step::Kind::kFilter:
        if (unwrap && is_array) {
          ForEachChild(*item, [&](const Node& c) { Apply(p, step, &c, false, current, out, limit); });
        } else if (Test(*s.filter, item) == Tri::kTrue) {
          Apply(p, step + 1, item, true, current, out, limit);
        }
        return;
    }
  }

  static Tri Compare(CmpOp op, const Node& l, const Node& r) {
    if (l.kind != r.kind) {
      if (l.kind == Kind::kNull || r.kind == Kind::kNull) return op == CmpOp::kNe ? Tri::kTrue : Tri::kFalse;
      return Tri::kUnknown;
    }
    int cmp = 0;
    switch (l.kind) {
      case Kind::kNull: cmp = 0; break;
      case Kind::kBool: cmp = l.boolean == r.boolean ? 0 : (l.boolean ? 1 : -1); break;
      case Kind::kNumber: cmp = CompareJsonNumbers(l.text, r.text); break;
      case Kind::kString: cmp = l.text.compare(r.text); break;  // bytes, as unsigned
      case Kind::kArray:
      case Kind::kObject: return Tri::kUnknown;
    }
    bool res = false;
    switch (op) {
      case CmpOp::kEq: res = cmp == 0; break;
      case CmpOp::kNe: res = cmp != 0; break;
      case CmpOp::kLt: res = cmp < 0; break;
      case CmpOp::kLe: res = cmp <= 0; break;
      case CmpOp::kGt: res = cmp > 0; break;
      case CmpOp::kGe: res = cmp >= 0; break;
    }
    return res ? Tri::kTrue : Tri::kFalse;
  }

  static Tri StartsWith(const Node& whole, const Node& prefix) {
    if (whole.kind != Kind::kString || prefix.kind != Kind::kString) return Tri::kUnknown;
    return whole.text.substr(0, prefix.text.size()) == prefix.text ? Tri::kTrue : Tri::kFalse;
  }

  const JsonDoc& doc_;
  mutable size_t budget_;
};

}  // namespace

struct JsonPath::Impl {
  std::unique_ptr<Path> path;  // a path expression, or
  std::shared_ptr<Pred> pred;  // a predicate (one boolean item: `@?` is always true)
};

JsonPath::JsonPath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonPath::~JsonPath() = default;

absl::StatusOr<std::shared_ptr<const JsonPath>> JsonPath::Compile(std::string_view text) {
  // (The gateway stores at most 2048 bytes; evaluation recurses once per accessor.)
  if (text.size() > kMaxPathBytes) return absl::UnimplementedError("a path longer than 8192 bytes");
  auto impl = std::make_unique<Impl>();
  PathParser parser(text);
  if (auto st = parser.Top(impl->path, impl->pred); !st.ok()) return st;
  if (impl->path) Anchor(*impl->path);
  if (impl->pred) Anchor(*impl->pred);
  return std::make_shared<const JsonPath>(std::move(impl));
}

absl::StatusOr<bool> JsonPath::Exists(const JsonDoc& doc, size_t budget) const {
  if (impl_->pred) return true;
  Evaluator e(doc, budget);
  Seq items;
  e.Eval(*impl_->path, nullptr, items, 1);
  if (!items.empty()) return true;  // as PostgreSQL, the first item answers
  if (e.exhausted()) return absl::ResourceExhaustedError(Cat("more than ", budget, " steps"));
  return !items.empty();
}

}  // namespace sluice::common
