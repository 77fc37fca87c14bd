/*
 * oplog.so: an LD_PRELOAD shim that records the file operations a process makes under one directory (the
 * vault), for the power-loss test (test/power-loss.test.ts, native-notes/power-loss.md).
 *
 * Environment:
 *   OPLOG_ROOT  the directory to record (absolute, symlink-free); nothing is recorded without it
 *   OPLOG_FILE  the log, appended to (one write per record, O_APPEND: records of all threads and all
 *               processes land whole)
 *   OPLOG_SEQ   an 8-byte file holding the shared sequence counter (mmap'ed, atomically incremented), which
 *               orders the records of every thread of every process that shares it
 *   OPLOG_MARK  a path prefix: open() of PREFIX+TEXT records a MARK with TEXT and fails with ENOENT (the
 *               client's way to put "step 3 began/done" into the same order)
 *
 * A record is taken after the call succeeded (failed calls change nothing and are not recorded), except that
 * fsync/fdatasync take a sequence number before the call too: the sync covers what completed before it
 * started (`seq`) and takes effect once it returns (`seq2`). Writes carry their bytes.
 *
 * Record (little endian): u32 total length | u8 type | u8 isdir | u16 len1 | u32 len2 | u32 datalen |
 *   u64 seq | u64 seq2 | i32 pid | i32 tid | i32 fd | u32 flags | u64 ino | u64 offset (or size) |
 *   path1 | path2 | data
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
  OP_OPEN = 1,   /* path1, fd, flags (O_CREAT/O_TRUNC/access mode), ino */
  OP_WRITE = 2,  /* fd, ino, offset, data */
  OP_TRUNC = 3,  /* fd (or -1 for truncate(path): path1), ino, offset = new size */
  OP_FSYNC = 4,  /* fd, ino, isdir, path1 (as opened), seq = start, seq2 = end; flags 1 = fdatasync */
  OP_RENAME = 5, /* path1 -> path2, flags = renameat2 flags */
  OP_UNLINK = 6, /* path1 */
  OP_MKDIR = 7,  /* path1, ino of the new directory */
  OP_RMDIR = 8,  /* path1 */
  OP_LINK = 9,   /* path1 (existing) -> path2 (new) */
  OP_SYMLINK = 10, /* path1 = target, path2 = new link, ino */
  OP_CLOSE = 11, /* fd, ino */
  OP_MARK = 12,  /* path1 = text */
};

#pragma pack(push, 1)
struct rec {
  uint32_t total;
  uint8_t type;
  uint8_t isdir;
  uint16_t len1;
  uint32_t len2;
  uint32_t datalen;
  uint64_t seq;
  uint64_t seq2;
  int32_t pid;
  int32_t tid;
  int32_t fd;
  uint32_t flags;
  uint64_t ino;
  uint64_t offset;
};
#pragma pack(pop)

#define MAX_FD 65536
struct tracked {
  int on;
  int isdir;
  uint64_t dev;
  uint64_t ino;
  char *path;
};
static struct tracked fds[MAX_FD];

static char root[PATH_MAX];
static size_t root_len;
static char mark[PATH_MAX];
static size_t mark_len;
static int log_fd = -1;
static volatile uint64_t *counter;
static int enabled;

#define REAL(name) static __typeof__(name) *real_##name
#define LOAD(name) \
  do { \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name); \
  } while (0)

REAL(open); REAL(open64); REAL(openat); REAL(openat64); REAL(creat); REAL(creat64);
REAL(write); REAL(writev); REAL(pwrite); REAL(pwrite64); REAL(pwritev); REAL(pwritev64); REAL(pwritev2);
REAL(fsync); REAL(fdatasync); REAL(ftruncate); REAL(ftruncate64); REAL(truncate); REAL(truncate64);
REAL(rename); REAL(renameat); REAL(renameat2); REAL(unlink); REAL(unlinkat); REAL(mkdir); REAL(mkdirat);
REAL(rmdir); REAL(link); REAL(linkat); REAL(symlink); REAL(symlinkat); REAL(close); REAL(syscall);

static void die(const char *what) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "oplog: %s: %s\n", what, strerror(errno));
  if (n > 0) syscall(SYS_write, 2, buf, (size_t)n);
  abort();
}

__attribute__((constructor)) static void init(void) {
  const char *r = getenv("OPLOG_ROOT");
  const char *f = getenv("OPLOG_FILE");
  const char *s = getenv("OPLOG_SEQ");
  const char *m = getenv("OPLOG_MARK");
  if (!r || !f || !s) return;
  root_len = strlen(r);
  if (root_len == 0 || root_len >= sizeof root) return;
  memcpy(root, r, root_len + 1);
  while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = 0;
  if (m) {
    mark_len = strlen(m);
    if (mark_len >= sizeof mark) mark_len = 0;
    else memcpy(mark, m, mark_len + 1);
  }
  log_fd = (int)syscall(SYS_openat, AT_FDCWD, f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd < 0) die("cannot open OPLOG_FILE");
  int sfd = (int)syscall(SYS_openat, AT_FDCWD, s, O_RDWR | O_CLOEXEC);
  if (sfd < 0) die("cannot open OPLOG_SEQ");
  void *p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  if (p == MAP_FAILED) die("cannot map OPLOG_SEQ");
  syscall(SYS_close, sfd);
  counter = (volatile uint64_t *)p;
  enabled = 1;
}

static uint64_t next_seq(void) { return __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST); }

/* Absolute form of (dirfd, path) in out; 0 when it cannot be made. No normalisation of "..": the vault's
 * code passes normalised paths (path.join/resolve). */
static int absolute(int dirfd, const char *path, char *out) {
  if (!path) return 0;
  /* src/vault/safe-fs.ts reaches vault nodes through a descriptor's /proc path: log them by its real path. */
  if (strncmp(path, "/proc/self/fd/", 14) == 0) {
    char *end;
    long fd = strtol(path + 14, &end, 10);
    if (end != path + 14 && *end == '/') return absolute((int)fd, end + 1, out);
    if (end != path + 14 && *end == 0) {
      ssize_t n = readlink(path, out, PATH_MAX - 1);
      if (n <= 0) return 0;
      out[n] = 0;
      return 1;
    }
  }
  if (path[0] == '/') {
    if (strlen(path) >= PATH_MAX) return 0;
    strcpy(out, path);
    return 1;
  }
  char base[PATH_MAX];
  if (dirfd == AT_FDCWD) {
    if (!getcwd(base, sizeof base)) return 0;
  } else {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, base, sizeof base - 1);
    if (n <= 0) return 0;
    base[n] = 0;
  }
  if (strlen(base) + 1 + strlen(path) >= PATH_MAX) return 0;
  size_t bl = strlen(base);
  memcpy(out, base, bl);
  out[bl] = '/';
  strcpy(out + bl + 1, path);
  /* "./x" -> "x" */
  char *dot;
  while ((dot = strstr(out, "/./")) != NULL) memmove(dot, dot + 2, strlen(dot + 2) + 1);
  return 1;
}

static int under_root(const char *abs) {
  return strncmp(abs, root, root_len) == 0 && (abs[root_len] == 0 || abs[root_len] == '/');
}

/* Does (dirfd, path) fall under the root? Fills abs. */
static int watched(int dirfd, const char *path, char *abs) {
  if (!enabled) return 0;
  int saved = errno;
  int ok = absolute(dirfd, path, abs) && under_root(abs);
  errno = saved;
  return ok;
}

static void emit(struct rec *h, const char *p1, const char *p2, const struct iovec *data, int ndata, size_t datalen) {
  size_t l1 = p1 ? strlen(p1) : 0, l2 = p2 ? strlen(p2) : 0;
  struct iovec iov[3 + 64];
  int n = 0;
  h->len1 = (uint16_t)l1;
  h->len2 = (uint32_t)l2;
  h->datalen = (uint32_t)datalen;
  h->total = (uint32_t)(sizeof *h + l1 + l2 + datalen);
  h->pid = getpid();
  h->tid = (int32_t)syscall(SYS_gettid);
  iov[n].iov_base = h; iov[n++].iov_len = sizeof *h;
  if (l1) { iov[n].iov_base = (void *)p1; iov[n++].iov_len = l1; }
  if (l2) { iov[n].iov_base = (void *)p2; iov[n++].iov_len = l2; }
  size_t left = datalen;
  for (int i = 0; i < ndata && left > 0; i++) {
    size_t take = data[i].iov_len < left ? data[i].iov_len : left;
    if (take == 0) continue;
    if (n == (int)(sizeof iov / sizeof iov[0])) {
      errno = E2BIG;
      die("too many iovecs in one write");
    }
    iov[n].iov_base = data[i].iov_base; iov[n++].iov_len = take;
    left -= take;
  }
  size_t want = h->total;
  ssize_t got = syscall(SYS_writev, log_fd, iov, n);
  if (got < 0 || (size_t)got != want) die("short write to OPLOG_FILE");
}

static void track(int fd, const char *abs) {
  if (fd < 0) return;
  if (fd >= MAX_FD) {
    errno = EMFILE;
    die("descriptor beyond the shim's table");
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  free(fds[fd].path);
  fds[fd].path = strdup(abs);
  fds[fd].dev = st.st_dev;
  fds[fd].ino = st.st_ino;
  fds[fd].isdir = S_ISDIR(st.st_mode);
  __atomic_store_n(&fds[fd].on, 1, __ATOMIC_SEQ_CST);
}

/* The entry of a recorded descriptor, checked against what the descriptor is now: a descriptor closed behind
 * the shim's back (close_range, dup2 onto it) and reused for another file is forgotten, not misattributed. */
static struct tracked *tracked_fd(int fd) {
  if (!enabled || fd < 0 || fd >= MAX_FD || !__atomic_load_n(&fds[fd].on, __ATOMIC_SEQ_CST)) return NULL;
  struct stat st;
  int saved = errno;
  int ok = fstat(fd, &st) == 0 && (uint64_t)st.st_ino == fds[fd].ino && (uint64_t)st.st_dev == fds[fd].dev;
  errno = saved;
  if (!ok) {
    __atomic_store_n(&fds[fd].on, 0, __ATOMIC_SEQ_CST);
    return NULL;
  }
  return &fds[fd];
}

static int is_mark(int dirfd, const char *path) {
  return enabled && mark_len && path && (dirfd == AT_FDCWD || path[0] == '/') && strncmp(path, mark, mark_len) == 0;
}

static int do_mark(const char *path) {
  struct rec h = {0};
  h.type = OP_MARK;
  h.fd = -1;
  h.seq = next_seq();
  emit(&h, path + mark_len, NULL, NULL, 0, 0);
  errno = ENOENT;
  return -1;
}

static void after_open(int fd, const char *abs, int flags) {
  if (fd < 0) return;
  int saved = errno;
  track(fd, abs);
  if (flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR)) {
    struct rec h = {0};
    h.type = OP_OPEN;
    h.fd = fd;
    h.flags = (uint32_t)flags;
    h.ino = fds[fd].ino;
    h.isdir = (uint8_t)fds[fd].isdir;
    h.seq = next_seq();
    emit(&h, abs, NULL, NULL, 0, 0);
  }
  errno = saved;
}

static int mode_arg(int flags, va_list ap) { return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0; }

#define OPEN_BODY(realcall, dirfd)                                      \
  char abs[PATH_MAX];                                                   \
  if (is_mark(dirfd, path)) return do_mark(path);                       \
  int w = watched(dirfd, path, abs);                                    \
  int fd = realcall;                                                    \
  if (w) after_open(fd, abs, flags);                                    \
  return fd;

int open(const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); int mode = mode_arg(flags, ap); va_end(ap);
  LOAD(open);
  OPEN_BODY(real_open(path, flags, mode), AT_FDCWD)
}
int open64(const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); int mode = mode_arg(flags, ap); va_end(ap);
  LOAD(open64);
  OPEN_BODY(real_open64(path, flags, mode), AT_FDCWD)
}
int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); int mode = mode_arg(flags, ap); va_end(ap);
  LOAD(openat);
  OPEN_BODY(real_openat(dirfd, path, flags, mode), dirfd)
}
int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); int mode = mode_arg(flags, ap); va_end(ap);
  LOAD(openat64);
  OPEN_BODY(real_openat64(dirfd, path, flags, mode), dirfd)
}
int creat(const char *path, mode_t mode) {
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  LOAD(creat);
  OPEN_BODY(real_creat(path, mode), AT_FDCWD)
}
int creat64(const char *path, mode_t mode) {
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  LOAD(creat64);
  OPEN_BODY(real_creat64(path, mode), AT_FDCWD)
}

static void log_write(int fd, struct tracked *t, ssize_t n, off_t offset, const struct iovec *iov, int iovcnt) {
  if (n <= 0) return;
  int saved = errno;
  struct rec h = {0};
  h.type = OP_WRITE;
  h.fd = fd;
  h.ino = t->ino;
  if (offset < 0) {
    /* write/writev at the file position (O_APPEND included): the position after it tells where it went */
    off_t end = lseek(fd, 0, SEEK_CUR);
    offset = end - n;
  }
  h.offset = (uint64_t)offset;
  h.seq = next_seq();
  emit(&h, t->path, NULL, iov, iovcnt, (size_t)n);
  errno = saved;
}

ssize_t write(int fd, const void *buf, size_t count) {
  LOAD(write);
  ssize_t n = real_write(fd, buf, count);
  struct tracked *t = tracked_fd(fd);
  if (t) {
    struct iovec v = {(void *)buf, count};
    log_write(fd, t, n, -1, &v, 1);
  }
  return n;
}
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  LOAD(writev);
  ssize_t n = real_writev(fd, iov, iovcnt);
  struct tracked *t = tracked_fd(fd);
  if (t) log_write(fd, t, n, -1, iov, iovcnt);
  return n;
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  LOAD(pwrite);
  ssize_t n = real_pwrite(fd, buf, count, offset);
  struct tracked *t = tracked_fd(fd);
  if (t) {
    struct iovec v = {(void *)buf, count};
    log_write(fd, t, n, offset, &v, 1);
  }
  return n;
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  LOAD(pwrite64);
  ssize_t n = real_pwrite64(fd, buf, count, offset);
  struct tracked *t = tracked_fd(fd);
  if (t) {
    struct iovec v = {(void *)buf, count};
    log_write(fd, t, n, offset, &v, 1);
  }
  return n;
}
ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  LOAD(pwritev);
  ssize_t n = real_pwritev(fd, iov, iovcnt, offset);
  struct tracked *t = tracked_fd(fd);
  if (t) log_write(fd, t, n, offset, iov, iovcnt);
  return n;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  LOAD(pwritev64);
  ssize_t n = real_pwritev64(fd, iov, iovcnt, offset);
  struct tracked *t = tracked_fd(fd);
  if (t) log_write(fd, t, n, offset, iov, iovcnt);
  return n;
}
ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  LOAD(pwritev2);
  ssize_t n = real_pwritev2(fd, iov, iovcnt, offset, flags);
  struct tracked *t = tracked_fd(fd);
  if (t) log_write(fd, t, n, offset, iov, iovcnt);
  return n;
}

static int sync_common(int fd, int data_only) {
  struct tracked *t = tracked_fd(fd);
  uint64_t start = t ? next_seq() : 0;
  int r = data_only ? real_fdatasync(fd) : real_fsync(fd);
  if (t && r == 0) {
    int saved = errno;
    struct rec h = {0};
    h.type = OP_FSYNC;
    h.fd = fd;
    h.ino = t->ino;
    h.isdir = (uint8_t)t->isdir;
    h.flags = (uint32_t)data_only;
    h.seq = start;
    h.seq2 = next_seq();
    emit(&h, t->path, NULL, NULL, 0, 0);
    errno = saved;
  }
  return r;
}
int fsync(int fd) {
  LOAD(fsync); LOAD(fdatasync);
  return sync_common(fd, 0);
}
int fdatasync(int fd) {
  LOAD(fsync); LOAD(fdatasync);
  return sync_common(fd, 1);
}

static void log_ftrunc(int fd, int r, off_t size) {
  struct tracked *t = tracked_fd(fd);
  if (!t || r != 0) return;
  int saved = errno;
  struct rec h = {0};
  h.type = OP_TRUNC;
  h.fd = fd;
  h.ino = t->ino;
  h.offset = (uint64_t)size;
  h.seq = next_seq();
  emit(&h, t->path, NULL, NULL, 0, 0);
  errno = saved;
}
int ftruncate(int fd, off_t size) {
  LOAD(ftruncate);
  int r = real_ftruncate(fd, size);
  log_ftrunc(fd, r, size);
  return r;
}
int ftruncate64(int fd, off64_t size) {
  LOAD(ftruncate64);
  int r = real_ftruncate64(fd, size);
  log_ftrunc(fd, r, size);
  return r;
}

/* A namespace (or path) operation on watched paths, ordered at `seq`. */
static void log_path_op_at(int type, const char *p1, const char *p2, uint32_t flags, uint64_t size, int stat_ino_of, uint64_t seq) {
  int saved = errno;
  struct rec h = {0};
  h.type = (uint8_t)type;
  h.fd = -1;
  h.flags = flags;
  h.offset = size;
  if (stat_ino_of) {
    struct stat st;
    if (lstat(stat_ino_of == 1 ? p1 : p2, &st) == 0) {
      h.ino = st.st_ino;
      h.isdir = S_ISDIR(st.st_mode);
    }
  }
  h.seq = seq;
  emit(&h, p1, p2, NULL, 0, 0);
  errno = saved;
}

/* ... ordered when it returned. */
static void log_path_op(int type, const char *p1, const char *p2, uint32_t flags, uint64_t size, int stat_ino_of) {
  log_path_op_at(type, p1, p2, flags, size, stat_ino_of, next_seq());
}

int truncate(const char *path, off_t size) {
  char abs[PATH_MAX];
  LOAD(truncate);
  int w = watched(AT_FDCWD, path, abs);
  int r = real_truncate(path, size);
  if (w && r == 0) log_path_op(OP_TRUNC, abs, NULL, 0, (uint64_t)size, 1);
  return r;
}
int truncate64(const char *path, off64_t size) {
  char abs[PATH_MAX];
  LOAD(truncate64);
  int w = watched(AT_FDCWD, path, abs);
  int r = real_truncate64(path, size);
  if (w && r == 0) log_path_op(OP_TRUNC, abs, NULL, 0, (uint64_t)size, 1);
  return r;
}

/* Renames touching the root from outside (or leaving it) cannot be modelled: abort loudly. */
static int two_paths(int d1, const char *p1, int d2, const char *p2, char *a1, char *a2) {
  int w1 = watched(d1, p1, a1), w2 = watched(d2, p2, a2);
  if (w1 != w2) {
    errno = EXDEV;
    die("a rename or link crosses the recorded directory's border");
  }
  return w1;
}

int renameat2(int d1, const char *p1, int d2, const char *p2, unsigned int flags) {
  char a1[PATH_MAX], a2[PATH_MAX];
  LOAD(renameat2);
  int w = two_paths(d1, p1, d2, p2, a1, a2);
  int r = real_renameat2(d1, p1, d2, p2, flags);
  if (w && r == 0) log_path_op(OP_RENAME, a1, a2, flags, 0, 0);
  return r;
}
int renameat(int d1, const char *p1, int d2, const char *p2) {
  char a1[PATH_MAX], a2[PATH_MAX];
  LOAD(renameat);
  int w = two_paths(d1, p1, d2, p2, a1, a2);
  int r = real_renameat(d1, p1, d2, p2);
  if (w && r == 0) log_path_op(OP_RENAME, a1, a2, 0, 0, 0);
  return r;
}
int rename(const char *p1, const char *p2) {
  char a1[PATH_MAX], a2[PATH_MAX];
  LOAD(rename);
  int w = two_paths(AT_FDCWD, p1, AT_FDCWD, p2, a1, a2);
  int r = real_rename(p1, p2);
  if (w && r == 0) log_path_op(OP_RENAME, a1, a2, 0, 0, 0);
  return r;
}
int unlinkat(int dirfd, const char *path, int flags) {
  char abs[PATH_MAX];
  LOAD(unlinkat);
  int w = watched(dirfd, path, abs);
  int r = real_unlinkat(dirfd, path, flags);
  if (w && r == 0) log_path_op((flags & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, abs, NULL, 0, 0, 0);
  return r;
}
int unlink(const char *path) {
  char abs[PATH_MAX];
  LOAD(unlink);
  int w = watched(AT_FDCWD, path, abs);
  int r = real_unlink(path);
  if (w && r == 0) log_path_op(OP_UNLINK, abs, NULL, 0, 0, 0);
  return r;
}
int rmdir(const char *path) {
  char abs[PATH_MAX];
  LOAD(rmdir);
  int w = watched(AT_FDCWD, path, abs);
  int r = real_rmdir(path);
  if (w && r == 0) log_path_op(OP_RMDIR, abs, NULL, 0, 0, 0);
  return r;
}
int mkdirat(int dirfd, const char *path, mode_t mode) {
  char abs[PATH_MAX];
  LOAD(mkdirat);
  int w = watched(dirfd, path, abs);
  /* Ordered when it started: two threads making the same directory race, and the one that loses (EEXIST)
     goes on to create files in it, possibly before the winner's record is numbered. */
  uint64_t start = w ? next_seq() : 0;
  int r = real_mkdirat(dirfd, path, mode);
  if (w && r == 0) log_path_op_at(OP_MKDIR, abs, NULL, mode, 0, 1, start);
  return r;
}
int mkdir(const char *path, mode_t mode) {
  char abs[PATH_MAX];
  LOAD(mkdir);
  int w = watched(AT_FDCWD, path, abs);
  /* Ordered when it started: two threads making the same directory race, and the one that loses (EEXIST)
     goes on to create files in it, possibly before the winner's record is numbered. */
  uint64_t start = w ? next_seq() : 0;
  int r = real_mkdir(path, mode);
  if (w && r == 0) log_path_op_at(OP_MKDIR, abs, NULL, mode, 0, 1, start);
  return r;
}
int linkat(int d1, const char *p1, int d2, const char *p2, int flags) {
  char a1[PATH_MAX], a2[PATH_MAX];
  LOAD(linkat);
  int w = two_paths(d1, p1, d2, p2, a1, a2);
  int r = real_linkat(d1, p1, d2, p2, flags);
  if (w && r == 0) log_path_op(OP_LINK, a1, a2, 0, 0, 2);
  return r;
}
int link(const char *p1, const char *p2) {
  char a1[PATH_MAX], a2[PATH_MAX];
  LOAD(link);
  int w = two_paths(AT_FDCWD, p1, AT_FDCWD, p2, a1, a2);
  int r = real_link(p1, p2);
  if (w && r == 0) log_path_op(OP_LINK, a1, a2, 0, 0, 2);
  return r;
}
int symlinkat(const char *target, int dirfd, const char *path) {
  char abs[PATH_MAX];
  LOAD(symlinkat);
  int w = watched(dirfd, path, abs);
  int r = real_symlinkat(target, dirfd, path);
  if (w && r == 0) log_path_op(OP_SYMLINK, target, abs, 0, 0, 2);
  return r;
}
int symlink(const char *target, const char *path) {
  char abs[PATH_MAX];
  LOAD(symlink);
  int w = watched(AT_FDCWD, path, abs);
  int r = real_symlink(target, path);
  if (w && r == 0) log_path_op(OP_SYMLINK, target, abs, 0, 0, 2);
  return r;
}

static int close_common(int fd, int raw) {
  struct tracked *t = (enabled && fd >= 0 && fd < MAX_FD && __atomic_load_n(&fds[fd].on, __ATOMIC_SEQ_CST)) ? &fds[fd] : NULL;
  if (!t) return raw ? (int)real_syscall(SYS_close, fd) : real_close(fd);
  /* Forget the descriptor before the kernel may hand its number to another thread's open. */
  struct rec h = {0};
  h.type = OP_CLOSE;
  h.fd = fd;
  h.ino = t->ino;
  char *path = t->path;
  t->path = NULL;
  __atomic_store_n(&t->on, 0, __ATOMIC_SEQ_CST);
  int r = raw ? (int)real_syscall(SYS_close, fd) : real_close(fd);
  int saved = errno;
  h.seq = next_seq();
  emit(&h, path, NULL, NULL, 0, 0);
  free(path);
  errno = saved;
  return r;
}

int close(int fd) {
  LOAD(close); LOAD(syscall);
  return close_common(fd, 0);
}

/*
 * libuv closes descriptors with syscall(SYS_close) (no cancellation point), so syscall() is wrapped too. Any
 * other raw syscall that would change a recorded file or name is not modelled: it aborts the process, loudly,
 * rather than leave a hole in the log.
 */
static int raw_path_watched(long dirfd, long path) {
  char abs[PATH_MAX];
  return watched((int)dirfd, (const char *)path, abs);
}

long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a0 = va_arg(ap, long), a1 = va_arg(ap, long), a2 = va_arg(ap, long);
  long a3 = va_arg(ap, long), a4 = va_arg(ap, long), a5 = va_arg(ap, long);
  va_end(ap);
  LOAD(syscall); LOAD(close);
  if (number == SYS_close) return close_common((int)a0, 1);
  if (enabled) {
    int bad = 0;
    switch (number) {
      case SYS_write: case SYS_pwrite64: case SYS_writev: case SYS_pwritev: case SYS_pwritev2:
      case SYS_fsync: case SYS_fdatasync: case SYS_ftruncate: case SYS_fallocate: case SYS_sync_file_range:
        bad = tracked_fd((int)a0) != NULL;
        break;
      case SYS_copy_file_range:
        bad = tracked_fd((int)a2) != NULL;
        break;
      case SYS_openat:
        bad = (a2 & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR)) && raw_path_watched(a0, a1);
        break;
      case SYS_open: case SYS_creat: case SYS_truncate: case SYS_unlink: case SYS_rmdir: case SYS_mkdir:
        bad = raw_path_watched(AT_FDCWD, a0);
        break;
      case SYS_unlinkat: case SYS_mkdirat:
        bad = raw_path_watched(a0, a1);
        break;
      case SYS_rename: case SYS_link: case SYS_symlink:
        bad = raw_path_watched(AT_FDCWD, a0) || raw_path_watched(AT_FDCWD, a1);
        break;
      case SYS_renameat: case SYS_renameat2: case SYS_linkat:
        bad = raw_path_watched(a0, a1) || raw_path_watched(a2, a3);
        break;
      case SYS_symlinkat:
        bad = raw_path_watched(a1, a2);
        break;
    }
    if (bad) {
      char buf[128];
      int n = snprintf(buf, sizeof buf, "oplog: raw syscall %ld on a recorded file is not modelled\n", number);
      if (n > 0) real_syscall(SYS_write, 2, buf, (size_t)n);
      abort();
    }
  }
  return real_syscall(number, a0, a1, a2, a3, a4, a5);
}
