/*
 * writeDirect(fd, bytes) -> number: write `bytes` as the whole content of the new, empty file `fd` with O_DIRECT,
 * past the page cache; synchronous (a worker thread's call). Returns bytes.length once written, 0 when it cannot
 * (a file system without O_DIRECT, or one that refuses this write: nothing is left written, the caller writes as
 * usual), or a negative errno (ENOSPC, EIO: the caller fails as for any write).
 *
 * Why: a chunk file is written once, fsynced at its commit and read back into the mount's slab past the page cache
 * too (read-file.c), so its pages in the page cache are never used; filling them cost the workers a third of their
 * CPU on the two-core VM, where fresh page-cache pages come with the host's page faults (native-notes/
 * benchmarking.md, tenth session). The disk takes whole aligned blocks from an aligned address: the bytes are
 * copied into a per-thread aligned buffer, the last block padded with zeros, and the file cut to its length.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "direct-io.h"
#include "write-direct.h"

/* Each thread's aligned copy of what it writes, kept for its next write (worker threads write chunk after chunk). */
static __thread uint8_t *bounce;
static __thread size_t bounce_size;

static int64_t write_direct(int fd, const uint8_t *bytes, size_t length) {
  size_t span = direct_span(length);
  if (span == 0) return 0;
  if (bounce_size < span) {
    void *grown = NULL;
    if (posix_memalign(&grown, DIRECT_ALIGN, span) != 0) return 0;
    free(bounce);
    bounce = grown;
    bounce_size = span;
  }
  memcpy(bounce, bytes, length);
  memset(bounce + length, 0, span - length);
  int flags = direct_begin(fd);
  if (flags < 0) return 0;
  size_t done = 0;
  int err = 0;
  while (done < span) {
    ssize_t n = pwrite(fd, bounce + done, span - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += (size_t)n;
  }
  direct_end(fd, flags);
  if (err == EINVAL && done == 0) return 0; /* refused as a direct write: the caller writes as usual */
  if (err == 0 && ftruncate(fd, (off_t)length) != 0) err = errno;
  return err ? -(int64_t)err : (int64_t)length;
}

#define USAGE "writeDirect(fd, bytes)"

static napi_value write_direct_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  bool is_typed = false;
  napi_typedarray_type kind;
  size_t length;
  void *bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &kind, &length, &bytes, NULL, NULL) != napi_ok || kind != napi_uint8_array) {
    napi_throw_type_error(env, NULL, USAGE ": a descriptor and a Uint8Array");
    return NULL;
  }
  napi_create_int64(env, write_direct(fd, bytes, length), &result);
  return result;
}

bool register_write_direct(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "writeDirect", NAPI_AUTO_LENGTH, write_direct_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "writeDirect", fn) == napi_ok;
}
