/*
 * O_DIRECT as read-file.c and write-direct.c use it on chunk files: whole blocks of DIRECT_ALIGN bytes, at aligned
 * offsets, from and to aligned memory; switched on for one call on a descriptor opened without it.
 */
#ifndef SEFS_DIRECT_IO_H
#define SEFS_DIRECT_IO_H
#include <fcntl.h>
#include <stddef.h>

/* O_DIRECT's alignment of buffer, offset and length: the page size covers every block size a disk has here. */
#define DIRECT_ALIGN 4096

/* `n` rounded up to whole blocks. */
static inline size_t direct_span(size_t n) {
  return (n + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
}

/* Switch O_DIRECT on for `fd`: its flags before (to give back to direct_end), or -1 when the file system refuses. */
static inline int direct_begin(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) return -1;
  return flags;
}

/* The descriptor's flags as they were before direct_begin. */
static inline void direct_end(int fd, int flags) {
  fcntl(fd, F_SETFL, flags);
}

#endif
