/* Names removed from one directory in a batch in the thread pool (remove-names.c): adds removeNames to the addon's exports. */
#ifndef SEFS_REMOVE_NAMES_H
#define SEFS_REMOVE_NAMES_H
#include <node_api.h>
#include <stdbool.h>

bool register_remove_names(napi_env env, napi_value exports);

#endif
