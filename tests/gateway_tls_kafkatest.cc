// sluice-gateway with TLS and mutual TLS (certificates made with the openssl CLI), and
// its Prometheus metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/file.h"
#include "contracts/test_util.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

// A throwaway CA, a server certificate for localhost and a client certificate.
class Certs {
 public:
  Certs() : dir_(fs::temp_directory_path() / common::Cat("sluice-tls-", std::random_device{}())) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    const std::string d = dir_.string();
    std::string script = common::Cat(
        "set -e; cd ", d, "; exec >openssl.log 2>&1;",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=sluice-test-ca;",
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost;",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile "
        "server.ext;",
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=sluice-client;",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1;",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 1 -subj /CN=rogue");
    ok_ = std::system(common::Cat("bash -c '", script, "'").c_str()) == 0;
  }
  ~Certs() { fs::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string Path(const char* name) const { return (dir_ / name).string(); }
  std::string Read(const char* name) const { return *common::ReadFile(Path(name)); }

 private:
  fs::path dir_;
  bool ok_ = false;
};

class GatewayTls : public testing::GatewayTest {
 protected:
  static Certs* certs_;
  static void SetUpTestSuite() { certs_ = new Certs; }
  static void TearDownTestSuite() { delete certs_; }
  GatewayTls() {
    config_overrides_ = [](gateway::GatewayConfig& c) {
      c.tls_cert = certs_->Path("server.pem");
      c.tls_key = certs_->Path("server.key");
      c.tls_client_ca = certs_->Path("ca.pem");
    };
  }
  grpc::Status PublishWith(const grpc::SslCredentialsOptions& opts) {
    auto ch = grpc::CreateChannel(common::Cat("localhost:", gateway_->port()), grpc::SslCredentials(opts));
    auto stub = v1::EventGateway::NewStub(ch);
    v1::PublishRequest req;
    *req.mutable_envelope() = contracts::testing::Golden("data.refreshed");
    req.mutable_envelope()->clear_id();
    v1::PublishResponse resp;
    auto ctx = Ctx(testing::kTokenA);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->Publish(ctx.get(), req, &resp);
  }
};
Certs* GatewayTls::certs_ = nullptr;

TEST_F(GatewayTls, MutualTlsAdmitsOnlyClientsWithACertificateFromTheCa) {
  ASSERT_TRUE(certs_->ok()) << "openssl failed";
  grpc::SslCredentialsOptions good{certs_->Read("ca.pem"), certs_->Read("client.key"), certs_->Read("client.pem")};
  grpc::Status s = PublishWith(good);
  EXPECT_TRUE(s.ok()) << s.error_message();

  grpc::SslCredentialsOptions no_cert{certs_->Read("ca.pem"), "", ""};
  EXPECT_EQ(PublishWith(no_cert).error_code(), grpc::UNAVAILABLE);
  grpc::SslCredentialsOptions rogue{certs_->Read("ca.pem"), certs_->Read("rogue.key"), certs_->Read("rogue.pem")};
  EXPECT_EQ(PublishWith(rogue).error_code(), grpc::UNAVAILABLE);

  // Plaintext clients cannot talk to a TLS port.
  auto plain = v1::EventGateway::NewStub(
      grpc::CreateChannel(common::Cat("127.0.0.1:", gateway_->port()), grpc::InsecureChannelCredentials()));
  v1::PublishRequest req;
  v1::PublishResponse resp;
  auto ctx = Ctx(testing::kTokenA);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(plain->Publish(ctx.get(), req, &resp).ok());
}

TEST_F(GatewayTls, MetricsCountEventsByTypeSourceAndStatus) {
  ASSERT_TRUE(certs_->ok());
  grpc::SslCredentialsOptions good{certs_->Read("ca.pem"), certs_->Read("client.key"), certs_->Read("client.pem")};
  ASSERT_TRUE(PublishWith(good).ok());
  ASSERT_TRUE(PublishWith(good).ok());
  std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
  EXPECT_THAT(text, ::testing::HasSubstr(
                        R"(sluice_gateway_events_total{source="etl.pipeline",status="ok",type="data.refreshed"} 2)"));
  EXPECT_THAT(text, ::testing::HasSubstr("sluice_gateway_publish_latency_seconds_count 2"));
  EXPECT_THAT(text, ::testing::HasSubstr("sluice_gateway_in_flight 0"));
}

}  // namespace
}  // namespace sluice
