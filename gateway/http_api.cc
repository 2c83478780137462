#include "gateway/http_api.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/explorer_assets.h"
#include "gateway/grpc_status.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

// A live feed writes at least this often: a write is how a closed connection shows, and
// each feed holds a thread and a stream slot until it does.
constexpr absl::Duration kKeepalive = absl::Seconds(2);

// The largest request body (POST /v1/views).
constexpr size_t kMaxBodyBytes = 32 * 1024;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

// gRPC's codes as HTTP statuses (the mapping google.rpc documents).
int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

// `http_status`: the status the answer goes out with, when not the code's own.
std::string ErrorJson(const absl::Status& status, int http_status = 0) {
  google::protobuf::Struct body;
  google::protobuf::Struct& error = *(*body.mutable_fields())["error"].mutable_struct_value();
  auto& f = *error.mutable_fields();
  f["code"].set_number_value(http_status != 0 ? http_status : HttpStatusOf(status.code()));
  f["status"].set_string_value(absl::StatusCodeToString(status.code()));
  // (An unknown code's name is "" in absl: the number still says it.)
  f["message"].set_string_value(CallerMessage(status));
  if (!common::IsPgError(status)) {
    auto* list = f["fieldViolations"].mutable_list_value();
    for (const auto& v : contracts::ViolationsOf(status)) {
      auto& entry = *list->add_values()->mutable_struct_value()->mutable_fields();
      entry["field"].set_string_value(v.field);
      entry["description"].set_string_value(v.description);
    }
    if (list->values_size() == 0) f.erase("fieldViolations");
  }
  auto json = contracts::ToJson(body);
  return json.ok() ? *json : R"({"error":{"code":500,"status":"INTERNAL","message":"error not encodable"}})";
}

void SetCommonHeaders(httplib::Response& res) {
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
}

void ReplyError(httplib::Response& res, const absl::Status& status) {
  SetCommonHeaders(res);
  res.status = HttpStatusOf(status.code());
  res.set_content(ErrorJson(status), "application/json");
}

void Reply(httplib::Response& res, const absl::StatusOr<std::string>& json) {
  if (!json.ok()) return ReplyError(res, json.status());
  SetCommonHeaders(res);
  res.status = 200;
  res.set_content(*json, "application/json");
}

template <class M>
void ReplyMessage(httplib::Response& res, const absl::StatusOr<M>& message) {
  if (!message.ok()) return ReplyError(res, message.status());
  Reply(res, contracts::ToJson(*message));
}

// The query parameters of a request, checked against the names a route takes: each
// value of a repeated one may also be a comma-separated list; a single one given twice
// is refused.
class Query {
 public:
  static absl::StatusOr<Query> Of(const httplib::Request& req, const std::set<std::string_view>& repeated,
                                  const std::set<std::string_view>& single) {
    Query q;
    for (const auto& [name, value] : req.params) {
      if (repeated.contains(name)) {
        for (auto part : absl::StrSplit(value, ',', absl::SkipEmpty()))
          q.lists_[name].emplace_back(part.data(), part.size());
      } else if (single.contains(name)) {
        if (!q.singles_.emplace(name, value).second) return Invalid(name, "given more than once");
      } else {
        return Invalid(name, "not a parameter of this route");
      }
    }
    return q;
  }
  const std::vector<std::string>& List(const std::string& name) const {
    static const std::vector<std::string> kNone;
    auto it = lists_.find(name);
    return it == lists_.end() ? kNone : it->second;
  }
  std::string Single(const std::string& name) const {
    auto it = singles_.find(name);
    return it == singles_.end() ? std::string() : it->second;
  }
  bool Has(const std::string& name) const { return singles_.contains(name); }

 private:
  std::map<std::string, std::vector<std::string>> lists_;
  std::map<std::string, std::string> singles_;
};

const std::set<std::string_view> kFilterLists = {"types", "sources", "tenantIds", "severities"};

absl::Status ParseTime(const std::string& text, std::string_view field, google::protobuf::Timestamp* out) {
  if (!TimeUtil::FromString(text, out)) return Invalid(field, "must be an RFC 3339 time, e.g. 2026-01-31T08:00:00Z");
  return absl::OkStatus();
}

// EventFilter from the query: names as in its JSON mapping; the severities as their enum
// names (EVENT_SEVERITY_ERROR) or short (error, warning, info).
absl::Status ParseFilter(const Query& q, v1::EventFilter& f) {
  for (const auto& v : q.List("types")) f.add_types(v);
  for (const auto& v : q.List("sources")) f.add_sources(v);
  for (const auto& v : q.List("tenantIds")) f.add_tenant_ids(v);
  const auto& severities = q.List("severities");
  for (size_t i = 0; i < severities.size(); ++i) {
    std::string name = absl::AsciiStrToUpper(severities[i]);
    if (name.rfind("EVENT_SEVERITY_", 0) != 0) name = Cat("EVENT_SEVERITY_", name);
    v1::EventSeverity s;
    if (!v1::EventSeverity_Parse(name, &s) || s == v1::EVENT_SEVERITY_UNSPECIFIED)
      return Invalid(Cat("filter.severities[", i, "]"), "must be error, warning or info");
    f.add_severities(s);
  }
  f.set_correlation_id(q.Single("correlationId"));
  f.set_json_path(q.Single("jsonPath"));
  if (q.Has("fromTime"))
    if (auto s = ParseTime(q.Single("fromTime"), "filter.from_time", f.mutable_from_time()); !s.ok()) return s;
  if (q.Has("toTime"))
    if (auto s = ParseTime(q.Single("toTime"), "filter.to_time", f.mutable_to_time()); !s.ok()) return s;
  return absl::OkStatus();
}

// A query parameter of a flat request message: its JSON path (dots for nested messages)
// and the field path errors name.
struct Param {
  std::string name;   // in the query
  std::string json;   // e.g. "entity.canonicalKey"
  std::string field;  // e.g. "entity.canonical_key"
};

// Fills `msg` from the query through the protobuf JSON mapping, one parameter at a time,
// so a value that does not parse is reported by its own field (a limit that is not a
// number, a tier that is not one); closed sets take either spelling (contracts/json.h).
absl::Status FromQuery(const Query& q, const std::vector<Param>& params, google::protobuf::Message& msg) {
  for (const auto& p : params) {
    if (!q.Has(p.name)) continue;
    google::protobuf::Struct one;
    google::protobuf::Struct* at = &one;
    std::vector<std::string> parts = absl::StrSplit(p.json, '.');
    for (size_t i = 0; i + 1 < parts.size(); ++i) at = (*at->mutable_fields())[parts[i]].mutable_struct_value();
    (*at->mutable_fields())[parts.back()].set_string_value(q.Single(p.name));
    auto json = contracts::ToJson(one);
    if (!json.ok()) return json.status();
    std::unique_ptr<google::protobuf::Message> part(msg.New());
    if (!contracts::FromJson(*json, *part).ok())
      return Invalid(p.field, Cat("\"", q.Single(p.name), "\" is not valid here"));
    msg.MergeFrom(*part);
  }
  return absl::OkStatus();
}

// The request and response types of a QualityServiceImpl call.
template <class M>
struct MethodTypes;
template <class Req, class Resp>
struct MethodTypes<absl::Status (QualityServiceImpl::*)(const v1::Principal&, const Req*, Resp*) const> {
  using Request = Req;
  using Response = Resp;
};

std::set<std::string_view> Names(const std::vector<Param>& params) {
  std::set<std::string_view> out;
  for (const auto& p : params) out.insert(p.name);
  return out;
}

// A fixed set of threads and at most as many connections waiting for one; past that the
// accepting thread waits (and the kernel's backlog holds the rest), so no client can make
// the queue grow.
class BoundedPool final : public httplib::TaskQueue {
 public:
  explicit BoundedPool(int threads) : limit_(static_cast<size_t>(threads)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~BoundedPool() override { shutdown(); }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < limit_ || stop_; });
    if (stop_) return;  // only after shutdown, when the listening socket is closed already
    queue_.push_back(std::move(fn));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stop_ && workers_.empty()) return;
      stop_ = true;
    }
    ready_.notify_all();
    room_.notify_all();
    for (auto& w : workers_)
      if (w.joinable()) w.join();
    workers_.clear();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return !queue_.empty() || stop_; });
        if (queue_.empty()) return;  // stopping, and nothing left to serve
        fn = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      fn();
    }
  }
  const size_t limit_;
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpApi>> HttpApi::Start(const HttpApiConfig& config,
                                                        const EventQueryServiceImpl& events,
                                                        const QualityServiceImpl* quality,
                                                        const std::atomic<bool>& stopping) {
  const size_t colon = config.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(config.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535)
    return absl::InvalidArgumentError(Cat("http: listen address must be host:port, not \"", config.listen, "\""));
  std::string host = config.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int threads = std::max(config.threads, 2);

  std::unique_ptr<HttpApi> api(new HttpApi());
  api->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *api->server_;
  srv.new_task_queue = [threads] { return new BoundedPool(threads); };
  srv.set_read_timeout(5, 0);
  srv.set_write_timeout(5, 0);
  // One request per connection: a kept-alive connection would hold a worker between
  // requests (a few idle clients could take them all), and stopping waits for it.
  srv.set_keep_alive_max_count(1);
  // Only POST /v1/views has a body, a small JSON one (413 past the limit, unread).
  srv.set_payload_max_length(kMaxBodyBytes);
  // This runs before the library reads a body, which it reads for these methods whatever
  // the route; without a Content-Length it would read until the client closes.
  srv.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    const std::string length = req.get_header_value("Content-Length");
    const bool takes_body = req.method == "POST" && req.path == "/v1/views";
    const bool reads_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                            req.method == "DELETE" || req.method == "PRI";
    if (req.has_header("Transfer-Encoding")) {
      ReplyError(res, absl::InvalidArgumentError("send a body with a Content-Length, not chunked"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (reads_body && length.empty()) {
      SetCommonHeaders(res);
      res.status = 411;
      res.set_content(
          ErrorJson(absl::InvalidArgumentError(Cat(req.method, " needs a Content-Length (0 without a body)")), 411),
          "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!takes_body && !length.empty() && length != "0") {
      ReplyError(res, absl::InvalidArgumentError("a request to this route has no body"));
      return httplib::Server::HandlerResponse::Handled;
    }
    // Same-origin pages and scripts only: a browser's cross-site form cannot send JSON.
    if (takes_body && !absl::StartsWith(req.get_header_value("Content-Type"), "application/json")) {
      ReplyError(res, absl::InvalidArgumentError("the body must be JSON (Content-Type: application/json)"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("gateway: HTTP {} {}: {}", req.method, req.path, what);
    ReplyError(res, absl::InternalError("internal error"));
  });
  srv.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own answer
    // The library's own refusals (no route, 413, 414, ...): the body names its status.
    const int status = res.status;
    const absl::Status error = status == 404 ? absl::NotFoundError(Cat("no route ", req.path))
                               : status == 405
                                   ? absl::UnimplementedError(Cat(req.method, " is not served on ", req.path))
                               : status >= 500 ? absl::InternalError(Cat("HTTP ", status))
                                               : absl::InvalidArgumentError(Cat("bad request (HTTP ", status, ")"));
    SetCommonHeaders(res);
    res.set_content(ErrorJson(error, status), "application/json");
    res.status = status;
  });

  const EventQueryServiceImpl* svc = &events;
  auto authenticate = [svc](const httplib::Request& req) {
    return svc->tokens().Authenticate(req.get_header_value("Authorization"));
  };

  srv.Get("/v1/events", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, kFilterLists, {"correlationId", "fromTime", "toTime", "jsonPath", "limit", "cursor"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::ListEventsRequest list;
    if (auto s = ParseFilter(*q, *list.mutable_filter()); !s.ok()) return ReplyError(res, s);
    if (q->Has("limit")) {
      int limit = 0;
      if (!absl::SimpleAtoi(q->Single("limit"), &limit)) return ReplyError(res, Invalid("limit", "must be 1 to 200"));
      list.set_limit(limit);
    }
    list.set_cursor(q->Single("cursor"));
    ReplyMessage(res, svc->List(**who, list));
  });

  srv.Get(R"(/v1/events/([^/]+))", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, {}, {"tenantId"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::GetEventRequest get;
    get.set_id(req.matches[1].str());
    get.set_tenant_id(q->Single("tenantId"));
    ReplyMessage(res, svc->Get(**who, get));
  });

  srv.Get("/v1/health", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    if (auto q = Query::Of(req, {}, {}); !q.ok()) return ReplyError(res, q.status());
    ReplyMessage(res, svc->Health(**who));
  });

  srv.Get("/v1/catalog", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    if (auto q = Query::Of(req, {}, {}); !q.ok()) return ReplyError(res, q.status());
    // The types and sources filters take: each type with its topic, version and payload.
    v1::Catalog out;
    for (const auto& r : svc->catalog().routes()) {
      v1::EventTypeSpec* t = out.add_event_types();
      t->set_type(r.type);
      t->set_topic(r.topic);
      t->set_version(r.version);
      t->set_payload_message(r.payload_message);
      t->set_outbox_only(r.outbox_only);
    }
    for (const auto& name : svc->catalog().sources()) out.add_sources()->set_name(name);
    ReplyMessage(res, absl::StatusOr<v1::Catalog>(std::move(out)));
  });

  // Saved views: listed and used with the tenant in the query (optional for a token of one
  // tenant), created with a JSON body, deleted by id.
  srv.Get("/v1/views", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, {}, {"tenantId"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::ListSavedViewsRequest list;
    list.set_tenant_id(q->Single("tenantId"));
    ReplyMessage(res, svc->ListViews(**who, list));
  });
  srv.Post("/v1/views", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    if (auto q = Query::Of(req, {}, {}); !q.ok()) return ReplyError(res, q.status());
    v1::CreateSavedViewRequest create;
    if (!contracts::FromJson(req.body, create).ok())
      return ReplyError(res, Invalid("body", "not a CreateSavedViewRequest in the protobuf JSON mapping"));
    auto created = svc->CreateView(**who, create);
    ReplyMessage(res, created);
    if (created.ok()) res.status = 201;
  });
  srv.Post(R"(/v1/views/([^/]+)/use)", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, {}, {"tenantId"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::UseSavedViewRequest use;
    use.set_tenant_id(q->Single("tenantId"));
    use.set_id(req.matches[1].str());
    ReplyMessage(res, svc->UseView(**who, use));
  });
  srv.Delete(R"(/v1/views/([^/]+))", [svc, authenticate](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, {}, {"tenantId"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::DeleteSavedViewRequest del;
    del.set_tenant_id(q->Single("tenantId"));
    del.set_id(req.matches[1].str());
    ReplyMessage(res, svc->DeleteView(**who, del));
  });

  // The Explorer: its files, built into the binary. The page asks for a token and sends
  // it with each API call; the files themselves need none.
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/explorer/"); });
  srv.Get("/explorer", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/explorer/"); });
  srv.Get(R"(/explorer/(.*))", [](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1].str().empty() ? "index.html" : req.matches[1].str();
    const ExplorerAsset* asset = FindExplorerAsset(name);
    if (asset == nullptr) return ReplyError(res, absl::NotFoundError(Cat("no file ", req.path)));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                   "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.set_content(std::string(asset->data, asset->size), asset->content_type);
  });

  if (quality != nullptr) {
    // QualityService: every call names its tenant (tenantId).
    const QualityServiceImpl* qs = quality;
    const Param tenant{"tenantId", "tenantId", "tenant_id"};
    const std::vector<Param> entity = {{"entityId", "entity.entityId", "entity.entity_id"},
                                       {"canonicalKey", "entity.canonicalKey", "entity.canonical_key"}};
    // One route per call: the query through FromQuery into the request (and the path's
    // one value into `path_field`, when the pattern has one), then the call.
    auto route = [&srv, authenticate, qs](const std::string& pattern, std::vector<Param> params, auto core,
                                          const char* path_field = nullptr) {
      using Core = decltype(core);
      srv.Get(pattern,
              [authenticate, qs, params, core, path_field](const httplib::Request& req, httplib::Response& res) {
                auto who = authenticate(req);
                if (!who.ok()) return ReplyError(res, who.status());
                auto q = Query::Of(req, {}, Names(params));
                if (!q.ok()) return ReplyError(res, q.status());
                typename MethodTypes<Core>::Request in;
                typename MethodTypes<Core>::Response out;
                absl::Status s = FromQuery(*q, params, in);
                if (s.ok() && path_field != nullptr) {
                  const auto* f = in.GetDescriptor()->FindFieldByName(path_field);
                  in.GetReflection()->SetString(&in, f, req.matches[1].str());
                }
                if (s.ok()) s = (qs->*core)(**who, &in, &out);
                if (!s.ok()) return ReplyError(res, s);
                ReplyMessage(res, absl::StatusOr<typename MethodTypes<Core>::Response>(out));
              });
    };
    std::vector<Param> latest = {tenant};
    latest.insert(latest.end(), entity.begin(), entity.end());
    route("/v1/quality/latest", latest, &QualityServiceImpl::Latest);
    std::vector<Param> profiles = latest;
    profiles.insert(profiles.end(), {{"fromTime", "fromTime", "from_time"},
                                     {"toTime", "toTime", "to_time"},
                                     {"limit", "limit", "limit"},
                                     {"cursor", "cursor", "cursor"}});
    route("/v1/quality/profiles", profiles, &QualityServiceImpl::Profiles);
    route("/v1/quality/worst", {tenant, {"tier", "tier", "tier"}, {"limit", "limit", "limit"}},
          &QualityServiceImpl::Worst);
    route(R"(/v1/quality/jobs/([^/]+))", {tenant}, &QualityServiceImpl::Job, "job_id");
  }

  // Live feeds take at most half of the threads, so lists and health still get answers.
  auto feeds = std::make_shared<std::atomic<int>>(0);
  const int max_feeds = threads / 2;
  const std::atomic<bool>* stop = &stopping;
  srv.Get("/v1/live", [svc, authenticate, feeds, max_feeds, stop](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req);
    if (!who.ok()) return ReplyError(res, who.status());
    auto q = Query::Of(req, kFilterLists, {"correlationId", "fromTime", "toTime", "jsonPath"});
    if (!q.ok()) return ReplyError(res, q.status());
    v1::EventFilter filter;
    if (auto s = ParseFilter(*q, filter); !s.ok()) return ReplyError(res, s);
    auto slot = svc->OpenFeed(**who, filter);
    if (!slot.ok()) return ReplyError(res, slot.status());
    if (feeds->fetch_add(1) >= max_feeds) {
      feeds->fetch_sub(1);
      return ReplyError(res, absl::ResourceExhaustedError(
                                 Cat("this gateway serves at most ", max_feeds, " live feeds over HTTP at once")));
    }
    // The stream slot and the place among the feeds, given back when the response (and
    // the provider holding this) goes, however the feed ends.
    struct Held {
      Held(std::optional<StreamSlot> s, std::shared_ptr<std::atomic<int>> f)
          : slot(std::move(s)), feeds(std::move(f)) {}
      Held(const Held&) = delete;
      Held& operator=(const Held&) = delete;
      ~Held() { feeds->fetch_sub(1); }
      std::optional<StreamSlot> slot;
      std::shared_ptr<std::atomic<int>> feeds;
    };
    auto held = std::make_shared<Held>(*std::move(slot), feeds);
    SetCommonHeaders(res);
    res.set_header("X-Accel-Buffering", "no");  // proxies: pass each event on at once
    res.set_chunked_content_provider(
        "text/event-stream", [svc, principal = *who, filter, held, stop](size_t, httplib::DataSink& sink) {
          absl::Time last_write = absl::Now();
          auto send = [&](const std::string& text) {
            last_write = absl::Now();
            return sink.write(text.data(), text.size());
          };
          absl::Status s =
              svc->Feed(*principal, filter,
                        {.live = [&] { return send(": live\n\n"); },
                         .write =
                             [&](const v1::StoredEvent& e) {
                               auto json = contracts::ToJson(e);
                               if (!json.ok()) {
                                 spdlog::warn("gateway: live feed: event {} not encodable: {}", e.envelope().id(),
                                              json.status().message());
                                 return true;
                               }
                               return send(Cat("id: ", e.envelope().id(), "\nevent: event\ndata: ", *json, "\n\n"));
                             },
                         .cancelled =
                             [&] {
                               if (stop->load()) return true;
                               return absl::Now() - last_write >= kKeepalive && !send(": keepalive\n\n");
                             }});
          if (!s.ok() && s.code() != absl::StatusCode::kCancelled)
            send(Cat("event: error\ndata: ", ErrorJson(s), "\n\n"));
          sink.done();
          return true;
        });
  });

  port = port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, port) ? port : -1);
  if (port <= 0) return absl::UnavailableError(Cat("http: cannot listen on ", config.listen));
  api->port_ = port;
  api->thread_ = std::thread([&srv] {
    if (!srv.listen_after_bind()) spdlog::error("gateway: HTTP server stopped listening");
  });
  // Running before Start returns: stop() does nothing to a server not running yet.
  for (int i = 0; i < 500 && !srv.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!srv.is_running()) {
    srv.stop();
    api->thread_.join();
    return absl::UnavailableError(Cat("http: the server on ", config.listen, " did not start"));
  }
  spdlog::info("gateway: HTTP/JSON API on port {}", port);
  return api;
}

void HttpApi::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

HttpApi::~HttpApi() { Stop(); }

}  // namespace sluice::gateway
