/* ext4's FS_TOPDIR_FL on a directory (top-dir.c): adds markTopDir to the addon's exports. */
#ifndef SEFS_TOP_DIR_H
#define SEFS_TOP_DIR_H
#include <node_api.h>
#include <stdbool.h>

bool register_top_dir(napi_env env, napi_value exports);

#endif
