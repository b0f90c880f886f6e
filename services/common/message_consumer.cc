#include "services/common/message_consumer.h"

#include <algorithm>
#include <deque>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "sdk/amqp_carrier.h"
#include "sdk/messaging.h"
#include "services/common/messages.h"
#include "spdlog/spdlog.h"

namespace ordertrace::services {
namespace {

// How long NextDelivery waits before the loop looks at completions and the stop flag again.
constexpr std::chrono::milliseconds kPollInterval{50};
// Handled inbox rows older than this are pruned; a message redelivered later than that is
// handled again, which versioned status events make harmless.
constexpr uint64_t kInboxRetentionNanos = 7ULL * 24 * 3600 * 1000000000ULL;
constexpr uint64_t kPruneEvery = 1000;

}  // namespace

// Answers of deferred handlers, waiting for the consumer thread. Shared with the settle
// callbacks, which may outlive the consumer.
struct MessageConsumer::Completions {
  struct Entry {
    uint64_t generation;
    uint64_t delivery_tag;
    std::string message_id;
    int64_t deliveries;
    absl::Status status;
  };
  std::mutex mu;
  std::deque<Entry> entries;  // guarded by mu
};

MessageConsumer::MessageConsumer(MessageConsumerOptions options, ServiceDb& db, sdk::Tracer tracer,
                                 MessageHandler handler, FaultSwitch* faults)
    : options_(std::move(options)),
      db_(db),
      tracer_(std::move(tracer)),
      handler_(std::move(handler)),
      faults_(faults),
      completions_(std::make_shared<Completions>()) {}

MessageConsumer::~MessageConsumer() { Shutdown(); }

void MessageConsumer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void MessageConsumer::Shutdown() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

MessageConsumerStats MessageConsumer::stats() const {
  return MessageConsumerStats{handled_.load(), duplicates_.load(), requeued_.load(),
                              dead_lettered_.load(), reconnects_.load()};
}

void MessageConsumer::Run() {
  amqp::AmqpConnection connection;
  std::chrono::milliseconds backoff = options_.first_backoff;
  uint64_t generation = 0;
  while (!Stopping()) {
    ++generation;
    absl::Status status = connection.Connect(options_.amqp_url);
    for (const amqp::Topology& topology : AlexandriteTopology()) {
      if (!status.ok()) break;
      status = connection.DeclareTopology(topology);
    }
    if (status.ok()) status = connection.Consume(options_.queue, options_.prefetch);
    if (status.ok()) {
      if (generation > 1) reconnects_.fetch_add(1);
      spdlog::info("consumer {}: consuming", options_.queue);
      backoff = options_.first_backoff;
      consuming_.store(true);
      status = ConsumeUntilFailure(connection, generation);
      consuming_.store(false);
    }
    connection.Close();
    if (Stopping()) break;
    spdlog::warn("consumer {}: {}; reconnecting in {} ms", options_.queue,
                 std::string(status.message()), backoff.count());
    auto until = std::chrono::steady_clock::now() + backoff;
    while (!Stopping() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status MessageConsumer::ConsumeUntilFailure(amqp::AmqpConnection& connection,
                                                  uint64_t generation) {
  while (!Stopping()) {
    std::deque<Completions::Entry> done;
    {
      std::lock_guard<std::mutex> lock(completions_->mu);
      done.swap(completions_->entries);
    }
    for (Completions::Entry& entry : done) {
      // A delivery tag belongs to the channel it came on; after a reconnect the broker has
      // already requeued that delivery, and the inbox makes the redelivery a duplicate.
      if (entry.generation != generation) continue;
      absl::Status settled =
          Settle(connection, entry.message_id, entry.delivery_tag, entry.deliveries, entry.status);
      if (!settled.ok()) return settled;
    }
    absl::StatusOr<std::optional<amqp::Delivery>> next = connection.NextDelivery(kPollInterval);
    if (!next.ok()) return next.status();
    if (!next->has_value()) continue;
    HandleDelivery(connection, generation, std::move(**next));
    if (!connection.IsConnected()) return absl::UnavailableError("connection lost");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<int64_t, bool>> MessageConsumer::CountDelivery(
    const std::string& message_id) {
  uint64_t now = base::SystemClock().NowUnixNano();
  return db_.Run([&](SqliteDb& db) -> absl::StatusOr<std::pair<int64_t, bool>> {
    absl::StatusOr<std::vector<SqlRow>> rows = db.Query(
        "INSERT INTO inbox (queue, message_id, deliveries, handled, first_seen_unix_nano)"
        " VALUES (?1, ?2, 1, 0, ?3) ON CONFLICT (queue, message_id)"
        " DO UPDATE SET deliveries = deliveries + 1 RETURNING deliveries, handled",
        {options_.queue, message_id, static_cast<int64_t>(now)});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return absl::InternalError("inbox: no row returned");
    return std::make_pair(rows->front().Int(0), rows->front().Int(1) != 0);
  });
}

void MessageConsumer::HandleDelivery(amqp::AmqpConnection& connection, uint64_t generation,
                                     amqp::Delivery delivery) {
  sdk::ExtractedAmqpContext extracted = sdk::ExtractAmqpHeaders(delivery.headers);
  int64_t deliveries = delivery.redelivered ? 2 : 1;
  if (!delivery.message_id.empty()) {
    absl::StatusOr<std::pair<int64_t, bool>> counted = CountDelivery(delivery.message_id);
    if (!counted.ok()) {
      // Without the inbox we cannot tell a duplicate: give the message back and try later.
      spdlog::error("consumer {}: inbox unavailable: {}", options_.queue,
                    std::string(counted.status().message()));
      connection.Reject(delivery.delivery_tag, /*requeue=*/true).IgnoreError();
      requeued_.fetch_add(1);
      std::this_thread::sleep_for(options_.first_backoff);
      return;
    }
    if (counted->second) {
      duplicates_.fetch_add(1);
      connection.Ack(delivery.delivery_tag).IgnoreError();
      return;
    }
    deliveries = counted->first;
  }

  if (faults_ != nullptr &&
      faults_->Take(extracted.order_id, kFaultConsumerCrash, options_.queue).has_value()) {
    // A crash mid-message: no answer and no span; the message goes back to the queue and the
    // inbox counts its next delivery as a retry. (Only this message is given back, so that the
    // fault does not disturb other orders' messages in flight.)
    spdlog::warn("consumer {}: demo fault: crashing while handling message {}", options_.queue,
                 delivery.message_id);
    connection.Reject(delivery.delivery_tag, /*requeue=*/true).IgnoreError();
    return;
  }

  ReceivedMessage message;
  message.order_id = extracted.order_id;
  message.retry_count = deliveries - 1;
  if (extracted.order_root.has_value()) message.order_root = *extracted.order_root;

  sdk::RabbitMqConsume consume;
  consume.exchange = delivery.exchange;
  consume.routing_key = delivery.routing_key;
  consume.queue = options_.queue;
  consume.message_id = delivery.message_id;
  consume.order_id = extracted.order_id;
  consume.retry_count = message.retry_count;
  consume.delivery_tag = delivery.delivery_tag;
  consume.producer = extracted.context;
  // One trace per order: the consume span hangs under the order's root and links to the
  // producer. A message from a publisher that sends no order root stays in its trace instead.
  if (message.order_root.IsValid()) {
    consume.parent = message.order_root;
  } else if (extracted.context.has_value()) {
    consume.parent = extracted.context;
  }
  std::unique_ptr<sdk::Span> span = sdk::StartConsumeSpan(tracer_, options_.span_name, consume);
  message.delivery = std::move(delivery);
  const uint64_t tag = message.delivery.delivery_tag;
  const std::string message_id = message.delivery.message_id;

  if (deliveries > options_.max_deliveries) {
    span->RecordError("MAX_DELIVERIES_EXCEEDED",
                      absl::StrCat("delivered ", deliveries, " times; dead-lettered"));
    span->End();
    Settle(connection, message_id, tag, deliveries,
           absl::InvalidArgumentError("too many deliveries"))
        .IgnoreError();
    return;
  }

  std::weak_ptr<Completions> completions = completions_;
  SettleMessage settle = [completions, generation, tag, message_id,
                          deliveries](absl::Status status) {
    std::shared_ptr<Completions> target = completions.lock();
    if (target == nullptr) return;
    std::lock_guard<std::mutex> lock(target->mu);
    target->entries.push_back({generation, tag, message_id, deliveries, std::move(status)});
  };
  HandlerOutcome outcome = handler_(message, *span, settle);
  if (!outcome.status.ok()) {
    span->RecordError(std::string(absl::StatusCodeToString(outcome.status.code())),
                      std::string(outcome.status.message()));
  }
  span->End();
  if (outcome.deferred) return;
  Settle(connection, message_id, tag, deliveries, outcome.status).IgnoreError();
}

absl::Status MessageConsumer::Settle(amqp::AmqpConnection& connection,
                                     const std::string& message_id, uint64_t delivery_tag,
                                     int64_t deliveries, const absl::Status& outcome) {
  const bool malformed = outcome.code() == absl::StatusCode::kInvalidArgument;
  if (outcome.ok() || malformed) {
    if (!message_id.empty()) {
      uint64_t count = handled_.load() + dead_lettered_.load();
      absl::Status marked = db_.Run([&](SqliteDb& db) -> absl::Status {
        absl::Status status =
            db.Execute("UPDATE inbox SET handled = 1 WHERE queue = ?1 AND message_id = ?2",
                       {options_.queue, message_id})
                .status();
        if (status.ok() && count % kPruneEvery == 0) {
          int64_t cutoff =
              static_cast<int64_t>(base::SystemClock().NowUnixNano() - kInboxRetentionNanos);
          status = db.Execute("DELETE FROM inbox WHERE handled = 1 AND first_seen_unix_nano < ?1",
                              {cutoff})
                       .status();
        }
        return status;
      });
      if (!marked.ok()) {
        spdlog::error("consumer {}: cannot mark {} handled: {}", options_.queue, message_id,
                      std::string(marked.message()));
      }
    }
  }
  if (outcome.ok()) {
    handled_.fetch_add(1);
    return connection.Ack(delivery_tag);
  }
  if (malformed || deliveries >= options_.max_deliveries) {
    spdlog::warn("consumer {}: dead-lettering message {}: {}", options_.queue, message_id,
                 std::string(outcome.message()));
    dead_lettered_.fetch_add(1);
    return connection.Reject(delivery_tag, /*requeue=*/false);
  }
  spdlog::warn("consumer {}: message {} failed ({}); requeued", options_.queue, message_id,
               std::string(outcome.message()));
  requeued_.fetch_add(1);
  // A short pause so that a failing dependency is not hammered by immediate redeliveries.
  std::this_thread::sleep_for(std::min(options_.first_backoff * deliveries, options_.max_backoff));
  return connection.Reject(delivery_tag, /*requeue=*/true);
}

}  // namespace ordertrace::services
