// glibc's malloc tuning (malloc.h), which the Glibc module does not export.
#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
#include <malloc.h>

/// Keeps freed memory below `mmap_threshold` bytes in the process for reuse:
/// allocations that small come from the heap, and the heap is trimmed only
/// when more than `trim_threshold` bytes at its top are free. Returns 1 on success.
static inline int cmalloc_keep_freed_memory(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) && mallopt(M_TRIM_THRESHOLD, trim_threshold);
}
#endif
