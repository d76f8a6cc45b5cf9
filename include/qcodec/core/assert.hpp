#pragma once
// QCODEC_ASSERT(condition, message): checks a caller's precondition at an API boundary.
//
// On by default in debug builds (NDEBUG not defined); force it with QCODEC_ENABLE_ASSERTS=1 or
// off with QCODEC_ENABLE_ASSERTS=0. Define QCODEC_ASSERT_HANDLER(file, line, condition, message)
// before including qcodec to report failures your own way (log and abort, throw, ...); the
// default prints the failed condition and aborts. Kernels never assert beyond debug builds.

#include <cstdio>
#include <cstdlib>

#if !defined(QCODEC_ENABLE_ASSERTS)
#if defined(NDEBUG)
#define QCODEC_ENABLE_ASSERTS 0
#else
#define QCODEC_ENABLE_ASSERTS 1
#endif
#endif

namespace qcodec::detail {

[[noreturn]] inline void assertion_failed(const char* file, int line, const char* condition,
                                          const char* message) noexcept {
  std::fprintf(stderr, "%s:%d: qcodec assertion failed: %s (%s)\n", file, line, condition,
               message);
  std::abort();
}

}  // namespace qcodec::detail

#if !defined(QCODEC_ASSERT_HANDLER)
#define QCODEC_ASSERT_HANDLER(file, line, condition, message) \
  ::qcodec::detail::assertion_failed(file, line, condition, message)
#endif

#if QCODEC_ENABLE_ASSERTS
#define QCODEC_ASSERT(condition, message)                                 \
  do {                                                                    \
    if (!(condition)) QCODEC_ASSERT_HANDLER(__FILE__, __LINE__, #condition, message); \
  } while (false)
#else
#define QCODEC_ASSERT(condition, message) \
  do {                                    \
    (void)sizeof(condition);              \
  } while (false)
#endif
