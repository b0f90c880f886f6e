#include "otlp/decode_budget.h"

#include <algorithm>
#include <string>
#include <utility>

#include "otlp/decode_estimate.h"

namespace ordertrace::otlp {
namespace {

std::string Megabytes(size_t bytes) {
  return std::to_string((bytes + (size_t{1} << 20) - 1) >> 20) + " MiB";
}

}  // namespace

DecodeBudget::Lease::Lease(Lease&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DecodeBudget::Lease& DecodeBudget::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

DecodeBudget::Lease::~Lease() { Release(); }

void DecodeBudget::Lease::Release() {
  if (budget_ != nullptr) budget_->leased_.fetch_sub(bytes_, std::memory_order_acq_rel);
  budget_ = nullptr;
  bytes_ = 0;
}

DecodeBudget::DecodeBudget(DecodeBudgetOptions options) : options_(options) {}

absl::StatusOr<DecodeBudget::Lease> DecodeBudget::Acquire(size_t bytes) {
  if (bytes > options_.max_request_bytes) {
    refused_too_large_.fetch_add(1, std::memory_order_relaxed);
    return absl::OutOfRangeError("decoding this request would take about " + Megabytes(bytes) +
                                 ", more than the " + Megabytes(options_.max_request_bytes) +
                                 " one request may take (ingest.max_decoded_request_mb); "
                                 "send fewer or smaller spans per request");
  }
  size_t leased = leased_.load(std::memory_order_relaxed);
  do {
    if (bytes > options_.total_bytes - std::min(leased, options_.total_bytes)) {
      refused_full_.fetch_add(1, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(
          "ordertrace is decoding as many requests as its memory budget allows "
          "(ingest.decode_budget_mb); retry later");
    }
  } while (!leased_.compare_exchange_weak(leased, leased + bytes, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  admitted_.fetch_add(1, std::memory_order_relaxed);
  return Lease(this, bytes);
}

absl::StatusOr<DecodeBudget::Lease> DecodeBudget::AdmitProtobuf(std::string_view body) {
  return Acquire(EstimateProtobufDecodeBytes(body));
}

absl::StatusOr<DecodeBudget::Lease> DecodeBudget::AdmitJson(std::string_view body) {
  return Acquire(EstimateJsonDecodeBytes(body));
}

DecodeBudgetStats DecodeBudget::Stats() const {
  DecodeBudgetStats stats;
  stats.leased_bytes = leased_.load(std::memory_order_relaxed);
  stats.requests_admitted = admitted_.load(std::memory_order_relaxed);
  stats.refused_budget_full = refused_full_.load(std::memory_order_relaxed);
  stats.refused_too_large = refused_too_large_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace ordertrace::otlp
