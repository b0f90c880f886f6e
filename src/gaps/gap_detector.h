// The Gap Detector (issue 5): finds orders stuck between statuses and messages never consumed,
// within a second of their deadline, and statuses that contradict the lifecycle, as soon as they
// arrive. Event-driven: the ingest path hands it every order record it changes; each open stage
// and each unconsumed message holds one timer in a min-heap, so nothing is ever scanned
// periodically. Deadlines follow the spans' own timestamps (a day-old SUBMITTED is overdue on
// arrival) plus a grace for export delay and clock skew.
//
// A gap's id is fixed by its event (order, kind, stage, message), so no event opens two gaps,
// also across restarts when a GapStore persists them. A gap resolves when the missing event
// arrives; both moments are kept.
//
// Thread-safe. Records arrive from the ingest writer, FireDue runs on the detector's own thread
// (Start) or from a test with a ManualClock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "gaps/gap.h"
#include "gaps/lifecycle_model.h"
#include "model/clock.h"
#include "model/order_record.h"

namespace ordertrace::gaps {

// Reads the current record of an order (the store), when a deadline passes.
using OrderLookup =
    std::function<absl::StatusOr<std::optional<model::OrderRecord>>(const std::string&)>;

// Keeps gaps across restarts.
class GapStore {
 public:
  virtual ~GapStore() = default;
  virtual absl::Status SaveGap(const Gap& gap) = 0;
  virtual absl::StatusOr<std::vector<Gap>> LoadGaps() = 0;
};

struct GapDetectorOptions {
  // Resolved gaps kept in memory for the API; older ones stay only in the GapStore.
  size_t max_resolved_in_memory = 10000;
  // The timer thread wakes at least this often, to notice a clock that jumps.
  std::chrono::milliseconds max_sleep{1000};
};

struct GapQuery {
  enum class State { kOpen, kResolved, kAll };
  State state = State::kOpen;
  std::string kind;
  std::string stage;
  std::string partner_id;
  std::string order_id;
  size_t limit = 100;
};

struct GapDetectorStats {
  // (kind, stage) -> gaps opened since start (restored ones are not counted again).
  std::map<std::pair<std::string, std::string>, uint64_t> detected_total;
  // (kind, stage) -> open now.
  std::map<std::pair<std::string, std::string>, uint64_t> open;
  uint64_t resolved_total = 0;
  uint64_t tracked_orders = 0;    // orders with a stage deadline
  uint64_t tracked_messages = 0;  // messages waiting for their consumer
  uint64_t pending_timers = 0;
  uint64_t lookup_errors = 0;
  uint64_t store_errors = 0;
};

class GapDetector {
 public:
  // `model` and `clock` are borrowed and must outlive the detector; `store` and `sink` may be
  // null (no persistence, no alerts).
  GapDetector(const LifecycleModel& model, const model::Clock& clock, OrderLookup lookup,
              GapStore* store, GapSink* sink, GapDetectorOptions options = {});
  ~GapDetector();  // Shutdown()
  GapDetector(const GapDetector&) = delete;
  GapDetector& operator=(const GapDetector&) = delete;

  // Loads the persisted gaps; call before the first record. Open gaps are re-announced to the
  // sink (Alertmanager must hear of them again after a restart) but not counted or saved again.
  absl::Status Recover();

  // Re-evaluates one order after ingest changed its record: resolves what the record now
  // answers, (re)arms its stage and message deadlines, and opens conflict gaps at once.
  void OnOrderRecord(const model::OrderRecord& record);

  // Opens the gaps whose deadline has passed (after checking the order's current record);
  // returns how many opened.
  size_t FireDue();

  // Runs FireDue on a thread of its own, waking at the next deadline.
  void Start();
  void Shutdown();

  std::vector<Gap> Query(const GapQuery& query) const;
  std::vector<Gap> OpenGapsOf(const std::string& order_id) const;
  // True when any gap (open or resolved, in memory) belongs to the trace.
  bool HasGapInTrace(const model::TraceId& trace_id) const;
  GapDetectorStats Stats() const;
  // The earliest pending deadline, or 0.
  uint64_t NextDeadline() const;

 private:
  // One order waiting to leave its stage.
  struct StageWatch {
    std::string order_id;
    uint64_t deadline = 0;  // 0: free slot
    uint32_t generation = 0;
    int16_t stage = -1;
  };
  // One message waiting for its consumer.
  struct MessageWatch {
    std::string message_id;
    std::string order_id;
    uint64_t deadline = 0;  // 0: free slot
    uint32_t generation = 0;
  };
  struct Timer {
    uint64_t deadline;
    uint32_t slot;
    uint32_t generation;  // top bit: a message watch
    bool operator>(const Timer& other) const { return deadline > other.deadline; }
  };
  struct Fired {
    bool message;
    std::string order_id;
    std::string message_id;
    int16_t stage;
    uint64_t deadline;
  };
  struct Events {
    std::vector<Gap> opened;
    std::vector<Gap> resolved;
  };

  static constexpr uint32_t kMessageBit = 0x80000000u;

  static std::pair<uint64_t, uint64_t> Fingerprint(const std::string& gap_id);

  // Guarded by mu_ (the *Locked functions require it).
  void ArmStageLocked(const std::string& order_id, int16_t stage, uint64_t deadline);
  void DisarmStageLocked(const std::string& order_id);
  void ArmMessageLocked(const std::string& message_id, const std::string& order_id,
                        uint64_t deadline);
  void DisarmMessageLocked(const std::string& message_id);
  void PushTimerLocked(Timer timer);
  void CompactTimersLocked();
  void OpenLocked(Gap gap, Events& events);
  void ResolveLocked(const std::string& gap_id, uint64_t at, Events& events);
  void CheckConflictsLocked(const model::OrderRecord& record, Events& events);
  Gap MakeGap(const model::OrderRecord& record, std::string_view kind, std::string_view stage,
              std::string_view message_id) const;
  void Announce(const Events& events);

  // Constant after construction.
  const LifecycleModel& model_;
  const model::Clock& clock_;
  const OrderLookup lookup_;
  GapStore* const store_;
  GapSink* const sink_;
  const GapDetectorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  // Stage watches: a slab with stable addresses (the map's keys point into it) and free slots.
  std::deque<StageWatch> stage_watches_;
  std::vector<uint32_t> free_stage_slots_;
  absl::flat_hash_map<std::string_view, uint32_t> stage_by_order_;
  std::deque<MessageWatch> message_watches_;
  std::vector<uint32_t> free_message_slots_;
  absl::flat_hash_map<std::string_view, uint32_t> message_by_id_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  // When the timer thread, asleep, will look at timers_ again (0: it is awake). A new timer
  // wakes it only when due earlier: waking it for every ingested record cost ingest a futex
  // call and the thread a pass each time.
  uint64_t sleeping_until_ = 0;
  bool wake_needed_ = false;
  // Gaps: the open ones, the newest resolved ones, and every id ever opened.
  std::map<std::string, Gap> open_;
  // Node-based: growing it moves no strings while the ingest writer and the timer thread wait.
  absl::node_hash_map<std::string, std::vector<std::string>> open_by_order_;
  std::deque<Gap> resolved_;
  // 128-bit fingerprints of the ids, not the strings: 16 bytes per gap, and a rehash that
  // touches no string.
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> known_ids_;
  // Orders whose deadline fired and whose record is being read outside the lock, and those of
  // them that an update reached meanwhile: the update, not the possibly older read, decides.
  absl::flat_hash_set<std::string> firing_;
  absl::flat_hash_set<std::string> updated_while_firing_;
  GapDetectorStats stats_;

  std::thread thread_;
};

}  // namespace ordertrace::gaps
