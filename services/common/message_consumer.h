// Consumes one RabbitMQ queue from its own thread for a service: reconnects with backoff while
// the broker is away, counts each message's deliveries in the database's inbox (so
// `retry_count` survives crashes and broker restarts), skips messages already handled, starts the
// CONSUMER span (child of the order's trace root, linked to the producer's span), calls the
// handler, then acknowledges or rejects:
//   - OK: the message is marked handled and acknowledged;
//   - kInvalidArgument (a malformed message): rejected without requeue, so it is dead-lettered;
//   - any other error: requeued, until `max_deliveries`, then dead-lettered.
// A handler may also defer its answer (long work on another thread) and settle later from any
// thread; the acknowledgement then happens on the consumer's thread.
//
// Thread-safe: Start and Shutdown from the owner; the settle callback from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "sdk/trace_context.h"
#include "sdk/tracer.h"
#include "services/amqp/amqp_connection.h"
#include "services/common/fault_switch.h"
#include "services/common/service_db.h"

namespace ordertrace::services {

// One delivery as a handler sees it.
struct ReceivedMessage {
  amqp::Delivery delivery;
  std::string order_id;         // from the `order_id` header; may be empty
  int64_t retry_count = 0;      // earlier deliveries of the same message
  sdk::SpanContext order_root;  // from `order_traceparent`; invalid when absent
};

// What the handler decided. `deferred`: the handler will call the settle callback later.
struct HandlerOutcome {
  absl::Status status;
  bool deferred = false;

  static HandlerOutcome Done() { return {}; }
  static HandlerOutcome Failed(absl::Status status) { return {std::move(status), false}; }
  static HandlerOutcome Deferred() { return {absl::OkStatus(), true}; }
};

// Settles a deferred message; safe from any thread, also after the consumer stopped (the
// message is then redelivered to the next consumer, which skips it when it was handled).
using SettleMessage = std::function<void(absl::Status)>;

// Handles one message. `span` is the open consume span (end it not; the consumer does).
using MessageHandler =
    std::function<HandlerOutcome(const ReceivedMessage&, sdk::Span& span, SettleMessage settle)>;

struct MessageConsumerOptions {
  std::string amqp_url;
  std::string queue;
  std::string span_name;  // e.g. "mq.consume.status"
  uint16_t prefetch = 32;
  // Deliveries before a failing message is dead-lettered.
  int64_t max_deliveries = 5;
  std::chrono::milliseconds first_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

struct MessageConsumerStats {
  uint64_t handled = 0;
  uint64_t duplicates = 0;
  uint64_t requeued = 0;
  uint64_t dead_lettered = 0;
  uint64_t reconnects = 0;
};

class MessageConsumer {
 public:
  // The inbox table; part of every service's schema.
  static constexpr std::string_view kSchema =
      "CREATE TABLE IF NOT EXISTS inbox ("
      " queue TEXT NOT NULL, message_id TEXT NOT NULL, deliveries INTEGER NOT NULL,"
      " handled INTEGER NOT NULL DEFAULT 0, first_seen_unix_nano INTEGER NOT NULL,"
      " PRIMARY KEY (queue, message_id));";

  // `faults` (null unless demo faults are on) can make the consumer crash mid-message.
  MessageConsumer(MessageConsumerOptions options, ServiceDb& db, sdk::Tracer tracer,
                  MessageHandler handler, FaultSwitch* faults = nullptr);
  ~MessageConsumer();  // Shutdown()
  MessageConsumer(const MessageConsumer&) = delete;
  MessageConsumer& operator=(const MessageConsumer&) = delete;

  void Start();
  // Stops consuming and closes the connection; unacknowledged messages return to the queue.
  void Shutdown();

  // True while connected and consuming.
  bool IsConsuming() const { return consuming_.load(); }
  MessageConsumerStats stats() const;

 private:
  struct Completions;

  void Run();
  // Consumes until the connection fails or Shutdown; returns why it stopped.
  absl::Status ConsumeUntilFailure(amqp::AmqpConnection& connection, uint64_t generation);
  void HandleDelivery(amqp::AmqpConnection& connection, uint64_t generation,
                      amqp::Delivery delivery);
  // Acknowledges or rejects after the handler's answer.
  absl::Status Settle(amqp::AmqpConnection& connection, const std::string& message_id,
                      uint64_t delivery_tag, int64_t deliveries, const absl::Status& outcome);
  // Counts a delivery in the inbox: {deliveries so far, already handled}.
  absl::StatusOr<std::pair<int64_t, bool>> CountDelivery(const std::string& message_id);
  bool Stopping() const { return stop_.load(); }

  // Constant after construction.
  const MessageConsumerOptions options_;
  ServiceDb& db_;
  const sdk::Tracer tracer_;
  const MessageHandler handler_;
  FaultSwitch* const faults_;
  const std::shared_ptr<Completions> completions_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> consuming_{false};
  std::thread thread_;

  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> duplicates_{0};
  std::atomic<uint64_t> requeued_{0};
  std::atomic<uint64_t> dead_lettered_{0};
  std::atomic<uint64_t> reconnects_{0};
};

}  // namespace ordertrace::services
