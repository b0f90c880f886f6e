#include "sdk/tracer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace ordertrace::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kStart = 1'700'000'000'000'000'000ULL;

// Keeps every span it is given; counts shutdowns in a counter the test owns.
class RecordingProcessor final : public SpanProcessor {
 public:
  explicit RecordingProcessor(std::atomic<int>* shutdowns) : shutdowns_(shutdowns) {}
  void OnEnd(SpanData&& span) override {
    std::lock_guard<std::mutex> lock(mu_);
    spans_.push_back(std::move(span));
  }
  absl::Status ForceFlush(std::chrono::milliseconds) override { return absl::OkStatus(); }
  absl::Status Shutdown(std::chrono::milliseconds) override {
    ++*shutdowns_;
    return absl::OkStatus();
  }
  std::vector<SpanData> spans() const {
    std::lock_guard<std::mutex> lock(mu_);
    return spans_;
  }

 private:
  std::atomic<int>* const shutdowns_;
  mutable std::mutex mu_;
  std::vector<SpanData> spans_;
};

std::string Attr(const base::Attributes& attributes, std::string_view key) {
  const base::AnyValue* value = base::FindAttribute(attributes, key);
  return value == nullptr ? "<missing>" : value->AsText();
}

class TracerTest : public ::testing::Test {
 protected:
  explicit TracerTest(double ratio = 1.0) {
    auto processor = std::make_unique<RecordingProcessor>(&shutdowns_);
    processor_ = processor.get();
    TracerProviderOptions options;
    options.resource =
        MakeResource("shop-api", {{"deployment.environment", base::AnyValue::String("test")}});
    options.clock = &clock_;
    options.sampler = MakeParentBasedTraceIdRatioSampler(ratio);
    options.limits.max_attributes = 8;
    options.limits.max_events = 2;
    options.limits.max_links = 1;
    provider_ = std::make_unique<TracerProvider>(std::move(options), std::move(processor));
  }

  base::ManualClock clock_{kStart};
  std::atomic<int> shutdowns_{0};
  RecordingProcessor* processor_;
  std::unique_ptr<TracerProvider> provider_;
};

TEST_F(TracerTest, RootSpanHasNewIdsTimesAndResource) {
  Tracer tracer = provider_->GetTracer("shop", "1.2");
  std::unique_ptr<Span> span = tracer.StartSpan("shop.submit");
  const SpanContext context = span->GetContext();
  EXPECT_TRUE(context.IsValid());
  EXPECT_TRUE(context.IsSampled());
  EXPECT_FALSE(context.is_remote);
  EXPECT_TRUE(span->IsRecording());
  clock_.Advance(250);
  span->End();
  EXPECT_FALSE(span->IsRecording());

  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1));
  const base::Span& s = spans[0].span;
  EXPECT_EQ(s.name, "shop.submit");
  EXPECT_EQ(s.trace_id, context.trace_id);
  EXPECT_EQ(s.span_id, context.span_id);
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_EQ(s.kind, base::SpanKind::kInternal);
  EXPECT_EQ(s.start_time_unix_nano, kStart);
  EXPECT_EQ(s.end_time_unix_nano, kStart + 250);
  EXPECT_EQ(s.flags, 0x101u);  // sampled; parent's remoteness known (no parent: not remote)
  EXPECT_EQ(base::ServiceName(*spans[0].resource), "shop-api");
  EXPECT_EQ(Attr(spans[0].resource->attributes, "deployment.environment"), "test");
  EXPECT_EQ(spans[0].scope->name, "shop");
  EXPECT_EQ(spans[0].scope->version, "1.2");
}

TEST_F(TracerTest, ChildJoinsParentsTraceAndInheritsTracestate) {
  Tracer tracer = provider_->GetTracer("shop");
  SpanContext remote =
      *ParseTraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x");
  StartSpanOptions options;
  options.parent = remote;
  options.kind = base::SpanKind::kServer;
  std::unique_ptr<Span> child = tracer.StartSpan("shop.init", options);
  EXPECT_EQ(child->GetContext().trace_id, remote.trace_id);
  EXPECT_NE(child->GetContext().span_id, remote.span_id);
  EXPECT_EQ(child->GetContext().trace_state.ToHeader(), "vendor=x");
  child->End();

  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1));
  const base::Span& s = spans[0].span;
  EXPECT_EQ(s.parent_span_id, remote.span_id);
  EXPECT_EQ(s.trace_state, "vendor=x");
  EXPECT_EQ(s.kind, base::SpanKind::kServer);
  EXPECT_EQ(s.flags, 0x301u);  // sampled, parent remote
}

TEST_F(TracerTest, AttributesEventsStatusAndLimits) {
  Tracer tracer = provider_->GetTracer("mes");
  StartSpanOptions options;
  options.attributes = {{"order_id", base::AnyValue::String("A-1")}};
  options.start_time_unix_nano = kStart - 1000;
  std::unique_ptr<Span> span = tracer.StartSpan("mes.price.calc", options);
  span->SetAttribute("polygon_count", int64_t{120000});
  span->SetAttribute("complexity_class", "high");
  span->SetAttribute("gap_detected", false);
  span->SetAttribute("ratio", 0.5);
  span->SetAttribute("order_id", std::string_view("A-2"));  // replaces, does not add
  for (int i = 0; i < 10; ++i) span->SetAttribute("extra" + std::to_string(i), i);
  span->AddEvent("phase.mesh", {{"step", base::AnyValue::Int(1)}}, kStart + 5);
  span->AddEvent("phase.material");
  span->AddEvent("over.the.limit");
  span->SetStatus(base::StatusCode::kUnset);  // ignored
  span->SetStatus(base::StatusCode::kOk, "ignored description");
  span->SetStatus(base::StatusCode::kError, "too late: OK is final");
  span->End(kStart + 99);
  span->SetAttribute("after_end", true);  // ignored
  span->End(kStart + 500);                // ignored

  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1));
  const base::Span& s = spans[0].span;
  EXPECT_EQ(s.start_time_unix_nano, kStart - 1000);
  EXPECT_EQ(s.end_time_unix_nano, kStart + 99);
  EXPECT_EQ(Attr(s.attributes, "order_id"), "A-2");
  EXPECT_EQ(Attr(s.attributes, "polygon_count"), "120000");
  EXPECT_EQ(Attr(s.attributes, "complexity_class"), "high");
  EXPECT_EQ(Attr(s.attributes, "gap_detected"), "false");
  EXPECT_EQ(Attr(s.attributes, "ratio"), "0.5");
  EXPECT_THAT(s.attributes, SizeIs(8));  // the limit
  EXPECT_EQ(s.dropped_attributes_count, 7u);
  EXPECT_EQ(Attr(s.attributes, "after_end"), "<missing>");
  ASSERT_THAT(s.events, SizeIs(2));
  EXPECT_EQ(s.events[0].name, "phase.mesh");
  EXPECT_EQ(s.events[0].time_unix_nano, kStart + 5);
  EXPECT_EQ(Attr(s.events[0].attributes, "step"), "1");
  EXPECT_EQ(s.events[1].time_unix_nano, kStart);
  EXPECT_EQ(s.dropped_events_count, 1u);
  EXPECT_EQ(s.status.code, base::StatusCode::kOk);
  EXPECT_EQ(s.status.message, "");
}

TEST_F(TracerTest, RecordErrorSetsDesignAttributesEventAndErrorStatus) {
  std::unique_ptr<Span> span = provider_->GetTracer("crm").StartSpan("crm.approve.manufacturing");
  span->RecordError("DB_TIMEOUT", "approval insert timed out");
  span->End();
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1));
  const base::Span& s = spans[0].span;
  EXPECT_EQ(Attr(s.attributes, "error_code"), "DB_TIMEOUT");
  EXPECT_EQ(Attr(s.attributes, "error_message"), "approval insert timed out");
  EXPECT_EQ(s.status.code, base::StatusCode::kError);
  EXPECT_EQ(s.status.message, "approval insert timed out");
  ASSERT_THAT(s.events, SizeIs(1));
  EXPECT_EQ(s.events[0].name, "exception");
  EXPECT_EQ(Attr(s.events[0].attributes, "exception.type"), "DB_TIMEOUT");
}

TEST_F(TracerTest, LinksKeepValidContextsUpToTheLimit) {
  SpanContext producer =
      *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  SpanContext other = producer;
  other.span_id.bytes[0] = 0x77;
  StartSpanOptions options;
  options.links = {SpanLink{SpanContext{}, {}},  // invalid: ignored, not counted
                   SpanLink{producer, {{"why", base::AnyValue::String("rabbitmq")}}},
                   SpanLink{other, {}}};
  provider_->GetTracer("mes").StartSpan("mq.consume.price", options)->End();
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1));
  const base::Span& s = spans[0].span;
  ASSERT_THAT(s.links, SizeIs(1));
  EXPECT_EQ(s.links[0].trace_id, producer.trace_id);
  EXPECT_EQ(s.links[0].span_id, producer.span_id);
  EXPECT_EQ(s.links[0].flags, 0x301u);
  EXPECT_EQ(Attr(s.links[0].attributes, "why"), "rabbitmq");
  EXPECT_EQ(s.dropped_links_count, 1u);
  EXPECT_FALSE(s.parent_span_id.IsValid());  // a link is not a parent
}

TEST_F(TracerTest, DestructorEndsTheSpan) {
  { auto span = provider_->GetTracer("shop").StartSpan("shop.init"); }
  EXPECT_THAT(processor_->spans(), SizeIs(1));
}

TEST_F(TracerTest, SpansFromManyThreadsHaveDistinctIds) {
  Tracer tracer = provider_->GetTracer("shop");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) tracer.StartSpan("s")->End();
    });
  }
  for (auto& t : threads) t.join();
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_THAT(spans, SizeIs(1000));
  std::set<base::SpanId> span_ids;
  std::set<base::TraceId> trace_ids;
  for (const SpanData& d : spans) {
    span_ids.insert(d.span.span_id);
    trace_ids.insert(d.span.trace_id);
  }
  EXPECT_THAT(span_ids, SizeIs(1000));
  EXPECT_THAT(trace_ids, SizeIs(1000));
}

TEST_F(TracerTest, ShutdownReachesTheProcessorOnce) {
  EXPECT_TRUE(provider_->Shutdown(std::chrono::seconds(1)).ok());
  EXPECT_TRUE(provider_->Shutdown(std::chrono::seconds(1)).ok());
  provider_.reset();
  EXPECT_EQ(shutdowns_.load(), 1);
}

class UnsampledTracerTest : public TracerTest {
 protected:
  UnsampledTracerTest() : TracerTest(0.0) {}
};

TEST_F(UnsampledTracerTest, DroppedSpanPropagatesButRecordsNothing) {
  Tracer tracer = provider_->GetTracer("shop");
  std::unique_ptr<Span> root = tracer.StartSpan("shop.submit");
  EXPECT_TRUE(root->GetContext().IsValid());
  EXPECT_FALSE(root->GetContext().IsSampled());
  EXPECT_FALSE(root->IsRecording());
  StartSpanOptions options;
  options.parent = root->GetContext();
  std::unique_ptr<Span> child = tracer.StartSpan("child", options);
  EXPECT_EQ(child->GetContext().trace_id, root->GetContext().trace_id);
  EXPECT_FALSE(child->GetContext().IsSampled());
  child->SetAttribute("k", "v");
  child->End();
  root->End();
  EXPECT_THAT(processor_->spans(), IsEmpty());
}

TEST_F(UnsampledTracerTest, SampledRemoteParentWinsOverRatioZero) {
  StartSpanOptions options;
  options.parent = *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  provider_->GetTracer("mes").StartSpan("mes.packaging", options)->End();
  EXPECT_THAT(processor_->spans(), SizeIs(1));
}

}  // namespace
}  // namespace ordertrace::sdk
