#pragma once
// SIMD kernel layer: targets, kernels (each with its qcodec::ref scalar oracle) and dispatch.
// kernel_table.hpp includes every kernel module (reductions, bit packing, conversions, affine
// codes, lookup tables, Hadamard, ggml blocks).
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/kernel_table.hpp>
