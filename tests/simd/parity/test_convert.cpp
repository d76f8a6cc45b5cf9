#include <qcodec/simd/convert.hpp>

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "parity.hpp"

namespace {

// Inputs where conversions go wrong: NaNs with payloads (quiet, signaling, payload only in the
// bits half/bfloat16 drop), infinities, zeros, float subnormals, half subnormals and the ties
// below the smallest one, the half overflow threshold, ties of both formats.
// clang-format off
constexpr std::uint32_t special_floats[] = {
    // NaNs (indices 0..4 are referenced below)
    0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7F802000u, 0x7FBFFFFFu, 0xFFFFFFFFu,
    0x7FFFFFFFu, 0x7FA5A5A5u, 0xFF812345u, 0x7F801FFFu, 0x7F80FFFFu, 0x7F810000u,
    // infinities, zeros, largest finite floats, float subnormals, smallest normal float
    0x7F800000u, 0xFF800000u, 0x00000000u, 0x80000000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x00000001u,
    0x80012345u, 0x007FFFFFu, 0x00800000u, 0x00008000u, 0x00018000u,
    // 65504, 65520 (overflow tie), around them, 2^16
    0x477FE000u, 0x477FF000u, 0xC77FF000u, 0x477FEFFFu, 0x477FF001u, 0x47800000u,
    // 2^-24 (smallest subnormal half), 2^-25 (tie with 0) and around, 1.5 * 2^-24
    0x33800000u, 0x33000000u, 0x33000001u, 0xB3000000u, 0x32FFFFFFu, 0x33C00000u,
    // around 2^-14 (smallest normal half)
    0x387FC000u, 0x387FE000u, 0x38800000u, 0x387FFFFFu,
    // half ties near 1 and their neighbours
    0x3F801000u, 0x3F803000u, 0xBF801000u, 0x3F801001u, 0x3F800FFFu,
    // bfloat16 ties, including the overflow tie
    0x3F808000u, 0x3F818000u, 0x7F7F8000u, 0x7F7F7FFFu, 0xFF7F8000u,
};
// clang-format on

// n floats starting `offset` elements into their buffer: a quarter special values, a quarter
// random bit patterns, a quarter in the half range, a quarter exact ties of half or bfloat16.
struct float_inputs {
  std::vector<float> storage;
  float* data;
  float_inputs(std::size_t n, std::size_t offset, std::uint32_t seed) : storage(n + offset + 64) {
    std::mt19937 rng(seed);
    for (float& v : storage) {
      const auto r = static_cast<std::uint32_t>(rng());
      std::uint32_t u = 0;
      switch (rng() % 4u) {
        case 0:
          u = special_floats[r % std::size(special_floats)];
          break;
        case 1:
          u = r;
          break;
        case 2:
          u = (r & 0x807FFFFFu) | (static_cast<std::uint32_t>(101u + rng() % 43u) << 23);
          break;
        default:
          u = (r & 0x807F0000u) | (static_cast<std::uint32_t>(101u + rng() % 43u) << 23);
          u |= (r & 1u) ? 0x8000u : ((r & 0xE000u) | 0x1000u);  // bfloat16 tie or half tie
          break;
      }
      v = std::bit_cast<float>(u);
    }
    data = storage.data() + offset;
  }
};

// n random 16-bit patterns (every class: NaNs, infinities, subnormals) at `offset`.
struct u16_inputs {
  std::vector<std::uint16_t> storage;
  std::uint16_t* data;
  u16_inputs(std::size_t n, std::size_t offset, std::uint32_t seed) : storage(n + offset + 64) {
    std::mt19937 rng(seed);
    for (auto& v : storage) v = static_cast<std::uint16_t>(rng());
    data = storage.data() + offset;
  }
};

constexpr std::size_t guard = 16;

// memcmp without its non-null precondition (an empty vector's data() may be null).
bool same_bytes(const void* a, const void* b, std::size_t bytes) {
  return bytes == 0 || std::memcmp(a, b, bytes) == 0;
}

// Output buffer with `guard` canary elements on each side of the n elements under test.
template <class T>
struct guarded {
  std::vector<T> storage;
  guarded(std::size_t n, std::size_t offset) : storage(n + offset + 2 * guard) {
    std::memset(storage.data(), 0xA5, storage.size() * sizeof(T));
  }
  T* at(std::size_t offset) { return storage.data() + guard + offset; }
  bool canaries_intact(std::size_t n, std::size_t offset) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(storage.data());
    const std::size_t first = (guard + offset) * sizeof(T), last = first + n * sizeof(T);
    for (std::size_t i = 0; i < storage.size() * sizeof(T); ++i)
      if ((i < first || i >= last) && bytes[i] != 0xA5) return false;
    return true;
  }
};

using narrow_fn = void (*)(const float*, std::size_t, std::uint16_t*) noexcept;
using widen_fn = void (*)(const std::uint16_t*, std::size_t, float*) noexcept;

void check_narrow(narrow_fn kernel, narrow_fn oracle, std::uint32_t salt) {
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      INFO("n=" << n << " offset=" << off);
      float_inputs x(n, off, static_cast<std::uint32_t>(n * 31 + off + salt));
      std::vector<std::uint16_t> want(n);
      oracle(x.data, n, want.data());
      guarded<std::uint16_t> got(n, off);
      kernel(x.data, n, got.at(off));
      REQUIRE(same_bytes(want.data(), got.at(off), n * sizeof(std::uint16_t)));
      REQUIRE(got.canaries_intact(n, off));
    }
  }
}

void check_widen(widen_fn kernel, widen_fn oracle, std::uint32_t salt) {
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      INFO("n=" << n << " offset=" << off);
      u16_inputs x(n, off, static_cast<std::uint32_t>(n * 37 + off + salt));
      std::vector<float> want(n);
      oracle(x.data, n, want.data());
      guarded<float> got(n, off);
      kernel(x.data, n, got.at(off));
      REQUIRE(same_bytes(want.data(), got.at(off), n * sizeof(float)));
      REQUIRE(got.canaries_intact(n, off));
    }
  }
}

// Every 16-bit pattern at once, and a large sample of floats (every NaN payload class), in one
// long call each: the widening conversions are checked exhaustively.
void check_all_patterns(const qcodec::simd::convert_kernels& k) {
  std::vector<std::uint16_t> all(65536 + 3);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i * 40503u);
  std::vector<float> want(all.size()), got(all.size());
  qcodec::ref::f16_to_f32(all.data() + 3, 65536, want.data());
  k.f16_to_f32(all.data() + 3, 65536, got.data());
  REQUIRE(std::memcmp(want.data(), got.data(), 65536 * sizeof(float)) == 0);
  qcodec::ref::bf16_to_f32(all.data() + 1, 65536, want.data());
  k.bf16_to_f32(all.data() + 1, 65536, got.data());
  REQUIRE(std::memcmp(want.data(), got.data(), 65536 * sizeof(float)) == 0);

  std::vector<float> x;
  std::mt19937 rng(99);
  for (int i = 0; i < (1 << 20); ++i)
    x.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  for (std::uint32_t frac = 1; frac <= 0x007FFFFFu; frac += 61)
    x.push_back(std::bit_cast<float>(((frac & 1u) << 31) | 0x7F800000u | frac));
  std::vector<std::uint16_t> w(x.size()), g(x.size());
  qcodec::ref::f32_to_f16(x.data(), x.size(), w.data());
  k.f32_to_f16(x.data(), x.size(), g.data());
  REQUIRE(std::memcmp(w.data(), g.data(), x.size() * sizeof(std::uint16_t)) == 0);
  qcodec::ref::f32_to_bf16(x.data(), x.size(), w.data());
  k.f32_to_bf16(x.data(), x.size(), g.data());
  REQUIRE(std::memcmp(w.data(), g.data(), x.size() * sizeof(std::uint16_t)) == 0);
}

// The oracle's results on the special values, computed during constant evaluation (which
// cannot execute conversion instructions whatever the -m flags).
struct special_results {
  std::array<std::uint16_t, std::size(special_floats)> half{}, bf16{};
};
constexpr special_results compile_time_results() {
  special_results r;
  for (std::size_t i = 0; i < std::size(special_floats); ++i) {
    r.half[i] = qcodec::ref::float_to_half(std::bit_cast<float>(special_floats[i]));
    r.bf16[i] = qcodec::ref::float_to_bfloat16(std::bit_cast<float>(special_floats[i]));
  }
  return r;
}

}  // namespace

TEST_CASE("the conversion oracle is the portable algorithm", "[parity][convert]") {
  // These binaries are compiled with -mf16c: the run-time oracle must still be the portable
  // code, i.e. agree with its constant-evaluated self, and have the documented NaN results.
  constexpr special_results ct = compile_time_results();
  static_assert(ct.half[0] == 0x7E00u && ct.half[2] == 0x7E00u && ct.half[4] == 0x7E01u);
  static_assert(ct.bf16[2] == 0x7FC0u && ct.bf16[3] == 0xFFC0u);
  float x[std::size(special_floats)];
  for (std::size_t i = 0; i < std::size(special_floats); ++i)
    x[i] = std::bit_cast<float>(special_floats[i]);
  std::uint16_t h[std::size(special_floats)], b[std::size(special_floats)];
  qcodec::ref::f32_to_f16(x, std::size(x), h);
  qcodec::ref::f32_to_bf16(x, std::size(x), b);
  for (std::size_t i = 0; i < std::size(special_floats); ++i) {
    INFO("float bits " << special_floats[i]);
    CHECK(h[i] == ct.half[i]);
    CHECK(b[i] == ct.bf16[i]);
  }
  const qcodec::simd::convert_kernels scalar =
      qcodec::simd::make_convert_kernels<qcodec::simd::scalar>();
  CHECK(scalar.f32_to_f16 == &qcodec::ref::f32_to_f16);
  CHECK(scalar.f16_to_f32 == &qcodec::ref::f16_to_f32);
  CHECK(scalar.f32_to_bf16 == &qcodec::ref::f32_to_bf16);
  CHECK(scalar.bf16_to_f32 == &qcodec::ref::bf16_to_f32);
}

TEST_CASE("f32_to_f16 matches the oracle bit for bit", "[parity][convert]") {
  check_narrow(parity::under_test().convert.f32_to_f16, &qcodec::ref::f32_to_f16, 1);
}

TEST_CASE("f16_to_f32 matches the oracle bit for bit", "[parity][convert]") {
  check_widen(parity::under_test().convert.f16_to_f32, &qcodec::ref::f16_to_f32, 2);
}

TEST_CASE("f32_to_bf16 matches the oracle bit for bit", "[parity][convert]") {
  check_narrow(parity::under_test().convert.f32_to_bf16, &qcodec::ref::f32_to_bf16, 3);
}

TEST_CASE("bf16_to_f32 matches the oracle bit for bit", "[parity][convert]") {
  check_widen(parity::under_test().convert.bf16_to_f32, &qcodec::ref::bf16_to_f32, 4);
}

TEST_CASE("conversions match the oracle on every 16-bit pattern and on NaN payloads",
          "[parity][convert]") {
  check_all_patterns(parity::under_test().convert);
}

#if XSIMD_WITH_SSE4_2 || XSIMD_WITH_NEON
TEST_CASE("the portable lane-by-lane fallback matches the oracle", "[parity][convert]") {
  // An xsimd target without dedicated conversion overloads takes the xsimd::generic paths.
#if XSIMD_WITH_SSE4_2
  using fallback = xsimd::sse4_2;
#else
  using fallback = xsimd::neon;
#endif
  namespace simd = qcodec::simd;
  check_narrow(&simd::f32_to_f16<fallback>, &qcodec::ref::f32_to_f16, 5);
  check_widen(&simd::f16_to_f32<fallback>, &qcodec::ref::f16_to_f32, 6);
  check_narrow(&simd::f32_to_bf16<fallback>, &qcodec::ref::f32_to_bf16, 7);
  check_widen(&simd::bf16_to_f32<fallback>, &qcodec::ref::bf16_to_f32, 8);
  check_all_patterns(simd::make_convert_kernels<fallback>());
}
#endif
