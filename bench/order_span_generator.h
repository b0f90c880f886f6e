// Realistic Alexandrite order spans for benchmarks: each order is one trace with the
// lifecycle's spans (transitions, RabbitMQ hops, the price calculation and its phases), with
// the attributes the services really set.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "base/span.h"

namespace ordertrace::bench {

// When each order's spans happen: order n (from 1) starts at base + n * order_interval, and its
// lifecycle's steps follow each other step_interval apart. The defaults pack many orders into
// little time (ingest figures); a replay of a business day spreads them out.
struct OrderTiming {
  uint64_t order_interval_nanos = 1'000'000;
  uint64_t step_interval_nanos = 50'000'000;
};

class OrderSpanGenerator {
 public:
  static constexpr size_t kSpansPerOrder = 19;

  OrderSpanGenerator(uint64_t seed, uint64_t base_time_unix_nano, OrderTiming timing = {});

  // A batch of `span_count` spans from consecutive orders, grouped by service as an SDK's
  // exporter would send them.
  base::TraceBatch NextBatch(size_t span_count);

  // The next span (of the order being emitted, step by step), and its service's name. Spans
  // come order after order; each order's spans start no earlier than the order does.
  base::Span NextSpan(std::string& service);

  // When the next order NextSpan starts begins. Between orders (after a multiple of
  // kSpansPerOrder spans) no span still to come starts earlier.
  uint64_t NextOrderStart() const;

  uint64_t orders_started() const { return next_order_; }

 private:
  std::mt19937_64 rng_;
  uint64_t base_time_;
  OrderTiming timing_;
  uint64_t next_order_ = 0;
  // The order being emitted and how far along its lifecycle it is.
  base::TraceId trace_;
  std::string order_id_;
  std::string partner_id_;
  size_t step_ = 0;
  base::SpanId root_;
};

}  // namespace ordertrace::bench
