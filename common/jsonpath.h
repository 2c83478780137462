#pragma once
// SQL/JSON path evaluation in memory with the answer PostgreSQL's `jsonb @? jsonpath`
// gives (lax mode), for the forms filters use most: `$`/`@`, `.key`, `."key"`, `.*`,
// `[*]`, `[n]`, filters `? (...)` with ==, !=, <>, <, <=, >, >=, &&, ||, !, exists(...),
// `starts with "..."` and `(...) is unknown`, against string, number, boolean and null
// literals. Anything else (arithmetic, item methods, like_regex, strict mode, variables,
// `last`, `.**`, ranges) does not compile here: the caller asks PostgreSQL instead.
//
// What is reproduced: lax mode's automatic unwrapping of arrays (one level) for accessors,
// filters and comparison operands; structural errors as empty results; three-valued
// comparison (items of different non-null kinds, objects and arrays compare as unknown;
// null equals only null; `!=` is true between null and anything else); numbers compared
// exactly as decimals; strings compared byte by byte (PostgreSQL's codepoint order in
// UTF-8); a predicate at the top of a path is one boolean item, so `@?` is always true.
#include <absl/status/statusor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::common {

// A JSON document as PostgreSQL's jsonb reads it, parsed once and evaluated against any
// number of paths. Holds views into the text it was parsed from: that text must outlive it.
class JsonDoc {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  struct Node {
    Kind kind = Kind::kNull;
    bool boolean = false;
    uint32_t first = 0;     // arrays and objects: the first child (0: none; node 0 is the root)
    uint32_t next = 0;      // the next sibling (0: none)
    std::string_view key;   // a member's key (unescaped)
    std::string_view text;  // a string (unescaped) or a number (as written)
  };

  // Fails where jsonb would refuse the text or read it differently than this class
  // (invalid UTF-8, \u0000, an unpaired surrogate, a duplicate key, nesting deeper than 64):
  // PostgreSQL then decides.
  static absl::StatusOr<JsonDoc> Parse(std::string_view text);

  const Node& node(uint32_t i) const { return nodes_[i]; }

  // Movable (the views stay valid), not copyable.
  JsonDoc() = default;
  JsonDoc(JsonDoc&&) noexcept = default;
  JsonDoc& operator=(JsonDoc&&) noexcept = default;
  JsonDoc(const JsonDoc&) = delete;
  JsonDoc& operator=(const JsonDoc&) = delete;

 private:
  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<std::string>> unescaped_;  // strings and keys that had escapes
  friend class JsonDocParser;
};

// Compares two JSON number texts as exact decimals: <0, 0, >0.
int CompareJsonNumbers(std::string_view a, std::string_view b);

// A compiled path. Compile returns kUnimplemented for a form this evaluator does not
// cover (the caller then asks PostgreSQL) and InvalidArgument for text that is not a
// path at all.
class JsonPath {
 public:
  static absl::StatusOr<std::shared_ptr<const JsonPath>> Compile(std::string_view text);

  // `doc @? path` (true at the first item found), or ResourceExhausted once evaluating it
  // took more than `budget` steps (an accessor applied to an item, a member or element
  // visited, an item unwrapped, a pair of items compared) without finding one: nested
  // filters over large documents can cost the product of their sizes, in memory as in
  // PostgreSQL. Paths longer than 8192 bytes and numbers of more than 100 characters are
  // left to PostgreSQL.
  static constexpr size_t kDefaultBudget = 1'000'000;
  absl::StatusOr<bool> Exists(const JsonDoc& doc, size_t budget = kDefaultBudget) const;

  struct Impl;
  explicit JsonPath(std::unique_ptr<Impl> impl);
  ~JsonPath();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::common
