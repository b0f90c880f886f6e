#include "query/gap_marks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ordertrace::query {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

base::KeyValue Str(std::string key, std::string value) {
  return base::KeyValue{std::move(key), base::AnyValue::String(std::move(value))};
}

base::Span SpanOf(uint8_t id, uint8_t parent, const std::string& order_id) {
  base::Span span;
  span.trace_id.bytes[15] = 1;
  span.span_id.bytes[7] = id;
  if (parent != 0) span.parent_span_id.bytes[7] = parent;
  span.name = "span-" + std::to_string(id);
  if (!order_id.empty()) span.attributes = {Str("order_id", order_id)};
  return span;
}

// Two roots (orders A-1 and B-2), a child of A-1, and a root without an order.
base::TraceBatch Trace() {
  base::ScopeSpans ss;
  ss.spans = {SpanOf(1, 0, "A-1"), SpanOf(2, 1, "A-1"), SpanOf(3, 0, "B-2"), SpanOf(4, 0, "")};
  base::ResourceSpans rs;
  rs.resource.attributes = {Str("service.name", "shop-api")};
  rs.scope_spans.push_back(std::move(ss));
  base::TraceBatch batch;
  batch.resource_spans.push_back(std::move(rs));
  return batch;
}

std::vector<std::string> Marked(const base::TraceBatch& trace) {
  std::vector<std::string> names;
  for (const base::Span& span : trace.resource_spans[0].scope_spans[0].spans) {
    for (const base::KeyValue& attribute : span.attributes) {
      if (attribute.key == "gap_detected" && attribute.value.bool_value) names.push_back(span.name);
    }
  }
  return names;
}

TEST(MarkGapDetectedTest, MarksOnlyRootSpansOfOrdersThatHadAGap) {
  base::TraceBatch trace = Trace();
  std::vector<std::string> asked;
  absl::Status marked = MarkGapDetected(trace, [&](const std::string& order_id) {
    asked.push_back(order_id);
    return absl::StatusOr<bool>(order_id == "A-1");
  });
  ASSERT_TRUE(marked.ok()) << marked;
  EXPECT_THAT(Marked(trace), ElementsAre("span-1"));
  // Only roots that name an order are looked up.
  EXPECT_THAT(asked, ElementsAre("A-1", "B-2"));
}

TEST(MarkGapDetectedTest, TheOrderMayComeFromTheResource) {
  base::TraceBatch trace = Trace();
  trace.resource_spans[0].resource.attributes.push_back(Str("order_id", "C-3"));
  absl::Status marked = MarkGapDetected(
      trace, [](const std::string& order_id) { return absl::StatusOr<bool>(order_id == "C-3"); });
  ASSERT_TRUE(marked.ok()) << marked;
  EXPECT_THAT(Marked(trace), ElementsAre("span-4"));
}

TEST(MarkGapDetectedTest, AFailedLookupIsReturned) {
  base::TraceBatch trace = Trace();
  absl::Status marked = MarkGapDetected(trace, [](const std::string&) -> absl::StatusOr<bool> {
    return absl::UnavailableError("store down");
  });
  EXPECT_EQ(marked.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Marked(trace), IsEmpty());
}

}  // namespace
}  // namespace ordertrace::query
