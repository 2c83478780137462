#include "contracts/spellings.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "common/strings.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {
namespace {

namespace pb = google::protobuf;
using common::Cat;

// "ProfileReason" -> "PROFILE_REASON_".
std::string ValuePrefix(std::string_view type_name) {
  std::string out;
  for (size_t i = 0; i < type_name.size(); ++i) {
    const char c = type_name[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(c))) out.push_back('_');
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out + "_";
}

bool IsWellKnown(const pb::Descriptor& d) { return absl::StartsWith(d.full_name(), "google.protobuf."); }

// Every enum reachable from the envelope's fields, by short spelling.
const std::map<std::string, std::vector<std::string>>& ShortSpellings() {
  static const auto* map = [] {
    auto* out = new std::map<std::string, std::vector<std::string>>();
    std::set<const pb::Descriptor*> seen;
    std::vector<const pb::Descriptor*> todo{v1::Envelope::descriptor()};
    std::set<const pb::EnumDescriptor*> enums;
    while (!todo.empty()) {
      const pb::Descriptor* d = todo.back();
      todo.pop_back();
      if (!seen.insert(d).second || IsWellKnown(*d)) continue;
      for (int i = 0; i < d->field_count(); ++i) {
        const pb::FieldDescriptor* f = d->field(i);
        if (f->enum_type() != nullptr) enums.insert(f->enum_type());
        if (f->message_type() != nullptr) todo.push_back(f->message_type());
      }
    }
    for (const pb::EnumDescriptor* e : enums)
      for (int i = 0; i < e->value_count(); ++i) {
        const std::string s = ShortSpelling(*e->value(i));
        if (!s.empty()) (*out)[s].push_back(e->value(i)->name());
      }
    return out;
  }();
  return *map;
}

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

bool HasUnsafeNumber(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kNumberValue: return std::fabs(v.number_value()) >= kMaxExactInteger;
    case pb::Value::kStructValue:
      for (const auto& [k, x] : v.struct_value().fields())
        if (HasUnsafeNumber(x)) return true;
      return false;
    case pb::Value::kListValue:
      for (const auto& x : v.list_value().values())
        if (HasUnsafeNumber(x)) return true;
      return false;
    default: return false;
  }
}

void NormalizeEnum(const pb::EnumDescriptor& e, pb::Value& v) {
  if (v.kind_case() != pb::Value::kStringValue) return;
  if (const auto* ev = FindEnumValue(e, v.string_value())) v.set_string_value(ev->name());
}

void Normalize(const pb::Descriptor& d, pb::Struct& obj, int depth) {
  if (depth > 64) return;  // the parser refuses deeper nesting itself
  for (auto& [key, value] : *obj.mutable_fields()) {
    const pb::FieldDescriptor* f = d.FindFieldByName(key);
    for (int i = 0; f == nullptr && i < d.field_count(); ++i)
      if (d.field(i)->json_name() == key) f = d.field(i);
    if (f == nullptr || f->is_map()) continue;
    const bool list = f->is_repeated() && value.kind_case() == pb::Value::kListValue;
    if (f->enum_type() != nullptr) {
      if (list) {
        for (auto& item : *value.mutable_list_value()->mutable_values()) NormalizeEnum(*f->enum_type(), item);
      } else {
        NormalizeEnum(*f->enum_type(), value);
      }
    } else if (f->message_type() != nullptr && !IsWellKnown(*f->message_type())) {
      if (list) {
        for (auto& item : *value.mutable_list_value()->mutable_values())
          if (item.kind_case() == pb::Value::kStructValue)
            Normalize(*f->message_type(), *item.mutable_struct_value(), depth + 1);
      } else if (value.kind_case() == pb::Value::kStructValue) {
        Normalize(*f->message_type(), *value.mutable_struct_value(), depth + 1);
      }
    }
  }
}

bool PathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '@' || c == '.' || c == '*';
}

// Where the plain path ending at `end` (exclusive) in `s` starts; npos when the text
// before `end` is not one (`@`, `$`, .key, [n], [*]).
size_t PathStart(const std::string& s, size_t end) {
  size_t i = end;
  while (i > 0) {
    const char c = s[i - 1];
    if (PathChar(c)) {
      --i;
    } else if (c == ']') {
      const size_t open = s.rfind('[', i - 1);
      if (open == std::string::npos) return std::string::npos;
      for (size_t k = open + 1; k + 1 < i; ++k)
        if (!std::isdigit(static_cast<unsigned char>(s[k])) && s[k] != '*' && s[k] != ' ') return std::string::npos;
      i = open;
    } else {
      break;
    }
  }
  if (i == end || (s[i] != '@' && s[i] != '$')) return std::string::npos;
  return i;
}

}  // namespace

std::string ShortSpelling(const pb::EnumValueDescriptor& value) {
  if (value.number() == 0) return "";
  const std::string& type = value.type()->full_name();
  if (type == "sluice.v1.Tier") return Cat("tier", value.number());
  std::string name = value.name();
  const std::string prefix = ValuePrefix(value.type()->name());
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  if (type == "sluice.v1.QualityGrade") return name;  // A .. F, as mdm_profile stores them
  return absl::AsciiStrToLower(name);
}

const pb::EnumValueDescriptor* FindEnumValue(const pb::EnumDescriptor& type, std::string_view text) {
  if (const auto* v = type.FindValueByName(std::string(text))) return v;
  for (int i = 0; i < type.value_count(); ++i) {
    const std::string s = ShortSpelling(*type.value(i));
    if (!s.empty() && absl::EqualsIgnoreCase(s, std::string(text))) return type.value(i);
  }
  return nullptr;
}

absl::StatusOr<std::string> NormalizeEnumSpellings(std::string_view json, const pb::Descriptor& type) {
  pb::Value v;
  auto s = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), &v);
  if (!s.ok()) return absl::InvalidArgumentError(Cat("JSON: ", s.message().as_string()));
  if (v.kind_case() != pb::Value::kStructValue) return absl::InvalidArgumentError("JSON: not an object");
  if (HasUnsafeNumber(v)) return absl::InvalidArgumentError("JSON: a number too large to re-encode exactly");
  Normalize(type, *v.mutable_struct_value(), 0);
  std::string out;
  s = pb::util::MessageToJsonString(v, &out);
  if (!s.ok()) return absl::InvalidArgumentError(Cat("JSON: ", s.message().as_string()));
  return out;
}

std::string WidenEnumComparisons(std::string_view path) {
  const auto& spellings = ShortSpellings();
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size();) {
    if (path[i] != '"') {
      out.push_back(path[i++]);
      continue;
    }
    size_t j = i + 1;
    bool escaped = false;
    while (j < path.size() && path[j] != '"') {
      if (path[j] == '\\') {
        escaped = true;
        ++j;
      }
      ++j;
    }
    if (j >= path.size()) {  // unterminated: left for the database to refuse
      out.append(path.substr(i));
      break;
    }
    const std::string_view raw = path.substr(i, j + 1 - i);
    const std::string literal(path.substr(i + 1, j - i - 1));
    i = j + 1;
    auto it = escaped ? spellings.end() : spellings.find(literal);
    // The operator before the literal: == (widened with ||), != or <> (narrowed with &&).
    size_t k = out.size();
    while (k > 0 && out[k - 1] == ' ') --k;
    std::string_view op;  // "" when the literal is not compared this way
    if (it != spellings.end() && k >= 2) {
      const std::string_view two = std::string_view(out).substr(k - 2, 2);
      const char before = k >= 3 ? out[k - 3] : ' ';
      const bool lone = before != '=' && before != '!' && before != '<' && before != '>';
      if (lone && two == "==") op = "==";
      if (lone && two == "!=") op = "!=";
      if (lone && two == "<>") op = "<>";
    }
    size_t lhs_end = k >= 2 ? k - 2 : 0;
    while (!op.empty() && lhs_end > 0 && out[lhs_end - 1] == ' ') --lhs_end;
    size_t lhs_start = op.empty() ? std::string::npos : PathStart(out, lhs_end);
    if (lhs_start != std::string::npos) {
      // Not when the path is the right operand of arithmetic or a unary sign
      // (`@.a - @.b == "x"`): the comparison's left side is more than the path.
      size_t b = lhs_start;
      while (b > 0 && out[b - 1] == ' ') --b;
      if (b > 0 && std::string_view("+-*/%").find(out[b - 1]) != std::string_view::npos) lhs_start = std::string::npos;
    }
    if (lhs_start == std::string::npos) {
      out.append(raw);
      continue;
    }
    const std::string lhs = out.substr(lhs_start, lhs_end - lhs_start);
    const bool equal = op == "==";
    std::string widened = Cat("(", lhs, " ", op, " ", raw);
    for (const auto& name : it->second) widened += Cat(equal ? " || " : " && ", lhs, " ", op, " \"", name, "\"");
    widened += ")";
    out.resize(lhs_start);
    out += widened;
  }
  return out;
}

}  // namespace sluice::contracts
