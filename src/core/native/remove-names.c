/*
 * removeNames(dirFd, names) -> Promise<number[]>: unlinkat(dirFd, name, 0) of each name (files only), all in one
 * job of libuv's thread pool; 0 or a negative errno for each. The entries an unlink took out of meta/ wait in
 * tmp/ and are freed in batches (src/vault/removed-entries.ts); one async fs.unlink per file cost the JS thread
 * a queueing and a completion wake-up each, thousands of them under an rm -r (native-notes/small-files.md,
 * twentieth session).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "napi-string.h"
#include "remove-names.h"
#include "napi-settle.h"

#define MAX_NAMES 4096

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int dir_fd;
  uint32_t count;
  char **names;
  int *results;
} batch_t;

static void free_batch(batch_t *b) {
  for (uint32_t i = 0; i < b->count; i++) free(b->names[i]);
  free(b->names);
  free(b->results);
  free(b);
}

static void remove_all(napi_env env, void *data) {
  (void)env;
  batch_t *b = data;
  /* The libc wrapper: the power-loss test's recorder wraps libc calls. */
  for (uint32_t i = 0; i < b->count; i++) b->results[i] = unlinkat(b->dir_fd, b->names[i], 0) == 0 ? 0 : -errno;
}

static void removed_all(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  settle_int_list(env, b->deferred, status, b->results, b->count, "removeNames: the job did not run");
  napi_delete_async_work(env, b->work);
  free_batch(b);
}

#define USAGE "removeNames(dirFd, names): 1 to 4096 names, none with a slash"

static napi_value remove_names_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  int32_t dir_fd;
  bool is_array = false;
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &dir_fd) != napi_ok ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 ||
      count > MAX_NAMES) {
    napi_throw_type_error(env, NULL, USAGE);
    return NULL;
  }
  batch_t *b = calloc(1, sizeof *b);
  if (b) {
    b->names = calloc(count, sizeof *b->names);
    b->results = calloc(count, sizeof *b->results);
  }
  if (!b || !b->names || !b->results) {
    if (b) free_batch(b);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  b->dir_fd = dir_fd;
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || !(b->names[i] = string_arg(env, v, USAGE))) {
      free_batch(b);
      return NULL;
    }
    b->count = i + 1;
    /* A name in that directory, nothing else: no path through it, never "." or "..". */
    if (!b->names[i][0] || strchr(b->names[i], '/') || !strcmp(b->names[i], ".") || !strcmp(b->names[i], "..")) {
      free_batch(b);
      napi_throw_type_error(env, NULL, USAGE);
      return NULL;
    }
  }
  napi_create_string_utf8(env, "sefs removeNames", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, name, remove_all, removed_all, b, &b->work) != napi_ok || napi_queue_async_work(env, b->work) != napi_ok) {
    free_batch(b);
    napi_throw_error(env, NULL, "removeNames: cannot queue the job");
    return NULL;
  }
  return promise;
}

bool register_remove_names(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "removeNames", NAPI_AUTO_LENGTH, remove_names_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "removeNames", fn) == napi_ok;
}
