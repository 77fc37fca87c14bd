/*
 * Node-API entry for the native hot loops of sefs. sha3Many(list of Uint8Array) -> Buffer of 32 bytes per
 * input, in order: four-way SHA3-256, inputs of similar length grouped so that the lanes of one group finish
 * together. xorPad(target, at, source, pad): the chunk format's pad XOR. Both pick the widest kernel the CPU
 * runs. Synchronous: callers are worker threads.
 */
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brotli-into.h"
#include "file-times.h"
#include "rename-exchange.h"
#include "top-dir.h"
#include "fresh-files.h"
#include "read-file.h"
#include "remove-names.h"
#include "write-direct.h"

typedef void kernel_fn(const uint8_t *const *msg, const size_t *len, size_t n, uint8_t *out);
typedef void xor_fn(uint8_t *target, const uint8_t *source, size_t n, const uint8_t *pad, size_t phase);
kernel_fn sha3x4_generic;
xor_fn sha3x4_generic_xor_pad;
/* SEFS_X86 (set by scripts/build-native.mjs on x86-64 only): the AVX2/AVX-512 kernels and AES-NI exist. */
#ifdef SEFS_X86
kernel_fn sha3x4_avx2, sha3x4_avx512;
xor_fn sha3x4_avx2_xor_pad, sha3x4_avx512_xor_pad;
void aes128_cbc_encrypt_many(uint8_t *const *buf, const size_t *len, const uint8_t *const *key, const uint8_t *const *iv, size_t n);
void aes128_cbc_decrypt(uint8_t *buf, size_t len, const uint8_t *key, const uint8_t *iv, const uint8_t *pad);
#endif

static kernel_fn *kernel;
static xor_fn *xor_pad;
#ifdef SEFS_X86
static bool has_aes;
#endif
static const char *kernel_name;
/* Every worker thread loads the addon; the choice is made once. */
static pthread_once_t picked = PTHREAD_ONCE_INIT;

/*
 * The widest kernel the CPU runs. SEFS_NATIVE_KERNEL=generic|avx2 asks for a narrower one (tests run every
 * build this CPU can, so a machine without AVX-512 is not the first to execute the AVX2 code).
 */
static void pick_kernel(void) {
  kernel = sha3x4_generic, xor_pad = sha3x4_generic_xor_pad, kernel_name = "generic";
#ifdef SEFS_X86
  const char *asked = getenv("SEFS_NATIVE_KERNEL");
  bool any = !asked || !*asked;
  __builtin_cpu_init();
  has_aes = __builtin_cpu_supports("aes");
  if ((any || !strcmp(asked, "avx512vl")) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
    kernel = sha3x4_avx512, xor_pad = sha3x4_avx512_xor_pad, kernel_name = "avx512vl";
  else if ((any || !strcmp(asked, "avx512vl") || !strcmp(asked, "avx2")) && __builtin_cpu_supports("avx2"))
    kernel = sha3x4_avx2, xor_pad = sha3x4_avx2_xor_pad, kernel_name = "avx2";
#endif
}

#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != napi_ok) {                                                          \
      napi_throw_error(env, NULL, "sha3Many: " #call " failed");                     \
      goto done;                                                                      \
    }                                                                                 \
  } while (0)

/*
 * A Uint8Array's bytes, or NULL with a TypeError thrown. An empty array may have no memory at all: it gets a
 * valid pointer to nothing, so that NULL always means an error.
 */
static uint8_t *bytes_of(napi_env env, napi_value value, size_t *length) {
  static uint8_t nothing[1];
  bool is_typed = false;
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return NULL;
  }
  return *length == 0 || !data ? nothing : data;
}

static napi_value sha3_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL;
  uint32_t n = 0;
  const uint8_t **msg = NULL;
  size_t *len = NULL, *order = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "sha3Many expects an array of Uint8Array");
    return NULL;
  }
  CHECK(napi_get_array_length(env, argv[0], &n));
  msg = calloc(n + 1, sizeof *msg);
  len = calloc(n + 1, sizeof *len);
  order = calloc(n + 1, sizeof *order);
  if (!msg || !len || !order) {
    napi_throw_error(env, NULL, "sha3Many: out of memory");
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    CHECK(napi_get_element(env, argv[0], i, &item));
    msg[i] = bytes_of(env, item, &len[i]);
    if (!msg[i]) goto done;
    order[i] = i;
  }
  /* Insertion sort by length (n is small): neighbours in `order` have similar lengths. */
  for (uint32_t i = 1; i < n; i++) {
    size_t k = order[i], j = i;
    while (j > 0 && len[order[j - 1]] > len[k]) order[j] = order[j - 1], j--;
    order[j] = k;
  }
  uint8_t *out;
  CHECK(napi_create_buffer(env, (size_t)n * 32, (void **)&out, &result));
  for (uint32_t g = 0; g < n; g += 4) {
    const uint8_t *m[4];
    size_t l[4];
    uint8_t digest[4 * 32];
    uint32_t k = n - g < 4 ? n - g : 4;
    for (uint32_t j = 0; j < k; j++) m[j] = msg[order[g + j]], l[j] = len[order[g + j]];
    kernel(m, l, k, digest);
    for (uint32_t j = 0; j < k; j++)
      for (int b = 0; b < 32; b++) out[order[g + j] * 32 + b] = digest[j * 32 + b];
  }
done:
  free(msg);
  free(len);
  free(order);
  return result;
}

/* xorPad(target, at, source, pad): target[at + i] = source[i] ^ pad[(at + i) % 64]. */
static napi_value xor_pad_js(napi_env env, napi_callback_info info) {
  size_t argc = 4, target_len, source_len, pad_len;
  napi_value argv[4];
  int64_t at;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "xorPad(target, at, source, pad)");
    return NULL;
  }
  uint8_t *target = bytes_of(env, argv[0], &target_len);
  if (!target) return NULL;
  const uint8_t *source = bytes_of(env, argv[2], &source_len);
  if (!source) return NULL;
  const uint8_t *pad = bytes_of(env, argv[3], &pad_len);
  if (!pad) return NULL;
  if (napi_get_value_int64(env, argv[1], &at) != napi_ok || at < 0 || pad_len != 64 || (uint64_t)at + source_len > target_len) {
    napi_throw_range_error(env, NULL, "xorPad: needs a 64-byte pad and the source inside the target");
    return NULL;
  }
  xor_pad(target + at, source, source_len, pad, (size_t)at % 64);
  return NULL;
}

/*
 * copyBytes(target, at, source): memcpy of source into target at `at`. V8 copies out of shared memory with
 * relaxed atomic loads, word by word, about a third of memcpy's speed; the mount copies every byte it serves out
 * of its shared chunk slab (lib/slab.ts), on its one event-loop thread.
 */
static napi_value copy_bytes_js(napi_env env, napi_callback_info info) {
  size_t argc = 3, target_len, source_len;
  napi_value argv[3];
  int64_t at;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "copyBytes(target, at, source)");
    return NULL;
  }
  uint8_t *target = bytes_of(env, argv[0], &target_len);
  if (!target) return NULL;
  const uint8_t *source = bytes_of(env, argv[2], &source_len);
  if (!source) return NULL;
  if (napi_get_value_int64(env, argv[1], &at) != napi_ok || at < 0 || (uint64_t)at + source_len > target_len) {
    napi_throw_range_error(env, NULL, "copyBytes: the source must fit in the target at `at`");
    return NULL;
  }
  memmove(target + at, source, source_len);
  return NULL;
}

/*
 * addressMod(bytes, align): where `bytes` starts in memory, modulo `align` (a power of two). The mount aligns its
 * slab's slots to the disk's O_DIRECT blocks with it, so chunk files are read straight into their slots.
 */
static napi_value address_mod_js(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], out;
  uint32_t align;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "addressMod(bytes, align)");
    return NULL;
  }
  uint8_t *bytes = bytes_of(env, argv[0], &len);
  if (!bytes) return NULL;
  if (napi_get_value_uint32(env, argv[1], &align) != napi_ok || align == 0 || (align & (align - 1)) != 0) {
    napi_throw_range_error(env, NULL, "addressMod: align must be a power of two");
    return NULL;
  }
  if (napi_create_uint32(env, (uint32_t)((uintptr_t)bytes & (align - 1)), &out) != napi_ok) return NULL;
  return out;
}

#ifdef SEFS_X86
/*
 * aesCbcEncryptMany(buffers, keys, ivs): AES-128-CBC encryption of each buffer in place (lengths multiples of
 * 16, padding already added), four streams at a time.
 */
static napi_value aes_cbc_encrypt_many_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t n = 0, nk = 0, ni = 0;
  uint8_t **buf = NULL;
  const uint8_t **key = NULL, **iv = NULL;
  size_t *len = NULL;
  bool arrays[3] = {false, false, false};
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_is_array(env, argv[0], &arrays[0]) != napi_ok ||
      napi_is_array(env, argv[1], &arrays[1]) != napi_ok || napi_is_array(env, argv[2], &arrays[2]) != napi_ok || !arrays[0] ||
      !arrays[1] || !arrays[2] || napi_get_array_length(env, argv[0], &n) != napi_ok ||
      napi_get_array_length(env, argv[1], &nk) != napi_ok || napi_get_array_length(env, argv[2], &ni) != napi_ok || nk != n || ni != n) {
    napi_throw_type_error(env, NULL, "aesCbcEncryptMany(buffers, keys, ivs): three arrays of Uint8Array of one length");
    return NULL;
  }
  buf = calloc(n + 1, sizeof *buf);
  key = calloc(n + 1, sizeof *key);
  iv = calloc(n + 1, sizeof *iv);
  len = calloc(n + 1, sizeof *len);
  if (!buf || !key || !iv || !len) {
    napi_throw_error(env, NULL, "aesCbcEncryptMany: out of memory");
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value b, k, v;
    size_t key_len, iv_len;
    if (napi_get_element(env, argv[0], i, &b) != napi_ok || napi_get_element(env, argv[1], i, &k) != napi_ok ||
        napi_get_element(env, argv[2], i, &v) != napi_ok) {
      napi_throw_error(env, NULL, "aesCbcEncryptMany: cannot read its arguments");
      goto done;
    }
    if (!(buf[i] = bytes_of(env, b, &len[i])) || !(key[i] = bytes_of(env, k, &key_len)) || !(iv[i] = bytes_of(env, v, &iv_len))) goto done;
    if (len[i] % 16 != 0 || key_len != 16 || iv_len != 16) {
      napi_throw_range_error(env, NULL, "aesCbcEncryptMany: buffers of whole blocks, 16-byte keys and IVs");
      goto done;
    }
  }
  aes128_cbc_encrypt_many(buf, len, key, iv, n);
done:
  free(buf);
  free(key);
  free(iv);
  free(len);
  return NULL;
}

/*
 * aesCbcDecrypt(buffer, key, iv[, pad]): AES-128-CBC decryption of a buffer of whole blocks in place (no padding
 * removed); with a 64-byte pad, the buffer is first unmasked with it (repeated from its start) in the same pass.
 */
static napi_value aes_cbc_decrypt_js(napi_env env, napi_callback_info info) {
  size_t argc = 4, len, key_len, iv_len, pad_len = 64;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "aesCbcDecrypt(buffer, key, iv[, pad])");
    return NULL;
  }
  uint8_t *buf = bytes_of(env, argv[0], &len);
  if (!buf) return NULL;
  const uint8_t *key = bytes_of(env, argv[1], &key_len);
  if (!key) return NULL;
  const uint8_t *iv = bytes_of(env, argv[2], &iv_len);
  if (!iv) return NULL;
  const uint8_t *pad = NULL;
  if (argc > 3 && !(pad = bytes_of(env, argv[3], &pad_len))) return NULL;
  if (len % 16 != 0 || key_len != 16 || iv_len != 16 || pad_len != 64) {
    napi_throw_range_error(env, NULL, "aesCbcDecrypt: a buffer of whole blocks, a 16-byte key and IV, a 64-byte pad");
    return NULL;
  }
  aes128_cbc_decrypt(buf, len, key, iv, pad);
  return NULL;
}
#endif

NAPI_MODULE_INIT() {
  napi_value fn, name;
  pthread_once(&picked, pick_kernel);
  if (napi_create_function(env, "sha3Many", NAPI_AUTO_LENGTH, sha3_many, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sha3Many", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "xorPad", NAPI_AUTO_LENGTH, xor_pad_js, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "xorPad", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "copyBytes", NAPI_AUTO_LENGTH, copy_bytes_js, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "copyBytes", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "addressMod", NAPI_AUTO_LENGTH, address_mod_js, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "addressMod", fn) != napi_ok) return NULL;
#ifdef SEFS_X86
  if (has_aes) {
    if (napi_create_function(env, "aesCbcEncryptMany", NAPI_AUTO_LENGTH, aes_cbc_encrypt_many_js, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, "aesCbcEncryptMany", fn) != napi_ok) return NULL;
    if (napi_create_function(env, "aesCbcDecrypt", NAPI_AUTO_LENGTH, aes_cbc_decrypt_js, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, "aesCbcDecrypt", fn) != napi_ok) return NULL;
  }
#endif
  if (napi_create_string_utf8(env, kernel_name, NAPI_AUTO_LENGTH, &name) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "kernel", name) != napi_ok) return NULL;
  if (!register_file_times(env, exports)) return NULL;
  if (!register_rename_exchange(env, exports)) return NULL;
  if (!register_brotli_into(env, exports)) return NULL;
  if (!register_top_dir(env, exports)) return NULL;
  if (!register_fresh_files(env, exports)) return NULL;
  if (!register_read_file(env, exports)) return NULL;
  if (!register_write_direct(env, exports)) return NULL;
  if (!register_remove_names(env, exports)) return NULL;
  return exports;
}
