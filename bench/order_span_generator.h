// Realistic Alexandrite order spans for benchmarks: each order is one trace with the
// lifecycle's spans (transitions, RabbitMQ hops, the price calculation and its phases), with
// the attributes the services really set.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "model/span.h"

namespace ordertrace::bench {

class OrderSpanGenerator {
 public:
  static constexpr size_t kSpansPerOrder = 19;

  explicit OrderSpanGenerator(uint64_t seed, uint64_t base_time_unix_nano);

  // A batch of `span_count` spans from consecutive orders, grouped by service as an SDK's
  // exporter would send them.
  model::TraceBatch NextBatch(size_t span_count);

  uint64_t orders_started() const { return next_order_; }

 private:
  model::Span NextSpan(std::string& service);

  std::mt19937_64 rng_;
  uint64_t base_time_;
  uint64_t next_order_ = 0;
  // The order being emitted and how far along its lifecycle it is.
  model::TraceId trace_;
  std::string order_id_;
  std::string partner_id_;
  size_t step_ = 0;
  model::SpanId root_;
};

}  // namespace ordertrace::bench
