// The memory every OTLP request being decoded may hold at once, shared by the receivers (gRPC and
// HTTP): a request is admitted only when its estimated decode (decode_estimate.h) fits, before
// anything is decoded, and holds its share (a Lease) until it is answered. Past the budget a
// request is refused and the client retries; a request that alone is past the per-request ceiling
// never fits and is refused for good. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace ordertrace::otlp {

struct DecodeBudgetOptions {
  // What all requests being decoded (and waiting for ingest) may hold together.
  size_t total_bytes = size_t{320} << 20;
  // What one request may hold; larger ones are refused whatever else is in flight.
  size_t max_request_bytes = size_t{256} << 20;
};

struct DecodeBudgetStats {
  size_t leased_bytes = 0;           // held now
  uint64_t requests_admitted = 0;    // leases given
  uint64_t refused_budget_full = 0;  // the budget was spent (retry later)
  uint64_t refused_too_large = 0;    // one request past max_request_bytes
};

class DecodeBudget {
 public:
  // A share of the budget; given back when destroyed. Move-only. Must not outlive its budget.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    size_t bytes() const { return bytes_; }

   private:
    friend class DecodeBudget;
    Lease(DecodeBudget* budget, size_t bytes) : budget_(budget), bytes_(bytes) {}
    void Release();

    DecodeBudget* budget_ = nullptr;
    size_t bytes_ = 0;
  };

  explicit DecodeBudget(DecodeBudgetOptions options = {});
  DecodeBudget(const DecodeBudget&) = delete;
  DecodeBudget& operator=(const DecodeBudget&) = delete;

  // A lease of `bytes`. kOutOfRange: past max_request_bytes, never admitted (HTTP 413, gRPC
  // RESOURCE_EXHAUSTED without RetryInfo); kResourceExhausted: the budget is spent now (HTTP 429
  // with Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo). Messages name the figures.
  absl::StatusOr<Lease> Acquire(size_t bytes);

  // Estimates what decoding `body` holds (EstimateProtobufDecodeBytes or
  // EstimateJsonDecodeBytes) and acquires it; call before decoding, with the body after
  // decompression.
  absl::StatusOr<Lease> AdmitProtobuf(std::string_view body);
  absl::StatusOr<Lease> AdmitJson(std::string_view body);

  DecodeBudgetStats Stats() const;
  const DecodeBudgetOptions& options() const { return options_; }

 private:
  // Constant after construction.
  const DecodeBudgetOptions options_;

  // Lock-free: a compare-and-swap on the bytes leased, counters relaxed.
  std::atomic<size_t> leased_{0};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_full_{0};
  std::atomic<uint64_t> refused_too_large_{0};
};

}  // namespace ordertrace::otlp
