// The transactional outbox: a status change and the messages it causes are written in the same
// SQLite transaction (Outbox::Add), and OutboxRelay publishes them to RabbitMQ in order, with
// publisher confirms, deleting each row only once the broker has confirmed it. A broker that is
// away delays messages but loses none; a service killed before publishing sends them after its
// restart. Each message gets one PRODUCER span (e.g. `mq.publish.status`) from its first attempt
// to its confirm, with an event per failed attempt and `retry_count` = failed attempts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "sdk/trace_context.h"
#include "sdk/tracer.h"
#include "services/common/fault_switch.h"
#include "services/common/service_db.h"

namespace ordertrace::services {

// One message waiting to be published.
struct OutboxMessage {
  std::string message_id;  // NewUuid() when empty
  std::string exchange;
  std::string routing_key;
  std::string queue;      // the queue it is meant for, for the span's `queue` attribute
  std::string span_name;  // e.g. "mq.publish.status"
  std::string order_id;
  sdk::SpanContext parent;      // the operation that caused it
  sdk::SpanContext order_root;  // the order's trace root (header order_traceparent)
  std::string body;
};

class Outbox {
 public:
  // The outbox table; part of every service's schema.
  static constexpr std::string_view kSchema =
      "CREATE TABLE IF NOT EXISTS outbox ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, exchange TEXT NOT NULL,"
      " routing_key TEXT NOT NULL, queue TEXT NOT NULL, span_name TEXT NOT NULL,"
      " order_id TEXT NOT NULL, parent TEXT NOT NULL, order_root TEXT NOT NULL,"
      " body TEXT NOT NULL, created_at_unix_nano INTEGER NOT NULL);";

  // Adds `message` inside the caller's transaction on `db`.
  static absl::Status Add(SqliteDb& db, const OutboxMessage& message);
  // Messages not yet confirmed by the broker.
  static absl::StatusOr<int64_t> Pending(SqliteDb& db);
};

struct OutboxRelayOptions {
  std::string amqp_url;
  // How often the relay looks for new rows when nobody calls Notify.
  std::chrono::milliseconds poll_interval{200};
  // Waits between attempts while the broker is away: doubling from the first to the last.
  std::chrono::milliseconds first_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

struct OutboxRelayStats {
  uint64_t published = 0;
  uint64_t failed_attempts = 0;
};

// Publishes the outbox from its own thread. Thread-safe.
class OutboxRelay {
 public:
  // `faults` (null unless demo faults are on) can make the relay lose a message on purpose.
  OutboxRelay(OutboxRelayOptions options, ServiceDb& db, sdk::Tracer tracer,
              FaultSwitch* faults = nullptr);
  ~OutboxRelay();  // Shutdown()
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void Start();
  // Wakes the relay after a transaction added messages.
  void Notify();
  // Stops after the attempt in progress; what is unpublished stays in the outbox. An open
  // publish span is ended with an error saying the service stopped.
  void Shutdown();

  OutboxRelayStats stats() const;

 private:
  struct Row;

  void Run();
  // The routing key the message goes out with: its own, or one nobody listens to when a
  // lost-message fault is armed for it.
  std::string RoutingKeyToPublish(const OutboxMessage& message) const;

  // Constant after construction.
  const OutboxRelayOptions options_;
  ServiceDb& db_;
  const sdk::Tracer tracer_;
  FaultSwitch* const faults_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;      // guarded by mu_
  bool notified_ = false;  // guarded by mu_
  std::thread thread_;

  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> failed_attempts_{0};
};

}  // namespace ordertrace::services
