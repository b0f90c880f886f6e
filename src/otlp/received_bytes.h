// Where the spans of a batch decoded from OTLP protobuf sit in the request body they came in, so
// that storing them copies those bytes instead of encoding the model again (encoding every span
// again was about 14% of ingest CPU). Ingest's business: the public span (base::Span) knows
// nothing of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ordertrace::otlp {

// The received bytes of one batch's spans, kept alive with the body they point into. It follows
// the batch's shape: the entry at (r, s, i) belongs to batch.resource_spans[r].scope_spans[s]
// .spans[i]. So whoever removes or reorders that batch's spans does the same to the entries
// (ingest's span checks, the sampler), and whoever changes a span in any other way reports it,
// so that its entry is forgotten (the PII scrubber, the operator id hasher). Attributes appended
// to a span after decoding (ingest's derived ones) need neither: an entry records how many
// attributes its bytes hold, and the encoders add the others. A span without an entry (past its
// scope's list, forgotten, or decoded without its body) is encoded from the model.
// A value moved with its batch; not thread-safe.
class ReceivedBytes {
 public:
  struct Span {
    std::string_view bytes;        // the Span message, inside the body; empty: no entry
    uint32_t attribute_count = 0;  // attributes[0, attribute_count) are the ones in `bytes`
  };
  using Scope = std::vector<Span>;
  using Resource = std::vector<Scope>;

  ReceivedBytes() = default;
  explicit ReceivedBytes(std::shared_ptr<const std::string> body) : body_(std::move(body)) {}

  // The body the entries point into; null when there is none.
  const std::shared_ptr<const std::string>& body() const { return body_; }

  // The entry of span (resource, scope, span), or nullptr when it has none.
  const Span* Find(size_t resource, size_t scope, size_t span) const {
    const Scope* entries = ScopeOf(resource, scope);
    if (entries == nullptr || span >= entries->size() || (*entries)[span].bytes.empty()) {
      return nullptr;
    }
    return &(*entries)[span];
  }

  // The entries of one scope (some may be empty), or nullptr when it has none.
  const Scope* ScopeOf(size_t resource, size_t scope) const {
    if (resource >= resources_.size() || scope >= resources_[resource].size()) return nullptr;
    return &resources_[resource][scope];
  }

  // The span at (resource, scope, span) changed: it is encoded from the model from now on.
  void Forget(size_t resource, size_t scope, size_t span) {
    if (Scope* entries = MutableScope(resource, scope); entries && span < entries->size()) {
      (*entries)[span] = Span{};
    }
  }

  // The entries of one scope, for whoever reshapes the batch; nullptr when it has none.
  Scope* MutableScope(size_t resource, size_t scope) {
    if (resource >= resources_.size() || scope >= resources_[resource].size()) return nullptr;
    return &resources_[resource][scope];
  }
  Resource* MutableResource(size_t resource) {
    return resource < resources_.size() ? &resources_[resource] : nullptr;
  }
  std::vector<Resource>& resources() { return resources_; }

 private:
  std::shared_ptr<const std::string> body_;
  std::vector<Resource> resources_;
};

// Helpers for whoever reshapes a batch: `entries` is the list a ReceivedBytes holds for the list
// being reshaped (a resource's scopes, a scope's spans); null or shorter when some have none.

// Element `from` of the list moved to `to` (to < from): its entry goes along.
template <typename Entry>
void MoveEntry(std::vector<Entry>* entries, size_t from, size_t to) {
  if (entries == nullptr || to >= entries->size()) return;
  (*entries)[to] = from < entries->size() ? std::move((*entries)[from]) : Entry{};
}

// The list was cut to `size` elements: entries past it go.
template <typename Entry>
void TruncateEntries(std::vector<Entry>* entries, size_t size) {
  if (entries != nullptr && entries->size() > size) entries->resize(size);
}

// Removes the elements of `items` that `remove` picks, keeping the others in order, with their
// entries aligned.
template <typename Item, typename Entry, typename Remove>
void EraseAligned(std::vector<Item>& items, std::vector<Entry>* entries, Remove remove) {
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (remove(items[i])) continue;
    if (kept != i) {
      items[kept] = std::move(items[i]);
      MoveEntry(entries, i, kept);
    }
    ++kept;
  }
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(kept), items.end());
  TruncateEntries(entries, kept);
}

}  // namespace ordertrace::otlp
