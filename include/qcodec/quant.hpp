#pragma once
// Quantizer policies: the Quantizer concept and every policy family.
#include <qcodec/quant/block/ggml.hpp>
#include <qcodec/quant/concepts.hpp>
