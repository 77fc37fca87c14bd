/* Settling a batch job's promise with one int per item (fresh-files.c, remove-names.c). */
#ifndef SEFS_NAPI_SETTLE_H
#define SEFS_NAPI_SETTLE_H
#include <node_api.h>
#include <stdint.h>

/* Resolve with `values` as an array when the job ran (`status`), else reject with `failure`. */
static inline void settle_int_list(napi_env env, napi_deferred deferred, napi_status status, const int *values, uint32_t count, const char *failure) {
  napi_value list, n;
  if (status == napi_ok && napi_create_array_with_length(env, count, &list) == napi_ok) {
    for (uint32_t i = 0; i < count; i++) {
      napi_create_int32(env, values[i], &n);
      napi_set_element(env, list, i, n);
    }
    napi_resolve_deferred(env, deferred, list);
  } else {
    napi_value message, err;
    napi_create_string_utf8(env, failure, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &err);
    napi_reject_deferred(env, deferred, err);
  }
}

#endif
