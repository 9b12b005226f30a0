import COpenBLAS

/// Facts about the BLAS library the tensors run on.
public enum BLAS {
    /// The threads OpenBLAS uses for one call (set by OPENBLAS_NUM_THREADS, else the core count).
    public static var threadCount: Int { Int(openblas_get_num_threads()) }
}
