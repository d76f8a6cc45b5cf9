#include "ggml_api.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace ggml_peer {

void* cpu_backend::symbol(const char* name) const {
  return handle != nullptr ? ::dlsym(handle, name) : nullptr;
}

namespace {

constexpr const char* prefix = "libggml-cpu-";
constexpr const char* suffix = ".so";

bool is_variant_name(const std::string& f) {
  const std::string pre = prefix, suf = suffix;
  return f.size() > pre.size() + suf.size() && f.compare(0, pre.size(), pre) == 0 &&
         f.compare(f.size() - suf.size(), suf.size(), suf) == 0;
}

std::string variant_of(const std::filesystem::path& p) {
  const std::string f = p.filename().string();
  if (!is_variant_name(f)) return f;
  return f.substr(std::string(prefix).size(),
                  f.size() - std::string(prefix).size() - std::string(suffix).size());
}

// ggml_backend_score_t: 0 means the CPU lacks a feature the variant needs.
int score_of(void* handle) {
  using score_fn = int (*)();
  void* s = ::dlsym(handle, "ggml_backend_score");
  return s != nullptr ? reinterpret_cast<score_fn>(s)() : 0;
}

}  // namespace

cpu_backend load_cpu_backend(const std::string& dir, std::string& error) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  const char* forced = std::getenv("QCODEC_GGML_CPU");
  if (forced != nullptr && *forced != '\0') {
    const fs::path p(forced);
    candidates.push_back(p.has_parent_path() ? p
                                             : fs::path(dir) / (prefix + std::string(forced) + suffix));
  } else {
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      if (is_variant_name(e.path().filename().string())) candidates.push_back(e.path());
    }
    if (ec) {
      error = "cannot list " + dir + ": " + ec.message();
      return {};
    }
    std::sort(candidates.begin(), candidates.end());
  }

  cpu_backend best;
  std::string why;
  for (const fs::path& p : candidates) {
    void* h = ::dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      why += std::string("\n  ") + ::dlerror();
      continue;
    }
    const int score = score_of(h);
    // A forced variant is used even if it scores 0 (its kernels may then fault: the user's call).
    if (score > best.score || (forced != nullptr && best.handle == nullptr)) {
      if (best.handle != nullptr) ::dlclose(best.handle);
      best = cpu_backend{h, p.string(), variant_of(p), score};
    } else {
      ::dlclose(h);
    }
  }
  if (best.handle == nullptr) {
    error = "no usable libggml-cpu-*.so in " + dir + why;
    return {};
  }
  using init_fn = void (*)();
  void* init = best.symbol("ggml_cpu_init");
  if (init == nullptr) {
    error = best.path + " does not export ggml_cpu_init";
    ::dlclose(best.handle);
    return {};
  }
  reinterpret_cast<init_fn>(init)();  // fp16 tables and the base library's ggml_init
  return best;
}

}  // namespace ggml_peer
