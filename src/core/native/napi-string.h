/* A string argument of an addon function as a malloc'ed C string (the caller frees it), for the path calls. */
#ifndef SEFS_NAPI_STRING_H
#define SEFS_NAPI_STRING_H
#include <node_api.h>
#include <stdlib.h>

/* NULL with an error thrown: a TypeError saying `usage` for a non-string, or out of memory. */
static inline char *string_arg(napi_env env, napi_value value, const char *usage) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
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

#endif
