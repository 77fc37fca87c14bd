/*
 * brotliDecodeInto(input, output) -> bytes written, or -1 when the stream is invalid or does not fit.
 * node:zlib decodes into buffers of its own (16 KiB at a time, then joined); the mount's read path wants the
 * plaintext where its chunk slot is (lib/slab.ts), with no allocation per chunk. The decoder is the one Node
 * itself carries (its binary exports the brotli API; a distribution's Node may take it from libbrotlidec), found
 * with dlsym at load: where it is missing the function is simply not exported and callers use node:zlib.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#include "brotli-into.h"

/* BrotliDecoderDecompress (brotli/decode.h): 1 is BROTLI_DECODER_RESULT_SUCCESS. */
typedef int decompress_fn(size_t encoded_size, const uint8_t *encoded, size_t *decoded_size, uint8_t *decoded);
static decompress_fn *decompress;

static napi_value brotli_decode_into_js(napi_env env, napi_callback_info info) {
  size_t argc = 2, in_len, out_len;
  napi_value argv[2], result;
  void *in, *out;
  bool typed[2] = {false, false};
  napi_typedarray_type type[2];
  napi_value ab;
  size_t offset;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_is_typedarray(env, argv[0], &typed[0]) != napi_ok ||
      napi_is_typedarray(env, argv[1], &typed[1]) != napi_ok || !typed[0] || !typed[1] ||
      napi_get_typedarray_info(env, argv[0], &type[0], &in_len, &in, &ab, &offset) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type[1], &out_len, &out, &ab, &offset) != napi_ok || type[0] != napi_uint8_array ||
      type[1] != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "brotliDecodeInto(input: Uint8Array, output: Uint8Array)");
    return NULL;
  }
  size_t written = out_len;
  int ok = in_len > 0 && out_len > 0 && decompress(in_len, in, &written, out) == 1;
  napi_create_double(env, ok ? (double)written : -1, &result);
  return result;
}

bool register_brotli_into(napi_env env, napi_value exports) {
  decompress = (decompress_fn *)dlsym(RTLD_DEFAULT, "BrotliDecoderDecompress");
  if (!decompress) return true;
  napi_value fn;
  if (napi_create_function(env, "brotliDecodeInto", NAPI_AUTO_LENGTH, brotli_decode_into_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "brotliDecodeInto", fn) == napi_ok;
}
