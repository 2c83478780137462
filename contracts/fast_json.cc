#include "contracts/fast_json.h"

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/strings/escaping.h>
#include <absl/strings/string_view.h>
#include <absl/synchronization/mutex.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "common/strings.h"
#include "contracts/json.h"

// Every rule below mirrors what protobuf 3.21's MessageToJsonString does (it serializes the
// message and renders the wire bytes with ProtoStreamObjectSource + JsonObjectWriter); the
// comments name the protobuf behaviour being reproduced. contracts/fast_json_test.cc holds
// the encoder to ToJson byte for byte over every field kind.

namespace sluice::contracts {
namespace {

namespace pb = google::protobuf;
using pb::Descriptor;
using pb::EnumDescriptor;
using pb::FieldDescriptor;
using pb::Reflection;

// Nested plain messages deeper than this go through protobuf's printer, which fails past 64.
constexpr int kMaxPlainDepth = 60;
// Timestamp range protobuf prints (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z) and
// Duration range it accepts (about 10,000 years).
constexpr int64_t kTimestampMinSeconds = -62135596800;
constexpr int64_t kTimestampMaxSeconds = 253402300799;
constexpr int64_t kDurationMaxSeconds = 315576000000;
constexpr int32_t kNanosPerSecond = 1000000000;

enum class Kind : uint8_t {
  kInt32,
  kInt64,
  kUInt32,
  kUInt64,
  kDouble,
  kFloat,
  kBool,
  kEnum,
  kString,
  kBytes,
  kMessage,
  kGroup
};

// Message types protobuf renders in a form of their own (its "type renderers").
enum class Special : uint8_t {
  kNone,
  kTimestamp,
  kDuration,
  kStruct,
  kValue,
  kListValue,
  kWrapper,   // DoubleValue ... BytesValue: the bare value, default included
  kDelegate,  // Any, FieldMask: printed by protobuf and spliced in
};

struct EnumPlan {
  bool null_value = false;  // google.protobuf.NullValue renders as null whatever the number
  int min = 0;
  std::vector<const std::string*> names;  // by number - min; nullptr where no value has it
  const EnumDescriptor* descriptor = nullptr;

  const std::string* Name(int number) const {
    const int64_t i = static_cast<int64_t>(number) - min;
    if (i >= 0 && i < static_cast<int64_t>(names.size())) return names[static_cast<size_t>(i)];
    if (!names.empty() || descriptor == nullptr) return nullptr;  // the table covers every value
    const auto* v = descriptor->FindValueByNumber(number);        // the first declared, like protobuf
    return v ? &v->name() : nullptr;
  }
};

struct MessagePlan;

struct FieldPlan {
  const FieldDescriptor* field = nullptr;
  std::string key;  // "\"jsonName\":", escaped
  Kind kind = Kind::kInt32;
  bool repeated = false;
  bool map = false;
  bool presence = false;  // explicit presence (messages, oneof members, optional): HasField decides
  const EnumPlan* enum_plan = nullptr;
  const MessagePlan* message = nullptr;  // kMessage: the field's type; maps: the entry type
};

struct MessagePlan {
  const Descriptor* descriptor = nullptr;
  Special special = Special::kNone;
  bool unsupported = false;       // a shape we do not reproduce: the whole message goes to protobuf
  std::vector<FieldPlan> fields;  // by field number, as protobuf serializes (and so prints) them
};

// ---------------------------------------------------------------------------------------------
// String escaping, as protobuf's JsonEscaping: control characters, '"', '\\', '<', '>',
// U+007F..U+009F and a fixed list of invisible or format code points become escapes
// (lower-case hex, surrogate pairs above the BMP); everything else is copied as UTF-8.

constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\' && c != '<' && c != '>';
  return t;
}();

constexpr char kHex[] = "0123456789abcdef";

void AppendU16Escape(std::string& out, uint32_t u) {
  const char esc[6] = {'\\', 'u', kHex[(u >> 12) & 0xf], kHex[(u >> 8) & 0xf], kHex[(u >> 4) & 0xf], kHex[u & 0xf]};
  out.append(esc, sizeof esc);
}

void AppendAsciiEscape(std::string& out, unsigned char c) {
  switch (c) {
    case '\b': out += "\\b"; return;
    case '\t': out += "\\t"; return;
    case '\n': out += "\\n"; return;
    case '\f': out += "\\f"; return;
    case '\r': out += "\\r"; return;
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    default: AppendU16Escape(out, c);  // other controls, '<', '>', DEL
  }
}

// Code points at or above U+00A0 that protobuf escapes "to prevent security bugs in javascript".
bool EscapedBmp(uint32_t cp) {
  switch (cp) {
    case 0x00ad:
    case 0x06dd:
    case 0x070f:
    case 0x17b4:
    case 0x17b5:
    case 0xfeff:
    case 0xfff9:
    case 0xfffa:
    case 0xfffb: return true;
    default:
      return (cp >= 0x0600 && cp <= 0x0603) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
             (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f);
  }
}

bool EscapedSupplementary(uint32_t cp) {
  return cp == 0xe0001 || (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0020 && cp <= 0xe007f);
}

// Decodes one well-formed UTF-8 sequence (no overlongs, surrogates or code points past
// U+10FFFF) at p; 0 when it is not one. Protobuf's reader is laxer, and what it makes of
// malformed input is its own business: such strings send the message to protobuf.
int DecodeUtf8(const unsigned char* p, const unsigned char* end, uint32_t& cp) {
  const size_t n =
      common::Utf8SequenceLength(std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(end - p)), 0);
  switch (n) {
    case 2: cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu); break;
    case 3: cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu); break;
    case 4: cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu); break;
    default: return 0;
  }
  return static_cast<int>(n);
}

// Appends `s` as a quoted JSON string; false (out partly written) on malformed UTF-8.
bool AppendQuoted(std::string& out, std::string_view s) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;  // start of the bytes not yet copied
  while (p < end) {
    if (kPlain[*p]) {
      ++p;
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (*p < 0x80) {
      AppendAsciiEscape(out, *p++);
    } else {
      uint32_t cp = 0;
      const int n = DecodeUtf8(p, end, cp);
      if (n == 0) return false;
      if (cp < 0xa0 || EscapedBmp(cp)) {
        AppendU16Escape(out, cp);  // C1 controls and the list above
      } else if (EscapedSupplementary(cp)) {
        AppendU16Escape(out, 0xd800 + ((cp - 0x10000) >> 10));
        AppendU16Escape(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
      } else {
        out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
      }
      p += n;
    }
    run = p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
  out += '"';
  return true;
}

// ---------------------------------------------------------------------------------------------
// Numbers, as protobuf's JsonObjectWriter: 32-bit integers bare, 64-bit ones quoted;
// doubles as SimpleDtoa (%.15g, or %.17g when that does not read back as the same value),
// floats as SimpleFtoa (%.6g, else %.9g); NaN and infinities as quoted words.

template <class Int>
void AppendInt(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

template <class Int>
void AppendQuotedInt(std::string& out, Int v) {
  char buf[26];
  buf[0] = '"';
  auto r = std::to_chars(buf + 1, buf + sizeof buf - 1, v);
  *r.ptr++ = '"';
  out.append(buf, r.ptr);
}

bool AppendNonFinite(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    return false;
  }
  return true;
}

void AppendDouble(std::string& out, double v) {
  if (AppendNonFinite(out, v)) return;
  // std::to_chars with a precision is printf's %.Ng in the C locale, without the locale.
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf - 1, v, std::chars_format::general, 15);
  double back = 0;
  const auto parsed = std::from_chars(buf, r.ptr, back);
  if (parsed.ec != std::errc() || parsed.ptr != r.ptr) {  // e.g. a subnormal: ask strtod, as protobuf does
    *r.ptr = '\0';
    back = std::strtod(buf, nullptr);
  }
  if (back != v) r = std::to_chars(buf, buf + sizeof buf - 1, v, std::chars_format::general, 17);
  out.append(buf, r.ptr);
}

void AppendFloat(std::string& out, float v) {
  if (AppendNonFinite(out, v)) return;
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf - 1, v, std::chars_format::general, 6);
  *r.ptr = '\0';
  // protobuf's safe_strtof: strtof, and a range error (a subnormal) counts as not reading back.
  const int saved_errno = errno;
  errno = 0;
  char* end = nullptr;
  const float back = std::strtof(buf, &end);
  const bool same = end == r.ptr && errno == 0 && back == v;
  errno = saved_errno;
  if (!same) r = std::to_chars(buf, buf + sizeof buf - 1, v, std::chars_format::general, 9);
  out.append(buf, r.ptr);
}

// ---------------------------------------------------------------------------------------------
// Time, as protobuf's FormatTime and RenderDuration.

void AppendDigits(std::string& out, uint64_t v, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, static_cast<size_t>(width));
}

// ".123", ".123456" or ".123456789": as few groups of three as the value needs.
void AppendNanos(std::string& out, int32_t nanos) {
  if (nanos == 0) return;
  out += '.';
  if (nanos % 1000000 == 0) {
    AppendDigits(out, static_cast<uint64_t>(nanos / 1000000), 3);
  } else if (nanos % 1000 == 0) {
    AppendDigits(out, static_cast<uint64_t>(nanos / 1000), 6);
  } else {
    AppendDigits(out, static_cast<uint64_t>(nanos), 9);
  }
}

// "YYYY-MM-DDThh:mm:ss[.fff...]Z" for seconds within [kTimestampMinSeconds, kTimestampMaxSeconds]
// and nanos within [0, kNanosPerSecond).
void AppendTimestamp(std::string& out, int64_t seconds, int32_t nanos) {
  int64_t days = seconds / 86400, secs = seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  AppendDigits(out, static_cast<uint64_t>(year), 4);
  out += '-';
  AppendDigits(out, static_cast<uint64_t>(month), 2);
  out += '-';
  AppendDigits(out, static_cast<uint64_t>(day), 2);
  out += 'T';
  AppendDigits(out, static_cast<uint64_t>(secs / 3600), 2);
  out += ':';
  AppendDigits(out, static_cast<uint64_t>(secs / 60 % 60), 2);
  out += ':';
  AppendDigits(out, static_cast<uint64_t>(secs % 60), 2);
  AppendNanos(out, nanos);
  out += 'Z';
}

// ---------------------------------------------------------------------------------------------
// Plans: what protobuf's type resolver would tell its printer, worked out once per type.

Kind KindOf(const FieldDescriptor* f) {
  switch (f->type()) {
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SFIXED32: return Kind::kInt32;
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_SFIXED64: return Kind::kInt64;
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32: return Kind::kUInt32;
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64: return Kind::kUInt64;
    case FieldDescriptor::TYPE_DOUBLE: return Kind::kDouble;
    case FieldDescriptor::TYPE_FLOAT: return Kind::kFloat;
    case FieldDescriptor::TYPE_BOOL: return Kind::kBool;
    case FieldDescriptor::TYPE_ENUM: return Kind::kEnum;
    case FieldDescriptor::TYPE_STRING: return Kind::kString;
    case FieldDescriptor::TYPE_BYTES: return Kind::kBytes;
    case FieldDescriptor::TYPE_MESSAGE: return Kind::kMessage;
    case FieldDescriptor::TYPE_GROUP: return Kind::kGroup;
  }
  return Kind::kGroup;
}

Special SpecialOf(const std::string& full_name) {
  static const auto* kByName = new absl::flat_hash_map<std::string, Special>{
      {"google.protobuf.Timestamp", Special::kTimestamp}, {"google.protobuf.Duration", Special::kDuration},
      {"google.protobuf.Struct", Special::kStruct},       {"google.protobuf.Value", Special::kValue},
      {"google.protobuf.ListValue", Special::kListValue}, {"google.protobuf.DoubleValue", Special::kWrapper},
      {"google.protobuf.FloatValue", Special::kWrapper},  {"google.protobuf.Int64Value", Special::kWrapper},
      {"google.protobuf.UInt64Value", Special::kWrapper}, {"google.protobuf.Int32Value", Special::kWrapper},
      {"google.protobuf.UInt32Value", Special::kWrapper}, {"google.protobuf.BoolValue", Special::kWrapper},
      {"google.protobuf.StringValue", Special::kWrapper}, {"google.protobuf.BytesValue", Special::kWrapper},
      {"google.protobuf.Any", Special::kDelegate},        {"google.protobuf.FieldMask", Special::kDelegate},
  };
  auto it = kByName->find(full_name);
  return it == kByName->end() ? Special::kNone : it->second;
}

// Whether a special type has the shape its renderer assumes (a look-alike in some other
// descriptor pool might not; then protobuf prints it).
bool ShapeFits(const MessagePlan& p) {
  const auto& f = p.fields;
  auto scalar = [](const FieldPlan& x, int number) {
    return x.field->number() == number && !x.repeated && x.kind != Kind::kMessage && x.kind != Kind::kGroup;
  };
  switch (p.special) {
    case Special::kNone:
    case Special::kDelegate: return true;
    case Special::kTimestamp:
    case Special::kDuration:
      return f.size() == 2 && scalar(f[0], 1) && f[0].kind == Kind::kInt64 && scalar(f[1], 2) &&
             f[1].kind == Kind::kInt32;
    case Special::kWrapper: return f.size() == 1 && scalar(f[0], 1);
    case Special::kStruct:
      return f.size() == 1 && f[0].map && f[0].message->fields.size() == 2 &&
             f[0].message->fields[0].kind == Kind::kString && f[0].message->fields[1].kind == Kind::kMessage &&
             f[0].message->fields[1].message->special == Special::kValue;
    case Special::kValue:
      for (const auto& x : f)
        if (x.repeated || x.field->containing_oneof() == nullptr || x.kind == Kind::kGroup) return false;
      return true;
    case Special::kListValue:
      return f.size() == 1 && f[0].repeated && !f[0].map && f[0].kind == Kind::kMessage &&
             f[0].message->special == Special::kValue;
  }
  return false;
}

// Plans live as long as the process (the thread-local caches point at them).
class Plans {
 public:
  const MessagePlan& For(const Descriptor* d) {
    // Each thread looks a type up under the mutex once; after that, no locking at all.
    thread_local absl::flat_hash_map<const Descriptor*, const MessagePlan*> cache;
    if (auto it = cache.find(d); it != cache.end()) return *it->second;
    const MessagePlan* plan;
    {
      absl::MutexLock lock(&mu_);
      plan = BuildLocked(d);
    }
    cache.emplace(d, plan);
    return *plan;
  }

 private:
  // Builds the plan of `d` and of every type it reaches. A plan is registered before its
  // fields are filled in, so recursive types (Struct -> Value -> Struct) terminate; none
  // escapes the mutex half-built because readers only see plans after the build returns.
  const MessagePlan* BuildLocked(const Descriptor* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [it, fresh] = messages_.try_emplace(d);
    if (!fresh) return it->second.get();
    it->second = std::make_unique<MessagePlan>();
    MessagePlan* plan = it->second.get();
    plan->descriptor = d;
    plan->special = SpecialOf(d->full_name());
    std::vector<const FieldDescriptor*> fields;
    for (int i = 0; i < d->field_count(); ++i) fields.push_back(d->field(i));
    std::sort(fields.begin(), fields.end(),
              [](const FieldDescriptor* a, const FieldDescriptor* b) { return a->number() < b->number(); });
    for (const FieldDescriptor* f : fields) {
      FieldPlan fp;
      fp.field = f;
      fp.kind = KindOf(f);
      fp.repeated = f->is_repeated();
      fp.map = f->is_map();
      fp.presence = f->has_presence();
      if (!AppendQuoted(fp.key, f->json_name())) plan->unsupported = true;
      fp.key += ':';
      if (fp.kind == Kind::kEnum) fp.enum_plan = EnumLocked(f->enum_type());
      if (fp.kind == Kind::kMessage) fp.message = BuildLocked(f->message_type());
      plan->fields.push_back(std::move(fp));
    }
    if (!ShapeFits(*plan)) plan->unsupported = true;
    return plan;
  }

  const EnumPlan* EnumLocked(const EnumDescriptor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [it, fresh] = enums_.try_emplace(e);
    if (!fresh) return it->second.get();
    auto plan = std::make_unique<EnumPlan>();
    plan->descriptor = e;
    plan->null_value = e->full_name() == "google.protobuf.NullValue";
    int min = 0, max = 0;
    for (int i = 0; i < e->value_count(); ++i) {
      min = std::min(min, e->value(i)->number());
      max = std::max(max, e->value(i)->number());
    }
    // A dense table for the usual small enums; FindValueByNumber for sparse ones.
    if (static_cast<int64_t>(max) - min < 1024) {
      plan->min = min;
      plan->names.assign(static_cast<size_t>(max - min + 1), nullptr);
      for (int i = 0; i < e->value_count(); ++i) {
        auto& slot = plan->names[static_cast<size_t>(e->value(i)->number() - min)];
        if (slot == nullptr) slot = &e->value(i)->name();  // aliases: the first declared wins
      }
    }
    it->second = std::move(plan);
    return it->second.get();
  }

  absl::Mutex mu_;
  absl::flat_hash_map<const Descriptor*, std::unique_ptr<MessagePlan>> messages_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const EnumDescriptor*, std::unique_ptr<EnumPlan>> enums_ ABSL_GUARDED_BY(mu_);
};

Plans& GlobalPlans() {
  static auto* plans = new Plans;  // never destroyed: threads may outlive static destruction
  return *plans;
}

// ---------------------------------------------------------------------------------------------
// The encoder.

enum class Res : uint8_t {
  kWrote,
  kNothing,  // a google.protobuf.Value with no kind: protobuf prints nothing, not even the key
  kFail,     // something only protobuf reproduces: print the whole message with it
};

// Where a value comes from: a singular field (map values are the entry's), or an element of
// a repeated one.
struct Singular {
  const Reflection* r;
  const pb::Message& m;
  const FieldDescriptor* f;
  int32_t Int32() const { return r->GetInt32(m, f); }
  int64_t Int64() const { return r->GetInt64(m, f); }
  uint32_t UInt32() const { return r->GetUInt32(m, f); }
  uint64_t UInt64() const { return r->GetUInt64(m, f); }
  double Double() const { return r->GetDouble(m, f); }
  float Float() const { return r->GetFloat(m, f); }
  bool Bool() const { return r->GetBool(m, f); }
  int Enum() const { return r->GetEnumValue(m, f); }
  const std::string& String(std::string* scratch) const { return r->GetStringReference(m, f, scratch); }
  const pb::Message& Message() const { return r->GetMessage(m, f); }
};

struct Element {
  const Reflection* r;
  const pb::Message& m;
  const FieldDescriptor* f;
  int i;
  int32_t Int32() const { return r->GetRepeatedInt32(m, f, i); }
  int64_t Int64() const { return r->GetRepeatedInt64(m, f, i); }
  uint32_t UInt32() const { return r->GetRepeatedUInt32(m, f, i); }
  uint64_t UInt64() const { return r->GetRepeatedUInt64(m, f, i); }
  double Double() const { return r->GetRepeatedDouble(m, f, i); }
  float Float() const { return r->GetRepeatedFloat(m, f, i); }
  bool Bool() const { return r->GetRepeatedBool(m, f, i); }
  int Enum() const { return r->GetRepeatedEnumValue(m, f, i); }
  const std::string& String(std::string* scratch) const { return r->GetRepeatedStringReference(m, f, i, scratch); }
  const pb::Message& Message() const { return r->GetRepeatedMessage(m, f, i); }
};

bool HasUnknownFields(const pb::Message& m) { return !m.GetReflection()->GetUnknownFields(m).empty(); }

// Whether an unknown field carries the number of a field the type declares (a proto2 closed
// enum keeps numbers it does not know there). Protobuf reads it back from the wire as that
// field and prints it, after the known ones; unknown fields with other numbers it skips.
bool UnknownFieldsShadowKnownOnes(const pb::Message& m) {
  const pb::UnknownFieldSet& unknown = m.GetReflection()->GetUnknownFields(m);
  for (int i = 0; i < unknown.field_count(); ++i)
    if (m.GetDescriptor()->FindFieldByNumber(unknown.field(i).number()) != nullptr) return true;
  return false;
}

class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}

  // One message value: an object, or its type's special form. `depth` counts the messages
  // around it.
  Res Message(const MessagePlan& p, const pb::Message& m, int depth) {
    if (p.unsupported) return Res::kFail;
    switch (p.special) {
      case Special::kNone:
        if (depth > kMaxPlainDepth) return Res::kFail;
        return Object(p, m, depth);
      case Special::kTimestamp: return Timestamp(p, m);
      case Special::kDuration: return Duration(p, m);
      case Special::kWrapper: {
        // The wrapped value even when it is the default (the wrapper's presence is what counts).
        if (HasUnknownFields(m)) return Res::kFail;
        const FieldPlan& f = p.fields[0];
        return Value(f, Singular{m.GetReflection(), m, f.field}, depth);
      }
      case Special::kStruct: {
        if (HasUnknownFields(m)) return Res::kFail;
        out_ += '{';
        if (Res r = MapEntries(p.fields[0], m, depth); r == Res::kFail) return r;
        out_ += '}';
        return Res::kWrote;
      }
      case Special::kValue: {
        // Whichever kind is set, bare; no kind at all prints nothing.
        if (HasUnknownFields(m)) return Res::kFail;
        const Reflection* r = m.GetReflection();
        for (const FieldPlan& f : p.fields)
          if (r->HasField(m, f.field)) return Value(f, Singular{r, m, f.field}, depth);
        return Res::kNothing;
      }
      case Special::kListValue:
        if (HasUnknownFields(m)) return Res::kFail;
        return List(p.fields[0], m, depth);
      case Special::kDelegate: {
        auto json = ToJson(m);
        if (!json.ok()) return Res::kFail;  // the whole message then fails the same way
        out_ += *json;
        return json->empty() ? Res::kNothing : Res::kWrote;
      }
    }
    return Res::kFail;
  }

 private:
  Res Object(const MessagePlan& p, const pb::Message& m, int depth) {
    const Reflection* r = m.GetReflection();
    if (UnknownFieldsShadowKnownOnes(m)) return Res::kFail;
    out_ += '{';
    bool first = true;
    for (const FieldPlan& f : p.fields) {
      const size_t mark = out_.size();
      auto key = [&] {
        if (!first) out_ += ',';
        out_ += f.key;
      };
      Res res;
      if (f.repeated) {
        // Empty repeated fields and maps are not on the wire, so not printed.
        if (r->FieldSize(m, f.field) == 0) continue;
        key();
        res = f.map ? MapObject(f, m, depth) : List(f, m, depth);
      } else if (f.presence) {
        if (!r->HasField(m, f.field)) continue;
        key();
        res = Value(f, Singular{r, m, f.field}, depth);
      } else {
        // Implicit presence: printed when not the default, as the serializer decides (it
        // compares float and double bits, so -0.0 is printed).
        switch (f.kind) {
          case Kind::kInt32: {
            const int32_t v = r->GetInt32(m, f.field);
            if (v == 0) continue;
            key();
            AppendInt(out_, v);
            break;
          }
          case Kind::kInt64: {
            const int64_t v = r->GetInt64(m, f.field);
            if (v == 0) continue;
            key();
            AppendQuotedInt(out_, v);
            break;
          }
          case Kind::kUInt32: {
            const uint32_t v = r->GetUInt32(m, f.field);
            if (v == 0) continue;
            key();
            AppendInt(out_, v);
            break;
          }
          case Kind::kUInt64: {
            const uint64_t v = r->GetUInt64(m, f.field);
            if (v == 0) continue;
            key();
            AppendQuotedInt(out_, v);
            break;
          }
          case Kind::kDouble: {
            const double v = r->GetDouble(m, f.field);
            if (std::bit_cast<uint64_t>(v) == 0) continue;
            key();
            AppendDouble(out_, v);
            break;
          }
          case Kind::kFloat: {
            const float v = r->GetFloat(m, f.field);
            if (std::bit_cast<uint32_t>(v) == 0) continue;
            key();
            AppendFloat(out_, v);
            break;
          }
          case Kind::kBool:
            if (!r->GetBool(m, f.field)) continue;
            key();
            out_ += "true";
            break;
          case Kind::kEnum: {
            const int v = r->GetEnumValue(m, f.field);
            if (v == 0) continue;
            key();
            Enum(*f.enum_plan, v);
            break;
          }
          case Kind::kString:
          case Kind::kBytes: {
            const std::string& v = r->GetStringReference(m, f.field, &scratch_);
            if (v.empty()) continue;
            key();
            if (f.kind == Kind::kBytes) {
              Bytes(v);
            } else if (!AppendQuoted(out_, v)) {
              return Res::kFail;
            }
            break;
          }
          case Kind::kMessage:  // singular messages always have presence
          case Kind::kGroup: return Res::kFail;
        }
        first = false;
        continue;
      }
      if (res == Res::kFail) return res;
      if (res == Res::kNothing) {
        out_.resize(mark);  // drop the key (and comma) of a value that printed nothing
      } else {
        first = false;
      }
    }
    out_ += '}';
    return Res::kWrote;
  }

  template <class Src>
  Res Value(const FieldPlan& f, const Src& src, int depth) {
    switch (f.kind) {
      case Kind::kInt32: AppendInt(out_, src.Int32()); return Res::kWrote;
      case Kind::kInt64: AppendQuotedInt(out_, src.Int64()); return Res::kWrote;
      case Kind::kUInt32: AppendInt(out_, src.UInt32()); return Res::kWrote;
      case Kind::kUInt64: AppendQuotedInt(out_, src.UInt64()); return Res::kWrote;
      case Kind::kDouble: AppendDouble(out_, src.Double()); return Res::kWrote;
      case Kind::kFloat: AppendFloat(out_, src.Float()); return Res::kWrote;
      case Kind::kBool: out_ += src.Bool() ? "true" : "false"; return Res::kWrote;
      case Kind::kEnum: Enum(*f.enum_plan, src.Enum()); return Res::kWrote;
      case Kind::kString: return AppendQuoted(out_, src.String(&scratch_)) ? Res::kWrote : Res::kFail;
      case Kind::kBytes: Bytes(src.String(&scratch_)); return Res::kWrote;
      case Kind::kMessage: return Message(*f.message, src.Message(), depth + 1);
      case Kind::kGroup: return Res::kFail;  // protobuf's printer mishandles groups; let it
    }
    return Res::kFail;
  }

  Res List(const FieldPlan& f, const pb::Message& m, int depth) {
    const Reflection* r = m.GetReflection();
    const int n = r->FieldSize(m, f.field);
    out_ += '[';
    bool first = true;
    for (int i = 0; i < n; ++i) {
      const size_t mark = out_.size();
      if (!first) out_ += ',';
      const Res res = Value(f, Element{r, m, f.field, i}, depth);
      if (res == Res::kFail) return res;
      if (res == Res::kNothing) {
        out_.resize(mark);
      } else {
        first = false;
      }
    }
    out_ += ']';
    return Res::kWrote;
  }

  Res MapObject(const FieldPlan& f, const pb::Message& m, int depth) {
    out_ += '{';
    if (Res r = MapEntries(f, m, depth); r == Res::kFail) return r;
    out_ += '}';
    return Res::kWrote;
  }

  // Map entries in the order protobuf's serializer writes them, which its JSON printer
  // keeps: the hash map's own iteration order, not sorted. A generated Struct is read
  // through its Map. Other maps are read through reflection's repeated view of the entries,
  // which lists them in the map's order whenever the map was last written as a map (parsed
  // from the wire, or filled through the generated map API); only a map last written through
  // reflection (e.g. by the text-format parser) keeps its insertion order there, while the
  // serializer uses the map's. Protobuf offers no public way to walk the map itself.
  Res MapEntries(const FieldPlan& f, const pb::Message& m, int depth) {
    const FieldPlan& key = f.message->fields[0];
    const FieldPlan& value = f.message->fields[1];
    bool first = true;
    auto entry = [&](auto&& append_key, auto&& append_value) {
      const size_t mark = out_.size();
      if (!first) out_ += ',';
      if (!append_key()) return Res::kFail;
      out_ += ':';
      const Res res = append_value();
      if (res == Res::kFail) return res;
      if (res == Res::kNothing) {
        out_.resize(mark);
      } else {
        first = false;
      }
      return Res::kWrote;
    };
    if (m.GetReflection() == pb::Struct::default_instance().GetReflection()) {
      for (const auto& [k, v] : static_cast<const pb::Struct&>(m).fields()) {
        // Bindings captured by name: clang 14 (the fuzz build) cannot capture them implicitly.
        const Res res = entry([&, &k = k] { return AppendQuoted(out_, k); },
                              [&, &v = v] { return Message(*value.message, v, depth + 1); });
        if (res == Res::kFail) return res;
      }
      return Res::kWrote;
    }
    const Reflection* r = m.GetReflection();
    const int n = r->FieldSize(m, f.field);
    for (int i = 0; i < n; ++i) {
      const pb::Message& e = r->GetRepeatedMessage(m, f.field, i);
      const Reflection* er = e.GetReflection();
      auto append_key = [&] {
        switch (key.kind) {  // keys are strings in JSON, whatever their type
          case Kind::kString: return AppendQuoted(out_, er->GetStringReference(e, key.field, &scratch_));
          case Kind::kInt32: AppendQuotedInt(out_, er->GetInt32(e, key.field)); return true;
          case Kind::kInt64: AppendQuotedInt(out_, er->GetInt64(e, key.field)); return true;
          case Kind::kUInt32: AppendQuotedInt(out_, er->GetUInt32(e, key.field)); return true;
          case Kind::kUInt64: AppendQuotedInt(out_, er->GetUInt64(e, key.field)); return true;
          case Kind::kBool: out_ += er->GetBool(e, key.field) ? "\"true\"" : "\"false\""; return true;
          default: return false;
        }
      };
      // The value even when it is the default: map entries always carry both on the wire.
      const Res res = entry(append_key, [&] { return Value(value, Singular{er, e, value.field}, depth); });
      if (res == Res::kFail) return res;
    }
    return Res::kWrote;
  }

  Res Timestamp(const MessagePlan& p, const pb::Message& m) {
    const Reflection* r = m.GetReflection();
    const int64_t seconds = r->GetInt64(m, p.fields[0].field);
    const int32_t nanos = r->GetInt32(m, p.fields[1].field);
    // Out of range: protobuf fails the whole message, and it shall say so itself.
    if (seconds < kTimestampMinSeconds || seconds > kTimestampMaxSeconds || nanos < 0 || nanos >= kNanosPerSecond ||
        HasUnknownFields(m))
      return Res::kFail;
    out_ += '"';
    AppendTimestamp(out_, seconds, nanos);
    out_ += '"';
    return Res::kWrote;
  }

  Res Duration(const MessagePlan& p, const pb::Message& m) {
    const Reflection* r = m.GetReflection();
    int64_t seconds = r->GetInt64(m, p.fields[0].field);
    int32_t nanos = r->GetInt32(m, p.fields[1].field);
    // Out of range or signs that disagree: protobuf fails (or, for positive seconds with
    // negative nanos, prints a garbled fraction); leave both to it.
    if (seconds < -kDurationMaxSeconds || seconds > kDurationMaxSeconds || nanos <= -kNanosPerSecond ||
        nanos >= kNanosPerSecond || (seconds < 0 && nanos > 0) || (seconds > 0 && nanos < 0) || HasUnknownFields(m))
      return Res::kFail;
    out_ += '"';
    if (seconds < 0 || nanos < 0) {
      out_ += '-';
      seconds = -seconds;
      nanos = -nanos;
    }
    AppendInt(out_, seconds);
    AppendNanos(out_, nanos);
    out_ += "s\"";
    return Res::kWrote;
  }

  void Enum(const EnumPlan& e, int v) {
    if (e.null_value) {
      out_ += "null";
    } else if (const std::string* name = e.Name(v)) {
      out_ += '"';
      out_ += *name;  // enum value names are identifiers: nothing to escape
      out_ += '"';
    } else {
      AppendInt(out_, v);  // a number this build does not know
    }
  }

  void Bytes(const std::string& v) {
    absl::Base64Escape(absl::string_view(v.data(), v.size()), &scratch_b64_);  // standard alphabet, padded
    out_ += '"';
    out_ += scratch_b64_;
    out_ += '"';
  }

  std::string& out_;
  std::string scratch_, scratch_b64_;
};

std::atomic<int64_t> fallbacks{0};

}  // namespace

absl::Status AppendJson(std::string& out, const google::protobuf::Message& msg) {
  const size_t start = out.size();
  Encoder encoder(out);
  if (encoder.Message(GlobalPlans().For(msg.GetDescriptor()), msg, 0) != Res::kFail) return absl::OkStatus();
  out.resize(start);
  fallbacks.fetch_add(1, std::memory_order_relaxed);
  auto json = ToJson(msg);
  if (!json.ok()) return json.status();
  out += *json;
  return absl::OkStatus();
}

int64_t AppendJsonFallbacks() { return fallbacks.load(std::memory_order_relaxed); }

absl::StatusOr<std::string> ToJsonFast(const google::protobuf::Message& msg) {
  std::string out;
  if (auto s = AppendJson(out, msg); !s.ok()) return s;
  return out;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  if (t.seconds() < kTimestampMinSeconds || t.seconds() > kTimestampMaxSeconds || t.nanos() < 0 ||
      t.nanos() >= kNanosPerSecond)
    return google::protobuf::util::TimeUtil::ToString(t);
  std::string out;
  out.reserve(30);
  AppendTimestamp(out, t.seconds(), t.nanos());
  return out;
}

}  // namespace sluice::contracts
