// ordertrace's own figures at /metrics, beside the trace metrics: the gap detector's gaps, the
// Alertmanager client, ingest and the tail sampler. Each is copied from its part's Stats() when
// Prometheus scrapes, so the parts need not know about metrics.
#pragma once

namespace ordertrace::metrics {
class Registry;
}  // namespace ordertrace::metrics
namespace ordertrace::gaps {
class GapDetector;
class AlertmanagerClient;
}  // namespace ordertrace::gaps
namespace ordertrace::ingest {
class Ingester;
}  // namespace ordertrace::ingest
namespace ordertrace::sampling {
class TailSampler;
}  // namespace ordertrace::sampling

namespace ordertrace::server {

// Every part is borrowed, may be null (its families are then absent), and must outlive
// `registry`'s last Render.
void RegisterComponentMetrics(metrics::Registry& registry, const gaps::GapDetector* gaps,
                              const gaps::AlertmanagerClient* alerts,
                              const ingest::Ingester* ingester,
                              const sampling::TailSampler* sampler);

}  // namespace ordertrace::server
