#pragma once
// Codecs chosen at run time: spec strings, the type-erased any_codec, and the registry.
#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/block_format_codec.hpp>
#include <qcodec/codec/float_storage_codec.hpp>
#include <qcodec/codec/grouped_codec.hpp>
#include <qcodec/codec/registry.hpp>
#include <qcodec/codec/spec.hpp>
