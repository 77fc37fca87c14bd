/*
 * renameat2(2), which Node does not offer, with the two flags the vault uses:
 *   exchange(a, b)   RENAME_EXCHANGE: two names swap their nodes in one atomic step. A commit puts its new
 *                    metadata entry in place this way and keeps the entry it replaced as the inode of a later
 *                    commit's entry (src/vault/spare-entries.ts).
 *   noReplace(a, b)  RENAME_NOREPLACE: `a` moves to `b` unless `b` exists (EEXIST, as O_CREAT|O_EXCL). A create
 *                    puts a fresh inode made ahead of need in place this way (src/vault/fresh-entries.ts).
 * On this kind of host either keeps an inode allocation off the path it is on (native-notes/small-files.md).
 * Both return 0 or a negative errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "napi-string.h"
#include "rename-exchange.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* renameat2(a, b, flags) of the two string arguments; the flags are the function's data. */
static napi_value rename2_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "renameat2(a, b)");
    return NULL;
  }
  char *a = string_arg(env, argv[0], "renameat2(a, b): paths are strings");
  if (!a) return NULL;
  char *b = string_arg(env, argv[1], "renameat2(a, b): paths are strings");
  if (!b) {
    free(a);
    return NULL;
  }
  /* The libc wrapper (glibc 2.28+), not syscall(): the power-loss test's recorder wraps libc calls. */
  int rc = renameat2(AT_FDCWD, a, AT_FDCWD, b, (unsigned int)(size_t)data);
  int saved = errno;
  free(a);
  free(b);
  napi_create_int32(env, rc == 0 ? 0 : -saved, &out);
  return out;
}

static bool export_rename2(napi_env env, napi_value exports, const char *name, unsigned int flags) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, rename2_js, (void *)(size_t)flags, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

bool register_rename_exchange(napi_env env, napi_value exports) {
  return export_rename2(env, exports, "exchange", RENAME_EXCHANGE) && export_rename2(env, exports, "noReplace", RENAME_NOREPLACE);
}
