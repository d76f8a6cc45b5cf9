#pragma once
// ggml-compatible block formats: the struct of each is the wire format of the GGUF tensor type
// of the same name. Per format: quantize_row_<fmt>_ref (ggml's encoder, byte-identical),
// quantize_row_<fmt> (qcodec's lower-error encoder), dequantize_row_<fmt> and
// vec_dot_<fmt>_<q8> (bit-exact with ggml's reference code), and a traits struct
// (qcodec::ggml::<fmt>) for the format registry.

#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/iq4_nl.hpp>
#include <qcodec/quant/block/ggml/mxfp4.hpp>
#include <qcodec/quant/block/ggml/q4_0.hpp>
#include <qcodec/quant/block/ggml/q4_1.hpp>
#include <qcodec/quant/block/ggml/q5_0.hpp>
#include <qcodec/quant/block/ggml/q5_1.hpp>
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/quant/block/ggml/q8_1.hpp>
