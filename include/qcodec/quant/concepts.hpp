#pragma once
// The concepts every quantizer policy models.
//
// A scalar or vector quantizer maps a group of floats (the elements that share one parameter
// set, chosen by a granularity tag: core/granularity.hpp) to one symbol per element (or per
// vector, for vector quantizers) plus a small trivially copyable `params_type` (scale and zero
// point, a norm, ...). Symbols are unpacked, one byte each; bit packing is a separate stage
// (simd/bit_packing.hpp), so every policy composes with every packer.
//
//   fit(x)              parameters for the group x (absmax, min/max, an MSE search, ...)
//   encode(x, p, sym)   sym[i] = symbol of x[i] under p; x.size() == sym.size() * dim
//   decode(sym, p, y)   y = the reconstruction of sym under p
//   symbol_bits         bits each symbol needs once packed (1..8)
//
// A `TrainableQuantizer` also learns state from samples (a codebook, a Lloyd-Max table) with
// `train`, which reports failure through `status`.

#include <qcodec/core/matrix_view.hpp>
#include <qcodec/core/status.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>

namespace qcodec {

template <class Q>
concept Quantizer = requires(const Q& q, std::span<const float> x, std::span<std::uint8_t> sym,
                             std::span<const std::uint8_t> csym, std::span<float> y,
                             const typename Q::params_type& p) {
  typename Q::params_type;
  requires std::is_trivially_copyable_v<typename Q::params_type>;
  { Q::symbol_bits } -> std::convertible_to<unsigned>;
  { q.fit(x) } -> std::same_as<typename Q::params_type>;
  { q.encode(x, p, sym) } noexcept;
  { q.decode(csym, p, y) } noexcept;
};

template <class Q>
concept TrainableQuantizer = Quantizer<Q> && requires(Q& q, matrix_view<const float> samples) {
  { q.train(samples) } -> std::same_as<status>;
};

}  // namespace qcodec
