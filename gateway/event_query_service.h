#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "gateway/auth.h"
#include "gateway/event_health.h"
#include "gateway/event_log.h"
#include "gateway/saved_views.h"
#include "gateway/stream_slots.h"
#include "kafka/producer.h"
#include "sluice/v1/event_query.grpc.pb.h"

namespace sluice::gateway {

// The gRPC face: ListEvents (needs `log`), Subscribe, Replay and GetEventHealth.
class EventQueryServiceImpl final : public v1::EventQueryService::Service {
 public:
  struct Deps {
    const TokenStore& tokens;
    const contracts::Catalog& catalog;
    const contracts::Authorizer& authz;
    std::string bootstrap_servers;
    // librdkafka settings of the Subscribe and Replay readers (security).
    std::map<std::string, std::string> kafka_client;
    EventLog* log;              // null: ListEvents is FAILED_PRECONDITION
    SavedViews* views;          // null: the saved-view calls are FAILED_PRECONDITION
    kafka::Producer& producer;  // re-publishing replays
    const EventHealth& health;
    std::string event_log_group;        // the audit sink's group: ListEvents' notice; empty: none
    absl::Duration notice_max_age;      // how old a lag measurement the notice may use
    const std::atomic<bool>& stopping;  // set at shutdown: live streams end
    StreamSlots* streams = nullptr;     // caps Subscribe and Replay per principal and in total; null: no cap
  };
  explicit EventQueryServiceImpl(Deps deps) : d_(std::move(deps)) {}

  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest*, v1::ListEventsResponse*) override;
  grpc::Status GetEvent(grpc::ServerContext*, const v1::GetEventRequest*, v1::GetEventResponse*) override;
  grpc::Status Subscribe(grpc::ServerContext*, const v1::SubscribeRequest*,
                         grpc::ServerWriter<v1::SubscribeResponse>*) override;
  grpc::Status Replay(grpc::ServerContext*, const v1::ReplayRequest*, grpc::ServerWriter<v1::ReplayResponse>*) override;
  grpc::Status GetEventHealth(grpc::ServerContext*, const v1::GetEventHealthRequest*,
                              v1::GetEventHealthResponse*) override;
  grpc::Status CreateSavedView(grpc::ServerContext*, const v1::CreateSavedViewRequest*,
                               v1::CreateSavedViewResponse*) override;
  grpc::Status ListSavedViews(grpc::ServerContext*, const v1::ListSavedViewsRequest*,
                              v1::ListSavedViewsResponse*) override;
  grpc::Status UseSavedView(grpc::ServerContext*, const v1::UseSavedViewRequest*, v1::UseSavedViewResponse*) override;
  grpc::Status DeleteSavedView(grpc::ServerContext*, const v1::DeleteSavedViewRequest*,
                               v1::DeleteSavedViewResponse*) override;

  // The calls without their transport, for a principal the caller authenticated with
  // `tokens()`: the gRPC methods above and the HTTP API (http_api.h) answer the same.
  absl::StatusOr<v1::ListEventsResponse> List(const v1::Principal& who, const v1::ListEventsRequest& req) const;
  absl::StatusOr<v1::GetEventResponse> Get(const v1::Principal& who, const v1::GetEventRequest& req) const;
  absl::StatusOr<v1::GetEventHealthResponse> Health(const v1::Principal& who) const;
  // A live feed (Subscribe) in two steps. OpenFeed checks the filter and takes one of the
  // principal's stream slots (none without caps), held by the caller for the feed's life;
  // then Feed runs it: live() once events published from now on will be seen (false:
  // stop), write() for each matching event (false: the caller went away), cancelled()
  // polled between reads.
  absl::StatusOr<std::optional<StreamSlot>> OpenFeed(const v1::Principal& who, const v1::EventFilter& filter) const;
  struct FeedCalls {
    std::function<bool()> live;
    std::function<bool(const v1::StoredEvent&)> write;
    std::function<bool()> cancelled;
  };
  absl::Status Feed(const v1::Principal& who, const v1::EventFilter& filter, const FeedCalls& calls) const;
  absl::StatusOr<v1::CreateSavedViewResponse> CreateView(const v1::Principal& who,
                                                         const v1::CreateSavedViewRequest& req) const;
  absl::StatusOr<v1::ListSavedViewsResponse> ListViews(const v1::Principal& who,
                                                       const v1::ListSavedViewsRequest& req) const;
  absl::StatusOr<v1::UseSavedViewResponse> UseView(const v1::Principal& who, const v1::UseSavedViewRequest& req) const;
  absl::StatusOr<v1::DeleteSavedViewResponse> DeleteView(const v1::Principal& who,
                                                         const v1::DeleteSavedViewRequest& req) const;
  const TokenStore& tokens() const { return d_.tokens; }
  const contracts::Catalog& catalog() const { return d_.catalog; }

 private:
  // Authenticates a unary gRPC call and answers what `core` returns for it.
  template <class Resp, class Core>
  grpc::Status Unary(grpc::ServerContext* ctx, Resp* resp, Core&& core) const;
  std::string EventLogNotice() const;  // ListEventsResponse.notice for an empty first page
  Deps d_;
};

}  // namespace sluice::gateway
