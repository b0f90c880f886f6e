#include "scrub/operator_id_hasher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "openssl/evp.h"
#include "openssl/hmac.h"
#include "openssl/rand.h"

namespace ordertrace::scrub {
namespace {

constexpr size_t kKeyBytes = 32;
// A key file shorter than this is refused: 128 bits is the least HMAC-SHA256 should get.
constexpr size_t kMinSecretBytes = 16;
// 32 hex digits = 128 bits: a collision among operators needs about 2^64 of them, and a
// brute-force guess of the secret stays out of reach; the full 64 digits would only make tag
// values and alert labels twice as long for nothing an operator count could use.
constexpr size_t kHashHexDigits = 32;

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError("cannot read " + path);
  std::stringstream content;
  content << in.rdbuf();
  std::string secret = Trimmed(content.str());
  if (secret.size() < kMinSecretBytes) {
    return absl::FailedPreconditionError(path + " holds fewer than " +
                                         std::to_string(kMinSecretBytes) + " bytes");
  }
  return secret;
}

// Creates the key file with O_EXCL (two processes starting on one data folder agree on the key
// that won) and 0600, written in hex so that an operator can copy it into the environment
// variable of another instance that must give the same hashes.
absl::StatusOr<std::string> ReadOrCreateKeyFile(const std::string& path) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return ReadKeyFile(path);
    return absl::FailedPreconditionError("cannot create " + path + ": " + std::strerror(errno));
  }
  unsigned char key[kKeyBytes];
  if (RAND_bytes(key, sizeof key) != 1) {
    ::close(fd);
    ::unlink(path.c_str());
    return absl::InternalError("no random bytes for " + path);
  }
  const std::string text = Hex(key, sizeof key) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return absl::FailedPreconditionError("cannot write " + path);
  }
  return Trimmed(text);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OperatorIdHasher>> OperatorIdHasher::Create(
    const OperatorIdHasherOptions& options) {
  if (!options.secret.empty()) return std::make_unique<OperatorIdHasher>(options.secret);
  if (!options.env_var.empty()) {
    const char* env = std::getenv(options.env_var.c_str());
    if (env != nullptr && *env != '\0') return std::make_unique<OperatorIdHasher>(env);
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError("operator id hashing: no secret (pii.operator_id_secret, $" +
                                      options.env_var + ") and no key file");
  }
  absl::StatusOr<std::string> secret = ReadOrCreateKeyFile(options.key_file);
  if (!secret.ok()) {
    return absl::Status(secret.status().code(),
                        "operator id key: " + std::string(secret.status().message()));
  }
  return std::make_unique<OperatorIdHasher>(*std::move(secret));
}

OperatorIdHasher::OperatorIdHasher(std::string secret) : secret_(std::move(secret)) {}

std::string OperatorIdHasher::Hash(std::string_view clear) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  // The one-shot HMAC() keeps no state between calls: safe from any thread.
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(clear.data()), clear.size(), mac, &mac_size);
  return "hmac:" + Hex(mac, kHashHexDigits / 2);
}

namespace {

// Replaces the value of every `operator_id` in `attributes` by its hash; returns how many.
size_t HashIn(const OperatorIdHasher& hasher, base::Attributes& attributes) {
  size_t replaced = 0;
  for (base::KeyValue& kv : attributes) {
    if (kv.key != kOperatorIdAttribute) continue;
    kv.value = base::AnyValue::String(hasher.Hash(kv.value.AsText()));
    ++replaced;
  }
  return replaced;
}

}  // namespace

size_t OperatorIdHasher::HashOperatorIds(base::TraceBatch& batch,
                                         std::vector<SpanPosition>* changed) const {
  size_t replaced = 0;
  for (uint32_t r = 0; r < batch.resource_spans.size(); ++r) {
    base::ResourceSpans& rs = batch.resource_spans[r];
    const size_t in_resource = HashIn(*this, rs.resource.attributes);
    replaced += in_resource;
    for (uint32_t s = 0; s < rs.scope_spans.size(); ++s) {
      std::vector<base::Span>& spans = rs.scope_spans[s].spans;
      for (uint32_t i = 0; i < spans.size(); ++i) {
        size_t in_span = HashIn(*this, spans[i].attributes);
        for (base::SpanEvent& event : spans[i].events) {
          in_span += HashIn(*this, event.attributes);
        }
        // Changed in place (not appended): the received bytes would still hold the clear id.
        if (changed != nullptr && (in_span > 0 || in_resource > 0)) {
          changed->push_back(SpanPosition{r, s, i});
        }
        replaced += in_span;
      }
    }
  }
  return replaced;
}

size_t OperatorIdHasher::AddOperatorIdHashes(base::TraceBatch& batch) const {
  size_t added = 0;
  for (base::ResourceSpans& rs : batch.resource_spans) {
    for (base::ScopeSpans& ss : rs.scope_spans) {
      for (base::Span& span : ss.spans) {
        const base::AnyValue* id = base::FindAttribute(span.attributes, kOperatorIdAttribute);
        if (id == nullptr ||
            base::FindAttribute(span.attributes, kOperatorIdHashAttribute) != nullptr) {
          continue;
        }
        std::string hash = Hash(id->AsText());
        // Appended: the store's encoder adds attributes past wire.attribute_count to the
        // received bytes, so the span keeps its fast path.
        span.attributes.push_back(
            base::KeyValue{std::string(kOperatorIdHashAttribute), base::AnyValue::String(hash)});
        ++added;
      }
    }
  }
  return added;
}

}  // namespace ordertrace::scrub
