#include "contracts/fast_json.h"

#include <gmock/gmock.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "contracts/json.h"
#include "contracts/test_util.h"

// The fast encoder's one promise is "the same bytes as ToJson". Every test here compares
// the two on the same message: the golden payloads, thousands of randomly filled payloads of
// every type an Envelope carries, and a schema built at run time that has every field kind
// (all scalar types singular, repeated and optional, enums with aliases and unknown numbers,
// maps with every key type, oneofs, recursion, every well-known type, a proto2 group), in a
// pool that shares protobuf's generated well-known types and in one with copies of its own.

namespace sluice::contracts {
namespace {

namespace pb = google::protobuf;
using pb::FieldDescriptor;
using pb::FieldDescriptorProto;
using ::testing::HasSubstr;

// Protobuf's printer exactly as ToJson runs it, but with a type resolver kept across calls:
// for a message outside the generated pool MessageToJsonString builds a fresh resolver every
// time, which costs milliseconds with a schema as large as the one below.
absl::StatusOr<std::string> ProtobufJson(const pb::Message& m, pb::util::TypeResolver* resolver) {
  pb::util::JsonPrintOptions opts;  // ToJson's: compact, lowerCamelCase names
  opts.add_whitespace = false;
  opts.preserve_proto_field_names = false;
  std::string out;
  auto s = pb::util::BinaryToJsonString(resolver, "type.googleapis.com/" + m.GetDescriptor()->full_name(),
                                        m.SerializeAsString(), &out, opts);
  if (!s.ok()) return absl::InternalError(s.message().as_string());
  return out;
}

// AppendJson's output (after a prefix, which it must keep) against ToJson's (or, given a
// resolver, ProtobufJson's); both failing counts as agreeing, with the same status for ToJson.
::testing::AssertionResult SameAsToJson(const pb::Message& m, pb::util::TypeResolver* resolver = nullptr) {
  std::string fast = "prefix:";
  const absl::Status s = AppendJson(fast, m);
  const auto slow = resolver ? ProtobufJson(m, resolver) : ToJson(m);
  if (!slow.ok() || !s.ok()) {
    if (fast == "prefix:" && !s.ok() && !slow.ok() && (resolver || s == slow.status()))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "ToJson: " << slow.status() << "\nAppendJson: " << s << " " << fast
                                         << "\nmessage: " << m.ShortDebugString();
  }
  if (fast == "prefix:" + *slow) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\nToJson:     " << *slow << "\nAppendJson: " << fast.substr(7)
                                       << "\nmessage: " << m.ShortDebugString();
}

// The same message after a trip through the wire: maps are then written as maps, which is
// how sluice-audit gets its messages.
std::unique_ptr<pb::Message> Reparsed(const pb::Message& m) {
  std::unique_ptr<pb::Message> copy(m.New());
  EXPECT_TRUE(copy->ParseFromString(m.SerializeAsString()));
  return copy;
}

const pb::Message& Payload(const v1::Envelope& e) {
  const auto* oneof = e.GetDescriptor()->FindOneofByName("payload");
  const auto* field = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  EXPECT_NE(field, nullptr) << e.id();
  return e.GetReflection()->GetMessage(e, field);
}

// ---------------------------------------------------------------------------------------------
// Random messages.

class Filler {
 public:
  explicit Filler(uint64_t seed) : rng_(seed) {}

  void Fill(pb::Message& m, int depth) {
    const std::string& type = m.GetDescriptor()->full_name();
    if (type == "google.protobuf.Timestamp") return FillTimestamp(m);
    if (type == "google.protobuf.Duration") return FillDuration(m);
    if (type == "google.protobuf.Value") return FillValue(m, depth);
    if (type == "google.protobuf.Any") return FillAny(m);
    if (type == "google.protobuf.FieldMask") return FillFieldMask(m);
    // Struct and ListValue are filled as the plain messages they are (their Values above).
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    for (int i = 0; i < d->real_oneof_decl_count(); ++i) {
      const pb::OneofDescriptor* o = d->oneof_decl(i);  // the real ones come first
      if (Chance(0.8)) Set(m, o->field(static_cast<int>(Index(static_cast<size_t>(o->field_count())))), depth);
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->real_containing_oneof() != nullptr) continue;
      if (f->is_map()) {
        std::set<std::string> keys;
        const int n = Uniform(0, depth == 0 ? 4 : 1);
        for (int k = 0; k < n; ++k) {
          pb::Message* entry = r->AddMessage(&m, f);
          const FieldDescriptor* key = entry->GetDescriptor()->map_key();
          bool fresh = false;
          for (int attempt = 0; attempt < 20 && !fresh; ++attempt) {  // distinct keys, as a map has them
            Set(*entry, key, depth);
            fresh = keys.insert(entry->SerializePartialAsString()).second;
          }
          if (!fresh) {
            r->RemoveLast(&m, f);
            break;
          }
          Set(*entry, entry->GetDescriptor()->map_value(), depth + 1);
        }
      } else if (f->is_repeated()) {
        const int n = Uniform(0, depth == 0 ? 3 : 1);
        for (int k = 0; k < n; ++k) Add(m, f, depth);
      } else if (Chance(0.75)) {
        Set(m, f, depth);
      }
    }
  }

  std::string String() {
    // Whatever protobuf escapes or might: quotes, backslashes, controls, HTML-ish
    // characters, C1 controls, the invisible code points it escapes and their neighbours,
    // multi-byte UTF-8 and emoji.
    static const std::vector<std::string> kPieces = {
        "",
        "a",
        "tenant-acme",
        "\"",
        "\\",
        "/",
        "\x01",
        "\x1f",
        "\x7f",
        std::string(1, '\0'),
        "\b\f\n\r\t",
        "<",
        ">",
        "&",
        "=",
        "'",
        "<script>",
        "a&b=c",
        "é",
        "日本語",
        "😀",
        "👩‍💻",
        "\u00a0",
        "\u00ad",
        "\u0085",
        "\u009f",
        "\u0080",
        "\u0600",
        "\u0603",
        "\u0604",
        "\u06dd",
        "\u070f",
        "\u17b4",
        "\u17b5",
        "\u200a",
        "\u200b",
        "\u200f",
        "\u2027",
        "\u2028",
        "\u2029",
        "\u202e",
        "\u202f",
        "\u2060",
        "\u2064",
        "\u2065",
        "\u206a",
        "\u206f",
        "\ufeff",
        "\ufff8",
        "\ufff9",
        "\ufffb",
        "\ufffc",
        "\uffff",
        "\U00010000",
        "\U0001D172",
        "\U0001D173",
        "\U0001D17A",
        "\U0001D17B",
        "\U000E0001",
        "\U000E0002",
        "\U000E001F",
        "\U000E0020",
        "\U000E007F",
        "\U000E0080",
        "\U0010FFFF",
        "{\"k\":[1,2]}",
        "%s%n",
        "\\u0041",
    };
    std::string s;
    const int n = Uniform(0, 5);
    for (int i = 0; i < n; ++i) s += kPieces[Index(kPieces.size())];
    return s;
  }

  double Double() {
    static const std::vector<double> kEdge = {0.0,
                                              -0.0,
                                              1.0,
                                              -1.0,
                                              0.1,
                                              1.0 / 3,
                                              2.0 / 3,
                                              98.5,
                                              96.8,
                                              1e-300,
                                              1e300,
                                              -1e300,
                                              5e-324,
                                              DBL_MIN,
                                              DBL_MAX,
                                              -DBL_MAX,
                                              1e15,
                                              1e16,
                                              1e17,
                                              123456789012345678.0,
                                              1e21,
                                              1e22,
                                              1e-4,
                                              1e-5,
                                              0.30000000000000004,
                                              9007199254740993.0,
                                              std::numeric_limits<double>::quiet_NaN(),
                                              -std::numeric_limits<double>::quiet_NaN(),
                                              std::numeric_limits<double>::infinity(),
                                              -std::numeric_limits<double>::infinity()};
    switch (Index(4)) {
      case 0: return kEdge[Index(kEdge.size())];
      case 1: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 2: return std::bit_cast<double>(rng_());  // any bit pattern: subnormals, NaN payloads
      default: return static_cast<double>(Uniform(-1000, 1000)) / 8;
    }
  }

  float Float() {
    static const std::vector<float> kEdge = {0.0f,
                                             -0.0f,
                                             1.0f,
                                             0.1f,
                                             1.0f / 3,
                                             16777216.0f,
                                             16777217.0f,
                                             3.4e38f,
                                             FLT_MAX,
                                             FLT_MIN,
                                             1e-45f,
                                             1e-40f,
                                             1e-10f,
                                             123456.7f,
                                             1234567.0f,
                                             std::numeric_limits<float>::quiet_NaN(),
                                             std::numeric_limits<float>::infinity(),
                                             -std::numeric_limits<float>::infinity()};
    switch (Index(3)) {
      case 0: return kEdge[Index(kEdge.size())];
      case 1: return std::uniform_real_distribution<float>(-1e4f, 1e4f)(rng_);
      default: return std::bit_cast<float>(static_cast<uint32_t>(rng_()));
    }
  }

  int64_t Int64() {
    static const std::vector<int64_t> kEdge = {
        0, 1, -1, INT64_MIN, INT64_MAX, INT32_MIN, INT32_MAX, (int64_t{1} << 53) + 1, 150000, 25000};
    return Chance(0.5) ? kEdge[Index(kEdge.size())] : static_cast<int64_t>(rng_()) >> Uniform(0, 63);
  }
  uint64_t UInt64() {
    return Chance(0.3) ? std::vector<uint64_t>{0, 1, UINT64_MAX, uint64_t{1} << 63}[Index(4)]
                       : rng_() >> Uniform(0, 63);
  }
  int32_t Int32() {
    return Chance(0.3) ? std::vector<int32_t>{0, 1, -1, INT32_MIN, INT32_MAX}[Index(5)]
                       : static_cast<int32_t>(rng_()) >> Uniform(0, 31);
  }
  uint32_t UInt32() {
    return Chance(0.3) ? std::vector<uint32_t>{0, 1, UINT32_MAX}[Index(3)] : static_cast<uint32_t>(rng_());
  }

  int Enum(const pb::EnumDescriptor* e) {
    if (Chance(0.8)) return e->value(static_cast<int>(Index(static_cast<size_t>(e->value_count()))))->number();
    return std::vector<int>{7, 99, -1, INT32_MAX, INT32_MIN, 6, 1000001}[Index(7)];  // numbers it does not know
  }

  void FillTimestamp(pb::Message& m) {
    constexpr int64_t kMin = -62135596800, kMax = 253402300799;
    int64_t s = std::vector<int64_t>{kMin, kMax, 0, -1, 1764583200, 951782400}[Index(6)];
    if (Chance(0.6)) s = std::uniform_int_distribution<int64_t>(kMin, kMax)(rng_);
    SetSecondsNanos(m, s, Nanos());
  }

  void FillDuration(pb::Message& m) {
    constexpr int64_t kMax = 315576000000;
    int64_t s = std::vector<int64_t>{0, 1, -1, kMax, -kMax, 2}[Index(6)];
    if (Chance(0.5)) s = std::uniform_int_distribution<int64_t>(-kMax, kMax)(rng_);
    int32_t n = Nanos();
    if (s < 0 || (s == 0 && Chance(0.5))) n = -n;  // seconds and nanos agree in sign
    SetSecondsNanos(m, s, n);
  }

 private:
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  size_t Index(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  int32_t Nanos() {
    switch (Index(4)) {
      case 0: return 0;
      case 1: return Uniform(0, 999) * 1000000;
      case 2: return Uniform(0, 999999) * 1000;
      default: return Uniform(0, 999999999);
    }
  }

  void SetSecondsNanos(pb::Message& m, int64_t s, int32_t n) {
    const pb::Reflection* r = m.GetReflection();
    r->SetInt64(&m, m.GetDescriptor()->FindFieldByNumber(1), s);
    r->SetInt32(&m, m.GetDescriptor()->FindFieldByNumber(2), n);
  }

  void FillValue(pb::Message& m, int depth) {
    const pb::Reflection* r = m.GetReflection();
    const pb::Descriptor* d = m.GetDescriptor();
    switch (Index(depth < 3 ? 8 : 5)) {
      case 0: return;  // no kind: protobuf prints nothing, not even the key
      case 1: return r->SetEnumValue(&m, d->FindFieldByName("null_value"), Chance(0.9) ? 0 : 3);
      case 2: return r->SetDouble(&m, d->FindFieldByName("number_value"), Double());
      case 3: return r->SetString(&m, d->FindFieldByName("string_value"), String());
      case 4: return r->SetBool(&m, d->FindFieldByName("bool_value"), Chance(0.5));
      case 5:
      case 6: return Fill(*r->MutableMessage(&m, d->FindFieldByName("struct_value")), depth + 1);
      default: return Fill(*r->MutableMessage(&m, d->FindFieldByName("list_value")), depth + 1);
    }
  }

  void FillAny(pb::Message& m) {
    const pb::Reflection* r = m.GetReflection();
    const FieldDescriptor* url = m.GetDescriptor()->FindFieldByName("type_url");
    const FieldDescriptor* value = m.GetDescriptor()->FindFieldByName("value");
    switch (Index(4)) {
      case 0: return;
      case 1: return r->SetString(&m, url, "type.googleapis.com/google.protobuf.Timestamp");
      case 2: {
        pb::Timestamp t;
        FillTimestamp(t);
        r->SetString(&m, url, "type.googleapis.com/google.protobuf.Timestamp");
        return r->SetString(&m, value, t.SerializeAsString());
      }
      default: {
        pb::Duration du;
        FillDuration(du);
        r->SetString(&m, url, "type.googleapis.com/google.protobuf.Duration");
        return r->SetString(&m, value, du.SerializeAsString());
      }
    }
  }

  void FillFieldMask(pb::Message& m) {
    const FieldDescriptor* paths = m.GetDescriptor()->FindFieldByName("paths");
    const int n = Uniform(0, 3);
    for (int i = 0; i < n; ++i)
      m.GetReflection()->AddString(&m, paths, std::vector<std::string>{"foo", "foo_bar", "a.b_c", "x1_y2"}[Index(4)]);
  }

  std::string Bytes() {
    std::string s(static_cast<size_t>(Uniform(0, 12)), '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }

  // Plain messages nest two deep (the test schema is large and recursive); Struct, Value
  // and ListValue trees four.
  static bool Deeper(const pb::Message& child, int depth) {
    return depth < (child.GetDescriptor()->file()->package() == "google.protobuf" ? 4 : 2);
  }

  void Set(pb::Message& m, const FieldDescriptor* f, int depth) {
    const pb::Reflection* r = m.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: return r->SetInt32(&m, f, Int32());
      case FieldDescriptor::CPPTYPE_INT64: return r->SetInt64(&m, f, Int64());
      case FieldDescriptor::CPPTYPE_UINT32: return r->SetUInt32(&m, f, UInt32());
      case FieldDescriptor::CPPTYPE_UINT64: return r->SetUInt64(&m, f, UInt64());
      case FieldDescriptor::CPPTYPE_DOUBLE: return r->SetDouble(&m, f, Double());
      case FieldDescriptor::CPPTYPE_FLOAT: return r->SetFloat(&m, f, Float());
      case FieldDescriptor::CPPTYPE_BOOL: return r->SetBool(&m, f, Chance(0.5));
      case FieldDescriptor::CPPTYPE_ENUM: return r->SetEnumValue(&m, f, Enum(f->enum_type()));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->SetString(&m, f, f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : String());
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        pb::Message* child = r->MutableMessage(&m, f);
        if (Deeper(*child, depth)) Fill(*child, depth + 1);
        return;
      }
    }
  }

  void Add(pb::Message& m, const FieldDescriptor* f, int depth) {
    const pb::Reflection* r = m.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: return r->AddInt32(&m, f, Int32());
      case FieldDescriptor::CPPTYPE_INT64: return r->AddInt64(&m, f, Int64());
      case FieldDescriptor::CPPTYPE_UINT32: return r->AddUInt32(&m, f, UInt32());
      case FieldDescriptor::CPPTYPE_UINT64: return r->AddUInt64(&m, f, UInt64());
      case FieldDescriptor::CPPTYPE_DOUBLE: return r->AddDouble(&m, f, Double());
      case FieldDescriptor::CPPTYPE_FLOAT: return r->AddFloat(&m, f, Float());
      case FieldDescriptor::CPPTYPE_BOOL: return r->AddBool(&m, f, Chance(0.5));
      case FieldDescriptor::CPPTYPE_ENUM: return r->AddEnumValue(&m, f, Enum(f->enum_type()));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->AddString(&m, f, f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : String());
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        pb::Message* child = r->AddMessage(&m, f);
        if (Deeper(*child, depth)) Fill(*child, depth + 1);
        return;
      }
    }
  }

  std::mt19937_64 rng_;
};

// Every message type an Envelope's payload can hold.
std::vector<const pb::Descriptor*> PayloadTypes() {
  std::vector<const pb::Descriptor*> out;
  const pb::OneofDescriptor* oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  for (int i = 0; i < oneof->field_count(); ++i) out.push_back(oneof->field(i)->message_type());
  return out;
}

// ---------------------------------------------------------------------------------------------
// A schema with every field kind, built at run time.

std::string CamelCase(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    }
  }
  return out;
}

pb::FileDescriptorProto AllKindsFile() {
  pb::FileDescriptorProto file;
  file.set_name("sluice_fast_json_test.proto");
  file.set_package("fjt");
  file.set_syntax("proto3");
  for (const char* dep : {"google/protobuf/any.proto", "google/protobuf/duration.proto", "google/protobuf/empty.proto",
                          "google/protobuf/field_mask.proto", "google/protobuf/struct.proto",
                          "google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto"})
    file.add_dependency(dep);
  auto add_enum = [&](const std::string& name, std::vector<std::pair<std::string, int>> values, bool alias) {
    auto* e = file.add_enum_type();
    e->set_name(name);
    if (alias) e->mutable_options()->set_allow_alias(true);
    for (const auto& [n, v] : values) {
      auto* ev = e->add_value();
      ev->set_name(n);
      ev->set_number(v);
    }
  };
  add_enum("Color", {{"COLOR_UNSPECIFIED", 0}, {"RED", 1}, {"CRIMSON", 1}, {"BLUE", -2}, {"GREEN", 3}}, true);
  add_enum("Sparse", {{"SPARSE_UNSPECIFIED", 0}, {"SPARSE_BIG", 1000000}, {"SPARSE_NEG", -1000000}}, false);

  auto* m = file.add_message_type();
  m->set_name("AllKinds");
  m->add_oneof_decl()->set_name("choice");  // real oneofs come before the synthetic ones
  int number = 1;
  auto field = [&](const std::string& name, FieldDescriptorProto::Type type, FieldDescriptorProto::Label label,
                   const std::string& type_name = "") {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number++);
    f->set_type(type);
    f->set_label(label);
    if (!type_name.empty()) f->set_type_name(type_name);
    return f;
  };
  constexpr auto kOptional = FieldDescriptorProto::LABEL_OPTIONAL;
  constexpr auto kRepeated = FieldDescriptorProto::LABEL_REPEATED;
  const std::vector<std::pair<std::string, FieldDescriptorProto::Type>> scalars = {
      {"int32", FieldDescriptorProto::TYPE_INT32},       {"int64", FieldDescriptorProto::TYPE_INT64},
      {"uint32", FieldDescriptorProto::TYPE_UINT32},     {"uint64", FieldDescriptorProto::TYPE_UINT64},
      {"sint32", FieldDescriptorProto::TYPE_SINT32},     {"sint64", FieldDescriptorProto::TYPE_SINT64},
      {"fixed32", FieldDescriptorProto::TYPE_FIXED32},   {"fixed64", FieldDescriptorProto::TYPE_FIXED64},
      {"sfixed32", FieldDescriptorProto::TYPE_SFIXED32}, {"sfixed64", FieldDescriptorProto::TYPE_SFIXED64},
      {"double", FieldDescriptorProto::TYPE_DOUBLE},     {"float", FieldDescriptorProto::TYPE_FLOAT},
      {"bool", FieldDescriptorProto::TYPE_BOOL},         {"string", FieldDescriptorProto::TYPE_STRING},
      {"bytes", FieldDescriptorProto::TYPE_BYTES}};
  const std::vector<std::pair<std::string, std::string>> named = {{"color", ".fjt.Color"},
                                                                  {"sparse", ".fjt.Sparse"},
                                                                  {"null", ".google.protobuf.NullValue"},
                                                                  {"child", ".fjt.AllKinds"},
                                                                  {"empty", ".google.protobuf.Empty"},
                                                                  {"timestamp", ".google.protobuf.Timestamp"},
                                                                  {"duration", ".google.protobuf.Duration"},
                                                                  {"struct", ".google.protobuf.Struct"},
                                                                  {"value", ".google.protobuf.Value"},
                                                                  {"list_value", ".google.protobuf.ListValue"},
                                                                  {"any", ".google.protobuf.Any"},
                                                                  {"field_mask", ".google.protobuf.FieldMask"},
                                                                  {"double_value", ".google.protobuf.DoubleValue"},
                                                                  {"float_value", ".google.protobuf.FloatValue"},
                                                                  {"int64_value", ".google.protobuf.Int64Value"},
                                                                  {"uint64_value", ".google.protobuf.UInt64Value"},
                                                                  {"int32_value", ".google.protobuf.Int32Value"},
                                                                  {"uint32_value", ".google.protobuf.UInt32Value"},
                                                                  {"bool_value", ".google.protobuf.BoolValue"},
                                                                  {"string_value", ".google.protobuf.StringValue"},
                                                                  {"bytes_value", ".google.protobuf.BytesValue"}};
  auto named_type = [](const std::string& t) {
    const bool is_enum = t == ".fjt.Color" || t == ".fjt.Sparse" || t == ".google.protobuf.NullValue";
    return is_enum ? FieldDescriptorProto::TYPE_ENUM : FieldDescriptorProto::TYPE_MESSAGE;
  };
  for (const auto& [n, t] : scalars) {
    field("f_" + n, t, kOptional);
    field("r_" + n, t, kRepeated);
  }
  for (const auto& [n, t] : named) {
    field("f_" + n, named_type(t), kOptional, t);
    field("r_" + n, named_type(t), kRepeated, t);
  }
  field("c_string", FieldDescriptorProto::TYPE_STRING, kOptional)->set_oneof_index(0);
  field("c_int64", FieldDescriptorProto::TYPE_INT64, kOptional)->set_oneof_index(0);
  field("c_double", FieldDescriptorProto::TYPE_DOUBLE, kOptional)->set_oneof_index(0);
  field("c_color", FieldDescriptorProto::TYPE_ENUM, kOptional, ".fjt.Color")->set_oneof_index(0);
  field("c_null", FieldDescriptorProto::TYPE_ENUM, kOptional, ".google.protobuf.NullValue")->set_oneof_index(0);
  field("c_child", FieldDescriptorProto::TYPE_MESSAGE, kOptional, ".fjt.AllKinds")->set_oneof_index(0);
  field("c_value", FieldDescriptorProto::TYPE_MESSAGE, kOptional, ".google.protobuf.Value")->set_oneof_index(0);
  // proto3 optional: explicit presence, so zeros are printed.
  for (const auto& [n, t] : scalars) {
    auto* f = field("o_" + n, t, kOptional);
    f->set_proto3_optional(true);
    f->set_oneof_index(m->oneof_decl_size());
    m->add_oneof_decl()->set_name("_o_" + n);
  }
  {
    auto* f = field("o_color", FieldDescriptorProto::TYPE_ENUM, kOptional, ".fjt.Color");
    f->set_proto3_optional(true);
    f->set_oneof_index(m->oneof_decl_size());
    m->add_oneof_decl()->set_name("_o_color");
  }
  // Names whose JSON form is not obvious, and one with an explicit json_name to escape.
  field("snake_case_name", FieldDescriptorProto::TYPE_STRING, kOptional);
  field("double__underscore", FieldDescriptorProto::TYPE_INT32, kOptional);
  field("trailing_", FieldDescriptorProto::TYPE_INT32, kOptional);
  field("x1y2_3z_a", FieldDescriptorProto::TYPE_INT32, kOptional);
  field("custom", FieldDescriptorProto::TYPE_INT32, kOptional)->set_json_name("cu<st>om\"Name\\");
  // Maps: every key type (with string values), and string keys with every kind of value.
  auto map = [&](const std::string& name, FieldDescriptorProto::Type key, FieldDescriptorProto::Type value,
                 const std::string& value_type = "") {
    auto* entry = m->add_nested_type();
    entry->set_name(CamelCase(name) + "Entry");
    entry->mutable_options()->set_map_entry(true);
    auto* k = entry->add_field();
    k->set_name("key");
    k->set_number(1);
    k->set_type(key);
    k->set_label(kOptional);
    auto* v = entry->add_field();
    v->set_name("value");
    v->set_number(2);
    v->set_type(value);
    v->set_label(kOptional);
    if (!value_type.empty()) v->set_type_name(value_type);
    field(name, FieldDescriptorProto::TYPE_MESSAGE, kRepeated, ".fjt.AllKinds." + entry->name());
  };
  for (const auto& [n, t] : scalars)
    if (t != FieldDescriptorProto::TYPE_DOUBLE && t != FieldDescriptorProto::TYPE_FLOAT &&
        t != FieldDescriptorProto::TYPE_BYTES)
      map("m_" + n + "_key", t, FieldDescriptorProto::TYPE_STRING);
  for (const auto& [n, t] : scalars) map("m_" + n + "_value", FieldDescriptorProto::TYPE_STRING, t);
  for (const auto& [n, t] : named) map("m_" + n + "_value", FieldDescriptorProto::TYPE_STRING, named_type(t), t);
  return file;
}

// proto2: defaults, closed enums and a group (which the encoder leaves to protobuf).
pb::FileDescriptorProto LegacyFile() {
  pb::FileDescriptorProto file;
  file.set_name("sluice_fast_json_test_legacy.proto");
  file.set_package("fjt2");
  file.set_syntax("proto2");
  auto* e = file.add_enum_type();
  e->set_name("Closed");
  for (auto [n, v] : std::vector<std::pair<std::string, int>>{{"ONE", 1}, {"TWO", 2}}) {
    auto* ev = e->add_value();
    ev->set_name(n);
    ev->set_number(v);
  }
  auto* m = file.add_message_type();
  m->set_name("Legacy");
  auto field = [&](const std::string& name, int number, FieldDescriptorProto::Type type,
                   FieldDescriptorProto::Label label, const std::string& type_name = "") {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(label);
    if (!type_name.empty()) f->set_type_name(type_name);
    return f;
  };
  field("count", 1, FieldDescriptorProto::TYPE_INT32, FieldDescriptorProto::LABEL_OPTIONAL)->set_default_value("5");
  field("name", 2, FieldDescriptorProto::TYPE_STRING, FieldDescriptorProto::LABEL_OPTIONAL);
  field("closed", 3, FieldDescriptorProto::TYPE_ENUM, FieldDescriptorProto::LABEL_OPTIONAL, ".fjt2.Closed");
  field("ratio", 4, FieldDescriptorProto::TYPE_DOUBLE, FieldDescriptorProto::LABEL_OPTIONAL);
  field("values", 5, FieldDescriptorProto::TYPE_SINT64, FieldDescriptorProto::LABEL_REPEATED);
  auto* g = m->add_nested_type();
  g->set_name("Grp");
  auto* gf = g->add_field();
  gf->set_name("x");
  gf->set_number(7);
  gf->set_type(FieldDescriptorProto::TYPE_INT32);
  gf->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  field("grp", 6, FieldDescriptorProto::TYPE_GROUP, FieldDescriptorProto::LABEL_OPTIONAL, ".fjt2.Legacy.Grp");
  return file;
}

// Two pools with the schema: one on top of protobuf's generated pool (so well-known types are
// the generated classes, e.g. a real google::protobuf::Struct), one with copies of the
// well-known types (so every message is a DynamicMessage). Kept for the process: the encoder
// caches plans by descriptor.
struct Schema {
  pb::DescriptorPool* pool;
  pb::DynamicMessageFactory* factory;
  pb::util::TypeResolver* resolver;
  const pb::Message& Prototype(const std::string& name) const {
    const pb::Descriptor* d = pool->FindMessageTypeByName(name);
    EXPECT_NE(d, nullptr) << name;
    return *factory->GetPrototype(d);
  }
};

const Schema& OverGenerated() {
  static const Schema* schema = [] {
    auto* pool = new pb::DescriptorPool(pb::DescriptorPool::generated_pool());
    EXPECT_NE(pool->BuildFile(AllKindsFile()), nullptr);
    EXPECT_NE(pool->BuildFile(LegacyFile()), nullptr);
    auto* factory = new pb::DynamicMessageFactory(pool);
    factory->SetDelegateToGeneratedFactory(true);
    return new Schema{pool, factory, pb::util::NewTypeResolverForDescriptorPool("type.googleapis.com", pool)};
  }();
  return *schema;
}

const Schema& SelfContained() {
  static const Schema* schema = [] {
    auto* pool = new pb::DescriptorPool;
    for (const pb::Descriptor* wkt :
         {pb::Any::descriptor(), pb::Duration::descriptor(), pb::Empty::descriptor(), pb::FieldMask::descriptor(),
          pb::Struct::descriptor(), pb::Timestamp::descriptor(), pb::DoubleValue::descriptor()}) {
      pb::FileDescriptorProto copy;
      wkt->file()->CopyTo(&copy);
      EXPECT_NE(pool->BuildFile(copy), nullptr) << copy.name();
    }
    EXPECT_NE(pool->BuildFile(AllKindsFile()), nullptr);
    EXPECT_NE(pool->BuildFile(LegacyFile()), nullptr);
    return new Schema{pool, new pb::DynamicMessageFactory(pool),
                      pb::util::NewTypeResolverForDescriptorPool("type.googleapis.com", pool)};
  }();
  return *schema;
}

// ---------------------------------------------------------------------------------------------

TEST(FastJson, EveryGoldenPayloadAndEnvelope) {
  const int64_t fallbacks = AppendJsonFallbacks();
  const auto goldens = testing::Goldens();
  ASSERT_EQ(goldens.size(), 13u);
  for (const auto& e : goldens) {
    EXPECT_TRUE(SameAsToJson(Payload(e))) << e.type();
    EXPECT_TRUE(SameAsToJson(*Reparsed(Payload(e)))) << e.type();
    EXPECT_TRUE(SameAsToJson(*Reparsed(e))) << e.type();  // metadata map, oneof, Timestamp
  }
  EXPECT_EQ(AppendJsonFallbacks(), fallbacks);  // all of it by the encoder itself
}

TEST(FastJson, RandomPayloadsOfEveryType) {
  const int64_t fallbacks = AppendJsonFallbacks();
  Filler filler(20251201);
  const auto types = PayloadTypes();
  ASSERT_EQ(types.size(), 13u);
  int compared = 0;
  for (int round = 0; round < 300; ++round) {
    for (const pb::Descriptor* d : types) {
      std::unique_ptr<pb::Message> m(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
      filler.Fill(*m, 0);
      ASSERT_TRUE(SameAsToJson(*m)) << d->full_name() << " round " << round;
      ASSERT_TRUE(SameAsToJson(*Reparsed(*m))) << d->full_name() << " round " << round;
      compared += 2;
    }
  }
  EXPECT_EQ(compared, 7800);
  EXPECT_EQ(AppendJsonFallbacks(), fallbacks);
}

TEST(FastJson, RandomMessagesWithEveryFieldKind) {
  const int64_t fallbacks = AppendJsonFallbacks();
  Filler filler(7);
  for (const Schema* schema : {&OverGenerated(), &SelfContained()}) {
    for (int i = 0; i < 400; ++i) {
      std::unique_ptr<pb::Message> m(schema->Prototype("fjt.AllKinds").New());
      filler.Fill(*m, 0);
      // Reparsed: maps written as maps. As filled: a DynamicMessage's serializer keeps the
      // insertion order of a map filled through reflection, and so does the encoder.
      ASSERT_TRUE(SameAsToJson(*Reparsed(*m), schema->resolver)) << "message " << i;
      ASSERT_TRUE(SameAsToJson(*m, schema->resolver)) << "message " << i;
      if (i < 25) {
        ASSERT_TRUE(SameAsToJson(*m)) << "message " << i;  // ToJson itself, a few (slow) times
      }
    }
  }
  EXPECT_EQ(AppendJsonFallbacks(), fallbacks);  // Any and FieldMask are spliced in, not the whole message
}

TEST(FastJson, Proto2DefaultsClosedEnumsAndGroups) {
  Filler filler(11);
  for (const Schema* schema : {&OverGenerated(), &SelfContained()}) {
    const pb::Message& proto = schema->Prototype("fjt2.Legacy");
    for (int i = 0; i < 200; ++i) {
      std::unique_ptr<pb::Message> m(proto.New());
      filler.Fill(*m, 0);
      ASSERT_TRUE(SameAsToJson(*m)) << "message " << i;
    }
    std::unique_ptr<pb::Message> m(proto.New());
    const pb::Reflection* r = m->GetReflection();
    r->SetInt32(m.get(), m->GetDescriptor()->FindFieldByName("count"), 5);  // the default, but set: printed
    EXPECT_TRUE(SameAsToJson(*m));
    EXPECT_THAT(*ToJsonFast(*m), HasSubstr(R"("count":5)"));
  }
}

TEST(FastJson, EmptyMessagesAndEveryWellKnownTypeAtTheTop) {
  for (const pb::Descriptor* d : PayloadTypes())
    EXPECT_TRUE(SameAsToJson(*pb::MessageFactory::generated_factory()->GetPrototype(d)));
  Filler filler(3);
  for (const pb::Message* proto : std::initializer_list<const pb::Message*>{
           &pb::Timestamp::default_instance(), &pb::Duration::default_instance(), &pb::Struct::default_instance(),
           &pb::Value::default_instance(), &pb::ListValue::default_instance(), &pb::Any::default_instance(),
           &pb::FieldMask::default_instance(), &pb::Empty::default_instance(), &pb::DoubleValue::default_instance(),
           &pb::StringValue::default_instance(), &pb::BytesValue::default_instance()}) {
    EXPECT_TRUE(SameAsToJson(*proto)) << proto->GetTypeName();
    for (int i = 0; i < 50; ++i) {
      std::unique_ptr<pb::Message> m(proto->New());
      filler.Fill(*m, 0);
      EXPECT_TRUE(SameAsToJson(*m)) << proto->GetTypeName();
    }
  }
}

TEST(FastJson, UnknownEnumNumbersPrintAsNumbers) {
  v1::ProfileDue due;
  due.set_entity_type(static_cast<v1::EntityType>(99));
  due.set_tier(static_cast<v1::Tier>(-5));
  due.set_priority(v1::PRIORITY_HIGH);
  EXPECT_TRUE(SameAsToJson(due));
  EXPECT_EQ(*ToJsonFast(due), R"({"entityType":99,"tier":-5,"priority":"PRIORITY_HIGH"})");
  EXPECT_TRUE(SameAsToJson(*Reparsed(due)));
}

TEST(FastJson, NumbersAtTheirEdges) {
  v1::ProfileCompleted p;
  p.set_completeness(-0.0);  // not the default bit pattern, so protobuf prints it
  p.set_uniqueness(std::numeric_limits<double>::quiet_NaN());
  p.set_validity(-std::numeric_limits<double>::infinity());
  p.set_quality_score(1.0 / 3);
  p.set_row_count(INT64_MIN);
  EXPECT_TRUE(SameAsToJson(p));
  EXPECT_THAT(*ToJsonFast(p), HasSubstr(R"("completeness":-0,"uniqueness":"NaN","validity":"-Infinity",)"
                                        R"("qualityScore":0.33333333333333331,)"
                                        R"("rowCount":"-9223372036854775808")"));
  for (double d : {1e-300, 1e300, 0.1, 5e-324, DBL_MAX, 1e21, 1e-7, 123456789.125}) {
    p.set_completeness(d);
    EXPECT_TRUE(SameAsToJson(p)) << d;
  }
}

TEST(FastJson, StringsEscapedLikeProtobuf) {
  v1::ProfileFailed f;
  f.set_error_message(std::string("q\" b\\ c\x01\x1f\x7f <>&=' \xc2\x85 \xc2\xad \xe2\x80\xa8 \xf0\x9f\x98\x80 ") +
                      std::string(1, '\0') + "\xf3\xa0\x80\x81");
  EXPECT_TRUE(SameAsToJson(f));
  EXPECT_EQ(*ToJsonFast(f), R"({"errorMessage":"q\" b\\ c\u0001\u001f\u007f \u003c\u003e&=' \u0085 \u00ad \u2028 )"
                            "\xf0\x9f\x98\x80"
                            R"( \u0000\udb40\udc01"})");
}

// What only protobuf reproduces goes through it, errors included, and `out` is left alone.
TEST(FastJson, FallsBackToProtobufWhereItMust) {
  v1::DataRefreshed d;
  d.set_entity_urn("urn");
  d.mutable_completed_at()->set_seconds(253402300800);  // year 10000: protobuf fails
  EXPECT_FALSE(ToJson(d).ok());
  EXPECT_TRUE(SameAsToJson(d));
  std::string out = "kept";
  EXPECT_FALSE(AppendJson(out, d).ok());
  EXPECT_EQ(out, "kept");

  d.mutable_completed_at()->set_seconds(0);
  d.mutable_completed_at()->set_nanos(-1);
  EXPECT_TRUE(SameAsToJson(d));

  v1::ProfileCompleted p;
  p.mutable_duration()->set_seconds(-1);
  p.mutable_duration()->set_nanos(5);  // signs disagree: protobuf fails
  EXPECT_TRUE(SameAsToJson(p));
  p.mutable_duration()->set_seconds(1);
  p.mutable_duration()->set_nanos(-5);  // protobuf prints an odd fraction
  EXPECT_TRUE(SameAsToJson(p));
  p.mutable_duration()->set_seconds(315576000001);
  p.mutable_duration()->set_nanos(0);
  EXPECT_TRUE(SameAsToJson(p));

  v1::ApprovalCreated a;
  (*a.mutable_payload()->mutable_fields())["k"].mutable_struct_value();
  EXPECT_TRUE(SameAsToJson(a));
  // Unknown fields inside a well-known type.
  a.mutable_requested_at()->GetReflection()->MutableUnknownFields(a.mutable_requested_at())->AddVarint(9, 1);
  EXPECT_TRUE(SameAsToJson(a));
}

TEST(FastJson, InvalidUtf8GoesToProtobuf) {
  for (std::string bad : {"\xff", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    v1::MetadataDeprecated m;
    m.set_reason("ok " + bad);
    EXPECT_TRUE(SameAsToJson(m));  // protobuf logs that the string is not UTF-8
  }
}

TEST(FastJson, NestingDeeperThanProtobufAllowsFailsTheSame) {
  for (int depth : {10, 59, 60, 61, 63, 64, 65, 70}) {
    std::unique_ptr<pb::Message> top(OverGenerated().Prototype("fjt.AllKinds").New());
    pb::Message* m = top.get();
    const FieldDescriptor* child = m->GetDescriptor()->FindFieldByName("f_child");
    for (int i = 0; i < depth; ++i) m = m->GetReflection()->MutableMessage(m, child);
    m->GetReflection()->SetInt32(m, m->GetDescriptor()->FindFieldByName("f_int32"), 1);
    EXPECT_TRUE(SameAsToJson(*top)) << depth;
  }
}

TEST(FastJson, ThreadsShareThePlans) {
  const auto goldens = testing::Goldens();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        for (const auto& e : goldens) {
          std::string out;
          if (!AppendJson(out, Payload(e)).ok() || out != *ToJson(Payload(e))) ++mismatches;
        }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// FormatTimestamp against protobuf's own TimeUtil::ToString: the edges of its range, the
// days around leap days and century years, every precision of the nanos, random instants
// over the whole range, and values outside it (protobuf's text there too).
TEST(FormatTimestamp, SameTextAsTimeUtil) {
  using google::protobuf::util::TimeUtil;
  constexpr int64_t kMin = TimeUtil::kTimestampMinSeconds, kMax = TimeUtil::kTimestampMaxSeconds;
  std::vector<int64_t> seconds = {kMin,
                                  kMin + 1,
                                  kMin + 86399,
                                  kMin + 86400,
                                  -1,
                                  0,
                                  1,
                                  86399,
                                  86400,
                                  kMax - 1,
                                  kMax,
                                  kMin - 1,
                                  kMax + 1,
                                  std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max()};
  // Noon on days around 29 February and 1 March of leap, non-leap and century years.
  for (int64_t day : {-25508, -25507, -25449, -25448, 10956, 10957, 11016, 11017, 11382, 47540, 47541, 2932896})
    for (int64_t d = day - 1; d <= day + 1; ++d) seconds.push_back(d * 86400 + 43200);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> any_second(kMin, kMax);
  for (int i = 0; i < 20000; ++i) seconds.push_back(any_second(rng));
  std::uniform_int_distribution<int32_t> any_nanos(0, 999999999);
  int compared = 0;
  for (int64_t s : seconds) {
    const int32_t r = any_nanos(rng);
    for (int32_t nanos : {0, 1, 999999999, 1000, 1000000, 123000000, 123456000, r, r / 1000 * 1000,
                          r / 1000000 * 1000000, -1, 1000000000}) {
      google::protobuf::Timestamp t;
      t.set_seconds(s);
      t.set_nanos(nanos);
      ASSERT_EQ(FormatTimestamp(t), TimeUtil::ToString(t)) << s << "s " << nanos << "ns";
      ++compared;
    }
  }
  EXPECT_GT(compared, 240000);
  google::protobuf::Timestamp t;
  t.set_seconds(1764583200);
  t.set_nanos(2000000);
  EXPECT_EQ(FormatTimestamp(t), "2025-12-01T10:00:00.002Z");
}

}  // namespace
}  // namespace sluice::contracts
