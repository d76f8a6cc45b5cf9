#pragma once
// ggml-compatible block formats: the struct of each is the wire format of the GGUF tensor type
// of the same name. Per format: quantize_row_<fmt>_ref (ggml's encoder, byte-identical),
// quantize_row_<fmt> (qcodec's lower-error encoder), dequantize_row_<fmt> and
// vec_dot_<fmt>_<q8> (bit-exact with ggml's reference code), and a traits struct
// (qcodec::ggml::<fmt>) for the format registry. The K-quants (Q2_K ... Q6_K, IQ4_XS; 256-value
// super-blocks, k_common.hpp) are dotted with Q8_K; their quantize_row_<fmt>_ref follow ggml's
// reference encoders (byte-identical on ggml's known answers except Q2_K and Q5_K, see tests).

#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/iq4_nl.hpp>
#include <qcodec/quant/block/ggml/iq4_xs.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/mxfp4.hpp>
#include <qcodec/quant/block/ggml/q4_0.hpp>
#include <qcodec/quant/block/ggml/q4_1.hpp>
#include <qcodec/quant/block/ggml/q5_0.hpp>
#include <qcodec/quant/block/ggml/q5_1.hpp>
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/quant/block/ggml/q8_1.hpp>
#include <qcodec/quant/block/ggml/q2_k.hpp>
#include <qcodec/quant/block/ggml/q3_k.hpp>
#include <qcodec/quant/block/ggml/q4_k.hpp>
#include <qcodec/quant/block/ggml/q5_k.hpp>
#include <qcodec/quant/block/ggml/q6_k.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>
