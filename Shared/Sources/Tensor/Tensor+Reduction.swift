import COpenBLAS

/// Sums, means and maxima, over one axis or the whole tensor.
///
/// Sums go through BLAS `sgemv` against a vector of ones, which vectorizes
/// and accumulates in blocks, so long reductions keep their precision better
/// than a naive running sum.
extension Tensor {
    /// The sum along `axis` (negative counts from the end), which is removed
    /// from the shape unless `keepingDimension` is true.
    public func sum(alongAxis axis: Int, keepingDimension: Bool = false) throws(TensorError) -> Tensor {
        let view = try ReductionView(self, axis, "sum")
        var result = [Float](repeating: 0, count: view.outer * view.inner)
        guard view.length > 0, !result.isEmpty else { return Tensor(unchecked: view.resultShape(keepingDimension), result) }
        let ones = [Float](repeating: 1, count: view.length)
        scalars.withUnsafeBufferPointer { x in
            ones.withUnsafeBufferPointer { ones in
                result.withUnsafeMutableBufferPointer { out in
                    if view.inner == 1 {
                        // Rows of a [outer, length] matrix times ones.
                        Tensor.gemv(CblasNoTrans, view.outer, view.length, x.baseAddress!, ones.baseAddress!, out.baseAddress!)
                    } else {
                        // Each outer slice is a [length, inner] matrix; its column sums are ones · slice.
                        for o in 0..<view.outer {
                            Tensor.gemv(CblasTrans, view.length, view.inner, x.baseAddress! + o * view.length * view.inner,
                                        ones.baseAddress!, out.baseAddress! + o * view.inner)
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: view.resultShape(keepingDimension), result)
    }

    /// The mean along `axis`; the axis must not be empty.
    public func mean(alongAxis axis: Int, keepingDimension: Bool = false) throws(TensorError) -> Tensor {
        let view = try ReductionView(self, axis, "mean")
        guard view.length > 0 else { throw TensorError("mean", "axis \(axis) of \(describe(shape)) is empty") }
        var total = try sum(alongAxis: axis, keepingDimension: keepingDimension)
        total.scale(by: 1 / Float(view.length))
        return total
    }

    /// The maximum along `axis`; the axis must not be empty.
    public func max(alongAxis axis: Int, keepingDimension: Bool = false) throws(TensorError) -> Tensor {
        let view = try ReductionView(self, axis, "max")
        guard view.length > 0 else { throw TensorError("max", "axis \(axis) of \(describe(shape)) is empty") }
        let (outer, length, inner) = (view.outer, view.length, view.inner)
        guard outer * inner > 0 else { return Tensor(unchecked: view.resultShape(keepingDimension), []) }
        let result = [Float](unsafeUninitializedCapacity: outer * inner) { out, initialized in
            scalars.withUnsafeBufferPointer { x in
                let x = x.baseAddress!, out = out.baseAddress!
                for o in 0..<outer {
                    let slice = x + o * length * inner
                    if inner == 1 {
                        out[o] = rowMax(slice, length)
                    } else {
                        let target = out + o * inner
                        target.update(from: slice, count: inner)
                        for row in 1..<length {
                            let source = slice + row * inner
                            for i in 0..<inner { target[i] = source[i] > target[i] ? source[i] : target[i] }
                        }
                    }
                }
            }
            initialized = outer * inner
        }
        return Tensor(unchecked: view.resultShape(keepingDimension), result)
    }

    /// The sum of all elements (accumulated in double precision).
    public func sum() -> Float {
        scalars.withUnsafeBufferPointer { x in
            var total: Double = 0
            var start = 0
            // Float partial sums over short blocks vectorize; the double total keeps long sums exact enough.
            while start < x.count {
                let end = Swift.min(start + 4096, x.count)
                total += Double(rowSum(x.baseAddress! + start, end - start))
                start = end
            }
            return Float(total)
        }
    }

    /// The mean of all elements (NaN for an empty tensor).
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }

    /// The largest element, or nil for an empty tensor.
    public func max() -> Float? {
        count == 0 ? nil : scalars.withUnsafeBufferPointer { rowMax($0.baseAddress!, $0.count) }
    }

    /// `y = op(A) · x` for a row-major [rows, columns] matrix A, in 32-bit-sized pieces.
    private static func gemv(_ transpose: CBLAS_TRANSPOSE, _ rows: Int, _ columns: Int, _ a: UnsafePointer<Float>,
                             _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, transpose, Int32(rows), Int32(columns), 1, a, Int32(Swift.max(columns, 1)), x, 1, 0, y, 1)
    }
}

/// The maximum of `count > 0` contiguous floats, eight lanes at a time.
@inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var index = 0
    var best = -Float.infinity
    if count >= 8 {
        var lanes = SIMD8<Float>(repeating: -.infinity)
        let raw = UnsafeRawPointer(x)
        while index + 8 <= count {
            // `replace(with:where:)` compiles to a vector max; `pointwiseMax` here runs lane by lane, 7x slower.
            let values = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            lanes.replace(with: values, where: values .> lanes)
            index += 8
        }
        best = lanes.max()
    }
    while index < count {
        best = x[index] > best ? x[index] : best
        index += 1
    }
    return best
}

/// The sum of contiguous floats, eight lanes at a time.
@inline(__always)
func rowSum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var index = 0
    var lanes = SIMD8<Float>()
    let raw = UnsafeRawPointer(x)
    while index + 8 <= count {
        lanes += raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
        index += 8
    }
    var total = lanes.sum()
    while index < count {
        total += x[index]
        index += 1
    }
    return total
}

/// A tensor seen as `[outer, length, inner]` around the reduced axis.
struct ReductionView {
    let shape: [Int]
    let axis: Int
    let outer: Int, length: Int, inner: Int

    init(_ tensor: Tensor, _ axis: Int, _ operation: String) throws(TensorError) {
        try tensor.checkStorage(operation)
        let resolved = axis < 0 ? axis + tensor.rank : axis
        guard resolved >= 0, resolved < tensor.rank else {
            throw TensorError(operation, "axis \(axis) is out of range for shape \(describe(tensor.shape))")
        }
        guard tensor.shape.allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw TensorError(operation, "dimensions of \(describe(tensor.shape)) exceed the BLAS limit of \(Int32.max)")
        }
        shape = tensor.shape
        self.axis = resolved
        outer = tensor.shape[..<resolved].reduce(1, *)
        length = tensor.shape[resolved]
        inner = tensor.shape[(resolved + 1)...].reduce(1, *)
    }

    func resultShape(_ keepingDimension: Bool) -> [Int] {
        var result = shape
        if keepingDimension { result[axis] = 1 } else { result.remove(at: axis) }
        return result
    }
}
