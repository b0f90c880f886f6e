#include "lifecycle/order_record_builder.h"

#include <algorithm>
#include <charconv>
#include <tuple>

namespace ordertrace::lifecycle {
namespace {

using base::AnyValue;
using base::Resource;
using base::Span;
using model::MessageHop;
using model::Operation;
using model::OrderRecord;
using model::StatusReached;

// The text of attribute `key` on the span, else on the resource; empty when absent.
std::string Attr(const Span& span, const Resource& resource, std::string_view key) {
  const AnyValue* v = base::FindAttribute(span.attributes, key);
  if (v == nullptr) v = base::FindAttribute(resource.attributes, key);
  return v == nullptr ? std::string() : v->AsText();
}

// An integer attribute, accepting ints and numeric strings; `fallback` otherwise.
int64_t IntAttr(const Span& span, std::string_view key, int64_t fallback) {
  const AnyValue* v = base::FindAttribute(span.attributes, key);
  if (v == nullptr) return fallback;
  if (v->type == AnyValue::Type::kInt) return v->int_value;
  if (v->type == AnyValue::Type::kDouble) return static_cast<int64_t>(v->double_value);
  if (v->type == AnyValue::Type::kString) {
    int64_t out = 0;
    const std::string& s = v->string_value;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size()) return out;
  }
  return fallback;
}

std::string FirstNonEmpty(std::string a, std::string b) { return a.empty() ? b : a; }

// Room reserved for an order's statuses and messages when the first one arrives.
constexpr size_t kTypicalStatusCount = 12;
constexpr size_t kTypicalMessageCount = 4;

// Orders transitions: event_version first (producers that number their events are
// believed over clocks), then time, then the status name so that ties are deterministic.
auto TransitionKey(const StatusReached& s) {
  return std::tie(s.event_version, s.at_unix_nano, s.status);
}

// Orders two reports of a status: the earlier first, then by span id and, for one span id told
// twice with other content (a broken or hostile exporter), by that content, so that which one
// the record keeps never depends on which came first.
auto ReportKey(const StatusReached& s) {
  return std::tie(s.at_unix_nano, s.span_id, s.event_version, s.status, s.prev_status, s.service,
                  s.span_name);
}

// Keeps a report of a status already reached: one per (status, prev_status, event_version),
// the earliest (time, then span id), so that retries of the same step collapse and cannot crowd
// out a real return (SHIPPED again after CLOSED). Both the set of such keys and each key's
// earliest report only grow or shrink to a minimum, and past kMaxRevisits the smallest keys
// stay: none of it depends on arrival order.
void AddRevisit(StatusReached reached, OrderRecord& record) {
  auto& revisits = record.revisits;
  auto key = [](const StatusReached& s) {
    return std::tie(s.event_version, s.status, s.prev_status);
  };
  auto same = std::find_if(revisits.begin(), revisits.end(),
                           [&](const StatusReached& known) { return key(known) == key(reached); });
  if (same != revisits.end()) {
    if (ReportKey(reached) < ReportKey(*same)) {
      *same = std::move(reached);  // same key: the order of the list holds
    }
    return;
  }
  auto at = std::upper_bound(
      revisits.begin(), revisits.end(), reached,
      [&](const StatusReached& a, const StatusReached& b) { return key(a) < key(b); });
  revisits.insert(at, std::move(reached));
  if (revisits.size() > OrderRecord::kMaxRevisits) revisits.pop_back();
}

void ApplyTransition(const Span& span, const Resource& resource, const std::string& service,
                     OrderRecord& record) {
  StatusReached reached;
  reached.status = Attr(span, resource, kNewStatusKey);
  reached.prev_status = Attr(span, resource, kPrevStatusKey);
  reached.at_unix_nano = span.end_time_unix_nano;
  reached.event_version = IntAttr(span, kEventVersionKey, -1);
  reached.service = service;
  reached.span_name = span.name;
  reached.span_id = span.span_id;

  auto& statuses = record.statuses;
  auto it = std::find_if(statuses.begin(), statuses.end(),
                         [&](const StatusReached& s) { return s.status == reached.status; });
  if (it != statuses.end()) {
    // The same status told twice: the earliest report is the status's, the other one goes to
    // the revisits. The reports are a set: one told again unchanged adds nothing. A span told
    // again with other content is another report (it was "one span, its smallest report"
    // before, which dropped reports in an order that depended on arrival: found by
    // fuzz/order_fold_fuzzer). So the revisits are the per-key earliest of every report but the
    // status's first, a set that only grows whatever the order, which keeps the cap exact.
    const auto incoming = ReportKey(reached);
    const auto first = ReportKey(*it);
    if (incoming == first) return;
    if (incoming > first) return AddRevisit(std::move(reached), record);
    AddRevisit(std::move(*it), record);
    statuses.erase(it);
  }
  // Kept sorted by inserting in place (sorting the whole list per transition was a visible
  // share of ingest CPU); a lifecycle's statuses fit in one allocation.
  if (statuses.capacity() == 0) statuses.reserve(kTypicalStatusCount);
  auto at = std::upper_bound(statuses.begin(), statuses.end(), reached,
                             [](const StatusReached& a, const StatusReached& b) {
                               return TransitionKey(a) < TransitionKey(b);
                             });
  statuses.insert(at, std::move(reached));
}

// Orders operations: the later first wins, by end time, then span id, then (one span id told
// twice with other content) the content, so the slot never depends on arrival order.
auto OperationKey(const Operation& op) {
  return std::tie(op.at_unix_nano, op.span_id, op.trace_id, op.span_name, op.service, op.error_code,
                  op.error_message, op.reported_status, op.attempted_status);
}

enum class Replaces { kNo, kYes, kCompareContent };

// Whether a span ending at `at` with id `span_id` takes `slot`: yes when later, no when
// earlier; the same time and id needs its content compared.
Replaces ReplacesSlot(const std::optional<Operation>& slot, uint64_t at,
                      const base::SpanId& span_id) {
  if (!slot) return Replaces::kYes;
  auto incoming = std::tie(at, span_id);
  auto held = std::tie(slot->at_unix_nano, slot->span_id);
  if (incoming == held) return Replaces::kCompareContent;
  return incoming > held ? Replaces::kYes : Replaces::kNo;
}

// The span attributes ApplySpan decides on, found in one pass over the span's attributes:
// it runs for every span and most of these keys are absent from most spans, so looking each up
// on its own scanned the attributes (and the resource's) several times per span.
struct DecidingAttributes {
  const AnyValue* partner_id = nullptr;
  const AnyValue* error_code = nullptr;
  const AnyValue* new_status = nullptr;
  bool messaging = false;  // messaging.system, message_id or messaging.message.id is set
};

DecidingAttributes FindDecidingAttributes(const Span& span) {
  DecidingAttributes found;
  // The first of duplicate keys counts, as in base::FindAttribute.
  auto take = [](const AnyValue*& slot, const AnyValue& value) {
    if (slot == nullptr) slot = &value;
  };
  // As string_views, so that a comparison checks the length first (std::string against a
  // C string compares the bytes first).
  constexpr std::string_view kPartner = kPartnerIdKey, kErrorCode = kErrorCodeKey,
                             kNewStatus = kNewStatusKey, kSystem = base::kMessagingSystemKey,
                             kMessageId = base::kMessageIdKey,
                             kMessagingMessageId = base::kMessagingMessageIdKey;
  for (const base::KeyValue& kv : span.attributes) {
    const std::string_view key = kv.key;
    if (key == kPartner) {
      take(found.partner_id, kv.value);
    } else if (key == kErrorCode) {
      take(found.error_code, kv.value);
    } else if (key == kNewStatus) {
      take(found.new_status, kv.value);
    } else if (key == kSystem || key == kMessageId || key == kMessagingMessageId) {
      found.messaging = true;
    }
  }
  return found;
}

// `on_span` (from FindDecidingAttributes) when set, else the resource's attribute `key`.
const AnyValue* SpanOrResource(const AnyValue* on_span, const Resource& resource,
                               std::string_view key) {
  return on_span != nullptr ? on_span : base::FindAttribute(resource.attributes, key);
}

// Whether `v` is set with non-empty text.
bool HasText(const AnyValue* v) {
  if (v == nullptr) return false;
  switch (v->type) {
    case AnyValue::Type::kString:
      return !v->string_value.empty();
    case AnyValue::Type::kBool:
    case AnyValue::Type::kInt:
    case AnyValue::Type::kDouble:
      return true;
    default:
      return false;
  }
}

void ApplyMessage(const Span& span, const Resource& resource, OrderRecord& record) {
  std::string message_id = FirstNonEmpty(Attr(span, resource, base::kMessageIdKey),
                                         Attr(span, resource, base::kMessagingMessageIdKey));
  if (message_id.empty()) return;
  bool consumer = span.kind == base::SpanKind::kConsumer;
  bool producer = span.kind == base::SpanKind::kProducer;
  if (!consumer && !producer) {
    std::string op = Attr(span, resource, base::kMessagingOperationKey);
    if (op.empty()) op = Attr(span, resource, base::kMessagingOperationTypeKey);
    consumer = op == "receive" || op == "process" || op == "deliver";
    producer = op == "publish" || op == "send" || op == "create";
  }
  if (!consumer && !producer) return;

  auto& messages = record.messages;
  auto it = std::find_if(messages.begin(), messages.end(),
                         [&](const MessageHop& m) { return m.message_id == message_id; });
  MessageHop hop;
  if (it == messages.end()) {
    hop.message_id = std::move(message_id);
  } else {
    hop = std::move(*it);
    messages.erase(it);
  }
  std::string queue = FirstNonEmpty(Attr(span, resource, base::kQueueKey),
                                    Attr(span, resource, base::kMessagingDestinationNameKey));
  // The smallest name seen wins, so the result does not depend on arrival order.
  if (!queue.empty() && (hop.queue.empty() || queue < hop.queue)) hop.queue = std::move(queue);
  // The earliest start wins. 0 marks "no such span seen", so a span starting at 0 (which
  // ingest refuses, but the fold must not depend on that) tells nothing: taking it would make
  // the next span's start replace it or not depending on arrival order.
  const uint64_t start = span.start_time_unix_nano;
  if (consumer) {
    uint64_t& at = hop.consumed_at_unix_nano;
    if (start != 0 && (at == 0 || start < at)) at = start;
  } else if (start != 0) {
    // The publishing operation comes with the earliest publish: the smallest (start, parent)
    // of the producer spans, so two reports starting at once agree whatever their order.
    uint64_t& at = hop.published_at_unix_nano;
    if (at == 0 || start < at || (start == at && span.parent_span_id < hop.published_by)) {
      at = start;
      hop.published_by = span.parent_span_id;
    }
  }
  if (consumer) hop.retry_count = std::max(hop.retry_count, IntAttr(span, base::kRetryCountKey, 0));

  // Kept in publish order by inserting the changed hop in place.
  auto publish_order = [](const MessageHop& a, const MessageHop& b) {
    return std::tie(a.published_at_unix_nano, a.message_id) <
           std::tie(b.published_at_unix_nano, b.message_id);
  };
  if (messages.capacity() == 0) messages.reserve(kTypicalMessageCount);
  messages.insert(std::upper_bound(messages.begin(), messages.end(), hop, publish_order),
                  std::move(hop));
  if (record.messages.size() > OrderRecord::kMaxMessages) {
    // Past the cap the message with the smallest id goes: any rule based on what has arrived
    // so far would make the record depend on arrival order.
    record.messages.erase(std::min_element(
        record.messages.begin(), record.messages.end(),
        [](const MessageHop& a, const MessageHop& b) { return a.message_id < b.message_id; }));
  }
}

void ApplyTraceId(const Span& span, OrderRecord& record) {
  // Past the cap the smallest ids are kept, so the set does not depend on arrival order.
  auto& ids = record.trace_ids;
  auto pos = std::lower_bound(ids.begin(), ids.end(), span.trace_id);
  if (pos == ids.end() || *pos != span.trace_id) {
    ids.insert(pos, span.trace_id);
    if (ids.size() > OrderRecord::kMaxTraceIds) ids.pop_back();
  }
}

}  // namespace

bool IsValidOrderId(std::string_view order_id) {
  if (order_id.empty() || order_id.size() > kMaxOrderIdLength) return false;
  for (char c : order_id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::optional<std::string> OrderIdOf(const Span& span, const Resource& resource) {
  std::string id = Attr(span, resource, kOrderIdKey);
  if (!IsValidOrderId(id)) return std::nullopt;
  return id;
}

void ApplySpan(const Span& span, const Resource& resource, OrderRecord& record) {
  // The order's trace is the trace of its earliest span. An empty trace_ids means "first
  // span" (a start time of 0 is a legal value, not a marker).
  if (record.trace_ids.empty() || std::tie(span.start_time_unix_nano, span.trace_id) <
                                      std::tie(record.first_seen_unix_nano, record.trace_id)) {
    record.first_seen_unix_nano = span.start_time_unix_nano;
    record.trace_id = span.trace_id;
  }
  record.last_seen_unix_nano = std::max(record.last_seen_unix_nano, span.end_time_unix_nano);
  ApplyTraceId(span, record);

  const DecidingAttributes deciding = FindDecidingAttributes(span);
  if (const AnyValue* partner = SpanOrResource(deciding.partner_id, resource, kPartnerIdKey);
      HasText(partner)) {
    std::string text = partner->AsText();
    if (record.partner_id.empty() || text < record.partner_id) record.partner_id = std::move(text);
  }

  const bool has_error_code = HasText(SpanOrResource(deciding.error_code, resource, kErrorCodeKey));
  const bool failed = span.status.code == base::StatusCode::kError || has_error_code;
  // Strings are copied only for what the record keeps, into the slot's own strings (a span
  // that is later than the last one, as most are, reuses their memory).
  auto fill_operation = [&](Operation& op) {
    op.span_name.assign(span.name);
    op.service.assign(base::ServiceNameView(resource));
    op.at_unix_nano = span.end_time_unix_nano;
    op.trace_id = span.trace_id;
    op.span_id = span.span_id;
    op.error_code.clear();
    op.error_message.clear();
    op.reported_status.clear();
    op.attempted_status.clear();
    if (!failed) return;
    if (has_error_code) op.error_code = Attr(span, resource, kErrorCodeKey);
    op.error_message = FirstNonEmpty(Attr(span, resource, kErrorMessageKey), span.status.message);
    op.reported_status = Attr(span, resource, base::kCurrentStatusKey);
    op.attempted_status = Attr(span, resource, kNewStatusKey);
  };
  auto offer = [&](std::optional<Operation>& slot) {
    switch (ReplacesSlot(slot, span.end_time_unix_nano, span.span_id)) {
      case Replaces::kNo:
        return;
      case Replaces::kYes:
        if (!slot) slot.emplace();
        fill_operation(*slot);
        return;
      case Replaces::kCompareContent: {
        Operation candidate;
        fill_operation(candidate);
        if (OperationKey(candidate) > OperationKey(*slot)) *slot = std::move(candidate);
        return;
      }
    }
  };
  if (failed) {
    offer(record.last_error);
  } else {
    offer(record.last_success);
    if (HasText(SpanOrResource(deciding.new_status, resource, kNewStatusKey))) {
      ApplyTransition(span, resource, std::string(base::ServiceNameView(resource)), record);
    }
  }

  if (deciding.messaging) ApplyMessage(span, resource, record);
}

}  // namespace ordertrace::lifecycle
