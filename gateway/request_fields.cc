#include "gateway/request_fields.h"

#include <algorithm>
#include <charconv>

#include "common/strings.h"

namespace sluice::gateway {

size_t CharCount(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

bool HasControlChar(std::string_view s, std::string_view allowed) {
  return std::any_of(s.begin(), s.end(), [&](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 || u == 0x7F) && allowed.find(c) == std::string_view::npos;
  });
}

void CheckNameAndDescription(std::string_view name, size_t max_name, std::string_view description,
                             size_t max_description, std::vector<contracts::FieldViolation>& out) {
  auto add = [&out](const char* field, std::string_view what) {
    out.push_back({field, common::Cat(field, ": ", what)});
  };
  if (name.empty() || std::all_of(name.begin(), name.end(), [](char c) { return c == ' '; }))
    add("name", "required");
  else if (CharCount(name) > max_name)
    add("name", common::Cat("longer than ", max_name, " characters"));
  else if (HasControlChar(name))
    add("name", "has a control character");
  if (CharCount(description) > max_description)
    add("description", common::Cat("longer than ", max_description, " characters"));
  else if (HasControlChar(description, "\n\t"))
    add("description", "has a control character other than newline and tab");
}

int64_t PgInt(std::string_view v) {
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

}  // namespace sluice::gateway
