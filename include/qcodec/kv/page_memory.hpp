#pragma once
// The memory of a KV cache's pages. A decode step reads a few KB per head from every page of a
// sequence, and with 4 KB pages those reads are TLB-bound: fp32 decode attention took 1.75x as
// long as on 2 MB pages (docs/measurements.md). So a pool that can grow past 2 MB takes its pages
// in slabs of whole pages, each slab 2 MB-aligned and, on Linux, marked MADV_HUGEPAGE, which
// transparent huge pages honour in their `always` and `madvise` modes. Smaller pools, and builds
// with AddressSanitizer (which then still sees each page's bounds), get one allocation per page.

#include <qcodec/core/sanitizers.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifndef QCODEC_KV_PAGE_SLABS
#define QCODEC_KV_PAGE_SLABS (!QCODEC_HAS_ASAN)
#endif

namespace qcodec::kv::detail {

class page_memory {
 public:
  static constexpr std::size_t huge_page = std::size_t{2} << 20;

  /// Pages of page_bytes (> 0), at most max_pages of them.
  page_memory(std::size_t page_bytes, std::size_t max_pages) noexcept
      : page_bytes_(page_bytes), pages_left_(max_pages) {
    if (!QCODEC_KV_PAGE_SLABS || page_bytes == 0) return;
    const std::size_t to_fill_2mb = (huge_page + page_bytes - 1) / page_bytes;
    if (max_pages >= to_fill_2mb) {
      slab_pages_ = to_fill_2mb;  // >= 2 MB a slab
      align_ = huge_page;
    }
  }

  /// A new page, zeroed, or null when the pool is at max_pages or the system refuses.
  [[nodiscard]] std::uint8_t* allocate() noexcept {
    if (used_ == capacity_) {  // the last slab is full: the next one
      if (pages_left_ == 0) return nullptr;
      const std::size_t pages = slab_pages_ < pages_left_ ? slab_pages_ : pages_left_;
      const std::size_t slab_bytes = pages * page_bytes_;
      void* p = ::operator new (slab_bytes, std::align_val_t{align_}, std::nothrow);
      if (p == nullptr) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      // Only the whole 2 MB blocks; a refusal (no THP in this kernel) leaves 4 KB pages.
      if (align_ == huge_page) (void)madvise(p, slab_bytes / huge_page * huge_page, MADV_HUGEPAGE);
#endif
      slabs_.emplace_back(static_cast<std::uint8_t*>(p), slab_deleter{align_});
      bytes_ += slab_bytes;
      pages_left_ -= pages;
      capacity_ = pages;
      used_ = 0;
    }
    std::uint8_t* page = slabs_.back().get() + used_++ * page_bytes_;
    std::memset(page, 0, page_bytes_);
    return page;
  }

  /// Bytes held from the system: every slab, pages not handed out yet included.
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  /// Pages a slab holds (1: one allocation per page).
  [[nodiscard]] std::size_t slab_pages() const noexcept { return slab_pages_; }

 private:
  struct slab_deleter {
    std::size_t align;
    void operator()(std::uint8_t* p) const noexcept {
      ::operator delete (p, std::align_val_t{align});
    }
  };

  std::size_t page_bytes_, pages_left_;
  std::size_t slab_pages_ = 1, align_ = 64;
  std::vector<std::unique_ptr<std::uint8_t[], slab_deleter>> slabs_;
  std::size_t capacity_ = 0, used_ = 0;  // pages of the last slab, and handed out from it
  std::size_t bytes_ = 0;
};

}  // namespace qcodec::kv::detail
