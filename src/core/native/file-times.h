/* Exact file times (file-times.c): adds setTimes, setFdTimes and setFdTimesNow to the addon's exports. */
#ifndef SEFS_FILE_TIMES_H
#define SEFS_FILE_TIMES_H
#include <node_api.h>
#include <stdbool.h>

bool register_file_times(napi_env env, napi_value exports);

#endif
