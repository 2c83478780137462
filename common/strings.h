#pragma once

#include <absl/strings/string_view.h>
#include <fmt/format.h>

#include <iterator>
#include <string>
#include <string_view>

// Lets fmt (and so spdlog and Cat) print absl::string_view, e.g. Status::message().
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  auto format(absl::string_view s, fmt::format_context& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace sluice::common {

// Concatenates anything fmt can format (std::string_view included, which Debian's
// absl::StrCat does not take: that abseil has its own string_view).
template <class... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", args), ...);
  return out;
}

// `s` as a JSON string literal, quotes included (control characters escaped).
inline std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// `s` fit for one log line: at most `max` bytes (cut at a character boundary, "…" marking
// a cut), control characters as '?'. For text that may come from a hostile event.
inline std::string LogSafe(std::string_view s, size_t max) {
  size_t end = s.size();
  if (end > max) {
    end = max;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  }
  std::string out(s.substr(0, end));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return end < s.size() ? out + "…" : out;
}

// The length of the well-formed UTF-8 sequence starting at s[i], a byte >= 0x80; 0 when it
// is malformed (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF, nothing
// cut off by the end of `s`). Every UTF-8 check in Sluice goes through this one.
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong below U+0800
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong below U+10000
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace sluice::common
