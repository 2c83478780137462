// sluice-gateway reloads its token file and TLS files without a restart: on a change seen
// by polling, on Gateway::Reload, and on SIGHUP to the binary. A bad new file is refused
// and the old set stays in force; an open PublishStream keeps going across a reload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/file.h"
#include "contracts/test_util.h"
#include "tests/gateway_fixture.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using common::Cat;

std::string Entry(const std::string& name, const std::string& token) {
  return Cat("principals { name: \"", name, "\" token_sha256: \"", gateway::Sha256Hex(token), "\" tenants: \"*\" }\n");
}

// Replaces `path` the way a Kubernetes Secret update does: a new file renamed over it.
void Replace(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

class GatewayReload : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = fs::temp_directory_path() / Cat("sluice-reload-", std::random_device{}());
    fs::create_directories(dir_);
    tokens_ = (dir_ / "tokens.textproto").string();
  }
  void TearDown() override {
    gateway_.reset();
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
    KafkaTest::TearDown();
  }

  void StartInProcess(absl::Duration reload_interval) {
    auto tokens = gateway::TokenStore::FromFile(tokens_);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    auto limits = gateway::RateLimiter::FromJson("");
    ASSERT_TRUE(limits.ok()) << limits.status();
    gateway::GatewayConfig c{.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap_};
    c.reload_interval = reload_interval;
    auto gw = gateway::Gateway::Start(c, *std::move(tokens), *std::move(limits), *catalog_, registry_);
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = *std::move(gw);
    Connect(gateway_->port());
  }
  void Connect(int port) {
    stub_ = v1::EventGateway::NewStub(grpc::CreateChannel(Cat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", Cat("Bearer ", token));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }
  static v1::Envelope Event() {
    v1::Envelope e = contracts::testing::Golden("data.refreshed");
    e.clear_id();  // a new event each time, not a duplicate
    return e;
  }
  grpc::StatusCode Publish(const std::string& token) {
    v1::PublishRequest req;
    *req.mutable_envelope() = Event();
    v1::PublishResponse resp;
    return stub_->Publish(Ctx(token).get(), req, &resp).error_code();
  }
  // Publishes with `token` until it is answered `want` (a reload is awaited, not timed):
  // true when it was within a minute.
  bool EventuallyPublish(const std::string& token, grpc::StatusCode want) {
    for (absl::Time end = absl::Now() + absl::Minutes(1); absl::Now() < end; absl::SleepFor(absl::Milliseconds(200)))
      if (Publish(token) == want) return true;
    return false;
  }

  fs::path dir_;
  std::string tokens_;
  prometheus::Registry registry_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<v1::EventGateway::Stub> stub_;
  pid_t pid_ = -1;
};

TEST_F(GatewayReload, TokenFileChangesApplyWithoutRestartAndAnOpenStreamKeepsGoing) {
  Replace(tokens_, Entry("old", "old-token"));
  ASSERT_NO_FATAL_FAILURE(StartInProcess(absl::Seconds(1)));
  ASSERT_EQ(Publish("old-token"), grpc::OK);
  ASSERT_EQ(Publish("new-token"), grpc::UNAUTHENTICATED);

  // A stream opened with the old token, before the reload.
  auto sctx = Ctx("old-token");
  auto stream = stub_->PublishStream(sctx.get());
  auto send = [&](uint64_t seq) {
    v1::PublishStreamRequest req;
    req.set_sequence(seq);
    *req.mutable_envelope() = Event();
    ASSERT_TRUE(stream->Write(req));
    v1::PublishStreamResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.sequence(), seq);
    EXPECT_TRUE(resp.has_ack()) << resp.error().message();
  };
  ASSERT_NO_FATAL_FAILURE(send(1));

  // The old token removed, a new one added: seen by polling.
  Replace(tokens_, Entry("new", "new-token"));
  EXPECT_TRUE(EventuallyPublish("new-token", grpc::OK));
  EXPECT_EQ(Publish("old-token"), grpc::UNAUTHENTICATED);
  // The stream authenticated before the swap keeps publishing as its principal.
  ASSERT_NO_FATAL_FAILURE(send(2));

  // A corrupt file is refused; the tokens in force keep working.
  Replace(tokens_, "principals { name: \"broken\" token_sha256: ");
  absl::Status refused = gateway_->Reload();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr(tokens_));
  EXPECT_EQ(Publish("new-token"), grpc::OK);
  // Nor does the poller take it (it has seen the file by the time three intervals passed).
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Publish("new-token"), grpc::OK);
  ASSERT_NO_FATAL_FAILURE(send(3));

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GatewayReload, ReloadNowWithoutPolling) {
  Replace(tokens_, Entry("a", "token-a"));
  ASSERT_NO_FATAL_FAILURE(StartInProcess(absl::ZeroDuration()));  // only on Reload
  Replace(tokens_, Entry("a", "token-a") + Entry("b", "token-b"));
  ASSERT_EQ(Publish("token-b"), grpc::UNAUTHENTICATED);
  ASSERT_TRUE(gateway_->Reload().ok());
  EXPECT_EQ(Publish("token-b"), grpc::OK);
  EXPECT_EQ(Publish("token-a"), grpc::OK);
}

TEST_F(GatewayReload, SighupReloadsTheBinarysTokens) {
  Replace(tokens_, Entry("a", "token-a"));
  const std::string log = (dir_ / "gateway.log").string();
  pid_ = testing::Spawn(SLUICE_GATEWAY_BIN,
                        {"--listen", "127.0.0.1:0", "--tokens", tokens_, "--bootstrap", bootstrap_, "--topic-prefix",
                         prefix_, "--metrics-listen", "", "--reload-interval-s", "0"},  // SIGHUP only
                        log);
  ASSERT_GT(pid_, 0);
  int port = 0;
  for (int i = 0; i < 300 && port == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    auto text = common::ReadFile(log);
    auto at = text.ok() ? text->find("listening on port ") : std::string::npos;
    if (at != std::string::npos) port = std::atoi(text->c_str() + at + 18);
  }
  ASSERT_GT(port, 0) << common::ReadFile(log).value_or("");
  Connect(port);
  ASSERT_EQ(Publish("token-a"), grpc::OK);

  Replace(tokens_, Entry("b", "token-b"));
  ASSERT_EQ(Publish("token-b"), grpc::UNAUTHENTICATED);  // no polling
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  EXPECT_TRUE(EventuallyPublish("token-b", grpc::OK)) << common::ReadFile(log).value_or("");
  EXPECT_EQ(Publish("token-a"), grpc::UNAUTHENTICATED);

  // A corrupt file on SIGHUP: refused with a log line, the process and token-b stay.
  Replace(tokens_, "not a token file");
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  bool logged = false;
  for (int i = 0; i < 300 && !logged; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    logged = common::ReadFile(log).value_or("").find("tokens: new file refused") != std::string::npos;
  }
  EXPECT_TRUE(logged) << common::ReadFile(log).value_or("");
  EXPECT_THAT(common::ReadFile(log).value_or(""), ::testing::HasSubstr("keeping the 1 principals in force"));
  EXPECT_EQ(Publish("token-b"), grpc::OK);

  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << common::ReadFile(log).value_or("");
}

// Two CAs, each with a server certificate for localhost: the gateway starts on the first
// and is rotated to the second by replacing its files.
TEST_F(GatewayReload, TlsFilesChangeForNewConnectionsAndABadSetIsRefused) {
  const std::string d = dir_.string();
  std::string script =
      Cat("set -e; cd ", d, "; exec >openssl.log 2>&1;", "echo subjectAltName=DNS:localhost,IP:127.0.0.1 >server.ext;");
  for (const char* n : {"1", "2"})
    script += Cat("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca", n, ".key -out ca", n,
                  ".pem -days 1 -subj /CN=sluice-test-ca", n, ";",  //
                  "openssl req -newkey rsa:2048 -nodes -keyout server", n, ".key -out server", n,
                  ".csr -subj /CN=localhost;",  //
                  "openssl x509 -req -in server", n, ".csr -CA ca", n, ".pem -CAkey ca", n,
                  ".key -CAcreateserial -out server", n, ".pem -days 1 -extfile server.ext;");
  ASSERT_EQ(std::system(Cat("bash -c '", script, "'").c_str()), 0) << common::ReadFile(d + "/openssl.log").value_or("");
  auto read = [&](const char* name) { return *common::ReadFile(Cat(d, "/", name)); };
  const std::string cert = d + "/tls.crt", key = d + "/tls.key";
  Replace(cert, read("server1.pem"));
  Replace(key, read("server1.key"));
  Replace(tokens_, Entry("a", "token-a"));

  auto tokens = gateway::TokenStore::FromFile(tokens_);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  gateway::GatewayConfig c{.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap_};
  c.tls_cert = cert;
  c.tls_key = key;
  c.reload_interval = absl::Seconds(1);
  auto gw = gateway::Gateway::Start(c, *std::move(tokens), *gateway::RateLimiter::FromJson(""), *catalog_, registry_);
  ASSERT_TRUE(gw.ok()) << gw.status();
  gateway_ = *std::move(gw);
  // Each call on a channel of its own: a new connection, a new handshake.
  auto publish_trusting = [&](const std::string& ca_pem) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ca_pem;
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // no connection shared with an earlier channel
    auto stub = v1::EventGateway::NewStub(
        grpc::CreateCustomChannel(Cat("localhost:", gateway_->port()), grpc::SslCredentials(o), args));
    v1::PublishRequest req;
    *req.mutable_envelope() = Event();
    v1::PublishResponse resp;
    auto ctx = Ctx("token-a");
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->Publish(ctx.get(), req, &resp).error_code();
  };
  ASSERT_EQ(publish_trusting(read("ca1.pem")), grpc::OK);
  ASSERT_NE(publish_trusting(read("ca2.pem")), grpc::OK);

  // A connection made before the rotation, kept open across it.
  grpc::SslCredentialsOptions o1;
  o1.pem_root_certs = read("ca1.pem");
  auto kept =
      v1::EventGateway::NewStub(grpc::CreateChannel(Cat("localhost:", gateway_->port()), grpc::SslCredentials(o1)));
  auto publish_kept = [&] {
    v1::PublishRequest req;
    *req.mutable_envelope() = Event();
    v1::PublishResponse resp;
    return kept->Publish(Ctx("token-a").get(), req, &resp).error_code();
  };
  ASSERT_EQ(publish_kept(), grpc::OK);

  // A damaged key, then a key of another certificate: refused, the first set stays.
  Replace(key, "-----BEGIN PRIVATE KEY-----\ntruncated\n");
  EXPECT_THAT(std::string(gateway_->Reload().message()), ::testing::HasSubstr(key));
  Replace(key, read("server2.key"));
  EXPECT_THAT(std::string(gateway_->Reload().message()), ::testing::HasSubstr("does not belong to the certificate"));
  absl::SleepFor(absl::Seconds(3));  // several polls and gRPC refreshes: nothing of it taken
  EXPECT_EQ(publish_trusting(read("ca1.pem")), grpc::OK);

  // The second set, complete: new connections get it.
  Replace(cert, read("server2.pem"));
  bool rotated = false;
  for (absl::Time end = absl::Now() + absl::Minutes(1); absl::Now() < end && !rotated;
       absl::SleepFor(absl::Milliseconds(200)))
    rotated = publish_trusting(read("ca2.pem")) == grpc::OK;
  EXPECT_TRUE(rotated);
  EXPECT_NE(publish_trusting(read("ca1.pem")), grpc::OK);
  EXPECT_EQ(publish_kept(), grpc::OK);
}

}  // namespace
}  // namespace sluice
