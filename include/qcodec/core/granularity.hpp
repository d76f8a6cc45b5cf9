#pragma once
// Granularity tags: which elements of a tokens × channels matrix share one set of quantization
// parameters (scale/zero, norm, ...). Policies and codecs take them as template arguments.
//
//   per_tensor     one parameter set for the whole matrix
//   per_token      one per row (a token's vector: KIVI's values, most activation quantizers)
//   per_channel    one per column, over the rows given (KIVI's keys, over groups of G tokens)
//   per_group<G>   one per run of G consecutive elements within a row (ggml blocks, G = 32)

#include <cstddef>
#include <type_traits>

namespace qcodec {

struct per_tensor {
  static constexpr const char* name() noexcept { return "per_tensor"; }
};
struct per_token {
  static constexpr const char* name() noexcept { return "per_token"; }
};
struct per_channel {
  static constexpr const char* name() noexcept { return "per_channel"; }
};
template <std::size_t G>
struct per_group {
  static_assert(G > 0, "a group holds at least one element");
  static constexpr std::size_t group_size = G;
  static constexpr const char* name() noexcept { return "per_group"; }
};

namespace detail {
template <class T>
struct is_per_group : std::false_type {};
template <std::size_t G>
struct is_per_group<per_group<G>> : std::true_type {};
}  // namespace detail

/// One of the granularity tags above.
template <class G>
concept Granularity = std::is_same_v<G, per_tensor> || std::is_same_v<G, per_token> ||
                      std::is_same_v<G, per_channel> || detail::is_per_group<G>::value;

/// Number of parameter sets `G` needs for a rows × cols matrix (per_group: groups per row,
/// rounded up, times rows).
template <Granularity G>
[[nodiscard]] constexpr std::size_t parameter_sets(std::size_t rows, std::size_t cols) noexcept {
  if constexpr (std::is_same_v<G, per_tensor>) {
    return rows * cols == 0 ? 0 : 1;
  } else if constexpr (std::is_same_v<G, per_token>) {
    return cols == 0 ? 0 : rows;
  } else if constexpr (std::is_same_v<G, per_channel>) {
    return rows == 0 ? 0 : cols;
  } else {
    return rows * ((cols + G::group_size - 1) / G::group_size);
  }
}

}  // namespace qcodec
