#pragma once
// The codec registry: every codec that can be chosen by name at run time (tools, engine
// configuration). Adding a format adds one line to codec_registry().
//
//   result<std::unique_ptr<any_codec>> c = qcodec::make_codec("q4_K");
//
// Spec grammar and errors: codec/spec.hpp.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/block_format_codec.hpp>
#include <qcodec/codec/float_storage_codec.hpp>
#include <qcodec/codec/grouped_codec.hpp>
#include <qcodec/codec/spec.hpp>
#include <qcodec/quant/block/bfp.hpp>
#include <qcodec/quant/block/ggml.hpp>
#include <qcodec/quant/float/float_quantizer.hpp>
#include <qcodec/quant/nonuniform/code_table.hpp>
#include <qcodec/quant/nonuniform/tables.hpp>

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
      Q::symbol_bits + 8.0 * sizeof(typename Q::params_type) / DefaultGroup;

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
      {"nf4", grouped_entry<code_table<4>, 64>::bits_per_value,
       "NF4 (QLoRA): 16-level normal-float table, fp32 absmax per group=G (64)", &make_nf4_codec},
      {"fp8_e4m3", grouped_entry<float_quantizer<fp8_e4m3>, 128>::bits_per_value,
       "FP8 E4M3 (fn) codes, fp32 scale per group=G (128)",
       &grouped_entry<float_quantizer<fp8_e4m3>, 128>::make_default},
      {"fp8_e5m2", grouped_entry<float_quantizer<fp8_e5m2>, 128>::bits_per_value,
       "FP8 E5M2 codes, fp32 scale per group=G (128)",
       &grouped_entry<float_quantizer<fp8_e5m2>, 128>::make_default},
      {"bfp", 8.25, "block floating point, options bits=4|6|8 (8), block=16|32|64 (32)",
       &make_bfp_codec},
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
