#pragma once
// SIMD kernel layer: targets, kernels (each with its qcodec::ref scalar oracle) and dispatch.
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/kernel_table.hpp>
#include <qcodec/simd/reductions.hpp>
