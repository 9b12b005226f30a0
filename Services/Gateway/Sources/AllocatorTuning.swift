#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator settings for a process that allocates and frees
/// megabyte buffers on every call (request bodies, per-expert payloads).
public enum AllocatorTuning {
    /// By default glibc serves such buffers with fresh `mmap`s, or hands freed
    /// heap back to the kernel, so every call page-faults its buffers in again
    /// (a tenth of the gateway's CPU time at batch 256). Keeping up to
    /// `bytes` of freed memory per arena, and taking buffers below 32 MiB
    /// from the heap, lets calls reuse pages that are already mapped.
    public static func keepFreedMemory(upTo bytes: Int32 = 256 << 20) {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which Swift's Glibc module leaves out.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3
        _ = mallopt(trimThreshold, bytes)
        _ = mallopt(mmapThreshold, 32 << 20)
        #endif
    }
}
