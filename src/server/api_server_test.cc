#include "server/api_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/clock.h"
#include "gaps/memory_gap_store.h"
#include "otlp/proto_codec.h"
#include "store/rocks_store.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

constexpr uint64_t kSecond = 1'000'000'000;
// 2026-05-28T20:26:40Z
constexpr uint64_t kT0 = 1'780'000'000 * kSecond;

gaps::Gap MakeGap(std::string order_id, std::string stage, uint64_t since, bool open = true) {
  gaps::Gap gap;
  gap.id = order_id + "/missing_transition/" + stage;
  gap.order_id = std::move(order_id);
  gap.partner_id = "partner-a";
  gap.kind = "missing_transition";
  gap.stage = std::move(stage);
  gap.since_unix_nano = since;
  gap.deadline_unix_nano = since + 60 * kSecond;
  gap.detected_at_unix_nano = since + 62 * kSecond;
  gap.paged = open;
  if (!open) {
    gap.resolved_by = "APPROVED";
    gap.resolved_at_unix_nano = since + 90 * kSecond;
  }
  return gap;
}

// The HTTP API over loopback on a real store, with a gap history in memory.
class ApiServerGapsTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    store::RocksStoreOptions options;
    options.path = dir_.path() + "/store";
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    orders_ = std::make_unique<query::OrderQuery>(*store_, clock_);
    traces_ = std::make_unique<query::TraceQuery>(*store_, clock_);
    http::ServerOptions http_options;
    http_options.worker_threads = 2;
    ApiAccess access{{"ordertrace.internal"}};
    // INITIATED has a 30 s SLA (90 s for partner-b), the other statuses none.
    access.sla.sla = [](std::string_view status,
                        std::string_view partner) -> std::optional<uint64_t> {
      if (status != "INITIATED") return std::nullopt;
      return (partner == "partner-b" ? 90 : 30) * kSecond;
    };
    api_ = std::make_unique<ApiServer>(
        *orders_, *traces_, [] { return true; }, std::move(http_options), nullptr, &history_,
        nullptr, std::move(access));
    absl::StatusOr<base::ListenAddress> address = base::ParseListenAddress("127.0.0.1:0");
    ASSERT_TRUE(address.ok());
    absl::StatusOr<int> port = api_->Start(*address);
    ASSERT_TRUE(port.ok()) << port.status();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }

  void TearDown() override {
    if (api_) api_->Shutdown();
  }

  // The reply's status and body.
  std::pair<int, json> Get(const std::string& path) {
    httplib::Result res = client_->Get(path);
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  std::vector<std::string> Ids(const json& body) {
    std::vector<std::string> ids;
    for (const json& gap : body["gaps"]) ids.push_back(gap["id"]);
    return ids;
  }

  test_support::TempDir dir_{"ordertrace_api_server_test"};
  base::ManualClock clock_{kT0};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<query::OrderQuery> orders_;
  std::unique_ptr<query::TraceQuery> traces_;
  gaps::MemoryGapStore history_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ApiServerGapsTest, ListsTheHistoryPageByPageWithCursors) {
  std::vector<gaps::Gap> puts;
  for (int i = 0; i < 7; ++i) {
    puts.push_back(MakeGap("ord-" + std::to_string(i), "SUBMITTED", kT0 + i * kSecond, i % 2));
  }
  ASSERT_TRUE(history_.Apply(puts, {}).ok());

  auto [status, first] = Get("/api/v1/gaps?state=all&limit=3");
  ASSERT_EQ(status, 200) << first;
  EXPECT_EQ(first["count"], 3);
  EXPECT_THAT(Ids(first), ElementsAre("ord-6/missing_transition/SUBMITTED",
                                      "ord-5/missing_transition/SUBMITTED",
                                      "ord-4/missing_transition/SUBMITTED"));
  ASSERT_TRUE(first["next_cursor"].is_string());
  std::vector<std::string> all = Ids(first);
  std::string cursor = first["next_cursor"];
  for (int page = 0; page < 5 && !cursor.empty(); ++page) {
    auto [s, body] = Get("/api/v1/gaps?state=all&limit=3&cursor=" + cursor);
    ASSERT_EQ(s, 200) << body;
    for (const std::string& id : Ids(body)) all.push_back(id);
    cursor = body["next_cursor"].is_null() ? "" : body["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(all.size(), 7u);
  EXPECT_EQ(all.back(), "ord-0/missing_transition/SUBMITTED");

  // Open is the default; a resolved gap says how and when.
  auto [open_status, open] = Get("/api/v1/gaps");
  ASSERT_EQ(open_status, 200);
  EXPECT_THAT(Ids(open), ElementsAre("ord-5/missing_transition/SUBMITTED",
                                     "ord-3/missing_transition/SUBMITTED",
                                     "ord-1/missing_transition/SUBMITTED"));
  EXPECT_TRUE(open["next_cursor"].is_null());
  EXPECT_EQ(open["gaps"][0]["state"], "open");
  EXPECT_EQ(open["gaps"][0]["paged"], true);
  EXPECT_TRUE(open["gaps"][0]["resolved_by"].is_null());
  auto [resolved_status, resolved] = Get("/api/v1/gaps?state=resolved&limit=1");
  ASSERT_EQ(resolved_status, 200);
  EXPECT_EQ(resolved["gaps"][0]["state"], "resolved");
  EXPECT_EQ(resolved["gaps"][0]["resolved_by"], "APPROVED");
  EXPECT_EQ(resolved["gaps"][0]["paged"], false);
  EXPECT_DOUBLE_EQ(resolved["gaps"][0]["detection_delay_seconds"].get<double>(), 2.0);
}

TEST_F(ApiServerGapsTest, FromAndToTakeUnixNanosecondsOrRfc3339) {
  ASSERT_TRUE(history_
                  .Apply({MakeGap("ord-a", "SUBMITTED", kT0),
                          MakeGap("ord-b", "SUBMITTED", kT0 + 10 * kSecond),
                          MakeGap("ord-c", "SUBMITTED", kT0 + 20 * kSecond)},
                         {})
                  .ok());
  auto [s1, nanos] = Get("/api/v1/gaps?from=" + std::to_string(kT0 + 10 * kSecond));
  ASSERT_EQ(s1, 200) << nanos;
  EXPECT_THAT(Ids(nanos), ElementsAre("ord-c/missing_transition/SUBMITTED",
                                      "ord-b/missing_transition/SUBMITTED"));
  auto [s2, rfc] = Get("/api/v1/gaps?from=2026-05-28T20:26:40Z&to=2026-05-28T20:26:50Z");
  ASSERT_EQ(s2, 200) << rfc;
  EXPECT_THAT(Ids(rfc), ElementsAre("ord-b/missing_transition/SUBMITTED",
                                    "ord-a/missing_transition/SUBMITTED"));
  auto [s3, offset] = Get("/api/v1/gaps?to=2026-05-28T22:26:45.5%2B02:00");
  ASSERT_EQ(s3, 200) << offset;
  EXPECT_THAT(Ids(offset), ElementsAre("ord-a/missing_transition/SUBMITTED"));
}

TEST_F(ApiServerGapsTest, BadParametersAreRefusedWithTheErrorShape) {
  for (const char* path :
       {"/api/v1/gaps?cursor=nonsense", "/api/v1/gaps?state=closed", "/api/v1/gaps?limit=0",
        "/api/v1/gaps?limit=1001", "/api/v1/gaps?from=yesterday",
        "/api/v1/gaps?from=1969-12-31T23:59:59Z", "/api/v1/gaps?from=20&to=10"}) {
    auto [status, body] = Get(path);
    EXPECT_EQ(status, 400) << path;
    EXPECT_TRUE(body.contains("error")) << path << " " << body;
  }
}

// Any unmatched path with a non-UTF-8 byte once aborted the process (the 404 handler
// dumped the path into JSON, the exception escaped httplib's guard), and an order id with one
// answered 500 with the JSON library's text. Each is a clear answer, and the server stays up.
TEST_F(ApiServerGapsTest, PathsWithBytesThatAreNotUtf8AreAnsweredAndTheServerStaysUp) {
  auto [missing, missing_body] = Get("/%FF");
  EXPECT_EQ(missing, 404);
  EXPECT_TRUE(missing_body.contains("error")) << missing_body;
  auto [order, order_body] = Get("/api/v1/orders/%FF%FEx");
  EXPECT_EQ(order, 404);
  EXPECT_TRUE(order_body.contains("error")) << order_body;
  auto [search, search_body] = Get("/api/search?end=18446744073709551615");
  EXPECT_EQ(search, 400) << search_body;
  auto [after, after_body] = Get("/api/v1/gaps");
  EXPECT_EQ(after, 200) << "the server went down";
}

TEST_F(ApiServerGapsTest, RootSpansOfAnOrderWithAGapAreMarked) {
  ASSERT_TRUE(history_.Apply({MakeGap("ord-gap", "SUBMITTED", kT0, /*open=*/false)}, {}).ok());
  auto trace_of = [&](uint8_t n, const std::string& order_id, bool on_resource) {
    base::TraceBatch batch;
    base::ResourceSpans& rs = batch.resource_spans.emplace_back();
    if (on_resource)
      rs.resource.attributes.push_back({"order_id", base::AnyValue::String(order_id)});
    base::Span root;
    root.trace_id.bytes[15] = n;
    root.span_id.bytes[7] = 1;
    root.name = "POST /orders";
    root.start_time_unix_nano = kT0;
    root.end_time_unix_nano = kT0 + kSecond;
    if (!on_resource) root.attributes.push_back({"order_id", base::AnyValue::String(order_id)});
    base::Span child = root;
    child.span_id.bytes[7] = 2;
    child.parent_span_id = root.span_id;
    rs.scope_spans.emplace_back().spans = {root, child};
    store::WriteSet writes;
    writes.blocks.push_back({root.trace_id, kT0, otlp::EncodeProtobuf(batch)});
    EXPECT_TRUE(store_->Write(writes).ok());
    return root.trace_id.ToHex();
  };
  auto marked = [&](const std::string& trace_hex) {
    auto [status, body] = Get("/api/traces/" + trace_hex);
    EXPECT_EQ(status, 200) << body;
    std::vector<std::string> names;
    for (const json& batch : body["batches"]) {
      for (const json& scope : batch["scopeSpans"]) {
        for (const json& span : scope["spans"]) {
          for (const json& attr : span.value("attributes", json::array())) {
            if (attr["key"] == "gap_detected") names.push_back(span["spanId"]);
          }
        }
      }
    }
    return names.size();
  };
  EXPECT_EQ(marked(trace_of(1, "ord-gap", false)), 1u) << "the root span only";
  EXPECT_EQ(marked(trace_of(2, "ord-gap", true)), 1u) << "the order id of the resource";
  EXPECT_EQ(marked(trace_of(3, "ord-quiet", false)), 0u);
}

TEST(ParseTimeParamTest, NanosecondsAndRfc3339) {
  EXPECT_EQ(ParseTimeParam("0").value(), 0u);
  EXPECT_EQ(ParseTimeParam("1780000000000000000").value(), kT0);
  EXPECT_EQ(ParseTimeParam("2026-05-28T20:26:40Z").value(), kT0);
  EXPECT_EQ(ParseTimeParam("2026-05-28T20:26:40.000000007Z").value(), kT0 + 7);
  EXPECT_EQ(ParseTimeParam("2026-05-28T22:26:40+02:00").value(), kT0);
  for (const char* bad : {"", "-5", "99999999999999999999", "2026-05-28", "now"}) {
    EXPECT_EQ(ParseTimeParam(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// DNS rebinding: a page on another site, its name pointed at 127.0.0.1, sends its own Host. The
// API answers only to loopback names and the configured ones.
TEST_F(ApiServerGapsTest, RefusesHostsThatAreNotItsNames) {
  for (const char* host : {"evil.example", "evil.example:8686", "127.0.0.1.evil.example",
                           "[2001:db8::1]:8686", "10.0.0.7"}) {
    httplib::Result res = client_->Get("/healthz", {{"Host", host}});
    ASSERT_TRUE(res) << host;
    EXPECT_EQ(res->status, 421) << host;
    EXPECT_THAT(res->body, testing::HasSubstr("is not a name of this API")) << host;
  }
  for (const char* host : {"127.0.0.1:8686", "localhost", "LocalHost:1", "[::1]:8686", "127.0.0.2",
                           "ordertrace.internal:8686", "ORDERTRACE.internal"}) {
    httplib::Result res = client_->Get("/healthz", {{"Host", host}});
    ASSERT_TRUE(res) << host;
    EXPECT_EQ(res->status, 200) << host;
  }
}

}  // namespace
}  // namespace ordertrace::server

namespace ordertrace::server {
namespace {

// Stores a record of `order_id` that reached `statuses` one minute apart from kT0.
void StoreOrder(store::Store& store, const std::string& order_id, const std::string& partner,
                std::vector<std::string> statuses) {
  model::OrderRecord record;
  record.order_id = order_id;
  record.partner_id = partner;
  record.trace_id.bytes[0] = 1;
  uint64_t at = kT0;
  for (const std::string& status : statuses) {
    model::StatusReached reached;
    reached.status = status;
    reached.at_unix_nano = at;
    reached.service = "crm-api";
    record.statuses.push_back(reached);
    at += 60 * kSecond;
  }
  record.first_seen_unix_nano = kT0;
  record.last_seen_unix_nano = at;
  store::WriteSet writes;
  writes.orders.push_back({std::nullopt, record});
  ASSERT_TRUE(store.Write(writes).ok());
}

TEST_F(ApiServerGapsTest, CountsOpenGapsPerStageAndKindLargestFirst) {
  std::vector<gaps::Gap> puts = {MakeGap("o1", "SUBMITTED", kT0), MakeGap("o2", "SUBMITTED", kT0),
                                 MakeGap("o3", "SUBMITTED", kT0 + 1),
                                 MakeGap("o4", "PACKAGING", kT0),
                                 MakeGap("o5", "PACKAGING", kT0, /*open=*/false)};
  // o3's gap is o1's second, about its message: one order stuck twice at SUBMITTED.
  puts[2].order_id = "o1";
  puts[2].kind = "message_not_consumed";
  puts[2].id = "o1/message_not_consumed//m-1";
  puts[3].kind = "message_not_consumed";
  puts[3].id = "o4/message_not_consumed/PACKAGING";
  ASSERT_TRUE(history_.Apply(puts, {}).ok());
  auto [status, body] = Get("/api/v1/gaps/counts?state=open");
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["total"], 4);
  EXPECT_EQ(body["orders"], 3);
  EXPECT_EQ(body["complete"], true);
  EXPECT_EQ(body["by_stage"], json::parse(R"([{"stage":"SUBMITTED","count":3,"orders":2},
                                               {"stage":"PACKAGING","count":1,"orders":1}])"));
  EXPECT_EQ(body["by_kind"], json::parse(R"([{"kind":"message_not_consumed","count":2},
                                              {"kind":"missing_transition","count":2}])"));
  auto [all_status, all] = Get("/api/v1/gaps/counts?state=all&stage=PACKAGING");
  ASSERT_EQ(all_status, 200);
  EXPECT_EQ(all["total"], 2);
  EXPECT_EQ(Get("/api/v1/gaps/counts?state=stuck").first, 400);
}

TEST_F(ApiServerGapsTest, StuckOrdersAreThoseWithAnOpenGap) {
  StoreOrder(*store_, "o1", "partner-a", {"INITIATED", "SUBMITTED"});
  StoreOrder(*store_, "o2", "partner-a", {"INITIATED"});
  StoreOrder(*store_, "o3", "partner-a", {"INITIATED", "SUBMITTED"});
  ASSERT_TRUE(history_
                  .Apply({MakeGap("o1", "SUBMITTED", kT0), MakeGap("o3", "SUBMITTED", kT0, false),
                          MakeGap("gone", "SUBMITTED", kT0)},
                         {})
                  .ok());
  auto [status, body] = Get("/api/v1/orders?stuck=true");
  ASSERT_EQ(status, 200) << body;
  ASSERT_EQ(body["count"], 1);  // o3's gap is resolved; "gone" has no record
  EXPECT_EQ(body["orders"][0]["order_id"], "o1");
  EXPECT_EQ(Get("/api/v1/orders?stuck=true&status=INITIATED").second["count"], 0);
  EXPECT_EQ(Get("/api/v1/orders?stuck=false").second["count"], 3);
  EXPECT_EQ(Get("/api/v1/orders?stuck=maybe").first, 400);
}

TEST_F(ApiServerGapsTest, EachTimelineStageCarriesItsSlaForThePartner) {
  StoreOrder(*store_, "late", "partner-a", {"INITIATED", "SUBMITTED"});
  StoreOrder(*store_, "fine", "partner-b", {"INITIATED", "SUBMITTED"});
  auto [status, late] = Get("/api/v1/orders/late");
  ASSERT_EQ(status, 200) << late;
  ASSERT_EQ(late["timeline"].size(), 2u);
  EXPECT_EQ(late["timeline"][0]["sla_seconds"], 30.0);
  EXPECT_EQ(late["timeline"][0]["over_sla"], true);  // 60 s in INITIATED
  EXPECT_TRUE(late["timeline"][1]["sla_seconds"].is_null());
  EXPECT_EQ(late["timeline"][1]["over_sla"], false);
  json fine = Get("/api/v1/orders/fine").second;
  EXPECT_EQ(fine["timeline"][0]["sla_seconds"], 90.0);
  EXPECT_EQ(fine["timeline"][0]["over_sla"], false);
}

}  // namespace
}  // namespace ordertrace::server
