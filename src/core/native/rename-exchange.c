/*
 * renameat2(2) with RENAME_EXCHANGE, which Node does not offer: two names swap their nodes in one atomic step.
 * A commit puts its new metadata entry in place this way and keeps the entry it replaced as the inode of a
 * later commit's entry (src/vault/spare-entries.ts): on this kind of host no inode is freed and none allocated
 * per commit (native-notes/small-files.md, fifth-and-a-half session).
 *
 *   exchange(a, b) -> 0 or a negative errno
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "rename-exchange.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* A string argument as a malloc'ed C string, NULL with a TypeError thrown. */
static char *string_of(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "exchange(a, b): paths are strings");
    return NULL;
  }
  char *s = malloc(length + 1);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, s, length + 1, &length);
  return s;
}

static napi_value exchange_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "exchange(a, b)");
    return NULL;
  }
  char *a = string_of(env, argv[0]);
  if (!a) return NULL;
  char *b = string_of(env, argv[1]);
  if (!b) {
    free(a);
    return NULL;
  }
  /* The libc wrapper (glibc 2.28+), not syscall(): the power-loss test's recorder wraps libc calls. */
  int rc = renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
  int saved = errno;
  free(a);
  free(b);
  napi_create_int32(env, rc == 0 ? 0 : -saved, &out);
  return out;
}

bool register_rename_exchange(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "exchange", NAPI_AUTO_LENGTH, exchange_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "exchange", fn) == napi_ok;
}
