#include "kafka/util.h"

#include <gtest/gtest.h>

namespace sluice::kafka {
namespace {

// Values from Apache Kafka's own UtilsTest (Java's Utils.murmur2).
TEST(Murmur2, MatchesJavaClient) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

// Error strings as librdkafka 2.0 reports them against a Kafka 3.9 broker.
TEST(IsAuthenticationError, RefusedCredentialsAndCertificatesButNotDisconnects) {
  EXPECT_TRUE(IsAuthenticationError(RD_KAFKA_RESP_ERR__AUTHENTICATION,
                                    "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication "
                                    "failed during authentication due to invalid credentials with SASL mechanism "
                                    "SCRAM-SHA-512 (after 312ms in state AUTH_REQ)"));
  EXPECT_TRUE(IsAuthenticationError(RD_KAFKA_RESP_ERR__TRANSPORT,
                                    "ssl://127.0.0.1:9094/bootstrap: Receive failed: error:0A000412:SSL "
                                    "routines::sslv3 alert bad certificate: SSL alert number 42"));
  EXPECT_TRUE(IsAuthenticationError(RD_KAFKA_RESP_ERR__SSL,
                                    "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL "
                                    "routines::certificate verify failed: broker certificate could not be verified"));
  EXPECT_FALSE(IsAuthenticationError(RD_KAFKA_RESP_ERR__SSL,
                                     "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: Disconnected"));
  EXPECT_FALSE(IsAuthenticationError(RD_KAFKA_RESP_ERR__TRANSPORT,
                                     "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection "
                                     "refused"));
  EXPECT_FALSE(IsAuthenticationError(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down"));
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR__AUTHENTICATION, "x").code(), absl::StatusCode::kUnauthenticated);
}

TEST(UsesAuthentication, AnythingButPlaintext) {
  EXPECT_FALSE(UsesAuthentication({}));
  EXPECT_FALSE(UsesAuthentication({{"security.protocol", "PLAINTEXT"}}));
  EXPECT_TRUE(UsesAuthentication({{"security.protocol", "ssl"}}));
  EXPECT_TRUE(UsesAuthentication({{"security.protocol", "SASL_SSL"}}));
}

// The latch the producer, the consumer and the admin client share: the first refusal is
// kept (librdkafka repeats it on every reconnect), anything else only logged.
TEST(AuthFailureLatch, KeepsTheFirstRefusalOnly) {
  auto conf = MakeConf({});
  ASSERT_TRUE(conf.ok()) << conf.status();
  char err[512];
  KafkaHandle rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));  // never connects
  ASSERT_NE(rk, nullptr) << err;
  AuthFailureLatch latch("producer", "producer p1");
  EXPECT_FALSE(latch.OnError(rk.get(), RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down"));
  EXPECT_TRUE(latch.status().ok());
  EXPECT_TRUE(latch.OnError(rk.get(), RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL authentication error: first"));
  EXPECT_FALSE(latch.OnError(rk.get(), RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL authentication error: again"));
  EXPECT_EQ(latch.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(latch.status().message(), "kafka authentication failed (producer p1): SASL authentication error: first");
}

TEST(MakeConf, ARefusedSecretIsNotEchoed) {
  auto conf = MakeConf({{"sasl.password.typo", "hunter2"}});
  ASSERT_FALSE(conf.ok());
  EXPECT_NE(std::string(conf.status().message()).find("sasl.password.typo"), std::string::npos);
  EXPECT_EQ(std::string(conf.status().message()).find("hunter2"), std::string::npos) << conf.status();
}

TEST(PartitionForKey, IsPositiveModulo) {
  // -973932308 & 0x7fffffff = 1173551340; % 12 = 0
  EXPECT_EQ(PartitionForKey("21", 12), 1173551340 % 12);
  for (const char* k : {"a", "tenant-acme", "0193a5f2-7c00-7000-8000-00000000c0de"}) {
    int32_t p = PartitionForKey(k, 12);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 12);
  }
}

TEST(KafkaStatus, ClassifiesRetryableAndPermanentErrors) {
  EXPECT_TRUE(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "x").ok());
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(KafkaStatus(RD_KAFKA_RESP_ERR__FATAL, "x").code(), absl::StatusCode::kInternal);
  EXPECT_NE(
      KafkaStatus(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "delivery of event e1").message().find("delivery of event e1"),
      std::string::npos);
}

TEST(MakeConf, NamesTheRejectedSetting) {
  auto c = MakeConf({{"acks", "all"}, {"no.such.setting", "1"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no.such.setting"), std::string::npos);
  EXPECT_TRUE(MakeConf({{"acks", "all"}}).ok());
}

}  // namespace
}  // namespace sluice::kafka
