// This binary is built with qcodec_add_kernel_dispatch(): kernels() must pick the best target
// the CPU supports among those compiled, and every entry of the table must be callable.
#include <qcodec/simd/dispatch.hpp>

#include <cstring>
#include <string>

#include "../support/catch.hpp"

namespace simd = qcodec::simd;

TEST_CASE("kernels() picks the best target this CPU supports", "[dispatch]") {
  std::string expected = simd::native_arch::name();
#if QCODEC_DISPATCH_AVX512 || QCODEC_DISPATCH_AVX2
  expected = simd::scalar::name();
#if QCODEC_DISPATCH_AVX2
  if (simd::cpu_supports<simd::avx2>()) expected = simd::avx2::name();
#endif
#if QCODEC_DISPATCH_AVX512
  if (simd::cpu_supports<simd::avx512>()) expected = simd::avx512::name();
#endif
#endif
  CHECK(simd::kernels().arch == expected);
  CHECK(&simd::kernels() == &simd::kernels());
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
