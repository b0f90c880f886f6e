#include "sdk/span_data.h"

#include <vector>

namespace ordertrace::sdk {

base::TraceBatch ToTraceBatch(std::span<const SpanData> spans) {
  base::TraceBatch batch;
  // Batches hold few distinct resources and scopes, so a linear search beats a map here.
  std::vector<const base::Resource*> resource_keys;
  std::vector<std::vector<const base::InstrumentationScope*>> scope_keys;
  for (const SpanData& data : spans) {
    const base::Resource* resource = data.resource.get();
    size_t r = 0;
    while (r < resource_keys.size() && resource_keys[r] != resource) ++r;
    if (r == resource_keys.size()) {
      resource_keys.push_back(resource);
      scope_keys.emplace_back();
      base::ResourceSpans& added = batch.resource_spans.emplace_back();
      if (resource != nullptr) added.resource = *resource;
    }
    base::ResourceSpans& resource_spans = batch.resource_spans[r];

    const base::InstrumentationScope* scope = data.scope.get();
    std::vector<const base::InstrumentationScope*>& scopes = scope_keys[r];
    size_t s = 0;
    while (s < scopes.size() && scopes[s] != scope) ++s;
    if (s == scopes.size()) {
      scopes.push_back(scope);
      base::ScopeSpans& added = resource_spans.scope_spans.emplace_back();
      if (scope != nullptr) added.scope = *scope;
    }
    resource_spans.scope_spans[s].spans.push_back(data.span);
  }
  return batch;
}

}  // namespace ordertrace::sdk
