#include "lifecycle/derived_attributes.h"

#include <algorithm>
#include <array>

#include "base/attribute_names.h"

namespace ordertrace::lifecycle {
namespace {

const model::StatusReached* Reached(const model::OrderRecord& record, std::string_view status) {
  for (const model::StatusReached& s : record.statuses) {
    if (s.status == status) return &s;
  }
  return nullptr;
}

std::string_view StringAttr(const base::Span& span, std::string_view key) {
  const base::AnyValue* value = base::FindAttribute(span.attributes, key);
  return value != nullptr && value->type == base::AnyValue::Type::kString
             ? std::string_view(value->string_value)
             : std::string_view();
}

double Seconds(uint64_t from, uint64_t to) { return static_cast<double>(to - from) / 1e9; }

// The attributes AddDerivedAttributes adds to one span, gathered before any is added: the span's
// own attributes are read in place meanwhile (adding may move them), and the span's attribute
// list grows once, by exactly what is added.
class Additions {
 public:
  explicit Additions(base::Span& span) : span_(span) {}
  void AddIfAbsent(const char* key, double seconds) {
    if (base::FindAttribute(span_.attributes, key) != nullptr) return;
    added_[count_++] = Added{key, seconds};
  }
  void Apply() {
    if (count_ == 0) return;
    span_.attributes.reserve(span_.attributes.size() + count_);
    for (size_t i = 0; i < count_; ++i) {
      span_.attributes.push_back(
          base::KeyValue{added_[i].key, base::AnyValue::Double(added_[i].seconds)});
    }
  }

 private:
  struct Added {
    const char* key;
    double seconds;
  };
  base::Span& span_;
  std::array<Added, 4> added_;  // one per derived attribute
  size_t count_ = 0;
};

}  // namespace

std::optional<double> StageSeconds(const model::OrderRecord& record, std::string_view from,
                                   const model::StatusReached& to) {
  const model::StatusReached* a = Reached(record, from);
  if (a == nullptr || to.at_unix_nano < a->at_unix_nano) return std::nullopt;
  return Seconds(a->at_unix_nano, to.at_unix_nano);
}

bool MayDeriveAttributes(const base::Span& span, std::string_view price_calc_span) {
  return span.kind == base::SpanKind::kConsumer ||
         (!price_calc_span.empty() && span.name == price_calc_span) ||
         base::FindAttribute(span.attributes, base::kNewStatusKey) != nullptr;
}

void AddDerivedAttributes(base::Span& span, const model::OrderRecord& record,
                          std::string_view price_calc_span) {
  bool ended = span.end_time_unix_nano >= span.start_time_unix_nano;
  Additions additions(span);
  const std::string_view new_status = StringAttr(span, base::kNewStatusKey);
  if (!new_status.empty() && span.status.code != base::StatusCode::kError) {
    if (ended) {
      additions.AddIfAbsent(kStatusTransitionLatencyKey,
                            Seconds(span.start_time_unix_nano, span.end_time_unix_nano));
    }
    const model::StatusReached* reached = Reached(record, new_status);
    const std::string_view prev = StringAttr(span, base::kPrevStatusKey);
    if (reached != nullptr && reached->span_id == span.span_id && !prev.empty()) {
      if (std::optional<double> stage = StageSeconds(record, prev, *reached)) {
        additions.AddIfAbsent(kStageDurationKey, *stage);
      }
    }
  }
  if (span.kind == base::SpanKind::kConsumer) {
    std::string_view message_id = StringAttr(span, base::kMessageIdKey);
    if (message_id.empty()) message_id = StringAttr(span, base::kMessagingMessageIdKey);
    if (!message_id.empty()) {
      auto hop =
          std::find_if(record.messages.begin(), record.messages.end(),
                       [&](const model::MessageHop& m) { return m.message_id == message_id; });
      if (hop != record.messages.end() && hop->published_at_unix_nano != 0 &&
          span.start_time_unix_nano >= hop->published_at_unix_nano) {
        additions.AddIfAbsent(kPublishToConsumeLatencyKey,
                              Seconds(hop->published_at_unix_nano, span.start_time_unix_nano));
      }
    }
  }
  if (!price_calc_span.empty() && span.name == price_calc_span && ended) {
    additions.AddIfAbsent(kCalcDurationKey,
                          Seconds(span.start_time_unix_nano, span.end_time_unix_nano));
  }
  additions.Apply();
}

}  // namespace ordertrace::lifecycle
