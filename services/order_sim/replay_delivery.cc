#include "services/order_sim/replay_delivery.h"

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "sdk/otlp_encoding.h"
#include "sdk/otlp_http_exporter.h"
#include "sdk/span_data.h"
#include "sdk/tracer.h"

namespace ordertrace::services::sim {
namespace {

// The resource and scope each service's spans are exported under, as ServiceRuntime sets them.
struct ServiceIdentityData {
  std::shared_ptr<const base::Resource> resource;
  std::shared_ptr<const base::InstrumentationScope> scope;
};

std::vector<ServiceIdentityData> ServiceIdentities() {
  std::vector<ServiceIdentityData> identities;
  for (int i = 0; i < kReplayServiceCount; ++i) {
    std::string_view name = ReplayServiceName(static_cast<ReplayService>(i));
    auto scope = std::make_shared<base::InstrumentationScope>();
    scope->name = std::string(name);
    identities.push_back(
        {std::make_shared<const base::Resource>(sdk::MakeResource(
             name, {base::KeyValue{"service.namespace", base::AnyValue::String("alexandrite")}})),
         std::move(scope)});
  }
  return identities;
}

std::vector<sdk::SpanData> SpanDataOf(const ReplayDay& day, const ReplayRequest& request,
                                      const ServiceIdentityData& identity) {
  std::vector<sdk::SpanData> spans;
  spans.reserve(request.spans.size());
  for (const ReplaySpanRef& ref : request.spans) {
    spans.push_back({day.MakeSpan(ref), identity.resource, identity.scope});
  }
  return spans;
}

}  // namespace

std::vector<ReplayRequest> PlanRequests(const ReplayDay& day,
                                        const ReplayBatchingOptions& options) {
  std::vector<ReplaySpanRef> stream = day.timeline();
  if (options.ordering == ReplayOrdering::kShuffled && options.window_spans > 1) {
    // Fisher-Yates per window, from raw engine output (the same on every standard library).
    std::mt19937_64 engine(options.seed);
    for (size_t begin = 0; begin < stream.size(); begin += options.window_spans) {
      const size_t end = std::min(stream.size(), begin + options.window_spans);
      for (size_t i = end - 1; i > begin; --i) {
        const double unit = static_cast<double>(engine() >> 11) * 0x1.0p-53;
        const size_t j = begin + static_cast<size_t>(unit * static_cast<double>(i - begin + 1));
        std::swap(stream[i], stream[j]);
      }
    }
  }
  const size_t batch = std::max<size_t>(options.batch_spans, 1);
  std::vector<ReplayRequest> requests;
  std::vector<ReplayRequest> filling(kReplayServiceCount);
  for (int i = 0; i < kReplayServiceCount; ++i) {
    filling[i].service = static_cast<ReplayService>(i);
  }
  for (const ReplaySpanRef& ref : stream) {
    ReplayRequest& request = filling[static_cast<int>(day.ServiceOf(ref))];
    request.spans.push_back(ref);
    if (request.spans.size() >= batch) {
      const ReplayService service = request.service;
      requests.push_back(std::move(request));
      request = ReplayRequest{service, {}};
    }
  }
  for (ReplayRequest& request : filling) {
    if (!request.spans.empty()) requests.push_back(std::move(request));
  }
  return requests;
}

base::TraceBatch RequestBatch(const ReplayDay& day, const ReplayRequest& request) {
  const std::vector<ServiceIdentityData> identities = ServiceIdentities();
  std::vector<sdk::SpanData> spans =
      SpanDataOf(day, request, identities[static_cast<int>(request.service)]);
  return sdk::ToTraceBatch(spans);
}

absl::StatusOr<ReplaySendStats> SendRequests(const ReplayDay& day,
                                             const std::vector<ReplayRequest>& requests,
                                             const ReplaySendOptions& options) {
  if (options.concurrency < 1) return absl::InvalidArgumentError("--concurrency must be >= 1");
  const std::vector<ServiceIdentityData> identities = ServiceIdentities();
  // One exporter per request in flight: an exporter sends one request at a time.
  std::vector<std::unique_ptr<sdk::OtlpHttpExporter>> exporters;
  for (int i = 0; i < options.concurrency; ++i) {
    sdk::OtlpHttpExporterOptions exporter_options;
    exporter_options.endpoint = options.endpoint;
    exporter_options.timeout = options.request_timeout;
    exporter_options.max_attempts = options.max_attempts;
    exporter_options.initial_backoff = std::chrono::milliseconds(200);
    exporter_options.max_backoff = std::chrono::seconds(5);
    absl::StatusOr<std::unique_ptr<sdk::OtlpHttpExporter>> exporter =
        sdk::OtlpHttpExporter::Create(std::move(exporter_options));
    if (!exporter.ok()) return exporter.status();
    exporters.push_back(*std::move(exporter));
  }

  ReplaySendStats stats;
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> refused{0};
  std::mutex mu;  // guards stats.first_refusal
  const auto started = std::chrono::steady_clock::now();
  auto work = [&](sdk::OtlpHttpExporter& exporter) {
    for (size_t i = next++; i < requests.size(); i = next++) {
      const ReplayRequest& request = requests[i];
      std::vector<sdk::SpanData> spans =
          SpanDataOf(day, request, identities[static_cast<int>(request.service)]);
      absl::Status sent = exporter.Export(spans);
      if (!sent.ok()) {
        ++refused;
        std::lock_guard<std::mutex> lock(mu);
        if (stats.first_refusal.empty()) {
          stats.first_refusal =
              "request " + std::to_string(i) + " (" + std::to_string(spans.size()) + " " +
              std::string(ReplayServiceName(request.service)) + " spans): " + sent.ToString();
        }
      }
    }
  };
  std::vector<std::thread> workers;
  for (auto& exporter : exporters) workers.emplace_back(work, std::ref(*exporter));
  for (std::thread& worker : workers) worker.join();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stats.refused_requests = refused.load();
  stats.requests = requests.size() - stats.refused_requests;
  for (auto& exporter : exporters) {
    sdk::OtlpHttpExporterStats exporter_stats = exporter->stats();
    stats.spans_sent += exporter_stats.spans_exported;
    stats.attempts += exporter_stats.requests;
    stats.retries += exporter_stats.retries;
    exporter->Shutdown();
  }
  return stats;
}

absl::Status WriteRequests(const ReplayDay& day, const std::vector<ReplayRequest>& requests,
                           const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError("cannot write " + path);
  const std::vector<ServiceIdentityData> identities = ServiceIdentities();
  for (const ReplayRequest& request : requests) {
    std::vector<sdk::SpanData> spans =
        SpanDataOf(day, request, identities[static_cast<int>(request.service)]);
    const std::string body = sdk::EncodeExportRequest(spans);
    char varint[10];
    size_t length = 0;
    for (uint64_t size = body.size();; size >>= 7) {
      varint[length++] = static_cast<char>((size & 0x7f) | (size >= 0x80 ? 0x80 : 0));
      if (size < 0x80) break;
    }
    out.write(varint, static_cast<std::streamsize>(length));
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
  }
  out.flush();
  if (!out) return absl::UnavailableError("writing " + path + " failed");
  return absl::OkStatus();
}

}  // namespace ordertrace::services::sim
