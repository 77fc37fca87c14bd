/*
 * markTopDir(path): set ext4's "top of directory hierarchies" flag (FS_TOPDIR_FL, `chattr +T`) on a directory, so
 * that the Orlov allocator places directories made in it as it places top-level ones: in a block group with few
 * directories and more free inodes than average, not beside their parent. The vault's fresh inodes
 * (src/vault/fresh-entries.ts) are made in two such directories: on this host an allocation in a group where
 * many inodes were freed in the last half minute (all of /tmp, where everyone's tests churn) costs 0.3-1.5 ms
 * of CPU in `recently_deleted()`, one in a quiet group 0.03 ms (native-notes/small-files.md, seventh session).
 * 0 or a negative errno (ENOTTY, EOPNOTSUPP, EINVAL on file systems without such flags).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <node_api.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "napi-string.h"
#include "top-dir.h"

static int mark_top_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  int flags = 0, rc = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) rc = -errno;
  else if (!(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) rc = -errno;
  }
  close(fd);
  return rc;
}

static napi_value mark_top_dir_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "markTopDir(path)");
    return NULL;
  }
  char *path = string_arg(env, argv[0], "markTopDir(path): the path is a string");
  if (!path) return NULL;
  int rc = mark_top_dir(path);
  free(path);
  napi_create_int32(env, rc, &out);
  return out;
}

bool register_top_dir(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "markTopDir", NAPI_AUTO_LENGTH, mark_top_dir_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "markTopDir", fn) == napi_ok;
}
