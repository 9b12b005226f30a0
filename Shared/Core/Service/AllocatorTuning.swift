import CMalloc

/// glibc's allocator settings for a process that allocates and frees
/// megabyte buffers on every call (request bodies, per-expert payloads,
/// all-reduce parts).
public enum AllocatorTuning {
    /// By default glibc serves such buffers with fresh `mmap`s, or hands freed
    /// heap back to the kernel, so every call page-faults its buffers in again,
    /// zeroed (a tenth of the gateway's CPU at batch 256, more than the copies
    /// themselves in an all-reduce). Buffers under `mmapThreshold` bytes come
    /// from the heap, and the heap is trimmed only when more than
    /// `trimThreshold` bytes at its top are free, so calls reuse mapped pages.
    public static func keepFreedMemory(mmapThreshold: Int32 = 32 << 20, trimThreshold: Int32 = 256 << 20) {
        _ = cmalloc_keep_freed_memory(mmapThreshold, trimThreshold)
    }
}
