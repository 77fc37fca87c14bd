/*
 * Exact file times: utimensat(2) and futimens(2) with nanoseconds. Node's fs.utimes/futimes take seconds as a
 * double, which keeps about a tenth of a microsecond for dates near now and less far from 1970, so a time set
 * through the mount would not read back as written (native-notes/native-addon.md).
 *
 *   setTimes(path, atimeNs, mtimeNs, noFollow) -> 0 or a negative errno    (AT_SYMLINK_NOFOLLOW when noFollow)
 *   setFdTimes(fd, atimeNs, mtimeNs)          -> 0 or a negative errno
 *   setFdTimesNow(fd)                         -> 0 or a negative errno    (futimens(fd, NULL): atime, mtime
 *                                                and ctime all the kernel's one now, as a new file has them)
 *
 * Times are bigints of nanoseconds since the epoch, negative before 1970.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "file-times.h"

#define NS_PER_S 1000000000LL

/* A bigint of ns as a timespec (floor division: the ns part is never negative), false with a TypeError thrown. */
static bool timespec_of(napi_env env, napi_value value, struct timespec *ts) {
  int64_t ns;
  bool lossless;
  if (napi_get_value_bigint_int64(env, value, &ns, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "expected a bigint of nanoseconds that fits in 64 bits");
    return false;
  }
  int64_t sec = ns / NS_PER_S, rem = ns % NS_PER_S;
  if (rem < 0) {
    rem += NS_PER_S;
    sec -= 1;
  }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)rem;
  return true;
}

static napi_value result_of(napi_env env, int rc) {
  napi_value out;
  napi_create_int32(env, rc == 0 ? 0 : -errno, &out);
  return out;
}

static napi_value set_times_js(napi_env env, napi_callback_info info) {
  size_t argc = 4, length;
  napi_value argv[4];
  struct timespec ts[2];
  bool no_follow = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "setTimes(path, atimeNs, mtimeNs, noFollow)");
    return NULL;
  }
  if (!timespec_of(env, argv[1], &ts[0]) || !timespec_of(env, argv[2], &ts[1])) return NULL;
  napi_get_value_bool(env, argv[3], &no_follow);
  char *path = malloc(length + 1);
  if (!path) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], path, length + 1, &length);
  int rc = utimensat(AT_FDCWD, path, ts, no_follow ? AT_SYMLINK_NOFOLLOW : 0);
  int saved = errno;
  free(path);
  errno = saved;
  return result_of(env, rc);
}

static napi_value set_fd_times_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  struct timespec ts[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "setFdTimes(fd, atimeNs, mtimeNs)");
    return NULL;
  }
  if (!timespec_of(env, argv[1], &ts[0]) || !timespec_of(env, argv[2], &ts[1])) return NULL;
  return result_of(env, futimens(fd, ts));
}

static napi_value set_fd_times_now_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "setFdTimesNow(fd)");
    return NULL;
  }
  return result_of(env, futimens(fd, NULL));
}

bool register_file_times(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "setTimes", NAPI_AUTO_LENGTH, set_times_js, NULL, &fn) != napi_ok) return false;
  if (napi_set_named_property(env, exports, "setTimes", fn) != napi_ok) return false;
  if (napi_create_function(env, "setFdTimes", NAPI_AUTO_LENGTH, set_fd_times_js, NULL, &fn) != napi_ok) return false;
  if (napi_set_named_property(env, exports, "setFdTimes", fn) != napi_ok) return false;
  if (napi_create_function(env, "setFdTimesNow", NAPI_AUTO_LENGTH, set_fd_times_now_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "setFdTimesNow", fn) == napi_ok;
}
