#pragma once
// QCODEC_HAS_ASAN: 1 when this translation unit is built with AddressSanitizer (GCC defines
// __SANITIZE_ADDRESS__, Clang answers __has_feature), else 0. Code that pools memory gives ASan
// each allocation's bounds under it; tests skip what ASan reports instead of failing.

#if defined(__SANITIZE_ADDRESS__)
#define QCODEC_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QCODEC_HAS_ASAN 1
#endif
#endif
#ifndef QCODEC_HAS_ASAN
#define QCODEC_HAS_ASAN 0
#endif
