#include "http/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "http/beast_request.h"
#include "http/byte_budget.h"
#include "http/worker_pool.h"

namespace ordertrace::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
namespace ssl = boost::asio::ssl;
// The two kinds of connection, served by the same Connection code.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using SteadyClock = std::chrono::steady_clock;

// A refused request's unread body is read and thrown away, up to this much and this long, so
// that the close does not reset the connection under the client's answer.
constexpr size_t kMaxDrainBytes = 64 << 20;
constexpr auto kDrainTimeout = std::chrono::seconds(5);
// A chunked body's reservation grows by doubling from this.
constexpr size_t kChunkedFirstReservation = 1 << 20;
// The first read of a request; the parser asks for more as it needs.
constexpr size_t kFirstRead = 4096;
// The read buffer holds one head and one read's worth of body at most.
constexpr size_t kReadSlack = 64 << 10;

void WriteJsonRefusal(const Request&, Response& response, int status, const std::string& message) {
  response.status = status;
  nlohmann::json body = {{"error", message}};
  response.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/json");
}

bool IsDisconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated;
}

// A TLS record that does not decrypt or verify: the stream is unusable, nothing can be answered.
bool IsTlsFailure(const beast::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category();
}

using internal::CopyHead;

}  // namespace

// State every connection shares with the server; outlives the server while connections end.
struct Server::Shared {
  Shared(ServerOptions server_options, std::function<void(Request&, Response&)> request_handler,
         RefusalWriter refusal_writer)
      : options(std::move(server_options)),
        handler(std::move(request_handler)),
        refusal(refusal_writer ? std::move(refusal_writer) : WriteJsonRefusal),
        budget(options.max_inflight_bytes),
        workers(options.worker_threads, options.max_queued_requests) {}

  const ServerOptions options;
  const std::function<void(Request&, Response&)> handler;
  const RefusalWriter refusal;
  ByteBudget budget;
  WorkerPool workers;
  std::atomic<size_t> connections_open{0};
  std::atomic<size_t> connections_draining{0};  // answered, reading what the client still sends
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> refused_busy{0};
  std::atomic<uint64_t> refused_over_budget{0};
  std::atomic<uint64_t> refused_too_large{0};
  std::atomic<uint64_t> refused_by_head{0};
  std::atomic<uint64_t> refused_malformed{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> handler_errors{0};
  std::atomic<uint64_t> tls_handshake_failures{0};
};

// One client connection: reads requests one at a time, hands each to a worker, writes its
// answer. Every step runs on the connection's strand; only Handle runs on a worker. `Stream` is
// PlainStream or TlsStream: a TLS connection adds the handshake (step 0) and is otherwise the
// same steps on the decrypted stream, so both get every limit and deadline.
template <class Stream>
class Server::Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `context` is the TLS context for this connection (held for its life: a reload swaps the
  // provider's, not this one); null for a plain one.
  Connection(tcp::socket&& socket, std::shared_ptr<Shared> shared,
             std::shared_ptr<ssl::context> context)
      : context_(std::move(context)),
        stream_(MakeStream(std::move(socket), context_.get())),
        shared_(std::move(shared)),
        options_(shared_->options),
        buffer_(options_.max_header_bytes + kReadSlack) {
    ++shared_->connections_open;
  }
  ~Connection() {
    ReleaseReservation();
    --(draining_ ? shared_->connections_draining : shared_->connections_open);
  }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Connection::Handshake, this->shared_from_this()));
  }

  // Past max_connections: answer 503 at once (after the handshake, on TLS) and close.
  void Refuse() {
    refuse_at_start_ = true;
    Run();
  }

 private:
  enum class After { kNextRequest, kClose, kDrainThenClose };

  static Stream MakeStream(tcp::socket&& socket, ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      return Stream(std::move(socket));
    }
  }

  // The TCP layer, which holds the deadlines and the socket.
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  // 0. TLS only: the handshake, within header_timeout (a slow or silent client is cut there).
  void Handshake() {
    if constexpr (kTls) {
      Tcp().expires_after(options_.header_timeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&Connection::OnHandshake, this->shared_from_this()));
    } else {
      Begin();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      // Plain HTTP on a TLS port, no or an untrusted client certificate, a scanner, a timeout:
      // nothing can be answered in a protocol the client speaks, so the connection just closes.
      ++shared_->tls_handshake_failures;
      spdlog::debug("{}: TLS handshake failed: {}", options_.name, ec.message());
      return Close();
    }
    Begin();
  }

  void Begin() {
    if (refuse_at_start_) {
      return Refuse(503, "too many connections; retry later", /*body_unread=*/true);
    }
    AwaitRequest();
  }

  // 1. Waits up to idle_timeout for the next request's first bytes.
  void AwaitRequest() {
    if (buffer_.size() > 0) return ReadHead();  // a pipelined request is already here
    Tcp().expires_after(options_.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kFirstRead),
        beast::bind_front_handler(&Connection::OnFirstBytes, this->shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t bytes) {
    if (ec) return Close();  // idle too long, or the client left
    buffer_.commit(bytes);
    ReadHead();
  }

  // 2. Reads the request head within header_timeout and max_header_bytes.
  void ReadHead() {
    request_ = Request{};
    parser_.emplace();
    internal::LimitParser(*parser_, options_.max_header_bytes, options_.max_body_bytes);
    Tcp().expires_after(options_.header_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Connection::OnHead, this->shared_from_this()));
  }

  void OnHead(beast::error_code ec, size_t) {
    if (ec == beast::error::timeout) {
      ++shared_->timeouts;
      return Close();
    }
    if (IsDisconnect(ec) || IsTlsFailure(ec)) return Close();
    // A Content-Length past the limit fails the head at its end, with every field parsed.
    if (parser_->is_header_done() || ec == bhttp::error::body_limit) {
      CopyHead(parser_->get(), request_);
    }
    if (ec) return RefuseParseError(ec);
    Admit();
  }

  // 3. Admission, before any body byte is read.
  void Admit() {
    keep_alive_ = parser_->get().keep_alive();
    version_ = parser_->get().version();
    if (options_.check_head) {
      if (std::optional<HeadRefusal> refused = options_.check_head(request_)) {
        ++shared_->refused_by_head;
        return Refuse(refused->status, refused->message, !parser_->is_done(),
                      std::move(refused->headers));
      }
    }
    if (parser_->is_done()) return Dispatch();  // no body
    if (shared_->workers.queued() >= options_.max_queued_requests) {
      ++shared_->refused_busy;
      return Refuse(503, "the server is busy; retry later", true);
    }
    size_t wanted = parser_->chunked() ? std::min(options_.max_body_bytes, kChunkedFirstReservation)
                                       : static_cast<size_t>(parser_->content_length().value_or(0));
    if (!Reserve(wanted)) {
      ++shared_->refused_over_budget;
      return Refuse(429, "too many request bytes in flight; retry later", true);
    }
    Tcp().expires_after(options_.body_timeout);  // one deadline for the whole body
    if (ExpectsContinue()) return SendContinue();
    ReadBody();
  }

  bool ExpectsContinue() const {
    return beast::iequals(parser_->get()[bhttp::field::expect], "100-continue");
  }

  void SendContinue() {
    auto interim =
        std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, version_);
    bhttp::async_write(stream_, *interim,
                       [self = this->shared_from_this(), interim](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
  }

  // 4. Reads the body within body_timeout, growing a chunked body's reservation as it comes.
  void ReadBody() {
    bhttp::async_read_some(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Connection::OnBody, this->shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec == beast::error::timeout) {
      ++shared_->timeouts;
      return Close();  // the stream closed the socket on its deadline
    }
    if (IsDisconnect(ec) || IsTlsFailure(ec)) return Close();
    if (ec) return RefuseParseError(ec);
    if (!GrowChunkedReservation()) {
      ++shared_->refused_over_budget;
      return Refuse(429, "too many request bytes in flight; retry later", true);
    }
    if (!parser_->is_done()) return ReadBody();
    Dispatch();
  }

  bool GrowChunkedReservation() {
    size_t held = parser_->get().body().capacity();
    if (held <= reserved_) return true;
    size_t wanted = std::max(held, std::min(options_.max_body_bytes, reserved_ * 2));
    return Reserve(wanted - reserved_);
  }

  // 5. Hands the request to a worker; its answer comes back to Respond on this strand.
  void Dispatch() {
    CopyHead(parser_->get(), request_);
    request_.body = std::move(parser_->get().body());
    parser_.reset();
    head_only_ = request_.method == "HEAD";
    size_t reserved = std::exchange(reserved_, 0);
    auto task = [self = this->shared_from_this(), request = std::move(request_), reserved,
                 queued_at = SteadyClock::now()]() mutable {
      self->Handle(request, reserved, queued_at);
    };
    if (!shared_->workers.TryPost(std::move(task))) {
      shared_->budget.Release(reserved);
      ++shared_->refused_busy;
      Refuse(503, "the server is busy; retry later", false);
    }
  }

  // On a worker thread.
  void Handle(Request& request, size_t reserved, SteadyClock::time_point queued_at) {
    Response response;
    if (SteadyClock::now() - queued_at > options_.max_queue_wait) {
      ++shared_->refused_busy;
      WriteRefusal(request, response, 503, "the server is busy; retry later");
    } else {
      ++shared_->requests;
      RunHandler(request, response);
    }
    request.body = std::string();  // freed before its bytes go back to the budget
    shared_->budget.Release(reserved);
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), response = std::move(response)]() mutable {
                 self->Respond(std::move(response), After::kNextRequest);
               });
  }

  void RunHandler(Request& request, Response& response) {
    std::string failure;
    try {
      shared_->handler(request, response);
      return;
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    ++shared_->handler_errors;
    spdlog::error("{}: {} {} failed: {}", options_.name, request.method, request.path, failure);
    response = Response{};
    shared_->refusal(request, response, 500, "internal error");
  }

  // 6. Writes the answer, then reads the next request, closes, or drains and closes.
  void Respond(Response response, After after) {
    auto message = std::make_shared<bhttp::response<bhttp::string_body>>();
    message->version(version_);
    message->result(static_cast<unsigned>(response.status));
    if (std::string_view reason = ReasonPhrase(response.status); !reason.empty()) {
      message->reason(beast::string_view(reason.data(), reason.size()));
    }
    if (!response.content_type.empty()) {
      message->set(bhttp::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) message->insert(name, value);
    bool close = response.close_connection || !keep_alive_ || after != After::kNextRequest;
    message->keep_alive(!close);
    size_t length = response.body.size();
    message->body() = std::move(response.body);
    message->prepare_payload();
    if (head_only_) {
      message->body().clear();
      message->content_length(length);
    }
    if (close && after == After::kNextRequest) after = After::kClose;
    Tcp().expires_after(options_.write_timeout);
    bhttp::async_write(stream_, *message,
                       [self = this->shared_from_this(), message, after](
                           beast::error_code ec, size_t) { self->OnWritten(ec, after); });
  }

  void OnWritten(beast::error_code ec, After after) {
    if (ec || after == After::kClose) return Close();
    if (after == After::kDrainThenClose) return DrainThenClose();
    head_only_ = false;
    AwaitRequest();
  }

  // Refusals at the edge: the answer, then the connection closes.
  void Refuse(int status, const std::string& message, bool body_unread, HeaderList headers = {}) {
    ReleaseReservation();
    parser_.reset();
    Response response;
    WriteRefusal(request_, response, status, message);
    for (auto& header : headers) response.headers.push_back(std::move(header));
    Respond(std::move(response), body_unread ? After::kDrainThenClose : After::kClose);
  }

  // A request the parser refused (431, 413 or 400); its body is left unread.
  void RefuseParseError(const beast::error_code& ec) {
    internal::ParseRefusal refusal =
        internal::RefusalFor(ec, options_.max_header_bytes, options_.max_body_bytes);
    ++(refusal.status == 400 ? shared_->refused_malformed : shared_->refused_too_large);
    Refuse(refusal.status, refusal.message, true);
  }

  void WriteRefusal(const Request& request, Response& response, int status,
                    const std::string& message) {
    shared_->refusal(request, response, status, message);
    if (status == 429 || status == 503) {
      response.SetHeader("Retry-After", std::to_string(options_.retry_after_seconds));
    }
    response.close_connection = true;
  }

  void DrainThenClose() {
    // An answered connection leaves max_connections for a bound of its own: a refused large
    // body can take seconds to drain, and counted as open it turned a byte flood from fewer
    // clients than the bound into "too many connections" refusals and silent closes.
    if (shared_->connections_draining.load() >= options_.max_connections) return Close();
    draining_ = true;
    ++shared_->connections_draining;
    --shared_->connections_open;
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Tcp().expires_after(kDrainTimeout);
    drain_buffer_ = std::make_unique<std::array<char, 16 << 10>>();
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(*drain_buffer_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                              self->drained_ += bytes;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    ReleaseReservation();
    beast::error_code ignored;
    // On TLS no close_notify is sent: every answer carries its length, so a client cannot
    // mistake a cut for the end, and a close_notify exchange could wait on the client.
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  bool Reserve(size_t bytes) {
    if (!shared_->budget.TryReserve(bytes)) return false;
    reserved_ += bytes;
    return true;
  }

  void ReleaseReservation() {
    shared_->budget.Release(reserved_);
    reserved_ = 0;
  }

  const std::shared_ptr<ssl::context> context_;  // outlives stream_, which refers to it
  Stream stream_;
  const std::shared_ptr<Shared> shared_;
  const ServerOptions& options_;
  beast::flat_buffer buffer_;
  std::optional<internal::RequestParser> parser_;
  Request request_;  // the head of the request being read (for refusals), then the request
  size_t reserved_ = 0;
  bool keep_alive_ = false;
  bool head_only_ = false;
  unsigned version_ = 11;
  std::unique_ptr<std::array<char, 16 << 10>> drain_buffer_;
  size_t drained_ = 0;
  bool draining_ = false;
  bool refuse_at_start_ = false;
};

// Accepts connections and starts each, or refuses it past max_connections.
class Server::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, std::shared_ptr<Shared> shared)
      : io_(io), shared_(std::move(shared)), acceptor_(asio::make_strand(io)), retry_(io) {}

  absl::StatusOr<int> Bind(const base::ListenAddress& address) {
    absl::StatusOr<tcp::endpoint> endpoint = Resolve(address);
    if (!endpoint.ok()) return endpoint.status();
    beast::error_code ec;
    acceptor_.open(endpoint->protocol(), ec);
    // SO_REUSEADDR (not SO_REUSEPORT): a quick restart over sockets in TIME_WAIT works, while a
    // second process on the same port gets "address in use" instead of half the connections.
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(*endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(shared_->options.name + " cannot listen on " +
                                    address.ToString() + " (" + ec.message() + ")");
    }
    return acceptor_.local_endpoint().port();
  }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  absl::StatusOr<tcp::endpoint> Resolve(const base::ListenAddress& address) {
    beast::error_code ec;
    asio::ip::address ip = asio::ip::make_address(address.host, ec);
    if (!ec) return tcp::endpoint(ip, static_cast<uint16_t>(address.port));
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) {
      return absl::UnavailableError(shared_->options.name + " cannot listen on " +
                                    address.ToString() + " (not a local address)");
    }
    return results.begin()->endpoint();
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors, usually: wait a little instead of spinning on the error.
      spdlog::warn("{}: accept failed: {}", shared_->options.name, ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->Accept();
      });
      return;
    }
    Start(std::move(socket));
    Accept();
  }

  void Start(tcp::socket socket) {
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // no 40 ms wait on kept-alive answers
    size_t open = shared_->connections_open.load();
    const bool refuse = open >= shared_->options.max_connections;
    if (refuse) {
      ++shared_->connections_refused;
      // Far past the bound even a refusal is not written: the socket just closes.
      if (open >= 2 * shared_->options.max_connections) return;
    } else {
      ++shared_->connections_accepted;
    }
    if (shared_->options.tls != nullptr) {
      StartConnection<TlsStream>(std::move(socket), shared_->options.tls->Current(), refuse);
    } else {
      StartConnection<PlainStream>(std::move(socket), nullptr, refuse);
    }
  }

  template <class Stream>
  void StartConnection(tcp::socket socket, std::shared_ptr<ssl::context> context, bool refuse) {
    auto connection =
        std::make_shared<Connection<Stream>>(std::move(socket), shared_, std::move(context));
    if (refuse) {
      connection->Refuse();
    } else {
      connection->Run();
    }
  }

  asio::io_context& io_;
  const std::shared_ptr<Shared> shared_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

Server::Server(ServerOptions options, std::function<void(Request&, Response&)> handler,
               RefusalWriter refusal)
    : shared_(
          std::make_shared<Shared>(std::move(options), std::move(handler), std::move(refusal))) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<int> Server::Start(const base::ListenAddress& address) {
  const size_t threads = std::max<size_t>(1, shared_->options.io_threads);
  io_ = std::make_unique<asio::io_context>(static_cast<int>(threads));
  listener_ = std::make_shared<Listener>(*io_, shared_);
  absl::StatusOr<int> port = listener_->Bind(address);
  if (!port.ok()) {
    listener_.reset();
    io_.reset();
    return port.status();
  }
  listener_->Accept();
  for (size_t i = 0; i < threads; ++i) {
    io_threads_.emplace_back([io = io_.get(), name = shared_->options.name] {
      while (true) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("{}: I/O loop: {}", name, e.what());
        }
      }
    });
  }
  return port;
}

void Server::Shutdown() {
  if (io_ == nullptr) return;
  io_->stop();
  for (std::thread& thread : io_threads_) thread.join();
  io_threads_.clear();
  // Running handlers finish; their answers go to the stopped loop and are dropped with it.
  shared_->workers.Shutdown();
  listener_.reset();
  io_.reset();  // destroys the pending operations, and with them every connection
}

ServerStats Server::Stats() const {
  const Shared& s = *shared_;
  ServerStats stats;
  stats.connections_accepted = s.connections_accepted.load();
  stats.connections_refused = s.connections_refused.load();
  stats.requests = s.requests.load();
  stats.refused_busy = s.refused_busy.load();
  stats.refused_over_budget = s.refused_over_budget.load();
  stats.refused_too_large = s.refused_too_large.load();
  stats.refused_by_head = s.refused_by_head.load();
  stats.refused_malformed = s.refused_malformed.load();
  stats.timeouts = s.timeouts.load();
  stats.handler_errors = s.handler_errors.load();
  stats.tls_handshake_failures = s.tls_handshake_failures.load();
  stats.connections_open = s.connections_open.load();
  stats.connections_draining = s.connections_draining.load();
  stats.queued_requests = s.workers.queued();
  stats.inflight_bytes = s.budget.used();
  return stats;
}

const ServerOptions& Server::options() const { return shared_->options; }

}  // namespace ordertrace::http
