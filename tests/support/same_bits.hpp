#pragma once
// Bitwise equality of two vectors (NaN payloads and signed zeros included): what "bit-exact"
// means in the kernel tests. memcmp must not see the null data() of an empty vector.
#include <cstring>
#include <vector>

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
