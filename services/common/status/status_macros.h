// Small helpers for absl::Status plumbing. Abseil 20220623 has no
// RETURN_IF_ERROR / ASSIGN_OR_RETURN of its own, so we define them once here.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define APOGEE_STATUS_CONCAT_INNER_(a, b) a##b
#define APOGEE_STATUS_CONCAT_(a, b) APOGEE_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` is not OK.
#define APOGEE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status apogee_status_ = (expr);          \
    if (!apogee_status_.ok()) return apogee_status_; \
  } while (0)

// `APOGEE_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of a StatusOr
// or returns its error.
#define APOGEE_ASSIGN_OR_RETURN(lhs, expr) \
  APOGEE_ASSIGN_OR_RETURN_IMPL_(APOGEE_STATUS_CONCAT_(apogee_or_, __LINE__), lhs, expr)

#define APOGEE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
