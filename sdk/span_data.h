// A finished span as processors and exporters see it, and its grouping into the base library's
// ResourceSpans tree. Plain values; thread-compatible.
#pragma once

#include <memory>
#include <span>

#include "base/span.h"

namespace ordertrace::sdk {

// One ended, sampled span with the resource and instrumentation scope it was made under. The
// resource and scope are shared by every span of a tracer provider and tracer, and live as long
// as the last span that refers to them.
struct SpanData {
  base::Span span;
  std::shared_ptr<const base::Resource> resource;
  std::shared_ptr<const base::InstrumentationScope> scope;
};

// Groups spans by resource, then by scope, in order of first appearance (as EncodeExportRequest
// does), for code that reads spans as OTLP's tree. Spans without a resource or scope go under an
// empty one.
base::TraceBatch ToTraceBatch(std::span<const SpanData> spans);

}  // namespace ordertrace::sdk
