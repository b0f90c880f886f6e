#include "scrub/pii_scrubber.h"

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "re2/re2.h"

namespace ordertrace::scrub {

struct PiiScrubber::CompiledRule {
  PiiRule rule;
  std::unique_ptr<re2::RE2> key;    // null: the rule has no key pattern
  std::unique_ptr<re2::RE2> value;  // null: the rule has no value pattern
  std::string mask;                 // "[<name>]"
  // Bits of PiiScrubber::key_needs_ this rule's key_needs are; 0: the key regex always runs.
  uint32_t key_need_bits = 0;
};

std::vector<PiiRule> DefaultPiiRules() {
  PiiRule email;
  email.name = "email";
  // Keys that name an address: email, customer.email, user_email, e-mail, contact.email_address.
  email.key_pattern = R"((?i)(?:.*[._-])?e[-_]?mail(?:[._-]?addr(?:ess)?)?)";
  // RFC 5322's dot-atom addr-spec as it appears in text, with a DNS domain (no quoted local
  // parts, no address literals: neither occurs in what services log).
  email.value_pattern = R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
                        R"(@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})";
  email.value_needs_char = '@';
  email.key_needs = {"mail"};

  PiiRule phone;
  phone.name = "phone";
  phone.key_pattern = R"((?i)(?:.*[._-])?phone.*)";
  // International: '+' (not glued to a word before it) and 7 to 15 digits, at most two
  // separators between two digits ("+1 (415) 555-0100" has ") "), not followed by a digit or
  // letter. National: 10 digits as (415) 555-0100 or 415-555-0100 / 415.555.0100. Dates, times,
  // prices, ids and trace ids never have these shapes: a '+' with 7 digits after it, a
  // parenthesised area code, or exactly 3-3-4 digit groups.
  phone.value_pattern = R"(\B\+\d(?:[ .()-]{0,2}\d){6,14}\b)"
                        R"(|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}\b)"
                        R"(|\b\d{3}[.-]\d{3}[.-]\d{4}\b)";
  phone.value_min_digits = 7;
  phone.value_may_match = MayHoldPhoneNumber;
  phone.key_needs = {"phone"};
  return {std::move(email), std::move(phone)};
}

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

}  // namespace

bool MayHoldPhoneNumber(std::string_view text) {
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == '+') {
      if (i + 1 < n && IsDigit(text[i + 1])) return true;
    } else if (c == '(') {
      if (i + 4 < n && IsDigit(text[i + 1]) && IsDigit(text[i + 2]) && IsDigit(text[i + 3]) &&
          text[i + 4] == ')') {
        return true;
      }
    } else if (IsDigit(c) && (i == 0 || !IsWordChar(text[i - 1]))) {
      // A digit run starting at a word boundary: exactly three digits, then '.' or '-', then a
      // digit (the national 415-555-0100 form).
      size_t end = i;
      while (end < n && IsDigit(text[end])) ++end;
      if (end - i == 3 && end + 1 < n && (text[end] == '.' || text[end] == '-') &&
          IsDigit(text[end + 1])) {
        return true;
      }
      i = end - 1;
    }
  }
  return false;
}

namespace {

// Whether `lower_word` starts at text[at], ignoring the case of ASCII letters in `text`.
bool MatchesAtIgnoreCase(std::string_view text, size_t at, std::string_view lower_word) {
  if (text.size() - at < lower_word.size()) return false;
  for (size_t j = 0; j < lower_word.size(); ++j) {
    char c = text[at + j];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_word[j]) return false;
  }
  return true;
}

// ASCII digits in `text`, counted up to `enough` (the largest count any rule needs).
int CountDigits(std::string_view text, int enough) {
  int digits = 0;
  for (char c : text) {
    if (c >= '0' && c <= '9' && ++digits >= enough) break;
  }
  return digits;
}

// Whether `re` finds an empty match in a few probes (x*, \b, a|): such a pattern "matches"
// everywhere.
bool MatchesEmpty(const re2::RE2& re) {
  for (std::string_view probe : {std::string_view(""), std::string_view("a"),
                                 std::string_view(" a"), std::string_view("1")}) {
    re2::StringPiece match;
    if (re.Match(re2::StringPiece(probe.data(), probe.size()), 0, probe.size(),
                 re2::RE2::UNANCHORED, &match, 1) &&
        match.empty()) {
      return true;
    }
  }
  return false;
}

absl::Status CheckPattern(const PiiRule& rule, const std::string& pattern, const char* which,
                          std::unique_ptr<re2::RE2>& out) {
  if (pattern.empty()) return absl::OkStatus();
  re2::RE2::Options options;
  options.set_log_errors(false);
  out = std::make_unique<re2::RE2>(pattern, options);
  if (!out->ok()) {
    return absl::InvalidArgumentError("pii rule '" + rule.name + "': bad " + which + " (" +
                                      out->error() + ")");
  }
  return absl::OkStatus();
}

}  // namespace

// One Scrub call: counts per rule locally, added to the shared atomics once at the end (an
// atomic add per attribute would bounce a cache line between the receiving threads).
class PiiScrubber::Pass {
 public:
  explicit Pass(const PiiScrubber& scrubber)
      : scrubber_(scrubber), rules_(scrubber.rules_), counts_(scrubber.rules_.size(), 0) {
    for (const CompiledRule& r : rules_) {
      max_digits_ = std::max(max_digits_, r.rule.value_min_digits);
    }
  }

  // Masks every match in `text`. With `may_remove`, a text that is wholly one match of a
  // kRemove rule is left alone and reported in `remove` instead. True if anything changed.
  bool Text(std::string& text, bool may_remove, bool* remove) {
    bool changed = false;
    int digits = -1;  // counted at most once, when a rule needs it
    for (size_t i = 0; i < rules_.size(); ++i) {
      const CompiledRule& r = rules_[i];
      if (r.value == nullptr) continue;
      if (r.rule.value_needs_char != '\0' &&
          std::memchr(text.data(), r.rule.value_needs_char, text.size()) == nullptr) {
        continue;
      }
      if (r.rule.value_min_digits > 0) {
        if (digits < 0) digits = CountDigits(text, max_digits_);
        if (digits < r.rule.value_min_digits) continue;
      }
      if (r.rule.value_may_match != nullptr && !r.rule.value_may_match(text)) continue;
      if (may_remove && r.rule.action == PiiAction::kRemove &&
          re2::RE2::FullMatch(text, *r.value)) {
        ++counts_[i];
        *remove = true;
        return true;
      }
      int replaced = re2::RE2::GlobalReplace(&text, *r.value, r.mask);
      if (replaced > 0) {
        counts_[i] += replaced;
        changed = true;
        digits = -1;  // the mask took digits away
      }
    }
    return changed;
  }

  // What a rule says of an attribute key.
  struct KeyVerdict {
    int rule = -1;            // -1: no rule matched
    bool key_is_pii = false;  // the key holds a value-pattern match (an address as a key)
  };

  // The first rule whose key pattern matches `key` whole, or whose value pattern occurs in it.
  KeyVerdict Key(const std::string& key) {
    // One pass over the key finds every rule's key_needs word (keys are short and most spans
    // carry a dozen: a pass per word and rule was most of the scrubber's cost on clean spans).
    uint32_t found = 0;
    int digits = 0;  // counted in the same pass, for the rules' value_min_digits
    for (size_t at = 0; at < key.size(); ++at) {
      if (IsDigit(key[at])) ++digits;
      uint32_t starting = scrubber_.need_starts_[static_cast<unsigned char>(key[at])];
      while (starting != 0) {
        const int bit = __builtin_ctz(starting);
        starting &= starting - 1;
        if (MatchesAtIgnoreCase(key, at, scrubber_.key_needs_[static_cast<size_t>(bit)])) {
          found |= uint32_t{1} << bit;
        }
      }
    }
    for (size_t i = 0; i < rules_.size(); ++i) {
      const CompiledRule& r = rules_[i];
      if (r.key != nullptr && (r.key_need_bits == 0 || (found & r.key_need_bits) != 0) &&
          re2::RE2::FullMatch(key, *r.key)) {
        return {static_cast<int>(i), false};
      }
      if (r.value != nullptr) {
        if (r.rule.value_needs_char != '\0' &&
            key.find(r.rule.value_needs_char) == std::string::npos) {
          continue;
        }
        if (digits < r.rule.value_min_digits) continue;
        if (r.rule.value_may_match != nullptr && !r.rule.value_may_match(key)) continue;
        if (re2::RE2::PartialMatch(key, *r.value)) return {static_cast<int>(i), true};
      }
    }
    return {};
  }

  // Scrubs one value; `remove` says the value is wholly PII and its holder should go.
  bool Value(base::AnyValue& value, bool* remove) {
    switch (value.type) {
      case base::AnyValue::Type::kString:
      case base::AnyValue::Type::kBytes:
        return Text(value.string_value, /*may_remove=*/true, remove);
      case base::AnyValue::Type::kArray: {
        bool changed = false;
        auto& values = value.array_values;
        for (size_t i = 0; i < values.size();) {
          bool gone = false;
          changed |= Value(values[i], &gone);
          if (gone) {
            values.erase(values.begin() + static_cast<std::ptrdiff_t>(i));
          } else {
            ++i;
          }
        }
        return changed;
      }
      case base::AnyValue::Type::kKvList:
        return Attributes(value.kvlist_values);
      default:
        return false;
    }
  }

  bool Attributes(base::Attributes& attributes) {
    bool changed = false;
    size_t kept = 0;
    for (size_t i = 0; i < attributes.size(); ++i) {
      base::KeyValue& kv = attributes[i];
      bool remove = false;
      if (KeyVerdict verdict = Key(kv.key); verdict.rule >= 0) {
        const CompiledRule& r = rules_[static_cast<size_t>(verdict.rule)];
        ++counts_[static_cast<size_t>(verdict.rule)];
        changed = true;
        // A key that names PII keeps its attribute under kMask, its value masked whole; a key
        // that is PII itself cannot be shown, whatever the action.
        if (r.rule.action == PiiAction::kMask && !verdict.key_is_pii) {
          kv.value = base::AnyValue::String(r.mask);
        } else {
          remove = true;
        }
      } else {
        changed |= Value(kv.value, &remove);
      }
      if (remove) continue;
      if (kept != i) attributes[kept] = std::move(kv);
      ++kept;
    }
    attributes.resize(kept);
    return changed;
  }

  bool Name(std::string& name) {
    bool unused = false;
    return Text(name, /*may_remove=*/false, &unused);
  }

  bool Span(base::Span& span) {
    bool changed = Name(span.name);
    changed |= Attributes(span.attributes);
    for (base::SpanEvent& event : span.events) {
      changed |= Name(event.name);
      changed |= Attributes(event.attributes);
    }
    for (base::SpanLink& link : span.links) changed |= Attributes(link.attributes);
    changed |= Name(span.status.message);
    return changed;
  }

  uint64_t Flush(std::atomic<uint64_t>* shared) {
    uint64_t total = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] == 0) continue;
      shared[i].fetch_add(counts_[i], std::memory_order_relaxed);
      total += counts_[i];
    }
    return total;
  }

 private:
  const PiiScrubber& scrubber_;
  const std::vector<CompiledRule>& rules_;
  std::vector<uint64_t> counts_;
  int max_digits_ = 0;
};

absl::StatusOr<std::unique_ptr<PiiScrubber>> PiiScrubber::Create(PiiScrubberOptions options) {
  std::vector<CompiledRule> compiled;
  absl::flat_hash_set<std::string> names;
  for (PiiRule& rule : options.rules) {
    if (rule.name.empty()) return absl::InvalidArgumentError("pii rule without a name");
    if (!names.insert(rule.name).second) {
      return absl::InvalidArgumentError("pii rule '" + rule.name + "' is defined twice");
    }
    if (rule.key_pattern.empty() && rule.value_pattern.empty()) {
      return absl::InvalidArgumentError("pii rule '" + rule.name +
                                        "' has neither key_pattern nor value_pattern");
    }
    CompiledRule c;
    if (absl::Status s = CheckPattern(rule, rule.key_pattern, "key_pattern", c.key); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckPattern(rule, rule.value_pattern, "value_pattern", c.value);
        !s.ok()) {
      return s;
    }
    // A value pattern that can match nothing at all would mask between every two characters.
    if (c.value != nullptr && MatchesEmpty(*c.value)) {
      return absl::InvalidArgumentError("pii rule '" + rule.name +
                                        "': value_pattern matches the empty string");
    }
    // RE2 rewrite strings treat '\' as an escape: a rule name never needs one.
    if (rule.name.find('\\') != std::string::npos) {
      return absl::InvalidArgumentError("pii rule '" + rule.name + "': no '\\' in rule names");
    }
    c.mask = "[" + rule.name + "]";
    c.rule = std::move(rule);
    compiled.push_back(std::move(c));
  }
  return std::unique_ptr<PiiScrubber>(new PiiScrubber(options.enabled, std::move(compiled)));
}

PiiScrubber::PiiScrubber(bool enabled, std::vector<CompiledRule> rules)
    : enabled_(enabled),
      rules_(std::move(rules)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(rules_.size())) {
  need_starts_.fill(0);
  for (CompiledRule& r : rules_) {
    for (const std::string& need : r.rule.key_needs) {
      // Past 32 words, or an empty one, the rule's regex simply always runs.
      if (need.empty() || key_needs_.size() == 32) {
        r.key_need_bits = 0;
        break;
      }
      const uint32_t bit = uint32_t{1} << key_needs_.size();
      std::string lower = need;
      for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      const unsigned char first = static_cast<unsigned char>(lower[0]);
      need_starts_[first] |= bit;
      if (first >= 'a' && first <= 'z') need_starts_[first - 'a' + 'A'] |= bit;
      key_needs_.push_back(std::move(lower));
      r.key_need_bits |= bit;
    }
  }
}

PiiScrubber::~PiiScrubber() = default;

uint64_t PiiScrubber::Scrub(base::TraceBatch& batch, std::vector<SpanPosition>* changed) const {
  if (!enabled_ || rules_.empty()) return 0;
  Pass pass(*this);
  for (uint32_t r = 0; r < batch.resource_spans.size(); ++r) {
    base::ResourceSpans& rs = batch.resource_spans[r];
    // The store encodes resources and scopes from the model, but a span's received bytes are
    // only trusted beside the resource they came with: a changed resource or scope reports all
    // its spans, so that nothing of the original request is copied.
    const bool resource_changed = pass.Attributes(rs.resource.attributes);
    for (uint32_t s = 0; s < rs.scope_spans.size(); ++s) {
      base::ScopeSpans& ss = rs.scope_spans[s];
      bool scope_changed = pass.Attributes(ss.scope.attributes);
      scope_changed |= pass.Name(ss.scope.name);
      scope_changed |= pass.Name(ss.scope.version);
      for (uint32_t i = 0; i < ss.spans.size(); ++i) {
        const bool span_changed = pass.Span(ss.spans[i]);
        if (changed != nullptr && (span_changed || resource_changed || scope_changed)) {
          changed->push_back(SpanPosition{r, s, i});
        }
      }
    }
  }
  return pass.Flush(counts_.get());
}

std::string PiiScrubber::ScrubText(std::string_view text) const {
  std::string out(text);
  if (!enabled_) return out;
  Pass pass(*this);
  pass.Name(out);
  return out;
}

std::vector<PiiRuleCount> PiiScrubber::Stats() const {
  std::vector<PiiRuleCount> out;
  out.reserve(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    out.push_back({rules_[i].rule.name, counts_[i].load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace ordertrace::scrub
