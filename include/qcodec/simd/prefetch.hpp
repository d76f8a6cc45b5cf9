#pragma once
// How far ahead the kernels that read a page's compressed units in order prefetch them (KIVI's
// key scores, simd/int16_dots.hpp; token_blocks' dots; token_quads' sums with AVX-512 VNNI).
//
// At long contexts the pages come from DRAM. A cache page holds each KV head's key units and then
// its value units, and attention reads them in that order (kv/attention.hpp), so what lies a fixed
// number of bytes past the unit being read is what is read soon after, whichever kernel reads it:
// prefetched there as each unit is read, the loads are spread over the kernels' work, where a
// prefetch of a whole page (or of the next few units) ran too close to its first use. Prefetches
// past the data are harmless: they never fault.
//
// Measured at 8 KiB against 2 units (KIVI) or 4 blocks (token blocks and quads) ahead, both in one
// binary, repetitions interleaved at random, pinned, medians (README): at 64k tokens and head_dim
// 64, KIVI-4 (kivi4-q8-quads) 0.71-0.80x the time and q4-blocks-quads 0.86x; 4 KiB and 16 KiB
// were slower than 8; at 1k-16k tokens and at head_dim 128, 0.96-1.05x.

#include <cstddef>

namespace qcodec::simd {

inline constexpr std::size_t unit_prefetch_distance = 8192;

}  // namespace qcodec::simd
