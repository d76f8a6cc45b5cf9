// Every registered format that is not a ggml type (those are in bench_ggml.cpp), table-driven:
// BM_quantize_row/<spec>/<n> and BM_dequantize_row/<spec>/<n> over n values of N(0, 1) data
// (n = 4096, 65536: 16 KiB and 256 KiB of floats; SetBytesProcessed counts the 4n float bytes,
// compare with BM_memcpy/16384 and /262144), counters bits_per_value (every stored bit) and
// rel_mse = sum (y - x)^2 / sum x^2. <spec> is the codec registry's name (qcodec list).
//
// Formats with a row interface run their kernels directly (block_rows, no virtual call): the
// OCP MX formats, NVFP4, bfp, blockwise with E8M0 scales, super-blocks. Every other registered
// codec (grouped scalar policies: uniform, nf4, dynamic8, fp8 / fp4 with an fp32 scale per
// group, ternary, binary; fp16 / bf16 storage) runs through any_codec exactly as `qcodec`
// does: fit, encode, bit-pack per group. Extra rows, not registry names:
//   mx_fp4_spec      MXFP4 (OCP layout) with the spec's scale rule instead of best-of-two
//   nvfp4_nvidia     NVFP4 with NVIDIA's block-scale recipe instead of the search
//   uniform_mse:...  the uniform spec with search_scale's MSE fit (scale_search.hpp)
#include <qcodec/codec/registry.hpp>
#include <qcodec/quant/uniform/scale_search.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace qcodec;
using qcodec_bench::block_rows;
using qcodec_bench::register_row_format;

// A run-time codec (codec/any_codec.hpp) as a row format: one row of n values.
struct codec_rows {
  using unit = std::uint8_t;
  std::shared_ptr<const any_codec> codec;
  std::size_t units(std::size_t n) const { return codec->encoded_bytes(1, n); }
  double bits_per_value(std::size_t n) const { return codec->bits_per_value(1, n); }
  void quantize(const float* x, std::size_t n, unit* out) const {
    codec->encode(matrix_view<const float>(x, 1, n), std::span<std::uint8_t>(out, units(n)));
  }
  void dequantize(const unit* in, std::size_t n, float* y) const {
    const status s = codec->decode(std::span<const std::uint8_t>(in, units(n)),
                                   matrix_view<float>(y, 1, n));
    if (!s) std::abort();  // the benchmark's own encoding always decodes
  }
};

codec_rows from_registry(const std::string& spec) {
  result<std::unique_ptr<any_codec>> c = make_codec(spec);
  if (!c) {
    std::fprintf(stderr, "bench_formats: %s is not a codec spec\n", spec.c_str());
    std::abort();
  }
  return {std::shared_ptr<const any_codec>(std::move(*c))};
}

// MX with the spec's scale rule.
template <class Elem>
struct mx_spec_rows : block_rows<mx_row_format<Elem>> {
  void quantize(const float* x, std::size_t n, mx_block<Elem>* out) const {
    quantize_row_mx<Elem>(x, out, n, mx_scale_rule::spec);
  }
};

// NVFP4 as the registry stores it (fp32 global scale per row, then the blocks), without the
// codec's copies, under either block-scale rule.
template <nvfp4_scale_rule Rule>
struct nvfp4_rows {
  struct unit {
    std::uint8_t b[sizeof(nvfp4_block)];
  };
  static_assert(sizeof(unit) == sizeof(nvfp4_block) && sizeof(float) < sizeof(unit));
  // Block 0 of the storage holds the global scale: n / 16 + 1 units (9 bytes: 5 of padding,
  // so bits_per_value counts the registry's 4 bytes, not this buffer's 9).
  std::size_t units(std::size_t n) const { return n / nvfp4_block_size + 1; }
  double bits_per_value(std::size_t n) const { return 4.5 + 32.0 / static_cast<double>(n); }
  void quantize(const float* x, std::size_t n, unit* out) const {
    const float g = nvfp4_global_scale(x, n);
    std::memcpy(out[0].b, &g, sizeof g);
    quantize_row_nvfp4(x, reinterpret_cast<nvfp4_block*>(out + 1), n, g, Rule);
  }
  void dequantize(const unit* in, std::size_t n, float* y) const {
    float g = 0.0f;
    std::memcpy(&g, in[0].b, sizeof g);
    dequantize_row_nvfp4(reinterpret_cast<const nvfp4_block*>(in + 1), y, n, g);
  }
};

[[maybe_unused]] const int registered = [] {
  std::set<std::string> done;
  const auto add = [&](const std::string& name, const auto& format) {
    register_row_format(name, format);
    done.insert(name);
  };
  namespace g = ggml;
  for (const char* name : {g::q4_0::name, g::q4_1::name, g::q5_0::name, g::q5_1::name,
                           g::q8_0::name, g::iq4_nl::name, g::mxfp4::name, g::q2_K::name,
                           g::q3_K::name, g::q4_K::name, g::q5_K::name, g::q6_K::name,
                           g::iq4_xs::name})
    done.insert(name);  // bench_ggml.cpp

  add("mx_fp4", block_rows<mx_row_format<fp4_e2m1>>{});
  add("mx_fp4_spec", mx_spec_rows<fp4_e2m1>{});
  add("mx_fp8_e4m3", block_rows<mx_row_format<fp8_e4m3>>{});
  add("mx_fp8_e5m2", block_rows<mx_row_format<fp8_e5m2>>{});
  add("nvfp4", nvfp4_rows<nvfp4_scale_rule::search>{});
  add("nvfp4_nvidia", nvfp4_rows<nvfp4_scale_rule::nvidia>{});
  add("bfp", block_rows<bfp_format<8, 32>>{});
  add("bfp:bits=6", block_rows<bfp_format<6, 32>>{});
  add("bfp:bits=4", block_rows<bfp_format<4, 32>>{});
  add("block4_e8m0", block_rows<blockwise_format<4, 32, scale_format::e8m0>>{});
  add("block8_e8m0", block_rows<blockwise_format<8, 32, scale_format::e8m0>>{});
  add("sb4", block_rows<superblock_format<4, 32, 256, 6>>{});
  add("sb2", block_rows<superblock_format<2, 16, 256, 4>>{});

  // The rest of the registry, then non-default specs of its families.
  for (const codec_entry& e : codec_registry())
    if (done.count(e.name) == 0) add(e.name, from_registry(e.name));
  for (const char* spec :
       {"uniform:bits=1,mode=nozero", "uniform:bits=2", "uniform:bits=2,mode=asym,group=128",
        "uniform:bits=3", "uniform:bits=4,mode=nozero", "uniform:bits=4,mode=asym,group=128",
        "uniform:bits=8", "uniform:bits=8,mode=asym,group=128", "nf4:group=32"})
    add(spec, from_registry(spec));

  add("uniform_mse:bits=4,mode=asym,group=128",
      codec_rows{std::make_shared<const grouped_codec<mse_fitted<uniform<4, asymmetric>>>>(
          mse_fitted<uniform<4, asymmetric>>{}, 128, "uniform_mse:bits=4,mode=asym,group=128")});
  add("uniform_mse:bits=2,mode=asym,group=128",
      codec_rows{std::make_shared<const grouped_codec<mse_fitted<uniform<2, asymmetric>>>>(
          mse_fitted<uniform<2, asymmetric>>{}, 128, "uniform_mse:bits=2,mode=asym,group=128")});
  return 0;
}();

}  // namespace
