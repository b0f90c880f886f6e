// The Gap Detector: finds orders stuck between statuses and messages never consumed, statuses
// that contradict the lifecycle, and sources of spans that went silent. Its final answer is a
// function of the spans, not of their arrival order, batching or restarts in between: only the
// moment a gap is found may differ.
//
// How: ingest hands it every order record it changes (before and after). gap_rules.h says what
// a record implies: settled gaps (breaches already over, conflicts), stored and counted as soon
// as they are implied, and pending deadlines (the current stage, unconsumed messages), each
// holding one timer in a min-heap. A deadline that has passed is judged only when the evidence
// is in (source_watermarks.h): until then it is held, never guessed. A judged deadline opens a
// gap and pages (the sink); when late spans answer it, the gap resolves (the missing status came
// after the deadline) or is withdrawn (it came in time: the gap never was). A breach found
// already over is recorded, not paged.
//
// Gap ids are fixed by their event (order, kind, stage, message), so no event opens two gaps,
// also across restarts. Gaps are written by a writer thread of the detector's own, in the order
// the detector decided them; nothing does I/O under the detector's mutex. The detector's memory
// is its open gaps, pending deadlines, settled gaps still waiting for evidence and at most
// SourceWatermarkOptions::max_sources sources; not the history (the GapStore has it).
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
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/span.h"
#include "gaps/gap.h"
#include "gaps/gap_rules.h"
#include "gaps/gap_store.h"
#include "gaps/open_gaps.h"
#include "gaps/source_watermarks.h"
#include "gaps/stage_model.h"
#include "model/order_record.h"

namespace ordertrace::gaps {

// Reads the current record of an order (the store), when a deadline is judged.
using OrderLookup =
    std::function<absl::StatusOr<std::optional<model::OrderRecord>>(const std::string&)>;

struct GapDetectorOptions {
  // The timer thread wakes at least this often: to notice a clock that jumps, and to look at
  // held deadlines again as sources report or go quiet.
  std::chrono::milliseconds max_sleep{1000};
  SourceWatermarkOptions watermarks;
  // A failed gap write is tried again this often, this many times, then dropped and counted.
  std::chrono::milliseconds write_retry{1000};
  int write_attempts = 30;
};

struct GapDetectorStats {
  // (kind, stage) -> gaps that paged since start (an alert fired; restored ones are not
  // counted again). A gap found while a source catches up counts once it pages.
  std::map<std::pair<std::string, std::string>, uint64_t> detected_total;
  // (kind, stage) -> gaps recorded that never paged: found already over, or over before the
  // sources caught up. detected_total + found_resolved_total: every gap found.
  std::map<std::pair<std::string, std::string>, uint64_t> found_resolved_total;
  // (kind, stage) -> open now.
  std::map<std::pair<std::string, std::string>, uint64_t> open;
  uint64_t resolved_total = 0;
  // Gaps that late spans proved wrong (the missing event had come in time, a status between
  // arrived): deleted, and their alert ended; by kind.
  std::map<std::string, uint64_t> withdrawn_total;
  // Service -> judged deadlines answered afterwards (the answer arrived after the order's stage
  // was judged), by the service that reported the order's newest status.
  std::map<std::string, uint64_t> late_answers;
  uint64_t Withdrawn() const {
    uint64_t sum = 0;
    for (const auto& [kind, count] : withdrawn_total) sum += count;
    return sum;
  }
  uint64_t tracked_orders = 0;    // orders with a stage deadline pending
  uint64_t tracked_messages = 0;  // messages waiting for their consumer
  uint64_t pending_timers = 0;
  // Deadlines passed on the wall clock, and settled gaps, whose evidence is not in yet.
  uint64_t held = 0;
  uint64_t lookup_errors = 0;
  uint64_t store_errors = 0;    // failed gap writes (tried again)
  uint64_t writes_dropped = 0;  // gap writes given up after write_attempts
  uint64_t writes_queued = 0;
  std::vector<SourceStatus> sources;
};

class GapDetector {
 public:
  // `model` and `clock` are borrowed and must outlive the detector; `store` and `sink` may be
  // null (no persistence, no alerts).
  GapDetector(const StageModel& model, const base::Clock& clock, OrderLookup lookup,
              GapStore* store, GapSink* sink, GapDetectorOptions options = {});
  ~GapDetector();  // Shutdown()
  GapDetector(const GapDetector&) = delete;
  GapDetector& operator=(const GapDetector&) = delete;

  // Loads the open gaps (through the store's index of open gaps); call before the first record.
  // They are re-announced to the sink (Alertmanager must hear of them again after a restart)
  // but not counted or saved again.
  absl::Status Recover();

  // After Recover, once per stored order before ingest starts: re-arms its pending deadlines
  // (one that passed while ordertrace was down is judged like any other), and brings the
  // order's stored gaps (read by order) in line with what the record implies: a crash may have
  // come between the record's write and the gaps'.
  void RestoreOrder(const model::OrderRecord& record);

  // Ingest changed an order's record from `before` (nullptr: a new order) to `after`, durably.
  void OnOrderChanged(const model::OrderRecord* before, const model::OrderRecord& after);

  // The spans of a request arrived (after OnOrderChanged for the records they changed): moves
  // their sources' watermarks.
  void OnSpansArrived(const base::TraceBatch& batch);

  // Judges the deadlines that have passed and whose evidence is in, and reports silent
  // sources; returns how many gaps opened.
  size_t FireDue();

  // Runs FireDue on a thread of its own, waking at the next deadline.
  void Start();
  void Shutdown();
  // Returns once every gap decided so far is in the store (or given up).
  void Flush();

  std::vector<Gap> OpenGapsOf(const std::string& order_id) const;
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
    bool held = false;  // its timer waits in held_
  };
  // One message waiting for its consumer.
  struct MessageWatch {
    std::string message_id;
    std::string order_id;
    uint64_t deadline = 0;  // 0: free slot
    uint32_t generation = 0;
    bool held = false;  // its timer waits in held_
  };
  struct Timer {
    uint64_t deadline;
    uint32_t slot;
    uint32_t generation;  // top bit: a message watch
    bool operator>(const Timer& other) const { return deadline > other.deadline; }
  };
  using TimerHeap = std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>>;
  struct Judged {
    bool message;
    std::string order_id;
    std::string message_id;
    int16_t stage;
    uint64_t deadline;
  };
  // What a decision announces, after the lock is released.
  struct Events {
    std::vector<Gap> opened;
    std::vector<Gap> resolved;
  };
  // One write for the gap writer thread.
  struct GapWrite {
    enum class Kind {
      kPut,     // as is
      kSettle,  // keeps the stored detected_at and paged; counted as found when new
      kRemove,  // a settled gap the record no longer implies: counted as withdrawn if stored
      kDelete,  // as is (a withdrawn open gap, counted already)
    };
    Kind kind;
    Gap gap;  // kRemove, kDelete: only the id
    int attempts = 0;
  };
  // A settled gap waiting for evidence, by the event time that must be behind every source.
  struct Tentative {
    uint64_t evidence;
    std::string id;
    bool operator>(const Tentative& other) const { return evidence > other.evidence; }
  };

  static constexpr uint32_t kMessageBit = 0x80000000u;

  // Applies what `after` implies, given what `before` implied (null: a new order). Requires mu_.
  void ApplyLocked(const OrderGaps* before, const OrderGaps& after,
                   const model::OrderRecord& record, Events& events);
  // Both return how many judged deadlines the record answered late (resolved or withdrew).
  size_t SettleLocked(const OrderGaps* before, const OrderGaps& after, Events& events);
  // A settled gap `after` implies for an open one (`held`): updated, or resolved.
  size_t SettleOpenLocked(Gap gap, Gap& held, Events& events);
  // A settled gap new to the record: confirmed when its evidence is in, else held (tentative_).
  void ConfirmOrHoldLocked(Gap gap, uint64_t now, Events& events);
  // The settled gaps `before` implied and `after` no longer does: withdrawn or removed.
  void WithdrawSettledLocked(const OrderGaps& before, const OrderGaps& after, Events& events);
  // A settled gap whose evidence is in: stored (resolved), or opened and paged (a conflict).
  void ConfirmLocked(Gap gap, Events& events);
  void ConfirmJudgedLocked(uint64_t now, Events& events);
  size_t TrackDeadlinesLocked(const OrderGaps& after, const model::OrderRecord& record,
                              Events& events);
  // TrackDeadlinesLocked's steps: the stage's deadline, the messages' deadlines (each armed,
  // or followed when already judged open), and the judged deadlines the record now answers.
  void TrackStageLocked(const OrderGaps& after, const model::OrderRecord& record);
  void TrackMessagesLocked(const OrderGaps& after, const model::OrderRecord& record);
  size_t WithdrawAnsweredLocked(const OrderGaps& after, const std::string& order_id,
                                Events& events);
  // An open gap takes what the record now implies about it, keeping when and whether it paged.
  void FollowOpenLocked(Gap now_implied);
  void ArmStageLocked(const std::string& order_id, int16_t stage, uint64_t deadline);
  void DisarmStageLocked(const std::string& order_id);
  void ArmMessageLocked(const std::string& message_id, const std::string& order_id,
                        uint64_t deadline);
  void DisarmMessageLocked(const std::string& message_id);
  void PushTimerLocked(Timer timer);
  void CompactTimersLocked();
  bool IsLiveLocked(const Timer& timer) const;
  // The held heap a timer waits in: one per stage (its responsible sources), one for messages.
  size_t HeldKeyLocked(const Timer& timer) const;
  bool IsJudgedLocked(size_t held_key, uint64_t deadline, uint64_t now) const;
  // The sources that produce the statuses a held key's stage expects (none for messages).
  absl::InlinedVector<int, 4> ResponsibleLocked(size_t held_key) const;
  std::vector<Judged> TakeJudgedLocked(uint64_t now);
  // FireDue's decisions under the lock: the deadlines judged (their records to read), the
  // settled gaps confirmed, the gaps paged, the silent sources; all announced.
  std::vector<Judged> DecideDueLocked(uint64_t now);
  // FireDue's second half: reads each judged order's record outside the lock and opens its gap
  // if the record still leaves it pending; returns how many opened.
  size_t OpenJudged(const std::vector<Judged>& judged);
  // Opens the gap of a judged deadline, if the order's record (read since) still leaves it
  // pending; true when it opened.
  bool OpenJudgedLocked(const Judged& judged,
                        const absl::StatusOr<std::optional<model::OrderRecord>>& record,
                        const OrderGaps* implied, Events& events);
  void CheckSourcesLocked(uint64_t now, Events& events);
  // One resource's spans of a request move its source's watermark.
  void ReportSourceLocked(const base::ResourceSpans& rs, uint64_t now, Events& events);
  // The service reported again: its open source_silent gap resolves.
  void ResolveSilentLocked(const std::string& service, uint64_t now, Events& events);
  void LearnSourceLocked(const model::OrderRecord& record, uint64_t now);
  // Opens `gap`; pages (and counts) it at once (`page`) or once the sources have caught up
  // (PageJudgedLocked).
  void OpenLocked(Gap gap, bool page, Events& events);
  // Pages the open gaps not paged yet once the sources have caught up with the present.
  void PageJudgedLocked(uint64_t now, Events& events);
  void RemoveOpenLocked(const std::string& gap_id);
  void CountLocked(const Gap& gap);
  void QueueWriteLocked(GapWrite::Kind kind, Gap gap);
  // Tells the sink, under mu_ so that every gap's announcements reach it in the order they
  // were decided (the sink only records them; it never calls back).
  void AnnounceLocked(const Events& events);
  // One batch's net effect on the store, and what it counts once written.
  struct NetWrites {
    std::vector<Gap> puts;
    std::vector<std::string> deletes;
    bool read_failed = false;
    std::vector<std::string> withdrawn;                               // their kinds
    std::vector<std::pair<std::string, std::string>> found_resolved;  // (kind, stage)
  };
  // The gap writer thread: takes a batch, folds it to its net effect, writes it; on failure
  // the batch goes back to the queue's front.
  void WriterLoop();
  // Waits for writes and takes a batch; false when stopping and everything is written.
  bool TakeWrites(std::vector<GapWrite>& batch, bool& stopping);
  NetWrites FoldWrites(const std::vector<GapWrite>& batch);
  void CountWritten(const NetWrites& net);
  void RetryWrites(std::vector<GapWrite> batch, bool stopping);

  // Constant after construction.
  const StageModel& model_;
  const base::Clock& clock_;
  const OrderLookup lookup_;
  GapStore* const store_;
  GapSink* const sink_;
  const GapDetectorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  SourceWatermarks sources_;
  // Lifecycle position -> the sources that reported reaching that status (at most
  // kMaxSourcesPerStatus, the least recently reporting giving way).
  static constexpr size_t kMaxSourcesPerStatus = 4;
  std::vector<std::vector<int>> status_sources_;
  // Every source in status_sources_: the services whose evidence counts when the one that
  // would answer is not known (a message, a settled gap). A service that sends spans but no
  // status (or a client inventing names) cannot hold those back.
  std::vector<int> producers_;
  // Stage watches: a slab with stable addresses (the map's keys point into it) and free slots.
  std::deque<StageWatch> stage_watches_;
  std::vector<uint32_t> free_stage_slots_;
  absl::flat_hash_map<std::string_view, uint32_t> stage_by_order_;
  std::deque<MessageWatch> message_watches_;
  std::vector<uint32_t> free_message_slots_;
  absl::flat_hash_map<std::string_view, uint32_t> message_by_id_;
  // Deadlines not yet passed on the wall clock.
  TimerHeap timers_;
  // Deadlines passed whose evidence is not in, by HeldKeyLocked.
  std::vector<TimerHeap> held_;
  // When the timer thread, asleep, will look at timers_ again (0: it is awake). A new timer
  // wakes it only when due earlier: waking it for every ingested record cost ingest a futex
  // call and the thread a pass each time.
  uint64_t sleeping_until_ = 0;
  bool wake_needed_ = false;
  // Reports wake the timer thread for held deadlines at most this often.
  static constexpr uint64_t kHeldRecheckNanos = 100'000'000;
  uint64_t next_held_wake_ = 0;
  // The open gaps (of orders and of silent sources), by id and by order.
  OpenGaps open_;
  // Service -> the id of its open source_silent gap.
  absl::flat_hash_map<std::string, std::string> silent_gaps_;
  // Watches waiting in held_ (whose evidence is not in).
  uint64_t held_count_ = 0;
  // Open gaps not paged yet: found while a source was catching up (spans on their way may
  // still answer them), paged once the sources reach the present if still open.
  absl::flat_hash_set<GapFingerprint> unpaged_;
  // Settled gaps implied by a record whose evidence is not in (during a backlog a status
  // between may still be on its way): stored once it is. They wait for the status-reporting
  // services only, so they drain as those catch up or go quiet.
  absl::node_hash_map<std::string, Gap> tentative_;
  std::priority_queue<Tentative, std::vector<Tentative>, std::greater<Tentative>> tentative_heap_;

  // Orders whose deadline was judged and whose record is being read outside the lock, and
  // those of them that an update reached meanwhile: the update, not the possibly older read,
  // decides.
  absl::flat_hash_map<std::string, int> firing_;  // order -> reads in flight
  absl::flat_hash_set<std::string> updated_while_firing_;
  GapDetectorStats stats_;

  // The gap writer: writes in the order they were decided. Guarded by write_mu_.
  mutable std::mutex write_mu_;
  std::condition_variable write_ready_;
  std::condition_variable write_done_;
  std::deque<GapWrite> writes_;
  bool writing_ = false;
  bool write_stop_ = false;
  bool writer_exited_ = false;  // or never started (no store)

  std::thread thread_;
  std::thread writer_;
};

}  // namespace ordertrace::gaps
