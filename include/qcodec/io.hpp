#pragma once
// Input and output: .npy arrays.
#include <qcodec/io/npy.hpp>
