#pragma once
// Catch2 include shim: Debian ships Catch2 v2.13 (single header); v3 is accepted too.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
/// Ends the current test case as skipped, with a message.
#define QCODEC_SKIP(message) SKIP(message)
#else
#include <catch2/catch.hpp>
/// Catch2 v2 has no SKIP(): report the reason as a warning and leave the test case.
#define QCODEC_SKIP(message) \
  do {                       \
    WARN(message);           \
    return;                  \
  } while (false)
#endif
