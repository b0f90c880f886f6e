#include "sdk/span_data.h"

#include <vector>

namespace ordertrace::sdk {

model::TraceBatch ToTraceBatch(std::span<const SpanData> spans) {
  model::TraceBatch batch;
  // Batches hold few distinct resources and scopes, so a linear search beats a map here.
  std::vector<const model::Resource*> resource_keys;
  std::vector<std::vector<const model::InstrumentationScope*>> scope_keys;
  for (const SpanData& data : spans) {
    const model::Resource* resource = data.resource.get();
    size_t r = 0;
    while (r < resource_keys.size() && resource_keys[r] != resource) ++r;
    if (r == resource_keys.size()) {
      resource_keys.push_back(resource);
      scope_keys.emplace_back();
      model::ResourceSpans& added = batch.resource_spans.emplace_back();
      if (resource != nullptr) added.resource = *resource;
    }
    model::ResourceSpans& resource_spans = batch.resource_spans[r];

    const model::InstrumentationScope* scope = data.scope.get();
    std::vector<const model::InstrumentationScope*>& scopes = scope_keys[r];
    size_t s = 0;
    while (s < scopes.size() && scopes[s] != scope) ++s;
    if (s == scopes.size()) {
      scopes.push_back(scope);
      model::ScopeSpans& added = resource_spans.scope_spans.emplace_back();
      if (scope != nullptr) added.scope = *scope;
    }
    resource_spans.scope_spans[s].spans.push_back(data.span);
  }
  return batch;
}

}  // namespace ordertrace::sdk
