// JSON shapes of the HTTP API (orders, traces in Tempo's shape, errors).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "gaps/gap.h"
#include "gaps/gap_counts.h"
#include "model/order_record.h"
#include "query/order_query.h"
#include "query/trace_query.h"

namespace ordertrace::server {

// RFC 3339 in UTC with nanoseconds, e.g. 2026-11-24T03:04:05.123456789Z; null for 0.
nlohmann::json TimeJson(uint64_t unix_nano);

nlohmann::json OrderJson(const query::OrderView& view);
nlohmann::json OrderSummaryJson(const model::OrderRecord& record);
nlohmann::json TraceSummaryJson(const query::TraceSummary& summary);
// GET /api/v1/sla: per stage, durations in seconds against the SLA.
nlohmann::json SlaReportJson(const query::SlaReport& report);
nlohmann::json ErrorJson(int http_status, const std::string& message);
// A gap as GET /api/v1/gaps and the order view show it; `external_url` makes the order link.
nlohmann::json GapJson(const gaps::Gap& gap);
// GET /api/v1/gaps/counts: {total, orders, complete, by_stage: [{stage, count, orders}],
// by_kind: [{kind, count}]}, largest count first.
nlohmann::json GapCountsJson(const gaps::GapCounts& counts);

}  // namespace ordertrace::server
