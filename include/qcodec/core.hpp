#pragma once
// Core vocabulary: errors, views, storage types, granularity tags, random numbers.
#include <qcodec/config.hpp>
#include <qcodec/core/assert.hpp>
#include <qcodec/core/bfloat16.hpp>
#include <qcodec/core/granularity.hpp>
#include <qcodec/core/half.hpp>
#include <qcodec/core/matrix_view.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/core/strided_span.hpp>
#include <qcodec/core/tensor4_view.hpp>
