/*
 * readFile(path, noAtime, start, end, max, target?, direct?) -> Promise<{ errno, mode, size, real, length, bytes? }>:
 * open(O_RDONLY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC, with O_NOATIME when asked and allowed), fstat, the kernel's
 * path of what was opened (/proc/self/fd/N), pread of bytes [start, min(end, size)) and close, all in one job
 * of libuv's thread pool. The vault's reads (src/vault/safe-fs.ts) did these as four async fs calls, each a
 * hop to the pool and back: on the loaded two-core machine about 0.3 ms apiece, most of a cold 4 KiB read
 * (native-notes/benchmarking.md, eighth session). Nothing is read unless the node is a regular file of at most
 * `max` bytes; `errno` (negative) says which call failed, with `mode`/`size` set once fstat ran. The bytes go
 * into `target` when given (it must hold end - start bytes), else into a new buffer of their exact length
 * (read into malloc'ed memory, then copied: the size is known only once fstat ran).
 * JS checks `real` against the vault area before it uses the bytes.
 * `direct` (with a target): the bytes are read with O_DIRECT, from the disk into the target, past the page cache,
 * when `start` is aligned and the target has room for the aligned blocks (else, or where the file system refuses
 * it, as usual). For chunk files read into the mount's slab: their plaintext is cached decrypted there,
 * so a copy of their stored bytes in the page cache is memory spent twice, and filling it and copying out of it
 * cost the pool's threads about a millisecond per MiB on the two-core VM (native-notes/benchmarking.md, tenth
 * session).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "direct-io.h"
#include "napi-string.h"
#include "read-file.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref target_ref; /* keeps the caller's buffer alive while the pool writes into it */
  char *path;
  int no_atime;
  int direct;
  double start, end, max;
  size_t room; /* the target's length, when the caller gave it */
  uint8_t *target; /* the caller's, or malloc'ed here */
  int own_target;
  /* results */
  int err;            /* 0, or a negative errno */
  const char *failed; /* the call that failed */
  int is_file;
  double mode, size;
  size_t length;
  char real[PATH_MAX];
  int has_real;
} job_t;

/*
 * Read `want` bytes at `from` into `target` (`room` bytes) with O_DIRECT. The disk writes whole aligned blocks to
 * an aligned address, so they land at the first aligned address of `target` and are moved down to its start
 * (a V8 buffer is aligned to 16 bytes only); all of it within `room`. False, with nothing counted, when it cannot
 * (no room for that, an unaligned `from`, a file system without O_DIRECT): the caller then reads as usual.
 */
static int read_direct(int fd, uint8_t *target, size_t room, off_t from, size_t want, size_t *got) {
  size_t span = direct_span(want);
  uint8_t *aligned = (uint8_t *)(((uintptr_t)target + DIRECT_ALIGN - 1) & ~(uintptr_t)(DIRECT_ALIGN - 1));
  size_t shift = (size_t)(aligned - target);
  if (from % DIRECT_ALIGN != 0 || shift + span > room) return 0;
  target = aligned;
  int flags = direct_begin(fd);
  if (flags < 0) return 0;
  size_t n = 0;
  int ok = 1;
  while (n < want) {
    ssize_t r = pread(fd, target + n, span - n, from + (off_t)n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ok = 0; /* EINVAL and the like: a buffered read decides */
      break;
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n % DIRECT_ALIGN != 0) break; /* a short read ends at the end of the file */
  }
  direct_end(fd, flags);
  if (!ok) return 0;
  *got = n < want ? n : want;
  if (shift > 0) memmove(target - shift, target, *got);
  return 1;
}

static void run(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  int flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
  int fd = open(j->path, flags | (j->no_atime ? O_NOATIME : 0));
  /* O_NOATIME needs the file's owner or CAP_FOWNER. */
  if (fd < 0 && j->no_atime && errno == EPERM) fd = open(j->path, flags);
  if (fd < 0) {
    j->err = -errno;
    j->failed = "open";
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    j->err = -errno;
    j->failed = "fstat";
    close(fd);
    return;
  }
  j->mode = st.st_mode;
  j->size = (double)st.st_size;
  j->is_file = S_ISREG(st.st_mode);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(proc, j->real, sizeof j->real - 1);
  if (n >= 0) {
    j->real[n] = 0;
    j->has_real = 1;
  }
  /* Not a regular file, or too large: nothing is read, JS refuses it by mode and size. */
  if (!j->is_file || j->size > j->max) {
    close(fd);
    return;
  }
  double from = j->start < j->size ? j->start : j->size;
  double to = j->end < j->size ? j->end : j->size;
  size_t want = to > from ? (size_t)(to - from) : 0;
  if (!j->target) {
    j->target = malloc(want ? want : 1);
    j->own_target = 1;
    if (!j->target) {
      j->err = -ENOMEM;
      j->failed = "malloc";
      close(fd);
      return;
    }
  }
  size_t got = 0;
  if (j->direct && want > 0 && read_direct(fd, j->target, j->room, (off_t)from, want, &got)) {
    j->length = got;
    close(fd);
    return;
  }
  while (got < want) {
    ssize_t r = pread(fd, j->target + got, want - got, (off_t)from + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      j->err = -errno;
      j->failed = "read";
      break;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  j->length = got;
  close(fd);
}

static void set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static void done(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result, v;
  if (status != napi_ok || napi_create_object(env, &result) != napi_ok) {
    napi_value message, err;
    napi_create_string_utf8(env, "readFile: the job did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &err);
    napi_reject_deferred(env, j->deferred, err);
    if (j->own_target) free(j->target);
  } else {
    set_number(env, result, "errno", j->err);
    if (j->failed) {
      napi_create_string_utf8(env, j->failed, NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, result, "syscall", v);
    }
    set_number(env, result, "mode", j->mode);
    set_number(env, result, "size", j->size);
    set_number(env, result, "length", (double)j->length);
    if (j->has_real) {
      napi_create_string_utf8(env, j->real, NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, result, "real", v);
    }
    if (j->own_target && j->target) {
      /* Copied into a buffer of V8's own: an external buffer's memory could not be moved to a worker thread
       * (postMessage's transfer), which the mount does with fetched chunks. */
      if (j->err == 0 && napi_create_buffer_copy(env, j->length, j->target, NULL, &v) == napi_ok) napi_set_named_property(env, result, "bytes", v);
      free(j->target);
    }
    napi_resolve_deferred(env, j->deferred, result);
  }
  if (j->target_ref) napi_delete_reference(env, j->target_ref);
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j);
}

#define USAGE "readFile(path, noAtime, start, end, max, target?, direct?)"

static napi_value read_file_js(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], promise, name;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
    napi_throw_type_error(env, NULL, USAGE);
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  bool no_atime = false;
  if (!(j->path = string_arg(env, argv[0], USAGE))) {
    free(j);
    return NULL;
  }
  if (napi_get_value_bool(env, argv[1], &no_atime) != napi_ok || napi_get_value_double(env, argv[2], &j->start) != napi_ok ||
      napi_get_value_double(env, argv[3], &j->end) != napi_ok || napi_get_value_double(env, argv[4], &j->max) != napi_ok || !(j->start >= 0) ||
      !(j->end >= j->start) || !(j->max >= 0)) {
    free(j->path);
    free(j);
    napi_throw_type_error(env, NULL, USAGE ": 0 <= start <= end, max >= 0");
    return NULL;
  }
  j->no_atime = no_atime;
  napi_valuetype type = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &type);
  if (type != napi_undefined) {
    bool is_typed = false;
    napi_typedarray_type kind;
    size_t count;
    void *bytes;
    napi_is_typedarray(env, argv[5], &is_typed);
    if (!is_typed || napi_get_typedarray_info(env, argv[5], &kind, &count, &bytes, NULL, NULL) != napi_ok || kind != napi_uint8_array ||
        (double)count < j->end - j->start || napi_create_reference(env, argv[5], 1, &j->target_ref) != napi_ok) {
      free(j->path);
      free(j);
      napi_throw_type_error(env, NULL, USAGE ": target must be a Uint8Array of at least end - start bytes");
      return NULL;
    }
    j->target = bytes;
    j->room = count;
    bool direct = false;
    if (argc >= 7 && napi_get_value_bool(env, argv[6], &direct) == napi_ok) j->direct = direct;
  }
  napi_create_string_utf8(env, "sefs readFile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok || napi_create_async_work(env, NULL, name, run, done, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    if (j->target_ref) napi_delete_reference(env, j->target_ref);
    free(j->path);
    free(j);
    napi_throw_error(env, NULL, "readFile: cannot queue the job");
    return NULL;
  }
  return promise;
}

bool register_read_file(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "readFile", NAPI_AUTO_LENGTH, read_file_js, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "readFile", fn) == napi_ok;
}
