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
      if (!sent.ok() && sent.error_code() != grpc::StatusCode::INVALID_ARGUMENT)
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
