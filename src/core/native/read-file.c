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
 * readFiles(paths, noAtime, max, budget) -> Promise<result[]>: the same for several whole files (start 0, end `max`,
 * no target) in one job, one result per path in order. Past `budget` bytes in all (after the first file), a file
 * is not read: its result says `skipped`, for the caller to read alone, so that one job never holds many large
 * files at once. A directory listing's entries read one job each cost the JS thread a queueing (the pool's mutex,
 * a condition signal) and a completion hop per file, and on two cores those wake-ups were most of a warm `ls -lR`'s
 * daemon time (perf: futex and task-switch samples under uv_queue_work,
 * native-notes/small-files.md, twentieth session).
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

/* One file of a job: what to read and what was found. */
typedef struct {
  char *path;
  size_t room;     /* the target's length, when the caller gave it */
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
  int skipped; /* over the batch's budget: opened and stat'ed, not read */
} item_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref target_ref; /* keeps the caller's buffer alive while the pool writes into it */
  int no_atime;
  int direct;
  double start, end, max;
  double budget; /* readFiles: bytes read in all, at most (the first file aside) */
  int many;      /* readFiles: resolve with an array */
  size_t count;
  item_t *items;
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

/* Open and fstat an item: its descriptor, or -1 with the error set. */
static int open_one(const job_t *j, item_t *it) {
  int flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
  int fd = open(it->path, flags | (j->no_atime ? O_NOATIME : 0));
  /* O_NOATIME needs the file's owner or CAP_FOWNER. */
  if (fd < 0 && j->no_atime && errno == EPERM) fd = open(it->path, flags);
  if (fd < 0) {
    it->err = -errno;
    it->failed = "open";
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    it->err = -errno;
    it->failed = "fstat";
    close(fd);
    return -1;
  }
  it->mode = st.st_mode;
  it->size = (double)st.st_size;
  it->is_file = S_ISREG(st.st_mode);
  return fd;
}

/* The rest of an item opened by open_one: its real path, its bytes; closes `fd`. */
static void finish_one(const job_t *j, item_t *it, int fd) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(proc, it->real, sizeof it->real - 1);
  if (n >= 0) {
    it->real[n] = 0;
    it->has_real = 1;
  }
  /* Not a regular file, or too large: nothing is read, JS refuses it by mode and size. */
  if (!it->is_file || it->size > j->max) {
    close(fd);
    return;
  }
  double from = j->start < it->size ? j->start : it->size;
  double to = j->end < it->size ? j->end : it->size;
  size_t want = to > from ? (size_t)(to - from) : 0;
  if (!it->target) {
    it->target = malloc(want ? want : 1);
    it->own_target = 1;
    if (!it->target) {
      it->err = -ENOMEM;
      it->failed = "malloc";
      close(fd);
      return;
    }
  }
  size_t got = 0;
  if (j->direct && want > 0 && read_direct(fd, it->target, it->room, (off_t)from, want, &got)) {
    it->length = got;
    close(fd);
    return;
  }
  while (got < want) {
    ssize_t r = pread(fd, it->target + got, want - got, (off_t)from + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      it->err = -errno;
      it->failed = "read";
      break;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  it->length = got;
  close(fd);
}

/*
 * Whether a batch reads this opened item: not once `taken` bytes plus its own would pass the budget (the first file
 * read aside); then it is marked skipped and `fd` closed. What is not read anyway (not a file, over `max`) passes.
 */
static int within_budget(const job_t *j, item_t *it, int fd, double *taken) {
  if (!it->is_file || it->size > j->max) return 1;
  if (*taken > 0 && *taken + it->size > j->budget) {
    it->skipped = 1;
    close(fd);
    return 0;
  }
  *taken += it->size;
  return 1;
}

/*
 * A batch opens every file first and asks the kernel to start reading each (readahead), then reads them in
 * turn: on a cold disk the reads are in flight together rather than one after another.
 */
static void run(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  double taken = 0;
  int *fds = j->count > 1 ? malloc(j->count * sizeof *fds) : NULL;
  if (!fds) {
    /* One file (readFile), or no room to hold them all open: one after another (the budget still holds). */
    for (size_t i = 0; i < j->count; i++) {
      int fd = open_one(j, &j->items[i]);
      if (fd >= 0 && within_budget(j, &j->items[i], fd, &taken)) finish_one(j, &j->items[i], fd);
    }
    return;
  }
  for (size_t i = 0; i < j->count; i++) {
    item_t *it = &j->items[i];
    fds[i] = open_one(j, it);
    if (fds[i] < 0 || !within_budget(j, it, fds[i], &taken)) {
      fds[i] = -1;
      continue;
    }
    if (it->is_file && it->size > 0 && it->size <= j->max) readahead(fds[i], 0, (size_t)it->size);
  }
  for (size_t i = 0; i < j->count; i++)
    if (fds[i] >= 0) finish_one(j, &j->items[i], fds[i]);
  free(fds);
}

static void set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

/* One item's result object (its malloc'ed bytes are copied into it; free_job frees them). */
static napi_value result_of(napi_env env, item_t *it) {
  napi_value result, v;
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  set_number(env, result, "errno", it->err);
  if (it->failed) {
    napi_create_string_utf8(env, it->failed, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "syscall", v);
  }
  set_number(env, result, "mode", it->mode);
  set_number(env, result, "size", it->size);
  set_number(env, result, "length", (double)it->length);
  if (it->skipped) {
    napi_get_boolean(env, true, &v);
    napi_set_named_property(env, result, "skipped", v);
  }
  if (it->has_real) {
    napi_create_string_utf8(env, it->real, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "real", v);
  }
  if (it->own_target && it->target) {
    /* Copied into a buffer of V8's own: an external buffer's memory could not be moved to a worker thread
     * (postMessage's transfer), which the mount does with fetched chunks. */
    if (it->err == 0 && napi_create_buffer_copy(env, it->length, it->target, NULL, &v) == napi_ok) napi_set_named_property(env, result, "bytes", v);
  }
  return result;
}

static void free_job(napi_env env, job_t *j) {
  for (size_t i = 0; i < j->count; i++) {
    if (j->items[i].own_target) free(j->items[i].target);
    free(j->items[i].path);
  }
  if (j->target_ref) napi_delete_reference(env, j->target_ref);
  if (j->work) napi_delete_async_work(env, j->work);
  free(j->items);
  free(j);
}

static void done(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result = NULL;
  int ok = status == napi_ok;
  if (ok && j->many) {
    ok = napi_create_array_with_length(env, j->count, &result) == napi_ok;
    for (size_t i = 0; ok && i < j->count; i++) {
      napi_value one = result_of(env, &j->items[i]);
      ok = one && napi_set_element(env, result, (uint32_t)i, one) == napi_ok;
    }
  } else if (ok) {
    result = result_of(env, &j->items[0]);
    ok = result != NULL;
  }
  if (ok) napi_resolve_deferred(env, j->deferred, result);
  else {
    napi_value message, err;
    napi_create_string_utf8(env, "readFile: the job did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &err);
    napi_reject_deferred(env, j->deferred, err);
  }
  free_job(env, j);
}

/* Queue `j` (its items set): the promise, or NULL with an error thrown and `j` freed. */
static napi_value queue(napi_env env, job_t *j) {
  napi_value promise, name;
  napi_create_string_utf8(env, "sefs readFile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok || napi_create_async_work(env, NULL, name, run, done, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free_job(env, j);
    napi_throw_error(env, NULL, "readFile: cannot queue the job");
    return NULL;
  }
  return promise;
}

/* A job of `count` items, or NULL with an error thrown. */
static job_t *new_job(napi_env env, size_t count) {
  job_t *j = calloc(1, sizeof *j);
  item_t *items = j ? calloc(count ? count : 1, sizeof *items) : NULL;
  if (!items) {
    free(j);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->items = items;
  j->count = count;
  return j;
}

#define USAGE "readFile(path, noAtime, start, end, max, target?, direct?)"

static napi_value read_file_js(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
    napi_throw_type_error(env, NULL, USAGE);
    return NULL;
  }
  job_t *j = new_job(env, 1);
  if (!j) return NULL;
  item_t *it = &j->items[0];
  bool no_atime = false;
  if (!(it->path = string_arg(env, argv[0], USAGE))) {
    free_job(env, j);
    return NULL;
  }
  if (napi_get_value_bool(env, argv[1], &no_atime) != napi_ok || napi_get_value_double(env, argv[2], &j->start) != napi_ok ||
      napi_get_value_double(env, argv[3], &j->end) != napi_ok || napi_get_value_double(env, argv[4], &j->max) != napi_ok || !(j->start >= 0) ||
      !(j->end >= j->start) || !(j->max >= 0)) {
    free_job(env, j);
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
      free_job(env, j);
      napi_throw_type_error(env, NULL, USAGE ": target must be a Uint8Array of at least end - start bytes");
      return NULL;
    }
    it->target = bytes;
    it->room = count;
    bool direct = false;
    if (argc >= 7 && napi_get_value_bool(env, argv[6], &direct) == napi_ok) j->direct = direct;
  }
  return queue(env, j);
}

#define USAGE_MANY "readFiles(paths, noAtime, max, budget)"

static napi_value read_files_js(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool is_array = false, no_atime = false;
  uint32_t count = 0;
  double max = -1, budget = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok || napi_get_value_bool(env, argv[1], &no_atime) != napi_ok ||
      napi_get_value_double(env, argv[2], &max) != napi_ok || !(max >= 0) || napi_get_value_double(env, argv[3], &budget) != napi_ok || !(budget >= 0)) {
    napi_throw_type_error(env, NULL, USAGE_MANY ": an array of paths, a boolean, max >= 0, budget >= 0");
    return NULL;
  }
  job_t *j = new_job(env, count);
  if (!j) return NULL;
  j->many = 1;
  j->no_atime = no_atime;
  j->start = 0;
  j->end = max;
  j->max = max;
  j->budget = budget;
  for (uint32_t i = 0; i < count; i++) {
    napi_value path;
    if (napi_get_element(env, argv[0], i, &path) != napi_ok || !(j->items[i].path = string_arg(env, path, USAGE_MANY))) {
      free_job(env, j);
      return NULL;
    }
  }
  return queue(env, j);
}

bool register_read_file(napi_env env, napi_value exports) {
  napi_value one, many;
  if (napi_create_function(env, "readFile", NAPI_AUTO_LENGTH, read_file_js, NULL, &one) != napi_ok ||
      napi_create_function(env, "readFiles", NAPI_AUTO_LENGTH, read_files_js, NULL, &many) != napi_ok)
    return false;
  return napi_set_named_property(env, exports, "readFile", one) == napi_ok && napi_set_named_property(env, exports, "readFiles", many) == napi_ok;
}
