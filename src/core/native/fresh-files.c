/*
 * makeFresh(dirFd, prefix, first, count) -> Promise<number[]>: `count` empty files `prefix<first>`,
 * `prefix<first+1>`, ... made in directory `dirFd` (an O_PATH descriptor will do) with
 * openat(O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600), all in one job of libuv's thread pool; each one's
 * descriptor, or a negative errno. The vault's fresh inodes (src/vault/fresh-entries.ts) are made this way: one
 * async fs.open per file cost the JS thread about 0.25 ms each on the loaded two-core machine (handing a job to
 * the pool wakes a thread, which takes the core: native-notes/small-files.md, seventh session); a batch wakes one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresh-files.h"
#include "napi-settle.h"

#define MAX_BATCH 256

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int dir_fd;
  char prefix[64];
  uint32_t first, count;
  int fds[MAX_BATCH];
} batch_t;

static void make_files(napi_env env, void *data) {
  (void)env;
  batch_t *b = data;
  char name[96];
  for (uint32_t i = 0; i < b->count; i++) {
    snprintf(name, sizeof name, "%s%u", b->prefix, b->first + i);
    /* The libc wrapper: the power-loss test's recorder wraps libc calls. */
    int fd = openat(b->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    b->fds[i] = fd >= 0 ? fd : -errno;
  }
}

static void made_files(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  settle_int_list(env, b->deferred, status, b->fds, b->count, "makeFresh: the job did not run");
  napi_delete_async_work(env, b->work);
  free(b);
}

static napi_value make_fresh_js(napi_env env, napi_callback_info info) {
  size_t argc = 4, length;
  napi_value argv[4], promise, name;
  int32_t dir_fd;
  uint32_t first, count;
  batch_t *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_get_value_int32(env, argv[0], &dir_fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], b->prefix, sizeof b->prefix, &length) != napi_ok || length >= sizeof b->prefix - 1 ||
      napi_get_value_uint32(env, argv[2], &first) != napi_ok || napi_get_value_uint32(env, argv[3], &count) != napi_ok || count == 0 || count > MAX_BATCH) {
    free(b);
    napi_throw_type_error(env, NULL, "makeFresh(dirFd, prefix, first, count): count 1 to 256, a short prefix");
    return NULL;
  }
  b->dir_fd = dir_fd;
  b->first = first;
  b->count = count;
  napi_create_string_utf8(env, "sefs makeFresh", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, name, make_files, made_files, b, &b->work) != napi_ok || napi_queue_async_work(env, b->work) != napi_ok) {
    free(b);
    napi_throw_error(env, NULL, "makeFresh: cannot queue the job");
    return NULL;
  }
  return promise;
}

bool register_fresh_files(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "makeFresh", NAPI_AUTO_LENGTH, make_fresh_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "makeFresh", fn) == napi_ok;
}
