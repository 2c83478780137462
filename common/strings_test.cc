#include "common/strings.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::common {
namespace {

TEST(Utf8SequenceLength, TakesWellFormedSequencesAtTheirBoundaries) {
  for (const auto& [text, n] : std::initializer_list<std::pair<std::string, size_t>>{
           {"\xc2\x80", 2},            // U+0080, the first two-byte value
           {"\xdf\xbf", 2},            // U+07FF
           {"\xe0\xa0\x80", 3},        // U+0800
           {"\xed\x9f\xbf", 3},        // U+D7FF, just below the surrogates
           {"\xee\x80\x80", 3},        // U+E000, just above them
           {"\xef\xbf\xbf", 3},        // U+FFFF
           {"\xf0\x90\x80\x80", 4},    // U+10000
           {"\xf4\x8f\xbf\xbf", 4},    // U+10FFFF, the last value
           {"\xc3\xa9 and more", 2}})  // only the first sequence counts
    EXPECT_EQ(Utf8SequenceLength(text, 0), n) << LogSafe(text, 40);
  EXPECT_EQ(Utf8SequenceLength("ab\xe6\x97\xa5", 2), 3u);  // from the middle of a string
}

TEST(Utf8SequenceLength, RefusesEveryMalformedForm) {
  for (const std::string text : {
           "\x80",              // a lone continuation byte
           "\xc0\xaf",          // overlong (C0 and C1 never start a sequence)
           "\xc1\xbf",          //
           "\xe0\x9f\xbf",      // overlong three-byte form of U+07FF
           "\xed\xa0\x80",      // U+D800, a surrogate
           "\xed\xbf\xbf",      // U+DFFF
           "\xf0\x8f\xbf\xbf",  // overlong four-byte form of U+FFFF
           "\xf4\x90\x80\x80",  // U+110000, past the last value
           "\xf5\x80\x80\x80",  // F5..FF never start a sequence
           "\xff",              //
           "\xc3",              // cut off by the end
           "\xe6\x97",          //
           "\xf0\x90\x80",      //
           "\xc3\x28",          // a second byte that is not a continuation
           "\xe6\x97\x28",      // a third
           "\xf0\x90\x80\x28",  // a fourth
       })
    EXPECT_EQ(Utf8SequenceLength(text, 0), 0u) << LogSafe(text, 40);
}

}  // namespace
}  // namespace sluice::common
