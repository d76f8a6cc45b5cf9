// This binary is built with qcodec_add_kernel_dispatch(): kernels() must pick the best target
// the CPU supports among those compiled, and every entry of the table must be callable.
#include <qcodec/simd/dispatch.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../support/catch.hpp"

namespace simd = qcodec::simd;

namespace {

// The target kernels() picks with no cap, and with the AVX2 cap.
std::string best_target(bool avx512_allowed) {
  std::string best = simd::native_arch::name();  // static builds: the one compiled target
#if QCODEC_DISPATCH_AVX512 || QCODEC_DISPATCH_AVX2
  best = simd::scalar::name();
#if QCODEC_DISPATCH_AVX2
  if (simd::cpu_supports<simd::avx2>()) best = simd::avx2::name();
#endif
#if QCODEC_DISPATCH_AVX512
  if (avx512_allowed && simd::cpu_supports<simd::avx512>()) best = simd::avx512::name();
#endif
#endif
  (void)avx512_allowed;
  return best;
}

}  // namespace

TEST_CASE("kernels() picks the best target this CPU supports", "[dispatch]") {
  if (std::getenv("QCODEC_ISA") == nullptr) CHECK(simd::kernels().arch == best_target(true));
  CHECK(&simd::kernels() == &simd::kernels());
}

TEST_CASE("QCODEC_ISA caps the target kernels() picks", "[dispatch]") {
  namespace d = simd::detail;
  CHECK(d::isa_cap_from(nullptr) == d::isa_cap::best);
  CHECK(d::isa_cap_from("avx2") == d::isa_cap::avx2);
  CHECK(d::isa_cap_from("scalar") == d::isa_cap::scalar);
  CHECK(d::isa_cap_from("avx512") == d::isa_cap::best);
  CHECK(d::isa_cap_from("AVX2 ") == d::isa_cap::best);  // unknown: no cap
  CHECK(d::select_kernel_table(d::isa_cap::best).arch == best_target(true));
  CHECK(d::select_kernel_table(d::isa_cap::avx2).arch == best_target(false));
  CHECK(std::string(d::select_kernel_table(d::isa_cap::scalar).arch) == simd::scalar::name());
}

TEST_CASE("the scalar table is the reference oracle", "[dispatch]") {
  const simd::kernel_table scalar = simd::make_kernel_table<simd::scalar>();
  CHECK(std::string(scalar.arch) == "scalar");
  CHECK(scalar.reductions.absmax == &qcodec::ref::absmax);
  CHECK(scalar.table_sums.table_sums == &qcodec::ref::table_sums);
}

TEST_CASE("the dispatched reductions compute", "[dispatch]") {
  const float x[7] = {1, -9, 2, 3, -4, 5, 6};
  const auto& k = simd::kernels().reductions;
  CHECK(k.absmax(x, 7) == 9.0f);
  CHECK(k.minmax(x, 7).min == -9.0f);
  CHECK(k.minmax(x, 7).max == 6.0f);
  CHECK(k.sum(x, 7) == 4.0f);
  CHECK(k.dot(x, x, 7) == 172.0f);
}
