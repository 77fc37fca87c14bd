/* One-hop reads of vault files in the thread pool (read-file.c): adds readFile to the addon's exports. */
#ifndef SEFS_READ_FILE_H
#define SEFS_READ_FILE_H
#include <node_api.h>
#include <stdbool.h>

bool register_read_file(napi_env env, napi_value exports);

#endif
