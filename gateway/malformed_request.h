#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace sluice::gateway {

// Makes a request that does not parse as the method's message INVALID_ARGUMENT
// ("request: not a valid <method> request"), whatever the handler kind: gRPC itself
// answers INTERNAL for synchronous handlers and UNIMPLEMENTED for callback ones, which
// tells a client the wrong thing (a server fault, a missing method). Installed by
// Gateway::Start for every call. Stateless factory; thread-safe.
class MalformedRequestInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace sluice::gateway
