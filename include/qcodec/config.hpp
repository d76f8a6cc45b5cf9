#pragma once
// Library version and build-configuration macros.

#define QCODEC_VERSION_MAJOR 0
#define QCODEC_VERSION_MINOR 1
#define QCODEC_VERSION_PATCH 0
#define QCODEC_VERSION_STRING "0.1.0"

// 1 when the translation unit is compiled with exception support (qcodec itself never throws;
// this only decides whether optional throwing conveniences are declared).
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define QCODEC_HAS_EXCEPTIONS 1
#else
#define QCODEC_HAS_EXCEPTIONS 0
#endif
