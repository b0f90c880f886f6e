// What each role may do: the one table every listener checks (docs/security.md prints it).
#pragma once

#include "auth/token_authenticator.h"

namespace ordertrace::auth {

// What a request asks to do. Health probes (/healthz, /readyz, /ready, /api/echo) need none.
enum class Access {
  kReadOrders,      // order views, lists, gaps, traces, search, tag values (partners: theirs)
  kReadSla,         // SLA aggregates (partners: theirs)
  kReadMetrics,     // /metrics: every partner's figures, so never a partner's
  kReadCharts,      // the console's charts (/api/v1/charts): every partner's figures and
                    // exemplars, so never a partner's (partners read their SLA figures)
  kIdentify,        // /api/v1/whoami: who the token is (every role)
  kIngest,          // OTLP export
  kSeeOperatorIds,  // operator_id in clear; everyone else sees its HMAC
};

// Whether `role` may do `access`. Partners' reads are also scoped to their partner_id by the
// caller (query/partner_scope.h).
constexpr bool Allows(Role role, Access access) {
  switch (access) {
    case Access::kReadOrders:
    case Access::kReadSla:
      return role == Role::kSupport || role == Role::kDev || role == Role::kOps ||
             role == Role::kPartnerReadonly;
    case Access::kReadMetrics:
      return role == Role::kDev || role == Role::kOps;
    case Access::kReadCharts:
      return role == Role::kSupport || role == Role::kDev || role == Role::kOps;
    case Access::kIdentify:
      return true;
    case Access::kIngest:
      return role == Role::kIngest;
    case Access::kSeeOperatorIds:
      return role == Role::kOps;
  }
  return false;
}

}  // namespace ordertrace::auth
