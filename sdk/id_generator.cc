#include "sdk/id_generator.h"

#include <array>
#include <cstring>

namespace ordertrace::sdk {
namespace {

std::mt19937_64 SeededEngine() {
  std::random_device device;
  // 256 bits of seed, not the 32 a single random_device() call would give.
  std::array<std::random_device::result_type, 8> seed;
  for (auto& word : seed) word = device();
  std::seed_seq sequence(seed.begin(), seed.end());
  return std::mt19937_64(sequence);
}

template <typename IdT>
IdT Fill(std::mt19937_64& engine) {
  IdT id;
  while (!id.IsValid()) {
    for (size_t i = 0; i < IdT::kSize; i += 8) {
      uint64_t word = engine();
      std::memcpy(id.bytes.data() + i, &word, 8);
    }
  }
  return id;
}

}  // namespace

RandomIdGenerator::RandomIdGenerator() : engine_(SeededEngine()) {}

base::TraceId RandomIdGenerator::NewTraceId() {
  std::lock_guard<std::mutex> lock(mu_);
  return Fill<base::TraceId>(engine_);
}

base::SpanId RandomIdGenerator::NewSpanId() {
  std::lock_guard<std::mutex> lock(mu_);
  return Fill<base::SpanId>(engine_);
}

}  // namespace ordertrace::sdk
