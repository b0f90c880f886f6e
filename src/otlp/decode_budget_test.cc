#include "otlp/decode_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/decode_estimate.h"
#include "otlp/json_codec.h"
#include "otlp/proto_codec.h"

namespace ordertrace::otlp {
namespace {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;
namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;

using ::testing::HasSubstr;

constexpr size_t kMiB = size_t{1} << 20;

TEST(DecodeBudgetTest, LeasesUpToTheTotalAndGivesBackOnDestruction) {
  DecodeBudget budget({.total_bytes = 100, .max_request_bytes = 80});
  absl::StatusOr<DecodeBudget::Lease> first = budget.Acquire(60);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->bytes(), 60u);
  absl::StatusOr<DecodeBudget::Lease> second = budget.Acquire(50);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("retry later"));
  EXPECT_TRUE(budget.Acquire(40).ok()) << "what fits is admitted (and given back at once)";
  EXPECT_EQ(budget.Stats().leased_bytes, 60u);
  { DecodeBudget::Lease moved = *std::move(first); }
  EXPECT_EQ(budget.Stats().leased_bytes, 0u);
  EXPECT_TRUE(budget.Acquire(80).ok());

  DecodeBudgetStats stats = budget.Stats();
  EXPECT_EQ(stats.requests_admitted, 3u);
  EXPECT_EQ(stats.refused_budget_full, 1u);
  EXPECT_EQ(stats.refused_too_large, 0u);
}

TEST(DecodeBudgetTest, RefusesARequestPastTheCeilingForGoodNamingTheFigures) {
  DecodeBudget budget({.total_bytes = 64 * kMiB, .max_request_bytes = 8 * kMiB});
  absl::StatusOr<DecodeBudget::Lease> lease = budget.Acquire(9 * kMiB);
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(lease.status().message(), HasSubstr("9 MiB"));
  EXPECT_THAT(lease.status().message(), HasSubstr("8 MiB"));
  EXPECT_EQ(budget.Stats().refused_too_large, 1u);
  EXPECT_EQ(budget.Stats().leased_bytes, 0u);
}

TEST(DecodeBudgetTest, MoveAssignmentGivesBackWhatTheTargetHeld) {
  DecodeBudget budget({.total_bytes = 100, .max_request_bytes = 100});
  DecodeBudget::Lease a = *budget.Acquire(30);
  DecodeBudget::Lease b = *budget.Acquire(20);
  a = std::move(b);
  EXPECT_EQ(budget.Stats().leased_bytes, 20u);
  EXPECT_EQ(a.bytes(), 20u);
}

TEST(DecodeBudgetTest, ConcurrentLeasesNeverExceedTheTotal) {
  constexpr size_t kTotal = 1000;
  DecodeBudget budget({.total_bytes = kTotal, .max_request_bytes = kTotal});
  std::atomic<size_t> held{0}, most_held{0};
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const size_t bytes = 100 + 50 * static_cast<size_t>((i + t) % 7);
        absl::StatusOr<DecodeBudget::Lease> lease = budget.Acquire(bytes);
        if (!lease.ok()) {
          refused.fetch_add(1);
          continue;
        }
        const size_t now = held.fetch_add(bytes) + bytes;
        size_t seen = most_held.load();
        while (now > seen && !most_held.compare_exchange_weak(seen, now)) {
        }
        held.fetch_sub(bytes);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(most_held.load(), kTotal);
  EXPECT_EQ(budget.Stats().leased_bytes, 0u);
  EXPECT_EQ(budget.Stats().refused_budget_full, refused.load());
}

// Bytes malloc holds now (small blocks and mmapped ones).
size_t MallocBytes() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// What DecodeProtobufRequest holds at its peak: libprotobuf's parsed request and the model
// converted from it, both alive at once, plus the body.
size_t MeasuredProtobufDecode(const std::string& body) {
  const size_t before = MallocBytes();
  google::protobuf::Arena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<pb_collector::ExportTraceServiceRequest>(&arena);
  EXPECT_TRUE(request->ParseFromString(body));
  DecodedRequest decoded = FromProto(*request);
  return MallocBytes() - before + body.size();
}

void AddAttribute(pb_trace::Span& span, const std::string& key, const std::string& value) {
  pb_common::KeyValue* kv = span.add_attributes();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// `spans` order spans as the services send them: ids, names, times, a dozen attributes.
std::string RealisticRequest(int spans) {
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::ResourceSpans* rs = request.add_resource_spans();
  pb_common::KeyValue* service = rs->mutable_resource()->add_attributes();
  service->set_key("service.name");
  service->mutable_value()->set_string_value("mes-api");
  pb_trace::ScopeSpans* scope = rs->add_scope_spans();
  scope->mutable_scope()->set_name("ordertrace-sdk");
  for (int i = 0; i < spans; ++i) {
    pb_trace::Span* span = scope->add_spans();
    span->set_trace_id(std::string(15, '\x11') + static_cast<char>(i % 200 + 1));
    span->set_span_id(std::string(7, '\x22') + static_cast<char>(i % 200 + 1));
    span->set_parent_span_id(std::string(8, '\x33'));
    span->set_name("mes.price.calc");
    span->set_kind(pb_trace::Span::SPAN_KIND_SERVER);
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ULL + i);
    span->set_end_time_unix_nano(1'700'000'000'050'000'000ULL + i);
    AddAttribute(*span, "order_id", "6f1c2a9e-0b7d-4c55-9e1a-3d2f8b7c4a" + std::to_string(i));
    AddAttribute(*span, "partner_id", "partner-17");
    AddAttribute(*span, "new_status", "PRICE_CALCULATED");
    AddAttribute(*span, "prev_status", "PRICE_CALCULATION_STARTED");
    AddAttribute(*span, "http.route", "/api/orders/{id}/price");
    pb_common::KeyValue* version = span->add_attributes();
    version->set_key("event_version");
    version->mutable_value()->set_int_value(i);
    span->mutable_status()->set_code(pb_trace::Status::STATUS_CODE_OK);
  }
  return request.SerializeAsString();
}

// One span with an attribute holding an array of `values` empty values (2 bytes each).
std::string EmptyValuesRequest(int values) {
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::Span* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x11'));
  span->set_span_id(std::string(8, '\x22'));
  span->set_name("bomb");
  pb_common::KeyValue* kv = span->add_attributes();
  kv->set_key("values");
  pb_common::ArrayValue* array = kv->mutable_value()->mutable_array_value();
  for (int i = 0; i < values; ++i) array->add_values();
  return request.SerializeAsString();
}

TEST(DecodeEstimateTest, ProtobufEstimateCoversWhatDecodingHoldsWithoutInflatingIt) {
  for (const std::string& body : {RealisticRequest(2000), EmptyValuesRequest(200'000)}) {
    const size_t measured = MeasuredProtobufDecode(body);
    const size_t estimated = EstimateProtobufDecodeBytes(body);
    std::printf("body %zu bytes: decode measured %zu, estimated %zu\n", body.size(), measured,
                estimated);
    EXPECT_GE(estimated, measured * 9 / 10) << "body of " << body.size() << " bytes";
    EXPECT_LE(estimated, measured * 3) << "body of " << body.size() << " bytes";
  }
}

TEST(DecodeEstimateTest, AnArrayOfEmptyValuesIsEstimatedByItsValuesNotItsBytes) {
  const std::string body = EmptyValuesRequest(1'000'000);
  ASSERT_LT(body.size(), 3 * kMiB);
  // Each value is a libprotobuf object and a model one: far more than its 2 bytes.
  EXPECT_GT(EstimateProtobufDecodeBytes(body), 100 * kMiB);
  DecodeBudget budget({.total_bytes = 512 * kMiB, .max_request_bytes = 64 * kMiB});
  EXPECT_EQ(budget.AdmitProtobuf(body).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(DecodeEstimateTest, MalformedBodiesAreCountedUpToWhereTheyBreak) {
  const std::string body = EmptyValuesRequest(100'000);
  const size_t whole = EstimateProtobufDecodeBytes(body);
  const std::string half = body.substr(0, body.size() / 2);
  const size_t truncated = EstimateProtobufDecodeBytes(half);
  EXPECT_LT(truncated, whole);
  EXPECT_LT(EstimateProtobufDecodeBytes(""), 100u);
  // A group (wire type 3) is skipped to its end, and what follows it is still counted.
  std::string with_group = std::string("\x0b\x08\x01\x0c", 4) + body;
  EXPECT_GE(EstimateProtobufDecodeBytes(with_group), whole);
}

// What DecodeJsonRequest holds at its peak: the parsed document and the model built from it.
size_t MeasuredJsonDecode(const std::string& body) {
  const size_t before = MallocBytes();
  nlohmann::json document = nlohmann::json::parse(body);
  const size_t document_bytes = MallocBytes() - before;
  const size_t before_model = MallocBytes();
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(body);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return document_bytes + (MallocBytes() - before_model) + body.size();
}

TEST(DecodeEstimateTest, JsonEstimateCoversWhatDecodingHoldsWithoutInflatingIt) {
  std::string spans;
  for (int i = 0; i < 2000; ++i) {
    if (i > 0) spans += ",";
    spans += R"({"traceId":"11111111111111111111111111111111","spanId":"22222222222222)" +
             std::to_string(10 + i % 90) +
             R"(","name":"mes.price.calc","startTimeUnixNano":"1700000000000000000",)"
             R"("endTimeUnixNano":"1700000000050000000","attributes":[)"
             R"({"key":"order_id","value":{"stringValue":"6f1c2a9e-0b7d-4c55-9e1a-3d2f8b7c4a01"}},)"
             R"({"key":"new_status","value":{"stringValue":"PRICE_CALCULATED"}},)"
             R"({"key":"event_version","value":{"intValue":"4"}}]})";
  }
  std::string empty_values;
  for (int i = 0; i < 200'000; ++i) empty_values += i == 0 ? "{}" : ",{}";
  const std::string bomb =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"11111111111111111111111111111111",)"
      R"("spanId":"2222222222222222","name":"bomb","attributes":[{"key":"v","value":)"
      R"({"arrayValue":{"values":[)" +
      empty_values + "]}}}]}]}]}]}";
  for (const std::string& body :
       {R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + spans + "]}]}]}", bomb}) {
    const size_t measured = MeasuredJsonDecode(body);
    const size_t estimated = EstimateJsonDecodeBytes(body);
    std::printf("body %zu bytes: decode measured %zu, estimated %zu\n", body.size(), measured,
                estimated);
    EXPECT_GE(estimated, measured * 9 / 10) << "body of " << body.size() << " bytes";
    EXPECT_LE(estimated, measured * 3) << "body of " << body.size() << " bytes";
  }
}

}  // namespace
}  // namespace ordertrace::otlp
