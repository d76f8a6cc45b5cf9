#pragma once
// How far ahead the kernels that read a page's compressed units in order prefetch them (KIVI's
// key scores, simd/int16_dots.hpp; token_blocks' dots; token_quads' sums with AVX-512 VNNI).
//
// At long contexts the pages come from DRAM. A cache page holds each KV head's key units and then
// its value units, and attention reads them in that order (kv/attention.hpp), so the bytes a fixed
// distance past the unit being read are read soon after, by the same kernel or the next: fetched
// as each unit is read, the prefetches are spread over the kernels' work. (So a kernel's first
// units rely on the kernel that read the bytes before them, or on a nearer prefetch of its own as
// KIVI's; past a page's last head of a layer lie another layer's heads, prefetched for nothing.
// Prefetches never fault.) Prefetching only the next few units ran too close to their first use,
// and a whole page at once cost time: kv/attention.hpp once prefetched the next head's page into
// L2 before each block, and decode steps took 1.08-1.27x the time where it ran (clang; GCC 12 had
// deleted it, see prefetch_bytes; made to run there, 1.11-1.18x).
//
// Spread thin, too: a kernel that prefetched a whole block ahead at each block asked for lines
// faster than one core has them in flight (few L1 misses at a time: fp32 attention reads L3 at
// about 25 GB/s on the Intel Xeon VM), while softmax between the kernels asked for none.
// token_blocks' dots now prefetch a block's lines beside its groups, a line or two at a time, and
// token_quads' VNNI sums each slice's share: q4-blocks-quads decode steps took 0.91-0.97x the time
// at 4k and 16k tokens, 0.84-0.94x at 64k (docs/measurements.md). KIVI's units (int16_dots.hpp)
// come in two halves: kivi4-q8-quads, already with those sums, 0.94x at head_dim 128 from 4k to
// 16k tokens (0.84x at 64k), 0.98-1.00x at 64.
//
// Measured (docs/measurements.md) against 2 units (KIVI) or 4 blocks ahead: at 64k tokens and
// head_dim 64, kivi4-q8-quads 0.71x the time and q4-blocks-quads 0.86x; 4 KiB and 16 KiB were
// slower than 8; at 1k and 4k tokens 0.99-1.05x (the AMD VM, pages from DRAM; on the Intel Xeon VM,
// pages from L3, 4 KiB was 0.98x at 16k and 12 and 16 KiB 1.01-1.05x).

#include <cstddef>
#include <cstdint>

namespace qcodec::simd {

inline constexpr std::size_t unit_prefetch_distance = 8192;

/// Share `part` of `parts` of a range of `bytes` bytes in whole 64-byte lines, as an offset and a
/// length in bytes (the shares together cover the range's lines once): a range prefetched a share
/// at a time, spread over a kernel's work (header comment).
struct line_share {
  std::size_t from, bytes;
};
constexpr line_share share_of_lines(std::size_t bytes, std::size_t part,
                                    std::size_t parts) noexcept {
  const std::size_t lines = (bytes + 63) / 64;
  const std::size_t first = part * lines / parts, end = (part + 1) * lines / parts;
  return {64 * first, 64 * (end - first)};
}

namespace detail {

// Prefetches the bytes [p, p + bytes) into L1 (prefetcht0 on x86): every kernel's prefetch of a
// range, a template on the target as kernel helpers are (kernel_table.hpp). Always inlined: GCC 12
// finds a function that only prefetches "looping const" and deletes calls to it (its result is
// unused), so a call it chose not to inline would prefetch nothing (as kv/attention.hpp's page
// prefetch silently did).
template <class Arch>
[[gnu::always_inline]] inline void prefetch_bytes(const std::uint8_t* p,
                                                  std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  for (std::size_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
#else
  (void)p, (void)bytes;
#endif
}

// Prefetches `count` rows of `row_bytes` bytes, `stride` apart, from the row at p: the row
// kernels' prefetch ahead. Rows at most a line further apart than their length take one range;
// rows further apart take the lines of each row only. (The cache's exact rows are one head's among
// kv_heads: their stride is kv_heads times their length, and a range of count * stride bytes
// fetched every head's rows, kv_heads times the prefetches. On 160 fp32 rows of 64 elements at
// 8 KV heads, dots and sums took 1.9-2.7x the time, docs/measurements.md.)
template <class Arch>
[[gnu::always_inline]] inline void prefetch_rows(const std::uint8_t* p, std::size_t stride,
                                                 std::size_t row_bytes,
                                                 std::size_t count) noexcept {
  if (stride <= row_bytes + 64) return prefetch_bytes<Arch>(p, count * stride);
  for (std::size_t t = 0; t < count; ++t, p += stride) {
    const std::size_t offset = reinterpret_cast<std::uintptr_t>(p) % 64;  // from its first line
    prefetch_bytes<Arch>(p - offset, offset + row_bytes);
  }
}

}  // namespace detail

}  // namespace qcodec::simd
