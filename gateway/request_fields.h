#pragma once

// Checks of the free-text fields callers name things with (saved views, triggers), and
// reading integer columns back. Pure functions.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "contracts/validate.h"

namespace sluice::gateway {

// Code points of valid UTF-8 text (protobuf has checked it is valid).
size_t CharCount(std::string_view s);
// Whether `s` has a control character (below 0x20, or DEL) other than those in `allowed`.
bool HasControlChar(std::string_view s, std::string_view allowed = "");

// A name (required, not only spaces, at most `max_name` characters, no control
// characters) and a description (at most `max_description`; newline and tab allowed):
// each violation appended to `out` as "name" / "description".
void CheckNameAndDescription(std::string_view name, size_t max_name, std::string_view description,
                             size_t max_description, std::vector<contracts::FieldViolation>& out);

// A column value PostgreSQL returned as an integer (0 for anything else).
int64_t PgInt(std::string_view v);

}  // namespace sluice::gateway
