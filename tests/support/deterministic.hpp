#pragma once
// Whether an encoder's bytes depend on memory it never wrote: encoded into a buffer of 0x00
// after a stack of 0x00, and into one of 0xFF after a stack of 0xFF, they must be equal. An
// encoder that read uninitialised locals, or left output bytes unwritten, would differ.
#include <cstddef>
#include <cstring>
#include <vector>

#include "catch.hpp"

/// Fills a large stack array with v, where the next call's locals will lie.
[[gnu::noinline]] inline void dirty_stack(unsigned char v) {
  volatile unsigned char junk[1 << 16];
  for (auto& b : junk) b = v;
}

/// encode(Block* out) run twice as above; REQUIREs equal bytes and returns them.
template <class Block, class Encode>
std::vector<Block> deterministic_bytes(std::size_t blocks, Encode encode) {
  std::vector<Block> a(blocks), b(blocks);
  std::memset(static_cast<void*>(a.data()), 0x00, blocks * sizeof(Block));
  std::memset(static_cast<void*>(b.data()), 0xFF, blocks * sizeof(Block));
  dirty_stack(0x00);
  encode(a.data());
  dirty_stack(0xFF);
  encode(b.data());
  REQUIRE(std::memcmp(a.data(), b.data(), blocks * sizeof(Block)) == 0);
  return a;
}
