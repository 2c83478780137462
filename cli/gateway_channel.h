#pragma once

#include <CLI/CLI.hpp>
#include <absl/status/statusor.h>
#include <grpcpp/channel.h>

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

}  // namespace sluice::cli
