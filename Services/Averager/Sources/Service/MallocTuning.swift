import CMalloc

extension Averager {
    /// An all-reduce allocates and frees part-sized buffers (512 KiB by
    /// default) many times a second. By default glibc hands freed memory back
    /// to the kernel (trimming the heap, or unmapping once its adaptive mmap
    /// threshold is passed) and every new buffer faults its pages in again,
    /// zeroed: that cost more than the copies themselves. This keeps memory
    /// freed by buffers under 32 MiB in the process for reuse (up to 1 GiB at
    /// the top of a heap), for the whole process. Larger buffers (a whole
    /// vector) still come from and go back to the kernel.
    public static func keepFreedMemoryForReuse() {
        _ = cmalloc_keep_freed_memory(32 << 20, 1 << 30)
    }
}
