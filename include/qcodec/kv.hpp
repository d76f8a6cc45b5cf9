#pragma once
// The compressed KV cache: stream codecs for keys and values, the paged cache, fused attention
// on the compressed data, and the reference attention.
#include <qcodec/kv/any_cache.hpp>
#include <qcodec/kv/attention.hpp>
#include <qcodec/kv/cache.hpp>
#include <qcodec/kv/channel_codebook.hpp>
#include <qcodec/kv/coupled_codebook.hpp>
#include <qcodec/kv/fp_stream.hpp>
#include <qcodec/kv/gear.hpp>
#include <qcodec/kv/mixed_cache.hpp>
#include <qcodec/kv/outliers.hpp>
#include <qcodec/kv/per_channel.hpp>
#include <qcodec/kv/per_token.hpp>
#include <qcodec/kv/reference.hpp>
#include <qcodec/kv/rope.hpp>
#include <qcodec/kv/rotated.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/kv/token_blocks.hpp>
#include <qcodec/kv/token_quads.hpp>
#include <qcodec/kv/token_rows.hpp>
#include <qcodec/kv/turbo.hpp>
#include <qcodec/kv/turbo_qjl.hpp>
