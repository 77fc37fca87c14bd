/**
 * libfuse mount options. big_writes is what makes writes fast: without it the kernel sends 4 KiB writes
 * (about 30 MB/s through fuse-native); with it, 128 KiB (libfuse 2.9's ceiling, so max_write/max_read above
 * that change nothing). kernel_cache keeps file pages across opens: safe because every change to a vault goes
 * through this mount. Measurements: native-notes/.
 */
export const KERNEL_OPTIONS = ['big_writes', 'max_write=131072', 'max_read=131072', 'kernel_cache', 'default_permissions', 'fsname=sefs', 'subtype=sefs'];
/** Attributes and names stay cached in the kernel this long (s): we are the only writer. */
export const ATTR_TIMEOUT_S = 1;
