#pragma once
// Core vocabulary: errors, views, storage types, random numbers.
#include <qcodec/config.hpp>
#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
