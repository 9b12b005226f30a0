import COpenBLAS
import Shared

extension Averager {
    /// Settings for an averager process (its `main` calls this once, first).
    ///
    /// - malloc: an all-reduce allocates and frees part-sized buffers (512 KiB
    ///   by default) many times a second; they are kept for reuse (up to 1 GiB
    ///   at the top of a heap), while a whole vector still comes from the kernel.
    /// - OpenBLAS: a reducer sums parts with `saxpy`, many parts at once on the
    ///   Swift executor. OpenBLAS's own threads would split each small sum
    ///   again and spin in `sched_yield` waiting for each other, taking the
    ///   cores from the requests; one thread per call is faster here.
    public static func tuneProcess() {
        AllocatorTuning.keepFreedMemory(trimThreshold: 1 << 30)
        openblas_set_num_threads(1)
    }
}
