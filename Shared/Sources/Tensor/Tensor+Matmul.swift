import COpenBLAS

/// Matrix products through OpenBLAS's `cblas_sgemm`.
extension Tensor {
    /// The matrix product `op(a) · op(b)` of two 2-D tensors, where `op`
    /// transposes its operand when asked (without copying it).
    /// - Throws: `TensorError` unless both are 2-D with matching inner dimensions.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws(TensorError) -> Tensor {
        let dims = try GemmDims(a, b, transposeA, transposeB, "matmul")
        var c = Tensor(zeros: [dims.m, dims.n])
        try c.scalars.withUnsafeMutableBufferPointer { (out) throws(TensorError) in
            try gemm(a, 0, b, 0, out.baseAddress, dims, alpha: 1, beta: 0)
        }
        return c
    }

    /// Accumulates a product into existing storage without allocating:
    /// `c = alpha · op(a) · op(b) + beta · c` (so `beta: 1` gives `c += a·b`).
    /// - Parameters:
    ///   - c: a 2-D tensor of shape `[m, n]` that receives the result.
    /// - Throws: `TensorError` if the shapes do not agree; `c` is then unchanged.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                              alpha: Float = 1, beta: Float = 0, into c: inout Tensor) throws(TensorError) {
        let dims = try GemmDims(a, b, transposeA, transposeB, "matmul")
        try c.checkStorage("matmul")
        guard c.shape == [dims.m, dims.n] else {
            throw TensorError("matmul", "output has shape \(describe(c.shape)), expected \(describe([dims.m, dims.n]))")
        }
        try c.scalars.withUnsafeMutableBufferPointer { (out) throws(TensorError) in
            try gemm(a, 0, b, 0, out.baseAddress, dims, alpha: alpha, beta: beta)
        }
    }

    /// One product per batch entry: `[batch, m, k] x [batch, k, n] -> [batch, m, n]`
    /// (with `k` and `m`/`n` swapped per operand when it is transposed).
    /// - Throws: `TensorError` unless both are 3-D with equal batch sizes and matching inner dimensions.
    public static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws(TensorError) -> Tensor {
        let op = "batchedMatmul"
        try a.checkStorage(op)
        try b.checkStorage(op)
        guard a.rank == 3, b.rank == 3 else {
            throw TensorError(op, "expected two 3-D tensors [batch, rows, columns], got \(describe(a.shape)) x \(describe(b.shape))")
        }
        guard a.shape[0] == b.shape[0] else {
            throw TensorError(op, "batch sizes differ: \(describe(a.shape)) x \(describe(b.shape))")
        }
        let batch = a.shape[0]
        let dims = try GemmDims(Array(a.shape.dropFirst()), Array(b.shape.dropFirst()), transposeA, transposeB, op,
                                fullShapes: (a.shape, b.shape))
        var c = Tensor(zeros: [batch, dims.m, dims.n])
        let aStride = a.shape[1] * a.shape[2], bStride = b.shape[1] * b.shape[2], cStride = dims.m * dims.n
        try c.scalars.withUnsafeMutableBufferPointer { (out) throws(TensorError) in
            for index in 0..<batch {
                try gemm(a, index * aStride, b, index * bStride, out.baseAddress.map { $0 + index * cStride }, dims, alpha: 1, beta: 0)
            }
        }
        return c
    }

    /// Calls `cblas_sgemm` on row-major operands starting at the given element offsets.
    private static func gemm(_ a: Tensor, _ aOffset: Int, _ b: Tensor, _ bOffset: Int, _ c: UnsafeMutablePointer<Float>?,
                             _ dims: GemmDims, alpha: Float, beta: Float) throws(TensorError) {
        guard dims.m > 0, dims.n > 0, let c else { return }
        if dims.k == 0 {
            // BLAS rejects k = 0 with some leading dimensions; the product is empty, so only beta applies.
            let count = dims.m * dims.n
            if beta == 0 { c.update(repeating: 0, count: count) } else { cblas_sscal(Int32(count), beta, c, 1) }
            return
        }
        a.scalars.withUnsafeBufferPointer { aBuffer in
            b.scalars.withUnsafeBufferPointer { bBuffer in
                cblas_sgemm(CblasRowMajor,
                            dims.transposeA ? CblasTrans : CblasNoTrans,
                            dims.transposeB ? CblasTrans : CblasNoTrans,
                            Int32(dims.m), Int32(dims.n), Int32(dims.k),
                            alpha, aBuffer.baseAddress! + aOffset, Int32(dims.lda),
                            bBuffer.baseAddress! + bOffset, Int32(dims.ldb),
                            beta, c, Int32(dims.n))
            }
        }
    }
}

/// The dimensions of one `op(A)[m, k] · op(B)[k, n]` product, validated.
private struct GemmDims {
    let m: Int, n: Int, k: Int
    let lda: Int, ldb: Int
    let transposeA: Bool, transposeB: Bool

    init(_ a: Tensor, _ b: Tensor, _ transposeA: Bool, _ transposeB: Bool, _ op: String) throws(TensorError) {
        try a.checkStorage(op)
        try b.checkStorage(op)
        guard a.rank == 2, b.rank == 2 else {
            throw TensorError(op, "expected two 2-D tensors, got \(describe(a.shape)) x \(describe(b.shape))")
        }
        try self.init(a.shape, b.shape, transposeA, transposeB, op)
    }

    /// `aShape` and `bShape` are the 2-D matrix shapes; `fullShapes` are shown in errors when given.
    init(_ aShape: [Int], _ bShape: [Int], _ transposeA: Bool, _ transposeB: Bool, _ op: String,
         fullShapes: ([Int], [Int])? = nil) throws(TensorError) {
        let (m, ka) = transposeA ? (aShape[1], aShape[0]) : (aShape[0], aShape[1])
        let (kb, n) = transposeB ? (bShape[1], bShape[0]) : (bShape[0], bShape[1])
        let shown = fullShapes ?? (aShape, bShape)
        guard ka == kb else {
            let flags = (transposeA ? " (a transposed)" : "") + (transposeB ? " (b transposed)" : "")
            throw TensorError(op, "inner dimensions differ: \(describe(shown.0)) x \(describe(shown.1))\(flags)")
        }
        // OpenBLAS here takes 32-bit dimensions.
        guard [m, n, ka, aShape[1], bShape[1]].allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw TensorError(op, "dimensions exceed the BLAS limit of \(Int32.max): \(describe(shown.0)) x \(describe(shown.1))")
        }
        self.m = m
        self.n = n
        self.k = ka
        self.lda = Swift.max(aShape[1], 1)
        self.ldb = Swift.max(bShape[1], 1)
        self.transposeA = transposeA
        self.transposeB = transposeB
    }
}
