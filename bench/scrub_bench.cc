// What PII scrubbing costs per span at ingest: Google Benchmark over realistic order
// spans (bench/order_span_generator: the attributes the services really set, no PII), and the
// same spans with an e-mail address and a phone number added to each. items_per_second are
// spans per second of CPU (1e9 / it = ns per span).
//
//   build/bench/ordertrace_scrub_bench
#include <benchmark/benchmark.h>

#include <memory>

#include "bench/order_span_generator.h"
#include "scrub/operator_id_hasher.h"
#include "scrub/pii_scrubber.h"

namespace ordertrace::bench {
namespace {

constexpr size_t kBatchSpans = 512;
constexpr uint64_t kBase = 1'765'000'000'000'000'000ULL;

base::TraceBatch CleanBatch() { return OrderSpanGenerator(7, kBase).NextBatch(kBatchSpans); }

// Order ids as the services make them (UUIDs: enough digits for the phone rule's digit test).
base::TraceBatch CleanBatchWithUuidOrderIds() {
  base::TraceBatch batch = CleanBatch();
  for (auto& rs : batch.resource_spans) {
    for (auto& ss : rs.scope_spans) {
      for (auto& span : ss.spans) {
        for (auto& kv : span.attributes) {
          if (kv.key == "order_id") {
            kv.value = base::AnyValue::String("6f1c1f5e-0c1a-4c39-9d55-0d8a6f0e2b11");
          }
        }
      }
    }
  }
  return batch;
}

base::TraceBatch BatchWithPii() {
  base::TraceBatch batch = CleanBatch();
  for (auto& rs : batch.resource_spans) {
    for (auto& ss : rs.scope_spans) {
      for (auto& span : ss.spans) {
        span.attributes.push_back({"customer.email", base::AnyValue::String("jo@example.com")});
        span.attributes.push_back({"note", base::AnyValue::String("call +49 30 1234567 after 5")});
      }
    }
  }
  return batch;
}

void Scrub(benchmark::State& state, base::TraceBatch (*make)()) {
  std::unique_ptr<scrub::PiiScrubber> scrubber = *scrub::PiiScrubber::Create({});
  const base::TraceBatch original = make();
  for (auto _ : state) {
    state.PauseTiming();
    base::TraceBatch batch = original;
    state.ResumeTiming();
    benchmark::DoNotOptimize(scrubber->Scrub(batch));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * original.SpanCount()));
}

void BM_ScrubSpansWithoutPii(benchmark::State& state) { Scrub(state, CleanBatch); }
void BM_ScrubSpansWithUuidOrderIds(benchmark::State& state) {
  Scrub(state, CleanBatchWithUuidOrderIds);
}
void BM_ScrubSpansWithPii(benchmark::State& state) { Scrub(state, BatchWithPii); }

void BM_AddOperatorIdHashes(benchmark::State& state) {
  scrub::OperatorIdHasher hasher("bench-secret-0123456789");
  const base::TraceBatch original = CleanBatch();
  for (auto _ : state) {
    state.PauseTiming();
    base::TraceBatch batch = original;
    state.ResumeTiming();
    benchmark::DoNotOptimize(hasher.AddOperatorIdHashes(batch));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * original.SpanCount()));
}

void BM_HashOneOperatorId(benchmark::State& state) {
  scrub::OperatorIdHasher hasher("bench-secret-0123456789");
  for (auto _ : state) benchmark::DoNotOptimize(hasher.Hash("operator-cust-00042"));
}

BENCHMARK(BM_ScrubSpansWithoutPii);
BENCHMARK(BM_ScrubSpansWithUuidOrderIds);
BENCHMARK(BM_ScrubSpansWithPii);
BENCHMARK(BM_AddOperatorIdHashes);
BENCHMARK(BM_HashOneOperatorId);

}  // namespace
}  // namespace ordertrace::bench

BENCHMARK_MAIN();
