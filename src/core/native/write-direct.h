/* Writes of whole new files past the page cache (write-direct.c): adds writeDirect to the addon's exports. */
#ifndef SEFS_WRITE_DIRECT_H
#define SEFS_WRITE_DIRECT_H
#include <node_api.h>
#include <stdbool.h>

bool register_write_direct(napi_env env, napi_value exports);

#endif
