#include "cli/gateway_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdio>

#include "common/file.h"
#include "common/strings.h"

namespace sluice::cli {

void AddGatewayFlags(CLI::App& command, GatewayTarget& target) {
  if (target.address.empty()) target.address = "127.0.0.1:50051";
  command.add_option("--gateway", target.address, "Gateway address")->envname("SLUICE_GATEWAY")->capture_default_str();
  command.add_option("--tls-ca", target.tls_ca, "CA (PEM) to verify the gateway with; enables TLS")
      ->envname("SLUICE_CLIENT_TLS_CA");
  command.add_option("--tls-cert", target.tls_cert, "Client certificate (PEM) for mutual TLS")
      ->envname("SLUICE_CLIENT_TLS_CERT");
  command.add_option("--tls-key", target.tls_key, "Client private key (PEM) for mutual TLS")
      ->envname("SLUICE_CLIENT_TLS_KEY");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> GatewayChannel(const GatewayTarget& target) {
  if (target.tls_cert.empty() != target.tls_key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  if (target.tls_ca.empty() && target.tls_cert.empty())
    return grpc::CreateChannel(target.address, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  for (auto [flag, path, out] : {std::tuple{"--tls-ca", &target.tls_ca, &ssl.pem_root_certs},
                                 {"--tls-cert", &target.tls_cert, &ssl.pem_cert_chain},
                                 {"--tls-key", &target.tls_key, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    auto pem = common::ReadFile(*path);
    if (!pem.ok()) return absl::Status(pem.status().code(), common::Cat(flag, ": ", pem.status().message()));
    *out = *std::move(pem);
  }
  return grpc::CreateChannel(target.address, grpc::SslCredentials(ssl));
}

std::unique_ptr<grpc::ClientContext> CallContext(const std::string& token, int timeout_s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  return ctx;
}

int RpcFailed(const char* command, const grpc::Status& s) {
  std::fprintf(stderr, "sluicectl %s: %s (gRPC code %d)\n", command, s.error_message().c_str(),
               static_cast<int>(s.error_code()));
  return 1;
}

}  // namespace sluice::cli
