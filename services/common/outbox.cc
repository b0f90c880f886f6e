#include "services/common/outbox.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "sdk/amqp_carrier.h"
#include "sdk/messaging.h"
#include "services/amqp/amqp_connection.h"
#include "services/common/messages.h"
#include "spdlog/spdlog.h"

namespace ordertrace::services {
namespace {

// Rows read per round; the relay publishes them one by one, in order.
constexpr int kBatch = 64;

sdk::SpanContext ParseStored(const std::string& traceparent) {
  absl::StatusOr<sdk::SpanContext> context = sdk::ParseTraceparent(traceparent);
  return context.ok() ? *context : sdk::SpanContext{};
}

}  // namespace

struct OutboxRelay::Row {
  int64_t id = 0;
  OutboxMessage message;
};

absl::Status Outbox::Add(SqliteDb& db, const OutboxMessage& message) {
  std::string message_id = message.message_id.empty() ? NewUuid() : message.message_id;
  return db
      .Execute(
          "INSERT INTO outbox (message_id, exchange, routing_key, queue, span_name, order_id,"
          " parent, order_root, body, created_at_unix_nano)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
          {message_id, message.exchange, message.routing_key, message.queue, message.span_name,
           message.order_id, sdk::FormatTraceparent(message.parent),
           sdk::FormatTraceparent(message.order_root), message.body,
           static_cast<int64_t>(base::SystemClock().NowUnixNano())})
      .status();
}

absl::StatusOr<int64_t> Outbox::Pending(SqliteDb& db) {
  absl::StatusOr<std::vector<SqlRow>> rows = db.Query("SELECT COUNT(*) FROM outbox");
  if (!rows.ok()) return rows.status();
  return rows->empty() ? 0 : rows->front().Int(0);
}

OutboxRelay::OutboxRelay(OutboxRelayOptions options, ServiceDb& db, sdk::Tracer tracer,
                         FaultSwitch* faults)
    : options_(std::move(options)), db_(db), tracer_(std::move(tracer)), faults_(faults) {}

std::string OutboxRelay::RoutingKeyToPublish(const OutboxMessage& message) const {
  if (faults_ == nullptr) return message.routing_key;
  bool lose = false;
  if (message.routing_key == kPriceRoutingKey) {
    lose = faults_->Take(message.order_id, kFaultLostPriceRequest).has_value();
  } else if (message.routing_key.rfind("status.", 0) == 0) {
    std::string status = absl::AsciiStrToUpper(message.routing_key.substr(7));
    lose = faults_->Take(message.order_id, kFaultLostStatusEvent, status).has_value();
  }
  // No queue is bound to "lost.#": the broker confirms the message and drops it, as a
  // misrouted message is lost in real life.
  return lose ? "lost." + message.routing_key : message.routing_key;
}

OutboxRelay::~OutboxRelay() { Shutdown(); }

void OutboxRelay::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void OutboxRelay::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  notified_ = true;
  wake_.notify_all();
}

void OutboxRelay::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

OutboxRelayStats OutboxRelay::stats() const {
  return OutboxRelayStats{published_.load(), failed_attempts_.load()};
}

void OutboxRelay::Run() {
  amqp::AmqpConnection connection;
  std::chrono::milliseconds backoff = options_.first_backoff;
  // The message at the head of the outbox, kept across failed attempts with its open span.
  std::optional<Row> head;
  std::unique_ptr<sdk::Span> head_span;
  int64_t head_failures = 0;

  // Waits `delay` or until Shutdown / Notify; false once stopping.
  auto wait = [this](std::chrono::milliseconds delay, bool wake_on_notify) {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, delay, [&] { return stop_ || (wake_on_notify && notified_); });
    notified_ = false;
    return !stop_;
  };
  auto fail = [&](const absl::Status& status) {
    ++head_failures;
    failed_attempts_.fetch_add(1);
    if (head_span != nullptr) {
      head_span->AddEvent("publish attempt failed",
                          {base::KeyValue{"exception.message",
                                          base::AnyValue::String(std::string(status.message()))},
                           base::KeyValue{"attempt", base::AnyValue::Int(head_failures)}});
    }
    spdlog::warn("outbox: publish failed ({}); retrying in {} ms", std::string(status.message()),
                 backoff.count());
    connection.Close();
  };

  // Makes `row` the head: its publish span starts at its first attempt and lasts until the
  // broker confirms it.
  auto become_head = [&](const Row& row) {
    if (head.has_value() && head->id == row.id) return;
    if (head_span != nullptr) head_span->End();
    head = row;
    head_failures = 0;
    sdk::RabbitMqPublish publish{row.message.exchange,   row.message.routing_key, row.message.queue,
                                 row.message.message_id, row.message.order_id,    std::nullopt};
    if (row.message.parent.IsValid()) publish.parent = row.message.parent;
    head_span = sdk::StartPublishSpan(tracer_, row.message.span_name, publish);
  };

  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    std::vector<Row> rows;
    absl::Status read = db_.Run([&](SqliteDb& db) -> absl::Status {
      absl::StatusOr<std::vector<SqlRow>> result = db.Query(
          "SELECT id, message_id, exchange, routing_key, queue, span_name, order_id, parent,"
          " order_root, body FROM outbox ORDER BY id LIMIT ?1",
          {static_cast<int64_t>(kBatch)});
      if (!result.ok()) return result.status();
      for (const SqlRow& r : *result) {
        Row row;
        row.id = r.Int(0);
        row.message = OutboxMessage{r.Text(1),
                                    r.Text(2),
                                    r.Text(3),
                                    r.Text(4),
                                    r.Text(5),
                                    r.Text(6),
                                    ParseStored(r.Text(7)),
                                    ParseStored(r.Text(8)),
                                    r.Text(9)};
        rows.push_back(std::move(row));
      }
      return absl::OkStatus();
    });
    if (!read.ok()) {
      spdlog::error("outbox: cannot read: {}", std::string(read.message()));
      if (!wait(backoff, false)) break;
      continue;
    }
    if (rows.empty()) {
      if (!wait(options_.poll_interval, true)) break;
      continue;
    }
    if (!connection.IsConnected()) {
      absl::Status connected = connection.Connect(options_.amqp_url);
      for (const amqp::Topology& topology : AlexandriteTopology()) {
        if (!connected.ok()) break;
        connected = connection.DeclareTopology(topology);
      }
      if (!connected.ok()) {
        // A failed connection is a failed attempt of the message at the head: its span says so.
        become_head(rows.front());
        spdlog::warn("outbox: RabbitMQ unavailable; {} message(s) waiting", rows.size());
        fail(connected);
        if (!wait(backoff, false)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
    }
    for (Row& row : rows) {
      become_head(row);
      sdk::AmqpHeaders headers;
      sdk::InjectAmqpHeaders(head_span->GetContext(), row.message.order_id, headers);
      sdk::InjectOrderRootHeader(row.message.order_root, headers);
      const std::string routing_key = RoutingKeyToPublish(row.message);
      if (routing_key != row.message.routing_key) {
        head_span->SetAttribute(sdk::kMessagingRoutingKeyKey, routing_key);
      }
      absl::Status published = connection.Publish(
          row.message.exchange, routing_key, row.message.body, headers, row.message.message_id);
      if (!published.ok()) {
        fail(published);
        break;
      }
      absl::Status deleted = db_.Run([&](SqliteDb& db) {
        return db.Execute("DELETE FROM outbox WHERE id = ?1", {row.id}).status();
      });
      if (!deleted.ok()) {
        // Published but still in the outbox: it will be published again, and consumers drop
        // the duplicate by message id.
        spdlog::error("outbox: cannot delete published message {}: {}", row.message.message_id,
                      std::string(deleted.message()));
      }
      head_span->SetAttribute(sdk::kRetryCountKey, head_failures);
      head_span->SetStatus(base::StatusCode::kOk);
      head_span->End();
      head_span.reset();
      head.reset();
      published_.fetch_add(1);
      backoff = options_.first_backoff;
    }
    if (head.has_value()) {  // a publish failed
      if (!wait(backoff, false)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  if (head_span != nullptr) {
    head_span->SetAttribute(sdk::kRetryCountKey, head_failures);
    head_span->RecordError("SERVICE_STOPPING", "service stopped before the broker confirmed");
    head_span->End();
  }
}

}  // namespace ordertrace::services
