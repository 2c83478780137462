#include "gateway/malformed_request.h"

#include <string>

namespace sluice::gateway {
namespace {

using grpc::experimental::InterceptionHookPoints;

// One per call. A unary or server-streaming call receives its one request before the
// handler runs; POST_RECV_MESSAGE then carries no message when it did not parse.
class MalformedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(grpc::experimental::ServerRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr)
      malformed_ = true;
    if (malformed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status sent = methods->GetSendStatus();
      // Only gRPC's own answers to an unparsable request: a call refused for another
      // reason before its request was read (the thread quota: RESOURCE_EXHAUSTED) keeps it.
      if (sent.error_code() == grpc::StatusCode::INTERNAL || sent.error_code() == grpc::StatusCode::UNIMPLEMENTED)
        methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                               std::string("request: not a valid ") + info_->method() + " request"));
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  bool malformed_ = false;
};

}  // namespace

grpc::experimental::Interceptor* MalformedRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MalformedRequestInterceptor(info);
}

}  // namespace sluice::gateway
