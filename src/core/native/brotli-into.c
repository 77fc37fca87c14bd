/*
 * brotliDecodeInto(input, output) -> bytes written, or -1 when the stream is invalid or does not fit.
 * node:zlib decodes into buffers of its own (16 KiB at a time, then joined); the mount's read path wants the
 * plaintext where its chunk slot is (lib/slab.ts), with no allocation per chunk. The decoder is the one Node
 * itself carries (its binary exports the brotli API; a distribution's Node may take it from libbrotlidec), found
 * with dlsym at load: where it is missing the function is simply not exported and callers use node:zlib.
 *
 * brotliEncodeInto(input, output, quality) -> bytes written, or -1: the one-shot encoder with node:zlib's
 * defaults (window 22, generic mode, the input's length as size hint), which writes the same stream as
 * brotliCompressSync with those parameters (test/native.test.ts checks it) without the stream object, its
 * buffers and the join that node:zlib makes per call: most of the cost of compressing a small file's chunk.
 * `output` must hold BrotliEncoderMaxCompressedSize(input) bytes (compression.ts: maxBrotliSize).
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
/* BrotliEncoderCompress (brotli/encode.h): mode 0 is BROTLI_MODE_GENERIC; returns BROTLI_TRUE on success. */
typedef int compress_fn(int quality, int lgwin, int mode, size_t input_size, const uint8_t *input, size_t *encoded_size, uint8_t *encoded);
static compress_fn *compress;
#define NODE_DEFAULT_LGWIN 22

/* The two Uint8Array arguments of both functions: 0 when they are not both Uint8Arrays. */
static bool two_arrays(napi_env env, napi_value *argv, void **in, size_t *in_len, void **out, size_t *out_len) {
  bool typed[2] = {false, false};
  napi_typedarray_type type[2];
  napi_value ab;
  size_t offset;
  return napi_is_typedarray(env, argv[0], &typed[0]) == napi_ok && napi_is_typedarray(env, argv[1], &typed[1]) == napi_ok && typed[0] && typed[1] &&
         napi_get_typedarray_info(env, argv[0], &type[0], in_len, in, &ab, &offset) == napi_ok &&
         napi_get_typedarray_info(env, argv[1], &type[1], out_len, out, &ab, &offset) == napi_ok && type[0] == napi_uint8_array && type[1] == napi_uint8_array;
}

static napi_value brotli_decode_into_js(napi_env env, napi_callback_info info) {
  size_t argc = 2, in_len, out_len;
  napi_value argv[2], result;
  void *in, *out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !two_arrays(env, argv, &in, &in_len, &out, &out_len)) {
    napi_throw_type_error(env, NULL, "brotliDecodeInto(input: Uint8Array, output: Uint8Array)");
    return NULL;
  }
  size_t written = out_len;
  int ok = in_len > 0 && out_len > 0 && decompress(in_len, in, &written, out) == 1;
  napi_create_double(env, ok ? (double)written : -1, &result);
  return result;
}

static napi_value brotli_encode_into_js(napi_env env, napi_callback_info info) {
  size_t argc = 3, in_len, out_len;
  napi_value argv[3], result;
  void *in, *out;
  int32_t quality;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !two_arrays(env, argv, &in, &in_len, &out, &out_len) ||
      napi_get_value_int32(env, argv[2], &quality) != napi_ok || quality < 0 || quality > 11) {
    napi_throw_type_error(env, NULL, "brotliEncodeInto(input: Uint8Array, output: Uint8Array, quality: 0-11)");
    return NULL;
  }
  size_t written = out_len;
  int ok = out_len > 0 && compress(quality, NODE_DEFAULT_LGWIN, 0, in_len, in, &written, out);
  napi_create_double(env, ok ? (double)written : -1, &result);
  return result;
}

static bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok && napi_set_named_property(env, exports, name, fn) == napi_ok;
}

bool register_brotli_into(napi_env env, napi_value exports) {
  decompress = (decompress_fn *)dlsym(RTLD_DEFAULT, "BrotliDecoderDecompress");
  compress = (compress_fn *)dlsym(RTLD_DEFAULT, "BrotliEncoderCompress");
  if (decompress && !export_fn(env, exports, "brotliDecodeInto", brotli_decode_into_js)) return false;
  return !compress || export_fn(env, exports, "brotliEncodeInto", brotli_encode_into_js);
}
