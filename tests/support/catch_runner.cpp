// Catch2's implementation and main(), compiled once and shared by every test binary.
// Each binary also links one definition of qcodec_test_gate() (support/gate.cpp by default),
// which may end the run before any test executes, e.g. with 77 for "skipped".
#define CATCH_CONFIG_RUNNER
#include "catch.hpp"

int qcodec_test_gate();

int main(int argc, char** argv) {
  if (const int code = qcodec_test_gate(); code != 0) return code;
  return Catch::Session().run(argc, argv);
}
