#include "consumers/triggers/publish.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/publish_template.h"

namespace sluice::triggers {

absl::StatusOr<std::string> PublishBody(const v1::Envelope& e) { return contracts::ToJson(e); }

WebhookResult PublishDerived(kafka::Producer& producer, const contracts::Catalog& catalog, const ClaimedDelivery& d,
                             absl::Duration wait) {
  const absl::Time t0 = absl::Now();
  WebhookResult out;
  // (trigger_delivery_attempt.error holds at most 300 characters, "…" included.)
  auto fail = [&](std::string_view why, bool permanent) {
    out.error = common::LogSafe(why, 299);
    out.permanent = permanent;
    out.latency = absl::Now() - t0;
    return out;
  };
  v1::Envelope source;
  if (auto s = contracts::FromJson(d.body, source); !s.ok())
    return fail(common::Cat("the queued event does not parse: ", std::string(s.message())), true);
  auto derived = contracts::DeriveEvent(catalog, d.trigger_id, d.publish_type, d.publish_template, source);
  if (!derived.ok()) return fail(std::string(derived.status().message()), true);
  // The callback may come after this attempt gave up waiting: it owns what it writes to.
  struct Ack {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::Status> status;
  };
  auto ack = std::make_shared<Ack>();
  producer.Send(*std::move(derived), [ack](absl::StatusOr<kafka::DeliveryReport> r) {
    std::lock_guard<std::mutex> l(ack->mu);
    ack->status = r.status();
    ack->cv.notify_all();
  });
  absl::Status status;
  {
    std::unique_lock<std::mutex> l(ack->mu);
    if (!ack->cv.wait_for(l, absl::ToChronoMilliseconds(wait), [&] { return ack->status.has_value(); }))
      return fail(common::Cat("the broker did not acknowledge the derived event within ", absl::FormatDuration(wait)),
                  false);
    status = *ack->status;
  }
  if (!status.ok()) {
    // What the producer refused before sending will be refused again.
    const bool permanent = status.code() == absl::StatusCode::kInvalidArgument;
    return fail(common::Cat("the broker did not acknowledge the derived event: ", std::string(status.message())),
                permanent);
  }
  out.published = true;
  out.latency = absl::Now() - t0;
  return out;
}

}  // namespace sluice::triggers
