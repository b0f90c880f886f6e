#include "server/store_gap_store.h"

#include <spdlog/spdlog.h>

#include "gaps/gap_codec.h"
#include "gaps/memory_gap_store.h"

namespace ordertrace::server {
namespace {

store::GapRecordFilter::State StateOf(gaps::GapHistoryQuery::State state) {
  switch (state) {
    case gaps::GapHistoryQuery::State::kOpen:
      return store::GapRecordFilter::State::kOpen;
    case gaps::GapHistoryQuery::State::kResolved:
      return store::GapRecordFilter::State::kResolved;
    case gaps::GapHistoryQuery::State::kAll:
      break;
  }
  return store::GapRecordFilter::State::kAll;
}

// The cursor is gaps' own (GapCursorAfter): the position of the last gap of a page.
std::string CursorAt(const store::GapPosition& position) {
  gaps::Gap at;
  at.since_unix_nano = position.first;
  at.id = position.second;
  return gaps::GapCursorAfter(at);
}

}  // namespace

store::GapRecord GapRecordOf(const gaps::Gap& gap) {
  store::GapRecord record;
  record.id = gap.id;
  record.order_id = gap.order_id;
  record.partner_id = gap.partner_id;
  record.kind = gap.kind;
  record.stage = gap.stage;
  record.open = gap.IsOpen();
  record.since_unix_nano = gap.since_unix_nano;
  record.encoded = gaps::EncodeGap(gap);
  return record;
}

absl::Status StoreGapStore::Apply(const std::vector<gaps::Gap>& puts,
                                  const std::vector<std::string>& deletes) {
  std::vector<store::GapRecord> records;
  records.reserve(puts.size());
  for (const gaps::Gap& gap : puts) records.push_back(GapRecordOf(gap));
  return store_.WriteGapRecords(records, deletes);
}

absl::StatusOr<std::optional<gaps::Gap>> StoreGapStore::Get(const std::string& gap_id) {
  absl::StatusOr<std::optional<store::GapRecord>> record = store_.GetGapRecord(gap_id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<gaps::Gap>();
  absl::StatusOr<gaps::Gap> gap = gaps::DecodeGap((*record)->encoded);
  if (!gap.ok()) return gap.status();
  return std::optional<gaps::Gap>(*std::move(gap));
}

absl::StatusOr<std::vector<gaps::Gap>> StoreGapStore::LoadOpen() {
  absl::StatusOr<std::vector<store::GapRecord>> records = store_.ReadOpenGapRecords();
  if (!records.ok()) return records.status();
  std::vector<gaps::Gap> out;
  out.reserve(records->size());
  for (const store::GapRecord& record : *records) {
    absl::StatusOr<gaps::Gap> gap = gaps::DecodeGap(record.encoded);
    if (!gap.ok()) {
      spdlog::warn("skipping an unreadable gap record {}: {}", record.id,
                   std::string(gap.status().message()));
      continue;
    }
    out.push_back(*std::move(gap));
  }
  return out;
}

absl::StatusOr<gaps::GapPage> StoreGapStore::Query(const gaps::GapHistoryQuery& query) {
  if (query.limit == 0) return absl::InvalidArgumentError("limit must be at least 1");
  store::GapRecordFilter filter;
  filter.state = StateOf(query.state);
  filter.kind = query.kind;
  filter.stage = query.stage;
  filter.partner_id = query.partner_id;
  filter.order_id = query.order_id;
  filter.since_from_unix_nano = query.since_from_unix_nano;
  filter.since_to_unix_nano = query.since_to_unix_nano;
  filter.limit = query.limit;
  if (!query.cursor.empty()) {
    store::GapPosition after;
    if (!gaps::ParseGapCursor(query.cursor, after.first, after.second)) {
      return absl::InvalidArgumentError("malformed cursor '" + query.cursor + "'");
    }
    filter.after = std::move(after);
  }
  absl::StatusOr<store::GapRecordPage> records = store_.ListGapRecords(filter);
  if (!records.ok()) return records.status();
  gaps::GapPage page;
  page.gaps.reserve(records->records.size());
  for (const store::GapRecord& record : records->records) {
    absl::StatusOr<gaps::Gap> gap = gaps::DecodeGap(record.encoded);
    if (!gap.ok()) {
      // One damaged record must not hide the rest of the history.
      spdlog::warn("skipping an unreadable gap record {}: {}", record.id,
                   std::string(gap.status().message()));
      continue;
    }
    page.gaps.push_back(*std::move(gap));
  }
  if (records->resume_after) page.next_cursor = CursorAt(*records->resume_after);
  return page;
}

}  // namespace ordertrace::server
