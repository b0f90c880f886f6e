// A small RabbitMQ client for the Alexandrite services, over rabbitmq-c: connect from an AMQP
// URL, declare the order topology (with a dead-letter exchange and queue), publish with
// publisher confirms and persistent delivery, and consume with explicit ack / reject. Message
// headers travel as sdk::AmqpHeaders, so trace context injected by the SDK goes through as is.
//
// Errors are absl::Status values, never exceptions. kUnavailable means the connection is lost
// (or in an unknown state after a timeout): the object is then closed, and the caller may
// Connect() again and retry. Thread-compatible: use one AmqpConnection per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/amqp_carrier.h"

// rabbitmq-c types used privately; the header does not include rabbitmq-c.
struct amqp_rpc_reply_t_;
struct amqp_frame_t_;
struct amqp_channel_close_t_;
struct amqp_connection_close_t_;

namespace ordertrace::services::amqp {

using AmqpHeaders = ::ordertrace::sdk::AmqpHeaders;

struct AmqpConnectionOptions {
  // Bounds TCP connect plus the AMQP handshake and login.
  std::chrono::milliseconds connect_timeout{5000};
  // Bounds each synchronous broker call (declare, bind, consume, ...).
  std::chrono::milliseconds rpc_timeout{10000};
  // How long Publish waits for the broker's basic.ack.
  std::chrono::milliseconds confirm_timeout{5000};
  // AMQP heartbeat asked of the broker; 0 turns heartbeats off.
  int heartbeat_seconds = 0;
};

// The exchanges and queues one service needs. The main exchange is a durable topic exchange;
// `queue` is durable, bound to it with `routing_key`, and dead-letters rejected or expired
// messages to `dead_letter_exchange` (a durable topic exchange), whose durable
// `dead_letter_queue` receives every routing key.
struct Topology {
  std::string exchange;
  std::string queue;
  std::string routing_key;
  std::string dead_letter_exchange;
  std::string dead_letter_queue;
};

// One message received from a queue; settle it with Ack or Reject using `delivery_tag`.
struct Delivery {
  std::string body;
  // The string-valued entries of the message's header table; other value types are left out.
  AmqpHeaders headers;
  std::string message_id;
  std::string routing_key;
  std::string exchange;
  bool redelivered = false;
  uint64_t delivery_tag = 0;
};

class AmqpConnection {
 public:
  explicit AmqpConnection(AmqpConnectionOptions options = {});
  ~AmqpConnection();  // Closes the channel and the connection.
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  // Connects and logs in with amqp://USER:PASS@HOST:PORT/VHOST, then opens a channel in
  // publisher-confirm mode. Closes any earlier connection first. kInvalidArgument for a URL
  // that does not parse, kUnavailable when the broker cannot be reached or refuses the login.
  absl::Status Connect(std::string_view url);

  // True between a successful Connect and Close or a connection loss.
  bool IsConnected() const { return state_ != nullptr; }

  // Closes the channel and the connection politely; harmless when already closed.
  void Close();

  // Declares `topology` (idempotent when it already exists with the same settings;
  // kFailedPrecondition when it exists with different ones).
  absl::Status DeclareTopology(const Topology& topology);

  // Publishes a persistent message and waits for the broker to confirm it. OK only once the
  // broker has taken responsibility for the message.
  absl::Status Publish(std::string_view exchange, std::string_view routing_key,
                       std::string_view body, const AmqpHeaders& headers,
                       std::string_view message_id);

  // Starts consuming `queue` with manual acknowledgement; `prefetch` bounds unsettled messages.
  // A channel error (e.g. publishing to a missing exchange) reopens the channel, which ends the
  // consumer: call Consume again after a non-OK status.
  absl::Status Consume(std::string_view queue, uint16_t prefetch = 16);

  // Waits up to `timeout` for the next message: nullopt on timeout, an error status when the
  // connection or channel fails.
  absl::StatusOr<std::optional<Delivery>> NextDelivery(std::chrono::milliseconds timeout);

  absl::Status Ack(uint64_t delivery_tag);
  // Rejects a message; without `requeue` the broker dead-letters it (when the queue has a
  // dead-letter exchange) or drops it.
  absl::Status Reject(uint64_t delivery_tag, bool requeue);

 private:
  struct State;

  absl::Status RequireConnected() const;
  // Closes without a handshake after a failure.
  void Drop();
  // Turn rabbitmq-c results into statuses; a connection-level failure drops the connection,
  // a channel-level one reopens the channel.
  absl::Status ReplyToStatus(const amqp_rpc_reply_t_& reply, const std::string& what);
  absl::Status CheckReply(const std::string& what);
  absl::Status CheckStatusCode(int code, const std::string& what);
  absl::Status HandleChannelClose(const amqp_channel_close_t_& close, const std::string& what);
  absl::Status HandleConnectionClose(const amqp_connection_close_t_& close,
                                     const std::string& what);
  absl::Status OpenChannel();
  absl::Status WaitForConfirm(uint64_t sequence, const std::string& what);
  // Handles one frame read outside an RPC; true when it confirms publish `sequence` (0: none).
  absl::StatusOr<bool> HandleFrame(const amqp_frame_t_& frame, uint64_t sequence,
                                   const std::string& what);

  // Constant after construction.
  const AmqpConnectionOptions options_;

  std::unique_ptr<State> state_;
  // Deliveries read while waiting for a publisher confirm, handed out first by NextDelivery.
  std::deque<Delivery> pending_;
  uint64_t next_publish_sequence_ = 1;
};

}  // namespace ordertrace::services::amqp
