#include "gaps/stage_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "base/default_lifecycle.h"

namespace ordertrace::gaps {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kMinute = 60 * kSecond;

absl::Status Contradiction(const std::string& what) {
  return absl::InvalidArgumentError("lifecycle: " + what);
}

}  // namespace

StageModelOptions DefaultStageModelOptions() {
  StageModelOptions options;
  for (const base::LifecycleStep& step : base::kDefaultLifecycle) {
    options.statuses.emplace_back(step.status);
  }
  for (size_t i = 0; i + 1 < options.statuses.size(); ++i) {
    options.transitions.emplace_back(options.statuses[i], options.statuses[i + 1]);
  }
  options.terminal = {options.statuses.back()};
  for (size_t i = 0; i + 1 < options.statuses.size(); ++i) {
    const base::LifecycleStep& step = base::kDefaultLifecycle[i];
    StageRule rule;
    rule.status = options.statuses[i];
    rule.expected = {options.statuses[i + 1]};
    rule.sla_nanos = static_cast<uint64_t>(std::chrono::nanoseconds(step.sla).count());
    rule.calculation = step.status == base::kPriceCalculationStarted;
    options.stages.push_back(std::move(rule));
  }
  options.message_sla_nanos = 5 * kMinute;
  options.grace_nanos = 5 * kSecond;
  return options;
}

absl::StatusOr<StageModel> StageModel::Create(StageModelOptions options) {
  if (options.statuses.empty()) return Contradiction("no statuses");
  std::set<std::string> known;
  for (const std::string& status : options.statuses) {
    if (status.empty()) return Contradiction("an empty status name");
    if (!known.insert(status).second) return Contradiction("status " + status + " listed twice");
  }
  std::set<std::pair<std::string, std::string>> allowed;
  std::set<std::string> has_way_out;
  for (const auto& [from, to] : options.transitions) {
    if (!known.count(from) || !known.count(to)) {
      return Contradiction("transition " + from + " -> " + to + " uses an unknown status");
    }
    if (from == to) return Contradiction("transition " + from + " -> " + to + " goes nowhere");
    allowed.insert({from, to});
    has_way_out.insert(from);
  }
  std::set<std::string> terminal;
  for (const std::string& status : options.terminal) {
    if (!known.count(status)) return Contradiction("terminal status " + status + " is unknown");
    if (has_way_out.count(status)) {
      return Contradiction("terminal status " + status + " has a transition out of it");
    }
    terminal.insert(status);
  }
  if (terminal.empty()) return Contradiction("no terminal status: orders could never finish");
  for (const std::string& status : options.statuses) {
    if (!terminal.count(status) && !has_way_out.count(status)) {
      return Contradiction("status " + status + " is a dead end but not terminal");
    }
  }
  std::set<std::string> ruled;
  for (const StageRule& rule : options.stages) {
    if (!known.count(rule.status)) return Contradiction("stage " + rule.status + " is unknown");
    if (terminal.count(rule.status)) {
      return Contradiction("terminal status " + rule.status + " cannot have an SLA");
    }
    if (!ruled.insert(rule.status).second) {
      return Contradiction("stage " + rule.status + " has two rules");
    }
    if (rule.sla_nanos == 0) return Contradiction("stage " + rule.status + " has a zero SLA");
    if (rule.expected.empty()) {
      return Contradiction("stage " + rule.status + " expects no next status");
    }
    for (const std::string& next : rule.expected) {
      if (!known.count(next)) {
        return Contradiction("stage " + rule.status + " expects unknown status " + next);
      }
      if (!allowed.count({rule.status, next})) {
        return Contradiction("stage " + rule.status + " expects " + next + ", but the transition " +
                             rule.status + " -> " + next + " is not allowed");
      }
    }
  }
  for (const auto& [partner, overrides] : options.partner_sla_nanos) {
    for (const auto& [stage, sla] : overrides) {
      if (!ruled.count(stage)) {
        return Contradiction("partner " + partner + " overrides stage " + stage +
                             ", which has no SLA rule");
      }
      if (sla == 0) return Contradiction("partner " + partner + " has a zero SLA for " + stage);
    }
  }
  if (options.message_sla_nanos == 0) return Contradiction("message SLA is zero");
  if (!(options.time_scale > 0) || !std::isfinite(options.time_scale)) {
    return Contradiction("time_scale must be a positive number");
  }
  return StageModel(std::move(options));
}

namespace {

uint64_t TransitionCode(int from, int to) {
  return (static_cast<uint64_t>(from) << 32) | static_cast<uint32_t>(to);
}

}  // namespace

StageModel::StageModel(StageModelOptions options) : options_(std::move(options)) {
  for (size_t i = 0; i < options_.statuses.size(); ++i) {
    index_.emplace(options_.statuses[i], static_cast<int>(i));
  }
  for (const auto& [from, to] : options_.transitions) {
    int f = IndexOf(from), t = IndexOf(to);
    if (f >= 0 && t >= 0) allowed_.insert(TransitionCode(f, t));
  }
  rule_at_.assign(options_.statuses.size(), -1);
  terminal_at_.assign(options_.statuses.size(), false);
  for (size_t i = 0; i < options_.stages.size(); ++i) {
    if (int at = IndexOf(options_.stages[i].status); at >= 0) rule_at_[at] = static_cast<int>(i);
  }
  for (const std::string& status : options_.terminal) {
    if (int at = IndexOf(status); at >= 0) terminal_at_[at] = true;
  }
}

int StageModel::IndexOf(std::string_view status) const {
  auto it = index_.find(absl::string_view(status.data(), status.size()));
  return it == index_.end() ? -1 : it->second;
}

bool StageModel::IsAllowed(std::string_view from, std::string_view to) const {
  return IsAllowedAt(IndexOf(from), IndexOf(to));
}

bool StageModel::IsAllowedAt(int from, int to) const {
  return from >= 0 && to >= 0 && allowed_.contains(TransitionCode(from, to));
}

bool StageModel::IsTerminal(std::string_view status) const {
  return std::find(options_.terminal.begin(), options_.terminal.end(), status) !=
         options_.terminal.end();
}

const StageRule* StageModel::RuleFor(std::string_view status) const {
  for (const StageRule& rule : options_.stages) {
    if (rule.status == status) return &rule;
  }
  return nullptr;
}

uint64_t StageModel::Scaled(uint64_t nanos) const {
  return static_cast<uint64_t>(static_cast<double>(nanos) / options_.time_scale);
}

uint64_t StageModel::SlaNanos(const StageRule& rule, std::string_view partner_id) const {
  if (!partner_id.empty()) {
    auto partner = options_.partner_sla_nanos.find(std::string(partner_id));
    if (partner != options_.partner_sla_nanos.end()) {
      auto stage = partner->second.find(rule.status);
      if (stage != partner->second.end()) return Scaled(stage->second);
    }
  }
  return Scaled(rule.sla_nanos);
}

uint64_t StageModel::MessageSlaNanos() const { return Scaled(options_.message_sla_nanos); }

std::vector<std::string> StageModel::NextOf(std::string_view status) const {
  std::vector<std::string> next;
  for (const auto& [from, to] : options_.transitions) {
    if (from == status) next.push_back(to);
  }
  return next;
}

}  // namespace ordertrace::gaps
