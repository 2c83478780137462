#include "contracts/vectors.h"

#include <gtest/gtest.h>

#include <set>

#include "common/file.h"
#include "contracts/catalog.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "contracts/validate.h"

namespace sluice::contracts {
namespace {

TEST(Vectors, OnePerTypeWithMatchingTypeField) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok()) << vectors.status();
  std::set<std::string> types;
  for (const auto& v : *vectors) {
    EXPECT_EQ(v.envelope.type(), v.type) << v.text_path;
    const Route* r = Catalog::Default().Find(v.type);
    ASSERT_NE(r, nullptr) << v.type;
    EXPECT_EQ(PayloadField(v.envelope), r->payload_field);
    types.insert(v.type);
  }
  std::set<std::string> want;
  for (const auto& r : Catalog::Default().routes()) want.insert(r.type);
  EXPECT_EQ(types, want);
}

// The text form and the committed binary form are the same envelope, byte for byte,
// both ways: encode(text) == binpb, and encode(decode(binpb)) == binpb. "Encode" is the
// deterministic encoding (map keys sorted); C++'s default encoder writes maps in hash order.
TEST(Vectors, BinaryIsByteIdenticalToTextAndReencodesIdentically) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  for (const auto& v : *vectors) {
    auto bin = common::ReadFile(v.binary_path);
    ASSERT_TRUE(bin.ok()) << v.binary_path << " missing: run sluice_vectorgen contracts/vectors";
    EXPECT_EQ(SerializeDeterministic(v.envelope), *bin) << v.type;
    v1::Envelope decoded;
    ASSERT_TRUE(decoded.ParseFromString(*bin)) << v.binary_path;
    EXPECT_EQ(SerializeDeterministic(decoded), *bin) << v.type;
    EXPECT_TRUE(Validate(decoded).ok()) << v.type << ": " << Validate(decoded);
  }
}

}  // namespace
}  // namespace sluice::contracts
