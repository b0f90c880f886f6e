#include "lifecycle/derived_attributes.h"

#include <algorithm>

#include "model/attribute_names.h"

namespace ordertrace::lifecycle {
namespace {

const model::StatusReached* Reached(const model::OrderRecord& record, std::string_view status) {
  for (const model::StatusReached& s : record.statuses) {
    if (s.status == status) return &s;
  }
  return nullptr;
}

std::string_view StringAttr(const model::Span& span, std::string_view key) {
  const model::AnyValue* value = model::FindAttribute(span.attributes, key);
  return value != nullptr && value->type == model::AnyValue::Type::kString
             ? std::string_view(value->string_value)
             : std::string_view();
}

double Seconds(uint64_t from, uint64_t to) { return static_cast<double>(to - from) / 1e9; }

void AddIfAbsent(model::Span& span, const char* key, double seconds) {
  if (model::FindAttribute(span.attributes, key) != nullptr) return;
  span.attributes.push_back(model::KeyValue{key, model::AnyValue::Double(seconds)});
}

}  // namespace

std::optional<double> StageSeconds(const model::OrderRecord& record, std::string_view from,
                                   std::string_view to) {
  const model::StatusReached* a = Reached(record, from);
  const model::StatusReached* b = Reached(record, to);
  if (a == nullptr || b == nullptr || b->at_unix_nano < a->at_unix_nano) return std::nullopt;
  return Seconds(a->at_unix_nano, b->at_unix_nano);
}

bool MayDeriveAttributes(const model::Span& span, std::string_view price_calc_span) {
  return span.kind == model::SpanKind::kConsumer ||
         (!price_calc_span.empty() && span.name == price_calc_span) ||
         model::FindAttribute(span.attributes, model::kNewStatusKey) != nullptr;
}

void AddDerivedAttributes(model::Span& span, const model::OrderRecord& record,
                          std::string_view price_calc_span) {
  bool ended = span.end_time_unix_nano >= span.start_time_unix_nano;
  // Room for every attribute added below, so that adding them moves no attribute and the views
  // taken here stay valid (copying them was a visible share of the writer's time).
  constexpr size_t kMostAdded = 4;
  span.attributes.reserve(span.attributes.size() + kMostAdded);
  const std::string_view new_status = StringAttr(span, model::kNewStatusKey);
  if (!new_status.empty() && span.status.code != model::StatusCode::kError) {
    if (ended) {
      AddIfAbsent(span, kStatusTransitionLatencyKey,
                  Seconds(span.start_time_unix_nano, span.end_time_unix_nano));
    }
    const model::StatusReached* reached = Reached(record, new_status);
    const std::string_view prev = StringAttr(span, model::kPrevStatusKey);
    if (reached != nullptr && reached->span_id == span.span_id && !prev.empty()) {
      // StageSeconds(record, prev, new_status), with the end already found.
      const model::StatusReached* from = Reached(record, prev);
      if (from != nullptr && from->at_unix_nano <= reached->at_unix_nano) {
        AddIfAbsent(span, kStageDurationKey, Seconds(from->at_unix_nano, reached->at_unix_nano));
      }
    }
  }
  if (span.kind == model::SpanKind::kConsumer) {
    std::string_view message_id = StringAttr(span, model::kMessageIdKey);
    if (message_id.empty()) message_id = StringAttr(span, model::kMessagingMessageIdKey);
    if (!message_id.empty()) {
      auto hop =
          std::find_if(record.messages.begin(), record.messages.end(),
                       [&](const model::MessageHop& m) { return m.message_id == message_id; });
      if (hop != record.messages.end() && hop->published_at_unix_nano != 0 &&
          span.start_time_unix_nano >= hop->published_at_unix_nano) {
        AddIfAbsent(span, kPublishToConsumeLatencyKey,
                    Seconds(hop->published_at_unix_nano, span.start_time_unix_nano));
      }
    }
  }
  if (!price_calc_span.empty() && span.name == price_calc_span && ended) {
    AddIfAbsent(span, kCalcDurationKey,
                Seconds(span.start_time_unix_nano, span.end_time_unix_nano));
  }
}

}  // namespace ordertrace::lifecycle
