#pragma once

#include <CLI/CLI.hpp>
#include <absl/status/statusor.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

namespace sluice::cli {

// How sluicectl reaches sluice-gateway: its address and, when the gateway serves TLS, the
// CA to verify it with and (mutual TLS) a client certificate and key.
struct GatewayTarget {
  std::string address;
  std::string tls_ca, tls_cert, tls_key;
};

// Adds --gateway (env SLUICE_GATEWAY) and --tls-ca/--tls-cert/--tls-key (env
// SLUICE_CLIENT_TLS_CA/_CERT/_KEY: not the gateway's own SLUICE_GATEWAY_TLS_*, which a
// sluicectl run inside a gateway pod would otherwise present as its client certificate).
void AddGatewayFlags(CLI::App& command, GatewayTarget& target);

// A channel to the gateway: plaintext without --tls-ca and --tls-cert, else TLS with the
// files read now (NotFound naming the file when one cannot be read). A certificate without
// its key, or a key without its certificate, is InvalidArgument.
absl::StatusOr<std::shared_ptr<grpc::Channel>> GatewayChannel(const GatewayTarget& target);

// A call's context: the bearer `token` (none when empty) and a deadline `timeout_s` away.
std::unique_ptr<grpc::ClientContext> CallContext(const std::string& token, int timeout_s);

// Prints "sluicectl <command>: <message> (gRPC code N)" to stderr; returns the exit code 1.
int RpcFailed(const char* command, const grpc::Status& s);

}  // namespace sluice::cli
