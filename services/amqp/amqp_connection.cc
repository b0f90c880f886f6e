#include "services/amqp/amqp_connection.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ordertrace::services::amqp {
namespace {

// Everything goes through one channel: publisher confirms, consuming and settling.
constexpr amqp_channel_t kChannel = 1;
constexpr int kFrameMax = 131072;

using Clock = std::chrono::steady_clock;

amqp_bytes_t Bytes(std::string_view s) {
  amqp_bytes_t bytes;
  bytes.len = s.size();
  bytes.bytes = const_cast<char*>(s.data());
  return bytes;
}

std::string ToString(amqp_bytes_t bytes) {
  if (bytes.len == 0 || bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  if (ms.count() < 0) ms = std::chrono::milliseconds(0);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

// Maps an AMQP reply code (channel or connection close) onto the canonical codes.
absl::Status ReplyCodeToStatus(int code, std::string message) {
  switch (code) {
    case AMQP_NOT_FOUND:
      return absl::NotFoundError(std::move(message));
    case AMQP_ACCESS_REFUSED:
      return absl::PermissionDeniedError(std::move(message));
    case AMQP_PRECONDITION_FAILED:
    case AMQP_RESOURCE_LOCKED:
      return absl::FailedPreconditionError(std::move(message));
    case AMQP_RESOURCE_ERROR:
      return absl::ResourceExhaustedError(std::move(message));
    default:
      return absl::InternalError(std::move(message));
  }
}

AmqpHeaders ToHeaders(const amqp_basic_properties_t& properties) {
  AmqpHeaders headers;
  if ((properties._flags & AMQP_BASIC_HEADERS_FLAG) == 0) return headers;
  for (int i = 0; i < properties.headers.num_entries; ++i) {
    const amqp_table_entry_t& entry = properties.headers.entries[i];
    // Only string values map onto the carrier; numbers, tables and the like are ignored.
    if (entry.value.kind != AMQP_FIELD_KIND_UTF8) continue;
    headers[ToString(entry.key)] = ToString(entry.value.value.bytes);
  }
  return headers;
}

void FillFromMessage(const amqp_message_t& message, Delivery& delivery) {
  delivery.body = ToString(message.body);
  delivery.headers = ToHeaders(message.properties);
  if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    delivery.message_id = ToString(message.properties.message_id);
  }
}

}  // namespace

struct AmqpConnection::State {
  ~State() {
    if (healthy) {
      // Polite close; bounded by the RPC timeout set at connect.
      amqp_channel_close(conn, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);  // Also closes the socket.
  }

  amqp_connection_state_t conn = nullptr;
  // False once the connection failed; then no more frames are sent on close.
  bool healthy = false;
  std::string endpoint;  // host:port, for messages.
};

AmqpConnection::AmqpConnection(AmqpConnectionOptions options) : options_(options) {}

AmqpConnection::~AmqpConnection() { Close(); }

void AmqpConnection::Close() {
  state_.reset();
  pending_.clear();
}

absl::Status AmqpConnection::RequireConnected() const {
  if (state_ == nullptr) {
    return absl::FailedPreconditionError("AMQP connection is not open; call Connect first");
  }
  return absl::OkStatus();
}

absl::Status AmqpConnection::Connect(std::string_view url) {
  Close();
  std::string buffer(url);  // amqp_parse_url writes into its argument.
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  int rc = amqp_parse_url(buffer.data(), &info);
  if (rc != AMQP_STATUS_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid AMQP URL (expected amqp://USER:PASS@HOST:PORT/VHOST): ", amqp_error_string2(rc)));
  }
  if (info.ssl) return absl::UnimplementedError("amqps:// URLs are not supported");
  // "amqp://host:port/" names the default virtual host.
  std::string vhost = (info.vhost == nullptr || info.vhost[0] == '\0') ? "/" : info.vhost;

  auto state = std::make_unique<State>();
  state->endpoint = absl::StrCat(info.host, ":", info.port);
  state->conn = amqp_new_connection();
  if (state->conn == nullptr) return absl::ResourceExhaustedError("amqp_new_connection failed");
  amqp_socket_t* socket = amqp_tcp_socket_new(state->conn);
  if (socket == nullptr) return absl::ResourceExhaustedError("amqp_tcp_socket_new failed");

  timeval connect_tv = ToTimeval(options_.connect_timeout);
  amqp_set_handshake_timeout(state->conn, &connect_tv);
  rc = amqp_socket_open_noblock(socket, info.host, info.port, &connect_tv);
  if (rc != AMQP_STATUS_OK) {
    return absl::UnavailableError(absl::StrCat("cannot connect to AMQP broker at ", state->endpoint,
                                               ": ", amqp_error_string2(rc)));
  }
  timeval rpc_tv = ToTimeval(options_.rpc_timeout);
  amqp_set_rpc_timeout(state->conn, &rpc_tv);

  amqp_rpc_reply_t reply =
      amqp_login(state->conn, vhost.c_str(), 0, kFrameMax, options_.heartbeat_seconds,
                 AMQP_SASL_METHOD_PLAIN, info.user, info.password);
  std::string what = absl::StrCat("AMQP login to ", state->endpoint, " (vhost '", vhost,
                                  "', user '", info.user, "')");
  state_ = std::move(state);
  state_->healthy = true;
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    absl::Status status = ReplyToStatus(reply, what);
    Close();
    // Whatever the broker said, the connection is gone after a failed login.
    return absl::UnavailableError(status.message());
  }
  return OpenChannel();
}

absl::Status AmqpConnection::OpenChannel() {
  next_publish_sequence_ = 1;
  pending_.clear();
  amqp_channel_open(state_->conn, kChannel);
  if (absl::Status s = CheckReply("opening AMQP channel"); !s.ok()) return s;
  // Publisher confirms stay on for the channel's lifetime.
  amqp_confirm_select(state_->conn, kChannel);
  return CheckReply("enabling publisher confirms");
}

void AmqpConnection::Drop() {
  if (state_ != nullptr) state_->healthy = false;
  Close();
}

absl::Status AmqpConnection::ReplyToStatus(const amqp_rpc_reply_t& reply, const std::string& what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return absl::OkStatus();
    case AMQP_RESPONSE_NONE:
      Drop();
      return absl::UnavailableError(absl::StrCat(what, ": no reply from the broker"));
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      // Socket errors, timeouts in the middle of a reply, protocol errors: the frame stream
      // can no longer be trusted.
      Drop();
      return absl::UnavailableError(
          absl::StrCat(what, ": ", amqp_error_string2(reply.library_error)));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        return HandleChannelClose(*static_cast<const amqp_channel_close_t*>(reply.reply.decoded),
                                  what);
      }
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        return HandleConnectionClose(
            *static_cast<const amqp_connection_close_t*>(reply.reply.decoded), what);
      }
      Drop();
      return absl::UnavailableError(
          absl::StrCat(what, ": unexpected server method ", reply.reply.id));
  }
  Drop();
  return absl::InternalError(absl::StrCat(what, ": unknown rabbitmq-c reply type"));
}

absl::Status AmqpConnection::CheckReply(const std::string& what) {
  return ReplyToStatus(amqp_get_rpc_reply(state_->conn), what);
}

absl::Status AmqpConnection::CheckStatusCode(int code, const std::string& what) {
  if (code == AMQP_STATUS_OK) return absl::OkStatus();
  Drop();
  return absl::UnavailableError(absl::StrCat(what, ": ", amqp_error_string2(code)));
}

absl::Status AmqpConnection::HandleChannelClose(const amqp_channel_close_t& close,
                                                const std::string& what) {
  std::string message = absl::StrCat(what, ": broker closed the channel: ", close.reply_code, " ",
                                     ToString(close.reply_text));
  int code = close.reply_code;
  amqp_channel_close_ok_t ok{};
  int rc = amqp_send_method(state_->conn, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  if (rc != AMQP_STATUS_OK) return CheckStatusCode(rc, message);
  // A fresh channel keeps the connection usable; consumers on the old one are gone.
  if (absl::Status reopened = OpenChannel(); !reopened.ok()) return reopened;
  return ReplyCodeToStatus(code, std::move(message));
}

absl::Status AmqpConnection::HandleConnectionClose(const amqp_connection_close_t& close,
                                                   const std::string& what) {
  std::string message = absl::StrCat(what, ": broker closed the connection: ", close.reply_code,
                                     " ", ToString(close.reply_text));
  amqp_connection_close_ok_t ok{};
  amqp_send_method(state_->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  Drop();
  return absl::UnavailableError(std::move(message));
}

absl::Status AmqpConnection::DeclareTopology(const Topology& topology) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  if (topology.exchange.empty() || topology.queue.empty() ||
      topology.dead_letter_exchange.empty() || topology.dead_letter_queue.empty()) {
    return absl::InvalidArgumentError(
        "topology needs exchange, queue, dead_letter_exchange and dead_letter_queue names");
  }
  amqp_connection_state_t conn = state_->conn;
  for (const std::string* exchange : {&topology.exchange, &topology.dead_letter_exchange}) {
    amqp_exchange_declare(conn, kChannel, Bytes(*exchange), amqp_cstring_bytes("topic"),
                          /*passive=*/0, /*durable=*/1, /*auto_delete=*/0, /*internal=*/0,
                          amqp_empty_table);
    if (absl::Status s = CheckReply(absl::StrCat("declaring exchange '", *exchange, "'"));
        !s.ok()) {
      return s;
    }
  }

  amqp_queue_declare(conn, kChannel, Bytes(topology.dead_letter_queue), /*passive=*/0,
                     /*durable=*/1, /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  if (absl::Status s =
          CheckReply(absl::StrCat("declaring queue '", topology.dead_letter_queue, "'"));
      !s.ok()) {
    return s;
  }
  amqp_queue_bind(conn, kChannel, Bytes(topology.dead_letter_queue),
                  Bytes(topology.dead_letter_exchange), amqp_cstring_bytes("#"), amqp_empty_table);
  if (absl::Status s = CheckReply(absl::StrCat("binding queue '", topology.dead_letter_queue, "'"));
      !s.ok()) {
    return s;
  }

  amqp_table_entry_t dead_letter;
  dead_letter.key = amqp_cstring_bytes("x-dead-letter-exchange");
  dead_letter.value.kind = AMQP_FIELD_KIND_UTF8;
  dead_letter.value.value.bytes = Bytes(topology.dead_letter_exchange);
  amqp_table_t arguments;
  arguments.num_entries = 1;
  arguments.entries = &dead_letter;
  amqp_queue_declare(state_->conn, kChannel, Bytes(topology.queue), /*passive=*/0,
                     /*durable=*/1, /*exclusive=*/0, /*auto_delete=*/0, arguments);
  if (absl::Status s = CheckReply(absl::StrCat("declaring queue '", topology.queue, "'"));
      !s.ok()) {
    return s;
  }
  amqp_queue_bind(state_->conn, kChannel, Bytes(topology.queue), Bytes(topology.exchange),
                  Bytes(topology.routing_key), amqp_empty_table);
  return CheckReply(absl::StrCat("binding queue '", topology.queue, "' to '", topology.exchange,
                                 "' with '", topology.routing_key, "'"));
}

absl::Status AmqpConnection::Publish(std::string_view exchange, std::string_view routing_key,
                                     std::string_view body, const AmqpHeaders& headers,
                                     std::string_view message_id) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  std::vector<amqp_table_entry_t> entries;
  entries.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    amqp_table_entry_t entry;
    entry.key = Bytes(name);
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = Bytes(value);
    entries.push_back(entry);
  }
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
  properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  properties.headers.num_entries = static_cast<int>(entries.size());
  properties.headers.entries = entries.data();
  if (!message_id.empty()) {
    properties._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    properties.message_id = Bytes(message_id);
  }
  int rc = amqp_basic_publish(state_->conn, kChannel, Bytes(exchange), Bytes(routing_key),
                              /*mandatory=*/0, /*immediate=*/0, &properties, Bytes(body));
  std::string what = absl::StrCat("publishing to exchange '", std::string(exchange), "'");
  if (absl::Status s = CheckStatusCode(rc, what); !s.ok()) return s;
  return WaitForConfirm(next_publish_sequence_++, what);
}

absl::Status AmqpConnection::WaitForConfirm(uint64_t sequence, const std::string& what) {
  const Clock::time_point deadline = Clock::now() + options_.confirm_timeout;
  while (true) {
    std::chrono::milliseconds left = Remaining(deadline);
    if (left.count() == 0) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": broker did not confirm within ",
                                                      options_.confirm_timeout.count(), " ms"));
    }
    timeval tv = ToTimeval(left);
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame_noblock(state_->conn, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK) return CheckStatusCode(rc, what);
    absl::StatusOr<bool> confirmed = HandleFrame(frame, sequence, what);
    if (!confirmed.ok()) return confirmed.status();
    if (*confirmed) return absl::OkStatus();
  }
}

absl::StatusOr<bool> AmqpConnection::HandleFrame(const amqp_frame_t& frame, uint64_t sequence,
                                                 const std::string& what) {
  if (frame.frame_type != AMQP_FRAME_METHOD) return false;
  const amqp_method_t& method = frame.payload.method;
  switch (method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      const auto& ack = *static_cast<const amqp_basic_ack_t*>(method.decoded);
      // Confirms for earlier (timed-out) publishes are ignored.
      return sequence != 0 &&
             (ack.delivery_tag == sequence || (ack.multiple && ack.delivery_tag >= sequence));
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto& nack = *static_cast<const amqp_basic_nack_t*>(method.decoded);
      if (sequence != 0 &&
          (nack.delivery_tag == sequence || (nack.multiple && nack.delivery_tag >= sequence))) {
        return absl::AbortedError(absl::StrCat(what, ": broker refused the message (nack)"));
      }
      return false;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
      // A delivery for this channel's consumer arrived while waiting for a confirm: keep it.
      const auto& deliver = *static_cast<const amqp_basic_deliver_t*>(method.decoded);
      Delivery delivery;
      delivery.delivery_tag = deliver.delivery_tag;
      delivery.redelivered = deliver.redelivered != 0;
      delivery.exchange = ToString(deliver.exchange);
      delivery.routing_key = ToString(deliver.routing_key);
      amqp_message_t message;
      amqp_rpc_reply_t reply = amqp_read_message(state_->conn, frame.channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        return ReplyToStatus(reply, "reading a delivery");
      }
      FillFromMessage(message, delivery);
      amqp_destroy_message(&message);
      pending_.push_back(std::move(delivery));
      return false;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      amqp_message_t message;
      amqp_rpc_reply_t reply = amqp_read_message(state_->conn, frame.channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        return ReplyToStatus(reply, "reading a returned message");
      }
      amqp_destroy_message(&message);
      return false;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
      return HandleChannelClose(*static_cast<const amqp_channel_close_t*>(method.decoded), what);
    case AMQP_CONNECTION_CLOSE_METHOD:
      return HandleConnectionClose(*static_cast<const amqp_connection_close_t*>(method.decoded),
                                   what);
    default:
      return false;
  }
}

absl::Status AmqpConnection::Consume(std::string_view queue, uint16_t prefetch) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  amqp_basic_qos(state_->conn, kChannel, 0, prefetch, 0);
  if (absl::Status s = CheckReply("setting prefetch"); !s.ok()) return s;
  amqp_basic_consume(state_->conn, kChannel, Bytes(queue), amqp_empty_bytes, /*no_local=*/0,
                     /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
  return CheckReply(absl::StrCat("consuming queue '", std::string(queue), "'"));
}

absl::StatusOr<std::optional<Delivery>> AmqpConnection::NextDelivery(
    std::chrono::milliseconds timeout) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (!pending_.empty()) {
      Delivery delivery = std::move(pending_.front());
      pending_.pop_front();
      return delivery;
    }
    amqp_maybe_release_buffers(state_->conn);
    timeval tv = ToTimeval(Remaining(deadline));
    amqp_envelope_t envelope;
    amqp_rpc_reply_t reply = amqp_consume_message(state_->conn, &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      Delivery delivery;
      delivery.delivery_tag = envelope.delivery_tag;
      delivery.redelivered = envelope.redelivered != 0;
      delivery.exchange = ToString(envelope.exchange);
      delivery.routing_key = ToString(envelope.routing_key);
      FillFromMessage(envelope.message, delivery);
      amqp_destroy_envelope(&envelope);
      return delivery;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      return std::nullopt;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // A frame other than a delivery is next (a late confirm, a channel close, ...).
      amqp_frame_t frame;
      int rc = amqp_simple_wait_frame(state_->conn, &frame);
      if (rc != AMQP_STATUS_OK) return CheckStatusCode(rc, "waiting for a delivery");
      absl::StatusOr<bool> handled = HandleFrame(frame, 0, "waiting for a delivery");
      if (!handled.ok()) return handled.status();
      if (Remaining(deadline).count() == 0 && pending_.empty()) return std::nullopt;
      continue;
    }
    return ReplyToStatus(reply, "waiting for a delivery");
  }
}

absl::Status AmqpConnection::Ack(uint64_t delivery_tag) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  return CheckStatusCode(amqp_basic_ack(state_->conn, kChannel, delivery_tag, /*multiple=*/0),
                         "acknowledging a delivery");
}

absl::Status AmqpConnection::Reject(uint64_t delivery_tag, bool requeue) {
  if (absl::Status s = RequireConnected(); !s.ok()) return s;
  return CheckStatusCode(amqp_basic_reject(state_->conn, kChannel, delivery_tag, requeue ? 1 : 0),
                         "rejecting a delivery");
}

}  // namespace ordertrace::services::amqp
