#pragma once
// Everything in qcodec (Eigen interop excepted: include <qcodec/interop/eigen.hpp> for it).
#include <qcodec/codec.hpp>
#include <qcodec/config.hpp>
#include <qcodec/core.hpp>
#include <qcodec/io.hpp>
#include <qcodec/quant.hpp>
#include <qcodec/simd.hpp>
