// Removes e-mail addresses and phone numbers (or whatever the configured rules name) from spans
// before anything else sees them: ingest calls Scrub first, so that no byte of them reaches the
// WAL, the store, a metric label, an alert, an API answer or the forward. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "scrub/span_position.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace ordertrace::scrub {

enum class PiiAction {
  // A string value that is wholly a match, or an attribute whose key matches, is dropped; a
  // match inside a longer string (or in a span or event name) is masked.
  kRemove,
  // Matches are replaced by `[<rule name>]` wherever they are; the attribute stays.
  kMask,
};

// One kind of PII. `key_pattern` must match a whole attribute key (RE2 syntax); the attribute
// is then removed whatever its value (masked as a whole with kMask). `value_pattern` is searched
// for in string values (nested ones in arrays and kvlists too), span names, event names, status
// messages and scope names. Either pattern may be empty (not used).
struct PiiRule {
  std::string name;
  std::string key_pattern;
  std::string value_pattern;
  PiiAction action = PiiAction::kRemove;
  // Cheap tests that let most text skip the regex (set by the defaults; config rules leave them
  // unset and always run their regex): text without `value_needs_char`, or with fewer than
  // `value_min_digits` ASCII digits, cannot match `value_pattern`; a key that does not contain
  // one of `key_needs` (lowercase words, compared ignoring case) cannot match `key_pattern`.
  char value_needs_char = '\0';
  int value_min_digits = 0;
  // A cheap test text must pass before `value_pattern` runs (null: none); it must accept every
  // text the pattern can match in.
  bool (*value_may_match)(std::string_view text) = nullptr;
  std::vector<std::string> key_needs;
};

// `email` (addr-spec as found in text, e.g. a.b+c@d-e.co.uk; keys email, *.email, e_mail...)
// and `phone` (`+` and 7 to 15 digits with spaces, dots, dashes or parentheses between them,
// e.g. +49 30 1234567, +1 (415) 555-0100; national numbers of 10 digits written in groups,
// (415) 555-0100, 415-555-0100; keys phone, *.phone*), in that order.
std::vector<PiiRule> DefaultPiiRules();

// The default phone rule's prefilter: true when `text` holds a '+' before a digit, a '(' before
// three digits and a ')', or a run of exactly three digits (after no letter or digit) before a
// '.' or '-' and a digit. Every match of the default phone pattern passes it; UUIDs, dates and
// order ids mostly do not.
bool MayHoldPhoneNumber(std::string_view text);

struct PiiScrubberOptions {
  bool enabled = true;  // off: Scrub changes nothing
  std::vector<PiiRule> rules = DefaultPiiRules();
};

// What one rule has removed or masked since start, one count per attribute or match.
struct PiiRuleCount {
  std::string rule;
  uint64_t removed = 0;
};

class PiiScrubber {
 public:
  // kInvalidArgument naming the rule when a pattern does not compile, a rule has no name or no
  // pattern, or two rules share a name.
  static absl::StatusOr<std::unique_ptr<PiiScrubber>> Create(PiiScrubberOptions options);
  ~PiiScrubber();
  PiiScrubber(const PiiScrubber&) = delete;
  PiiScrubber& operator=(const PiiScrubber&) = delete;

  // Removes or masks every match of every rule in `batch`: span names and attributes, event
  // names and attributes, link attributes, status messages, resource and scope attributes and
  // scope names. Adds to `changed` (when given), in batch order, each span it changes and every
  // span of a resource or scope it changes, so that storing encodes the scrubbed model rather
  // than copy the span's received bytes. Returns the number of removals and masks.
  // Thread-safe; spans without PII cost a scan for '@' and digits.
  uint64_t Scrub(base::TraceBatch& batch, std::vector<SpanPosition>* changed = nullptr) const;

  // The same for one string (masking only): for tests and for text outside spans (the audit
  // log's request targets). Not counted: the counts are of what ingest removed.
  std::string ScrubText(std::string_view text) const;

  // Removals and masks per rule since construction, in rule order. Thread-safe.
  std::vector<PiiRuleCount> Stats() const;

  bool enabled() const { return enabled_; }

 private:
  struct CompiledRule;
  class Pass;
  PiiScrubber(bool enabled, std::vector<CompiledRule> rules);

  // Constant after construction.
  const bool enabled_;
  std::vector<CompiledRule> rules_;
  // Every rule's key_needs words (lowercase, at most 32), and for each byte the words that
  // start with it in either case, as bits: one pass over a key finds them all.
  std::vector<std::string> key_needs_;
  std::array<uint32_t, 256> need_starts_;
  // One per rule; relaxed atomics (counts only).
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
};

}  // namespace ordertrace::scrub
