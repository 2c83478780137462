// sluicectl: the Sluice operator and developer CLI.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <google/protobuf/text_format.h>

#include <csignal>
#include <random>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/envelope_io.h"
#include "cli/replay.h"
#include "cli/story.h"
#include "cli/verify.h"
#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "gateway/auth.h"
#include "common/strings.h"
#include "kafka/consumer.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "contracts/vectors.h"
#include "kafka/producer.h"
#include "kafka/topic_admin.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::cli {
namespace {

struct Globals {
  std::string bootstrap = common::DefaultKafkaBootstrap();
  std::string topic_prefix;
  std::string log_level = "warn";
  contracts::Catalog Catalog() const { return contracts::Catalog::Default().WithTopicPrefix(topic_prefix); }
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sluicectl: %s\n", std::string(s.message()).c_str());
  return 1;
}

int TopicsEnsure(const Globals& g, int replication_factor) {
  auto report = kafka::EnsureTopics(g.bootstrap, g.Catalog(), {.replication_factor = replication_factor});
  if (!report.ok()) return Fail(report.status());
  for (const auto& t : report->created) std::printf("created  %s\n", t.c_str());
  for (const auto& t : report->existing) std::printf("exists   %s\n", t.c_str());
  for (const auto& t : report->mismatched) std::printf("MISMATCH %s (partition count differs from the catalog)\n", t.c_str());
  return report->mismatched.empty() ? 0 : 1;
}

int TopicsDelete(const Globals& g, bool yes) {
  if (!yes) return Fail(absl::FailedPreconditionError("topics delete destroys every event in them: add --yes"));
  std::vector<std::string> names;
  const contracts::Catalog catalog = g.Catalog();
  for (const auto& t : catalog.topics()) names.push_back(t.name());
  if (auto s = kafka::DeleteTopics(g.bootstrap, names); !s.ok()) return Fail(s);
  for (const auto& n : names) std::printf("deleted  %s\n", n.c_str());
  return 0;
}

int TopicsList(const Globals& g) {
  auto topics = kafka::ListTopics(g.bootstrap);
  if (!topics.ok()) return Fail(topics.status());
  auto catalog = g.Catalog();
  for (const auto& t : catalog.topics()) {
    auto it = topics->find(t.name());
    if (it == topics->end()) {
      std::printf("%-28s missing (catalog: %d partitions)\n", t.name().c_str(), t.partitions());
    } else {
      std::printf("%-28s %d partitions  types: %s\n", t.name().c_str(), it->second,
                  fmt::format("{}", fmt::join(catalog.TypesOnTopic(t.name()), ", ")).c_str());
    }
  }
  return 0;
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return contracts::ReadFile(path);
}

int Validate(const Globals& g, const std::vector<std::string>& files, bool fill) {
  auto catalog = g.Catalog();
  int bad = 0;
  for (const auto& f : files) {
    auto text = ReadInput(f);
    if (!text.ok()) return Fail(text.status());
    auto envelopes = ParseEnvelopes(*text);
    if (!envelopes.ok()) {
      std::printf("%s: %s\n", f.c_str(), std::string(envelopes.status().message()).c_str());
      ++bad;
      continue;
    }
    for (size_t i = 0; i < envelopes->size(); ++i) {
      v1::Envelope& e = (*envelopes)[i];
      if (fill) contracts::FillDefaults(e, catalog);
      absl::Status s = contracts::Validate(e, catalog);
      std::printf("%s#%zu %s: %s\n", f.c_str(), i + 1, e.type().empty() ? "?" : e.type().c_str(),
                  s.ok() ? "ok" : std::string(s.message()).c_str());
      if (!s.ok()) ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

struct PublishOptions {
  std::string gateway = common::EnvOr("SLUICE_GATEWAY", "127.0.0.1:50051");
  std::string token = common::EnvOr("SLUICE_TOKEN", "");
  std::string tls_ca, tls_cert, tls_key;
  std::vector<std::string> files{"-"};
  std::vector<std::string> metadata;  // KEY=VALUE gRPC metadata (traceparent, sluice-workflow-*)
  int timeout_s = 30;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const PublishOptions& o) {
  if (o.tls_ca.empty() && o.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  for (auto [path, out] : {std::pair{&o.tls_ca, &ssl.pem_root_certs}, {&o.tls_cert, &ssl.pem_cert_chain},
                           {&o.tls_key, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    auto pem = contracts::ReadFile(*path);
    if (!pem.ok()) return pem.status();
    *out = *pem;
  }
  return grpc::SslCredentials(ssl);
}

// One Publish per envelope for a single event, one PublishStream for several.
int Publish(const PublishOptions& o) {
  std::vector<v1::Envelope> envelopes;
  for (const auto& f : o.files) {
    auto text = ReadInput(f);
    if (!text.ok()) return Fail(text.status());
    auto parsed = ParseEnvelopes(*text);
    if (!parsed.ok()) return Fail(absl::InvalidArgumentError(common::Cat(f, ": ", parsed.status().message())));
    envelopes.insert(envelopes.end(), parsed->begin(), parsed->end());
  }
  if (envelopes.empty()) return Fail(absl::InvalidArgumentError("no envelopes in the input"));
  auto creds = ChannelCredentials(o);
  if (!creds.ok()) return Fail(creds.status());
  auto stub = v1::EventGateway::NewStub(grpc::CreateChannel(o.gateway, *creds));
  auto context = [&] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!o.token.empty()) ctx->AddMetadata("authorization", "Bearer " + o.token);
    for (const auto& kv : o.metadata) {
      auto eq = kv.find('=');
      if (eq != std::string::npos) ctx->AddMetadata(kv.substr(0, eq), kv.substr(eq + 1));
    }
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
    return ctx;
  };
  auto print_ok = [](const v1::Delivery& d) {
    std::printf("ok %s %s[%d]@%lld%s\n", d.event_id().c_str(), d.topic().c_str(), d.partition(),
                static_cast<long long>(d.offset()), d.duplicate() ? " (duplicate)" : "");
  };
  int failed = 0;
  if (envelopes.size() == 1) {
    v1::PublishRequest req;
    *req.mutable_envelope() = envelopes[0];
    v1::PublishResponse resp;
    auto ctx = context();
    grpc::Status s = stub->Publish(ctx.get(), req, &resp);
    if (!s.ok()) {
      std::printf("error %d %s\n", static_cast<int>(s.error_code()), s.error_message().c_str());
      return 1;
    }
    print_ok(resp.delivery());
    return 0;
  }
  auto ctx = context();
  auto stream = stub->PublishStream(ctx.get());
  std::thread writer([&] {
    for (size_t i = 0; i < envelopes.size(); ++i) {
      v1::PublishStreamRequest req;
      req.set_sequence(i + 1);
      *req.mutable_envelope() = envelopes[i];
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  v1::PublishStreamResponse r;
  size_t answered = 0;
  while (stream->Read(&r)) {
    ++answered;
    if (r.has_ack()) {
      print_ok(r.ack());
    } else {
      ++failed;
      std::printf("error #%llu %d %s\n", static_cast<unsigned long long>(r.sequence()), r.error().code(),
                  r.error().message().c_str());
    }
  }
  writer.join();
  grpc::Status s = stream->Finish();
  if (!s.ok()) return Fail(absl::UnavailableError(common::Cat("stream: ", s.error_message())));
  if (answered != envelopes.size()) return Fail(absl::DataLossError("the gateway did not answer every event"));
  return failed == 0 ? 0 : 1;
}

struct TailOptions {
  std::vector<std::string> types;
  std::vector<std::string> topics;
  std::string tenant;
  bool from_beginning = false;
  int64_t max = 0;
};

std::atomic<bool> g_stop_tail{false};

// Follows topics (or the topics of types) and prints each event as a JSON line.
int Tail(const Globals& g, const TailOptions& o) {
  auto catalog = g.Catalog();
  std::set<std::string> types(o.types.begin(), o.types.end());
  std::vector<std::string> topics = o.topics;
  if (topics.empty()) {
    auto t = catalog.TopicsFor(types);
    if (!t.ok()) return Fail(t.status());
    topics = *t;
  }
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = g.bootstrap,
                                              .group_id = "sluicectl-tail-" + contracts::NewUuidV7(),
                                              .client_id = "sluicectl-tail",
                                              .topics = topics,
                                              .types = types,
                                              .auto_offset_reset = o.from_beginning ? "earliest" : "latest"});
  if (!consumer.ok()) return Fail(consumer.status());
  std::signal(SIGINT, [](int) { g_stop_tail.store(true); });
  std::signal(SIGTERM, [](int) { g_stop_tail.store(true); });
  int64_t printed = 0;
  while (!g_stop_tail.load() && (o.max == 0 || printed < o.max)) {
    auto n = (*consumer)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      for (const auto& r : batch) {
        if (!o.tenant.empty() && r.envelope.tenant_id() != o.tenant) continue;
        if (o.max != 0 && printed >= o.max) break;
        auto json = contracts::ToJson(r.envelope);
        if (!json.ok()) return json.status();
        std::printf("%s\n", json->c_str());
        ++printed;
      }
      std::fflush(stdout);
      return absl::OkStatus();
    });
    if (!n.ok()) return Fail(n.status());
  }
  return 0;
}

// A new random token and the TokenFile entry holding its hash.
int TokenNew(const std::string& name, const std::vector<std::string>& tenants, const std::vector<std::string>& sources,
             const std::vector<std::string>& roles) {
  std::random_device rd;
  std::string token = "slc_";
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int i = 0; i < 40; ++i) token.push_back(kAlphabet[rd() % (sizeof(kAlphabet) - 1)]);
  v1::Principal p;
  p.set_name(name);
  p.set_token_sha256(gateway::Sha256Hex(token));
  for (const auto& t : tenants) p.add_tenants(t);
  for (const auto& s : sources) p.add_sources(s);
  for (const auto& r : roles) p.add_roles(r);
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(p, &text);
  std::printf("token (give it to the caller; it is not stored): %s\n", token.c_str());
  std::printf("token file entry:\nprincipals { %s}\n", text.c_str());
  return 0;
}

int Migrate(const std::string& dsn, const std::string& dir) {
  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok()) return Fail(conn.status());
  auto report = common::Migrate(*conn, dir);
  if (!report.ok()) return Fail(report.status());
  for (const auto& m : report->applied) std::printf("applied  %s\n", m.c_str());
  std::printf("%zu applied, %zu already in place\n", report->applied.size(), report->existing.size());
  return 0;
}

// Publishes one event of each type (from the golden vectors, with fresh ids, times and
// one correlation id) and reads them back through a fresh consumer group.
int Demo(const Globals& g, const std::string& vectors_dir, const std::string& tenant, int timeout_s) {
  auto catalog = g.Catalog();
  if (auto r = kafka::EnsureTopics(g.bootstrap, catalog); !r.ok()) return Fail(r.status());
  auto vectors = contracts::LoadVectors(vectors_dir);
  if (!vectors.ok()) return Fail(vectors.status());
  auto producer = kafka::Producer::Create({.bootstrap_servers = g.bootstrap, .client_id = "sluicectl-demo"}, catalog);
  if (!producer.ok()) return Fail(producer.status());

  const std::string correlation = contracts::NewUuidV7();
  std::map<std::string, std::string> want;  // id -> type
  std::printf("publishing %zu events for tenant %s (correlation %s)\n", vectors->size(), tenant.c_str(),
              correlation.c_str());
  for (auto& v : *vectors) {
    v1::Envelope e = v.envelope;
    e.clear_id();
    e.clear_occurred_at();
    e.clear_causation_id();
    e.set_tenant_id(tenant);
    e.set_correlation_id(correlation);
    auto report = (*producer)->SendSync(e);
    if (!report.ok()) return Fail(report.status());
    std::printf("  %-28s -> %s[%d]@%lld  id %s\n", v.type.c_str(), report->topic.c_str(), report->partition,
                static_cast<long long>(report->offset), report->event_id.c_str());
    want[report->event_id] = v.type;
  }

  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = g.bootstrap,
                                              .group_id = "sluicectl-demo-" + correlation,
                                              .client_id = "sluicectl-demo",
                                              .topics = topics});
  if (!consumer.ok()) return Fail(consumer.status());
  std::printf("reading them back:\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
  absl::Status failed;
  while (!want.empty() && absl::Now() < deadline) {
    auto n = (*consumer)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      for (const auto& r : batch) {
        if (!want.erase(r.envelope.id())) continue;  // older events on the same topics
        auto json = contracts::ToJson(r.envelope);
        if (!json.ok()) return json.status();
        std::printf("%s[%d]@%lld %s\n", r.topic.c_str(), r.partition, static_cast<long long>(r.offset), json->c_str());
      }
      return absl::OkStatus();
    });
    if (!n.ok()) failed = n.status();
  }
  (void)(*consumer)->Close();
  if (!want.empty()) {
    for (const auto& [id, type] : want) std::fprintf(stderr, "sluicectl: not read back within %ds: %s %s\n", timeout_s, type.c_str(), id.c_str());
    if (!failed.ok()) return Fail(failed);
    return 1;
  }
  std::printf("all %zu events read back\n", vectors->size());
  return 0;
}

}  // namespace
}  // namespace sluice::cli

int main(int argc, char** argv) {
  using namespace sluice::cli;
  Globals g;
  CLI::App app{"sluicectl: operate and try out a Sluice event platform"};
  app.require_subcommand(1);
  app.add_option("--bootstrap", g.bootstrap, "Kafka bootstrap servers (env SLUICE_KAFKA_BOOTSTRAP)")
      ->capture_default_str();
  app.add_option("--topic-prefix", g.topic_prefix, "Prefix added to every catalog topic name (e.g. an environment)");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error")->capture_default_str();

  auto* topics = app.add_subcommand("topics", "Provision and inspect the catalog's Kafka topics");
  topics->require_subcommand(1);
  int rf = 0;
  auto* ensure = topics->add_subcommand("ensure", "Create missing catalog topics (partitions, retention.ms)");
  ensure->add_option("--replication-factor", rf, "Replication factor; 0 = the catalog's, capped at the broker count")
      ->capture_default_str();
  auto* list = topics->add_subcommand("list", "Show each catalog topic, its partitions and event types");
  bool yes = false;
  auto* del = topics->add_subcommand("delete", "Delete the catalog topics (with --topic-prefix: that environment's)");
  del->add_flag("--yes", yes, "Confirm: the topics' events are gone for good");

  std::vector<std::string> files;
  bool fill = false;
  auto* validate = app.add_subcommand("validate", "Validate envelopes (JSON, JSON lines or text format); '-' reads stdin");
  validate->add_option("files", files, "Files to check")->required();
  validate->add_flag("--fill-defaults", fill, "Assign id, occurred_at, type and version first, as producers do");

  std::string vectors_dir = std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors";
  std::string tenant = "tenant-demo";
  int timeout_s = 60;
  auto* demo = app.add_subcommand("demo", "Publish one event of each of the 13 types and read them back as JSON");
  demo->add_option("--vectors", vectors_dir, "Golden vectors to publish")->capture_default_str();
  demo->add_option("--tenant", tenant, "Tenant id for the events")->capture_default_str();
  demo->add_option("--timeout", timeout_s, "Seconds to wait for the events to come back")->capture_default_str();

  std::string dsn = sluice::common::DefaultPgDsn();
  std::string migrations = std::string(SLUICE_SOURCE_DIR) + "/sql/migrations";
  auto* migrate = app.add_subcommand("migrate", "Apply pending sql/migrations to PostgreSQL, in order, once each");
  migrate->add_option("--dsn", dsn, "libpq connection string (env SLUICE_PG_DSN)")->capture_default_str();
  migrate->add_option("--dir", migrations, "Directory of NNNN_name.sql files")->capture_default_str();

  PublishOptions po;
  auto* publish = app.add_subcommand("publish", "Publish envelopes through sluice-gateway (JSON, JSON lines or text format)");
  publish->add_option("files", po.files, "Input files; '-' reads stdin")->capture_default_str();
  publish->add_option("--gateway", po.gateway, "Gateway address (env SLUICE_GATEWAY)")->capture_default_str();
  publish->add_option("--token", po.token, "Bearer token (env SLUICE_TOKEN)");
  publish->add_option("--metadata", po.metadata, "Extra gRPC metadata KEY=VALUE, e.g. sluice-workflow-run-id=r1 (repeatable)");
  publish->add_option("--tls-ca", po.tls_ca, "CA (PEM) to verify the gateway; enables TLS");
  publish->add_option("--tls-cert", po.tls_cert, "Client certificate (PEM) for mutual TLS");
  publish->add_option("--tls-key", po.tls_key, "Client private key (PEM) for mutual TLS");
  publish->add_option("--timeout", po.timeout_s, "Seconds before the call is abandoned")->capture_default_str();

  TailOptions to;
  auto* tail = app.add_subcommand("tail", "Follow event types or topics on Kafka, printing each event as JSON");
  tail->add_option("--type", to.types, "Event type to follow (repeatable)");
  tail->add_option("--topic", to.topics, "Topic to follow (repeatable); default: the topics of --type, or all");
  tail->add_option("--tenant", to.tenant, "Only this tenant's events");
  tail->add_flag("--from-beginning", to.from_beginning, "Start at the oldest retained event instead of new ones");
  tail->add_option("--max", to.max, "Stop after this many events (0 = follow until interrupted)")->capture_default_str();

  std::string token_name;
  std::vector<std::string> token_tenants, token_sources, token_roles;
  auto* token = app.add_subcommand("token", "Gateway bearer tokens");
  token->require_subcommand(1);
  auto* token_new = token->add_subcommand("new", "Make a random token and print its token-file entry (SHA-256 only)");
  token_new->add_option("--name", token_name, "Principal name (logs, metrics)")->required();
  token_new->add_option("--tenant", token_tenants, "Tenant it may publish for; '*' = all (repeatable)")->required();
  token_new->add_option("--source", token_sources, "Source it may publish as (repeatable; none = any)");
  token_new->add_option("--role", token_roles, "Role it holds (repeatable)");

  StoryOptions so;
  so.pg_dsn = sluice::common::DefaultPgDsn();
  auto* story = app.add_subcommand(
      "story", "The governance story end to end against running gateway, relay and profiler: approve a bound tier1 "
               "entry, watch its profile, degrade the table, report the refresh, print the degradation and the chain");
  story->add_option("--gateway", so.gateway, "Gateway address (env SLUICE_GATEWAY)")->envname("SLUICE_GATEWAY")->capture_default_str();
  story->add_option("--pg-dsn", so.pg_dsn, "PostgreSQL for the demo table (env SLUICE_PG_DSN)")->capture_default_str();
  story->add_option("--tenant", so.tenant, "Tenant of the story")->capture_default_str();
  story->add_option("--requester-token", so.requester_token, "Token of who asks for the entry")
      ->envname("SLUICE_STORY_REQUESTER_TOKEN")->required();
  story->add_option("--steward-token", so.steward_token, "Token with the metadata_steward role")
      ->envname("SLUICE_STORY_STEWARD_TOKEN")->required();
  story->add_option("--etl-token", so.etl_token, "Token allowed to publish as etl.pipeline")
      ->envname("SLUICE_STORY_ETL_TOKEN")->required();
  story->add_option("--rows", so.rows, "Rows of the demo table")->capture_default_str()->check(CLI::Range(1, 50000000));
  story->add_option("--timeout", so.timeout_s, "Seconds to wait for each outcome")->capture_default_str();

  ReplayOptions ro;
  auto* replay = app.add_subcommand(
      "replay", "Read topics by offset or time range and write JSON lines, or re-publish into another topic");
  replay->add_option("--topic", ro.topics, "Topic to read (repeatable)");
  replay->add_option("--type", ro.types, "Event type: reads its topic and keeps only this type (repeatable)");
  replay->add_option("--tenant", ro.tenants, "Only this tenant's events (repeatable)");
  replay->add_option("--source", ro.sources, "Only events from this source (repeatable)");
  replay->add_option("--correlation-id", ro.correlation_id, "Only events with this correlation id");
  replay->add_option("--partition", ro.partition, "Only this partition");
  replay->add_option("--from-offset", ro.from_offset, "First offset of each partition (inclusive)")->check(CLI::NonNegativeNumber);
  replay->add_option("--to-offset", ro.to_offset, "Last offset of each partition (inclusive)")->check(CLI::NonNegativeNumber);
  replay->add_option("--from", ro.from_time, "Records produced at or after this ISO-8601 time");
  replay->add_option("--to", ro.to_time, "Records produced at or before this ISO-8601 time");
  auto* replay_output = replay->add_option(
      "--output", ro.output, "JSON lines file; '-' = stdout (default without --to-topic)")->capture_default_str();
  replay->add_option("--to-topic", ro.target_topic,
                     "Re-publish into this existing topic (never a source), same bytes and ids, plus a sluice-replay header");

  VerifyOptions vo;
  vo.pg_dsn = sluice::common::DefaultPgDsn();
  auto* audit = app.add_subcommand("audit", "Check the database against the event log");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand(
      "verify",
      "Rebuild the approval state from the approval topic (each approval's final status, each entity's latest approved "
      "payload) and compare it with PostgreSQL; prints every mismatch. Exit 0: consistent, 1: mismatches, 2: error");
  verify->add_option("--pg-dsn", vo.pg_dsn, "libpq connection string (env SLUICE_PG_DSN)")->capture_default_str();
  verify->add_option("--pg-schema", vo.pg_schema, "Schema of the governance tables (default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  verify->add_option("--tenant", vo.tenants, "Only this tenant (repeatable; default: all)");

  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluicectl", g.log_level);
  if (*verify) {
    vo.bootstrap = g.bootstrap;
    vo.topic_prefix = g.topic_prefix;
    return RunVerify(vo);
  }
  if (*replay) {
    ro.bootstrap = g.bootstrap;
    ro.topic_prefix = g.topic_prefix;
    ro.output_given = replay_output->count() > 0;
    return RunReplay(ro);
  }

  if (*ensure) return TopicsEnsure(g, rf);
  if (*list) return TopicsList(g);
  if (*del) return TopicsDelete(g, yes);
  if (*validate) return Validate(g, files, fill);
  if (*demo) return Demo(g, vectors_dir, tenant, timeout_s);
  if (*migrate) return Migrate(dsn, migrations);
  if (*publish) return Publish(po);
  if (*token_new) return TokenNew(token_name, token_tenants, token_sources, token_roles);
  if (*tail) return Tail(g, to);
  if (*story) {
    so.bootstrap = g.bootstrap;
    so.topic_prefix = g.topic_prefix;
    return RunStory(so);
  }
  return 2;
}
