/* One-shot brotli decoding and encoding into the caller's buffer (brotli-into.c): adds brotliDecodeInto and brotliEncodeInto to the exports. */
#ifndef SEFS_BROTLI_INTO_H
#define SEFS_BROTLI_INTO_H
#include <node_api.h>
#include <stdbool.h>

bool register_brotli_into(napi_env env, napi_value exports);

#endif
