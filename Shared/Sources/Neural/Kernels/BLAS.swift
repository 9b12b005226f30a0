import COpenBLAS

/// The BLAS calls the layers make, on raw row-major storage.
///
/// Layers validate shapes before they get here (and keep every dimension
/// within BLAS's 32-bit range through `Matrix`), so these wrappers only
/// translate to OpenBLAS's calling convention.
public enum BLAS {
    /// The threads OpenBLAS uses for one call (set by OPENBLAS_NUM_THREADS, else the core count).
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// `c = alpha · op(a) · op(b) + beta · c` for row-major operands with
    /// explicit leading dimensions, so a layer can multiply sub-matrices in
    /// place (one attention head's columns of a packed projection, say).
    /// With `beta == 0` the previous contents of `c` are never read.
    static func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // Nothing to multiply: only beta applies (and BLAS rejects some leading dimensions at k = 0).
            for row in 0..<m {
                let target = c + row * ldc
                for column in 0..<n { target[column] = beta == 0 ? 0 : beta * target[column] }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `sums = columnSums(a) + beta · sums` for a row-major `[rows, columns]`
    /// matrix: the bias gradient of a layer applied to every row.
    static func columnSums(_ a: UnsafePointer<Float>, rows: Int, columns: Int,
                           beta: Float = 0, into sums: UnsafeMutablePointer<Float>) {
        guard columns > 0 else { return }
        guard rows > 0 else {
            for column in 0..<columns { sums[column] = beta == 0 ? 0 : beta * sums[column] }
            return
        }
        let ones = [Float](repeating: 1, count: rows)
        ones.withUnsafeBufferPointer { ones in
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(columns), 1, a, Int32(columns),
                        ones.baseAddress!, 1, beta, sums, 1)
        }
    }

    /// `y += alpha · x` over `count` elements.
    static func axpy(_ count: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        Tensor.blasChunks(count) { start, length in cblas_saxpy(length, alpha, x + start, 1, y + start, 1) }
    }

    /// The dot product of `count` elements, accumulated by BLAS.
    static func dot(_ count: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
        var total: Double = 0
        Tensor.blasChunks(count) { start, length in total += Double(cblas_sdot(length, x + start, 1, y + start, 1)) }
        return total
    }
}
