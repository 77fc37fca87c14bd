/* Empty files made in a batch in the thread pool (fresh-files.c): adds makeFresh to the addon's exports. */
#ifndef SEFS_FRESH_FILES_H
#define SEFS_FRESH_FILES_H
#include <node_api.h>
#include <stdbool.h>

bool register_fresh_files(napi_env env, napi_value exports);

#endif
