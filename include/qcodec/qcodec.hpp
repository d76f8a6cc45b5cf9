#pragma once
// Everything in qcodec (Eigen interop excepted: include <qcodec/interop/eigen.hpp> for it).
#include <qcodec/config.hpp>
#include <qcodec/core.hpp>
#include <qcodec/simd.hpp>
