// The KV scheme table (kv::kv_schemes(): a cache type per scheme), compiled once for qcodec's
// tests, tools and examples that choose a scheme by name, instead of once in each of them.
#define QCODEC_KV_SCHEMES_IMPLEMENTATION
#include <qcodec/kv/any_cache.hpp>
