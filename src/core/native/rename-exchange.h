/* renameat2 with RENAME_EXCHANGE or RENAME_NOREPLACE (rename-exchange.c): adds exchange and noReplace to the addon's exports. */
#ifndef SEFS_RENAME_EXCHANGE_H
#define SEFS_RENAME_EXCHANGE_H
#include <node_api.h>
#include <stdbool.h>

bool register_rename_exchange(napi_env env, napi_value exports);

#endif
