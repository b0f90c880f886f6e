// One record per order, built from the spans that carry its `order_id`. Plain data: the
// rules that fill it live in lifecycle/order_record_builder.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"

namespace ordertrace::model {

// The moment an order first reached a status, as told by a successful transition span
// (`new_status`, optionally `prev_status` and `event_version`).
struct StatusReached {
  std::string status;
  std::string prev_status;
  uint64_t at_unix_nano = 0;
  int64_t event_version = -1;  // -1: the span carried none
  std::string service;
  std::string span_name;
  base::SpanId span_id;

  friend bool operator==(const StatusReached&, const StatusReached&) = default;
};

// A finished operation (a span) of the order.
struct Operation {
  std::string span_name;
  std::string service;
  uint64_t at_unix_nano = 0;  // the span's end
  base::TraceId trace_id;
  base::SpanId span_id;
  std::string error_code;     // errors only
  std::string error_message;  // errors only
  // Errors only: the status the failing service believed the order to be in (the span's
  // `current_status`), which may disagree with what the other services saw.
  std::string reported_status;
  // Errors only: the status the failed span tried to reach (its `new_status`), so that a failed
  // transition leaves a trace of the step it attempted.
  std::string attempted_status;

  friend bool operator==(const Operation&, const Operation&) = default;
};

// One RabbitMQ message of the order, paired from its producer and consumer spans.
struct MessageHop {
  std::string message_id;
  std::string queue;
  uint64_t published_at_unix_nano = 0;  // 0: no producer span seen
  uint64_t consumed_at_unix_nano = 0;   // 0: no consumer span seen
  int64_t retry_count = 0;              // highest seen on a consumer span
  // The parent of the producer span that gave `published_at`: the operation that published the
  // message (a service's transition span, whose status the message belongs to). Invalid: none.
  base::SpanId published_by;

  uint64_t LastActivity() const {
    return consumed_at_unix_nano > published_at_unix_nano ? consumed_at_unix_nano
                                                          : published_at_unix_nano;
  }

  friend bool operator==(const MessageHop&, const MessageHop&) = default;
};

struct OrderRecord {
  static constexpr size_t kMaxTraceIds = 16;
  static constexpr size_t kMaxMessages = 64;
  static constexpr size_t kMaxRevisits = 8;

  std::string order_id;
  base::TraceId trace_id;  // the trace of the order's earliest span
  std::vector<base::TraceId>
      trace_ids;           // traces seen for the order, sorted; the smallest kMaxTraceIds
  std::string partner_id;  // empty for direct orders
  uint64_t first_seen_unix_nano = 0;    // earliest span start
  uint64_t last_seen_unix_nano = 0;     // latest span end
  std::vector<StatusReached> statuses;  // one per status (its first report), in lifecycle order
  // The other reports of a status in `statuses` (a status reached again: an order going back
  // after it was closed, or a retry): the earliest per (event_version, status, prev_status), in
  // that order; past kMaxRevisits the smallest stay. `statuses` decides the current status;
  // these are read only for conflicts.
  std::vector<StatusReached> revisits;
  std::optional<Operation> last_success;
  std::optional<Operation> last_error;
  std::vector<MessageHop> messages;  // by publish time; past kMaxMessages the largest ids stay

  // The status the order is in now: the transition with the highest event_version, then the
  // latest time. nullptr when no transition has been seen.
  const StatusReached* CurrentStatus() const {
    return statuses.empty() ? nullptr : &statuses.back();
  }
  // The most recently active message, or nullptr.
  const MessageHop* LastMessage() const;

  friend bool operator==(const OrderRecord&, const OrderRecord&) = default;
};

}  // namespace ordertrace::model
