#pragma once
// The codec registry: every codec that can be chosen by name at run time (tools, engine
// configuration). Adding a format adds one line to codec_registry().
//
//   result<std::unique_ptr<any_codec>> c = qcodec::make_codec("q4_K");
//
// Spec grammar and errors: codec/spec.hpp. Families with options:
//
//   uniform:bits=B,mode=M,group=G   uniform scalar codes (quant/uniform/uniform.hpp), B in 1..8
//                                   (4), M = sym (levels -(c-1)..c-1, exact 0) | nozero (no
//                                   level at 0) | asym (scale and offset), default sym (sym
//                                   needs B >= 2), fp32 scale (and offset) per group of G (64)
//   nf4 / dynamic8 / fp8_* / fp4_e2m1 / ternary / binary [:group=G]
//                                   scalar policies with an fp32 parameter per group
//   bfp:bits=M,block=N              block floating point
//
// Two MXFP4 layouts are registered: "mxfp4" is ggml's (GGUF type MXFP4, split-halves nibble
// order) and "mx_fp4" is qcodec's OCP MX layout (codes in element order); both are 4.25 bits.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/block_format_codec.hpp>
#include <qcodec/codec/float_storage_codec.hpp>
#include <qcodec/codec/grouped_codec.hpp>
#include <qcodec/codec/row_formats.hpp>
#include <qcodec/codec/spec.hpp>
#include <qcodec/quant/block/bfp.hpp>
#include <qcodec/quant/block/blockwise.hpp>
#include <qcodec/quant/block/ggml.hpp>
#include <qcodec/quant/float/float_quantizer.hpp>
#include <qcodec/quant/float/fp4.hpp>
#include <qcodec/quant/nonuniform/code_table.hpp>
#include <qcodec/quant/nonuniform/tables.hpp>
#include <qcodec/quant/uniform/binary.hpp>
#include <qcodec/quant/uniform/ternary.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <array>
#include <utility>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace qcodec {

/// One registered codec.
struct codec_entry {
  const char* name;
  /// Bits per value at the default options, metadata included (for long rows).
  double bits_per_value;
  /// One line for `qcodec list`.
  const char* description;
  /// Builds the codec from a parsed spec whose name is `name`; rejects unknown options.
  result<std::unique_ptr<any_codec>> (*make)(const codec_spec& spec);
};

namespace detail {

// A codec without options.
template <class Codec>
result<std::unique_ptr<any_codec>> make_plain_codec(const codec_spec& spec) {
  if (status s = spec.only_options({}); !s) return s;
  return std::unique_ptr<any_codec>(std::make_unique<Codec>());
}

template <BlockFormat F>
constexpr codec_entry block_format_entry(const char* description) {
  return {F::name, F::bits_per_value, description, &make_plain_codec<block_format_codec<F>>};
}

// A parameterised block format registered under its own name (e.g. superblock_format<2, 16,
// 256, 4> as "sb2"): the codec's spec is the registered name.
template <BlockFormat F>
result<std::unique_ptr<any_codec>> make_named_block_codec(const codec_spec& spec) {
  if (status s = spec.only_options({}); !s) return s;
  return std::unique_ptr<any_codec>(std::make_unique<block_format_codec<F>>(spec.name()));
}

template <BlockFormat F>
constexpr codec_entry named_block_entry(const char* name, const char* description) {
  return {name, F::bits_per_value, description, &make_named_block_codec<F>};
}

// "bfp:bits=M,block=N": block floating point, M in {4, 6, 8}, N in {16, 32, 64}.
inline result<std::unique_ptr<any_codec>> make_bfp_codec(const codec_spec& spec) {
  if (status s = spec.only_options({"bits", "block"}); !s) return s;
  auto bits = spec.get_uint("bits", 8, 4, 8);
  if (!bits) return bits.error();
  auto block = spec.get_uint("block", 32, 16, 64);
  if (!block) return block.error();
  // Canonical spec: the options that differ from the defaults.
  std::string name = "bfp";
  if (*bits != 8) name += ":bits=" + std::to_string(*bits);
  if (*block != 32) name += (*bits != 8 ? ",block=" : ":block=") + std::to_string(*block);
  std::unique_ptr<any_codec> codec;
  auto with_block = [&]<unsigned M>() {
    switch (*block) {
      case 16:
        codec = std::make_unique<block_format_codec<bfp_format<M, 16>>>(name);
        break;
      case 32:
        codec = std::make_unique<block_format_codec<bfp_format<M, 32>>>(name);
        break;
      case 64:
        codec = std::make_unique<block_format_codec<bfp_format<M, 64>>>(name);
        break;
      default:
        break;
    }
  };
  switch (*bits) {
    case 4:
      with_block.template operator()<4>();
      break;
    case 6:
      with_block.template operator()<6>();
      break;
    case 8:
      with_block.template operator()<8>();
      break;
    default:
      break;
  }
  if (!codec) {
    return status::failure(codec_errors::bad_option,
                           name + " (bits 4, 6 or 8; block 16, 32 or 64)");
  }
  return codec;
}

// A scalar Quantizer applied per group of values, "name[:group=G]" (1 <= G <= 65536).
template <Quantizer Q, std::size_t DefaultGroup>
struct grouped_entry {
  static constexpr double bits_per_value =
      8.0 *
      static_cast<double>(grouped_codec<Q>::code_bytes(DefaultGroup) +
                          sizeof(typename Q::params_type)) /
      DefaultGroup;

  static result<std::unique_ptr<any_codec>> make(const codec_spec& spec, Q quantizer) {
    if (status s = spec.only_options({"group"}); !s) return s;
    auto group = spec.get_uint("group", DefaultGroup, 1, 65536);
    if (!group) return group.error();
    std::string name = spec.name();
    if (*group != DefaultGroup) name += ":group=" + std::to_string(*group);
    return std::unique_ptr<any_codec>(
        std::make_unique<grouped_codec<Q>>(std::move(quantizer), *group, std::move(name)));
  }
  static result<std::unique_ptr<any_codec>> make_default(const codec_spec& spec) {
    return make(spec, Q{});
  }
};

inline result<std::unique_ptr<any_codec>> make_nf4_codec(const codec_spec& spec) {
  return grouped_entry<code_table<4>, 64>::make(spec, code_table<4>(nf4_table));
}

inline result<std::unique_ptr<any_codec>> make_dynamic8_codec(const codec_spec& spec) {
  return grouped_entry<code_table<8>, 256>::make(spec, code_table<8>(dynamic_map_8bit()));
}

// "uniform:bits=B,mode=sym|nozero|asym,group=G" (header comment).
using uniform_maker = std::unique_ptr<any_codec> (*)(std::size_t group, std::string name);

template <unsigned B, class Mode>
std::unique_ptr<any_codec> make_uniform_as(std::size_t group, std::string name) {
  if constexpr (std::is_same_v<Mode, symmetric> && B == 1) {
    return nullptr;  // a single level (0): rejected before this is called
  } else {
    return std::make_unique<grouped_codec<uniform<B, Mode>>>(uniform<B, Mode>{}, group,
                                                             std::move(name));
  }
}

template <class Mode, std::size_t... I>
constexpr std::array<uniform_maker, 8> uniform_makers(std::index_sequence<I...>) {
  return {&make_uniform_as<static_cast<unsigned>(I + 1), Mode>...};
}

inline constexpr std::size_t uniform_default_bits = 4, uniform_default_group = 64;

inline result<std::unique_ptr<any_codec>> make_uniform_codec(const codec_spec& spec) {
  if (status s = spec.only_options({"bits", "mode", "group"}); !s) return s;
  auto bits = spec.get_uint("bits", uniform_default_bits, 1, 8);
  if (!bits) return bits.error();
  auto group = spec.get_uint("group", uniform_default_group, 1, 65536);
  if (!group) return group.error();
  std::string mode = "sym";
  for (const auto& [key, value] : spec.options())
    if (key == "mode") mode = value;
  static constexpr std::array<uniform_maker, 8> sym =
      uniform_makers<symmetric>(std::make_index_sequence<8>{});
  static constexpr std::array<uniform_maker, 8> nozero =
      uniform_makers<symmetric_no_zero>(std::make_index_sequence<8>{});
  static constexpr std::array<uniform_maker, 8> asym =
      uniform_makers<asymmetric>(std::make_index_sequence<8>{});
  const std::array<uniform_maker, 8>* table = mode == "sym"      ? &sym
                                              : mode == "nozero" ? &nozero
                                              : mode == "asym"   ? &asym
                                                                 : nullptr;
  if (table == nullptr || (mode == "sym" && *bits == 1)) {
    return status::failure(codec_errors::bad_option,
                           "uniform: mode=" + mode + " with bits=" + std::to_string(*bits) +
                               " (mode sym, nozero or asym; sym needs bits >= 2)");
  }
  // Canonical spec: the options that differ from the defaults, in the order bits, mode, group.
  std::string name = "uniform";
  char sep = ':';
  const auto add = [&](const std::string& option) {
    name += sep + option;
    sep = ',';
  };
  if (*bits != uniform_default_bits) add("bits=" + std::to_string(*bits));
  if (mode != "sym") add("mode=" + mode);
  if (*group != uniform_default_group) add("group=" + std::to_string(*group));
  return (*table)[*bits - 1](*group, std::move(name));
}

template <float_storage S>
constexpr codec_entry float_storage_entry(const char* name, const char* description) {
  return {name, S == float_storage::f32 ? 32.0 : 16.0, description,
          &make_plain_codec<float_storage_codec<S>>};
}

}  // namespace detail

/// Every registered codec, in the order `qcodec list` prints them.
[[nodiscard]] inline std::span<const codec_entry> codec_registry() {
  using namespace detail;
  static const codec_entry entries[] = {
      float_storage_entry<float_storage::f32>("fp32", "IEEE binary32 (the identity)"),
      float_storage_entry<float_storage::f16>("fp16", "IEEE binary16, round to nearest even"),
      float_storage_entry<float_storage::bf16>("bf16", "bfloat16, round to nearest even"),
      block_format_entry<ggml::q8_0>("ggml Q8_0: 32 int8 codes, fp16 scale"),
      block_format_entry<ggml::q5_1>("ggml Q5_1: 32 5-bit codes, fp16 scale and minimum"),
      block_format_entry<ggml::q5_0>("ggml Q5_0: 32 5-bit codes, fp16 scale"),
      block_format_entry<ggml::q4_1>("ggml Q4_1: 32 4-bit codes, fp16 scale and minimum"),
      block_format_entry<ggml::q4_0>("ggml Q4_0: 32 4-bit codes, fp16 scale"),
      block_format_entry<ggml::iq4_nl>("ggml IQ4_NL: 32 codes into a 16-level non-linear table"),
      block_format_entry<ggml::mxfp4>("MXFP4 (ggml layout): 32 E2M1 values, E8M0 scale"),
      block_format_entry<ggml::q6_K>("ggml Q6_K: 256-value super-blocks, 6-bit codes"),
      block_format_entry<ggml::q5_K>("ggml Q5_K: 256-value super-blocks, 5-bit codes"),
      block_format_entry<ggml::q4_K>("ggml Q4_K: 256-value super-blocks, 4-bit codes"),
      block_format_entry<ggml::q3_K>("ggml Q3_K: 256-value super-blocks, 3-bit codes"),
      block_format_entry<ggml::q2_K>("ggml Q2_K: 256-value super-blocks, 2-bit codes"),
      block_format_entry<ggml::iq4_xs>("ggml IQ4_XS: 256-value super-blocks, IQ4_NL table"),
      block_format_entry<mx_row_format<fp8_e4m3>>("OCP MXFP8 E4M3: 32 values, E8M0 scale"),
      block_format_entry<mx_row_format<fp8_e5m2>>("OCP MXFP8 E5M2: 32 values, E8M0 scale"),
      block_format_entry<mx_row_format<fp4_e2m1>>(
          "OCP MXFP4 (element-order layout): 32 E2M1 values, E8M0 scale"),
      {"nvfp4", 4.5, "NVFP4: 16 E2M1 values, E4M3 scale; fp32 scale per row (+32/cols bits)",
       &make_plain_codec<nvfp4_codec>},
      {"nf4", grouped_entry<code_table<4>, 64>::bits_per_value,
       "NF4 (QLoRA): 16-level normal-float table, fp32 absmax per group=G (64)", &make_nf4_codec},
      {"dynamic8", grouped_entry<code_table<8>, 256>::bits_per_value,
       "bitsandbytes 8-bit dynamic map, fp32 absmax per group=G (256)", &make_dynamic8_codec},
      {"uniform", uniform_default_bits + 32.0 / uniform_default_group,
       "uniform codes, options bits=1..8 (4), mode=sym|nozero|asym (sym), group=G (64)",
       &make_uniform_codec},
      {"ternary", grouped_entry<ternary, 64>::bits_per_value,
       "BitNet b1.58 ternary (absmean), 5 trits per byte, fp32 scale per group=G (64)",
       &grouped_entry<ternary, 64>::make_default},
      {"binary", grouped_entry<binary, 64>::bits_per_value,
       "sign and fp32 mean-magnitude scale per group=G (64)",
       &grouped_entry<binary, 64>::make_default},
      {"fp4_e2m1", grouped_entry<float_quantizer<fp4_e2m1>, 32>::bits_per_value,
       "FP4 E2M1 codes, fp32 scale per group=G (32)",
       &grouped_entry<float_quantizer<fp4_e2m1>, 32>::make_default},
      {"fp8_e4m3", grouped_entry<float_quantizer<fp8_e4m3>, 128>::bits_per_value,
       "FP8 E4M3 (fn) codes, fp32 scale per group=G (128)",
       &grouped_entry<float_quantizer<fp8_e4m3>, 128>::make_default},
      {"fp8_e5m2", grouped_entry<float_quantizer<fp8_e5m2>, 128>::bits_per_value,
       "FP8 E5M2 codes, fp32 scale per group=G (128)",
       &grouped_entry<float_quantizer<fp8_e5m2>, 128>::make_default},
      {"bfp", 8.25, "block floating point, options bits=4|6|8 (8), block=16|32|64 (32)",
       &make_bfp_codec},
      named_block_entry<blockwise_format<4, 32, scale_format::e8m0>>(
          "block4_e8m0", "4-bit symmetric codes, E8M0 (power of two) scale per 32"),
      named_block_entry<blockwise_format<8, 32, scale_format::e8m0>>(
          "block8_e8m0", "8-bit symmetric codes, E8M0 (power of two) scale per 32"),
      named_block_entry<superblock_format<4, 32, 256, 6>>(
          "sb4", "4-bit codes, 6-bit sub-block scales/mins per 32, fp16 per 256 (Q4_K budget)"),
      named_block_entry<superblock_format<2, 16, 256, 4>>(
          "sb2", "2-bit codes, 4-bit sub-block scales/mins per 16, fp16 per 256 (Q2_K budget)"),
  };
  return entries;
}

/// The registered codec called `name`, or nullptr.
[[nodiscard]] inline const codec_entry* find_codec(std::string_view name) noexcept {
  for (const codec_entry& e : codec_registry()) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

/// The codec a spec string names ("q4_K", "nf4:group=64"), or why there is none.
[[nodiscard]] inline result<std::unique_ptr<any_codec>> make_codec(std::string_view text) {
  result<codec_spec> spec = codec_spec::parse(text);
  if (!spec) return spec.error();
  const codec_entry* entry = find_codec(spec->name());
  if (entry == nullptr) {
    return status::failure(codec_errors::unknown_codec,
                           spec->name() + " (`qcodec list` shows the registered codecs)");
  }
  return entry->make(*spec);
}

}  // namespace qcodec
