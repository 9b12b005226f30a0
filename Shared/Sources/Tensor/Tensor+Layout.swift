import COpenBLAS

/// Joining, splitting and transposing: moving data between layouts.
extension Tensor {
    /// Joins tensors along axis 0 (the batch axis); all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor]) throws(TensorError) -> Tensor {
        guard let first = tensors.first else { throw TensorError("concatenate", "needs at least one tensor") }
        for (index, tensor) in tensors.enumerated() {
            try tensor.checkStorage("concatenate")
            guard tensor.rank >= 1 else {
                throw TensorError("concatenate", "tensor \(index) is a scalar; each tensor needs a batch axis")
            }
            guard tensor.shape.dropFirst() == first.shape.dropFirst() else {
                throw TensorError("concatenate", "tensor \(index) has shape \(describe(tensor.shape)), "
                    + "expected [_, \(first.shape.dropFirst().map(String.init).joined(separator: ", "))] like tensor 0")
            }
        }
        var shape = first.shape
        shape[0] = tensors.reduce(0) { $0 + $1.shape[0] }
        var scalars: [Float] = []
        scalars.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        for tensor in tensors { scalars.append(contentsOf: tensor.scalars) }
        return Tensor(unchecked: shape, scalars)
    }

    /// Splits along axis 0 into pieces of the given sizes, which must add up to `shape[0]`.
    public func split(sizes: [Int]) throws(TensorError) -> [Tensor] {
        try checkStorage("split")
        guard let batch = shape.first else { throw TensorError("split", "cannot split a scalar") }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == batch else {
            throw TensorError("split", "sizes \(describe(sizes)) must be non-negative and add up to \(batch), the first dimension of \(describe(shape))")
        }
        var pieces: [Tensor] = []
        var start = 0
        for size in sizes {
            pieces.append(try rows(start..<(start + size)))
            start += size
        }
        return pieces
    }

    /// The entries `range` of axis 0 as a new tensor.
    public func rows(_ range: Range<Int>) throws(TensorError) -> Tensor {
        try checkStorage("rows")
        guard let batch = shape.first else { throw TensorError("rows", "cannot take rows of a scalar") }
        guard range.lowerBound >= 0, range.upperBound <= batch else {
            throw TensorError("rows", "range \(range) is out of bounds for first dimension \(batch) of \(describe(shape))")
        }
        let stride = shape.dropFirst().reduce(1, *)
        var pieceShape = shape
        pieceShape[0] = range.count
        return Tensor(unchecked: pieceShape, Array(scalars[(range.lowerBound * stride)..<(range.upperBound * stride)]))
    }

    /// The transpose of a 2-D tensor (OpenBLAS `somatcopy`, which blocks for the cache).
    public func transposed() throws(TensorError) -> Tensor {
        try checkStorage("transpose")
        guard rank == 2 else { throw TensorError("transpose", "expected a 2-D tensor, got \(describe(shape))") }
        let (rows, columns) = (shape[0], shape[1])
        guard rows <= Int(Int32.max), columns <= Int(Int32.max) else {
            throw TensorError("transpose", "dimensions of \(describe(shape)) exceed the BLAS limit of \(Int32.max)")
        }
        guard count > 0 else { return Tensor(unchecked: [columns, rows], []) }
        let result = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            scalars.withUnsafeBufferPointer { x in
                cblas_somatcopy(CblasRowMajor, CblasTrans, Int32(rows), Int32(columns), 1,
                                x.baseAddress, Int32(columns), out, Int32(rows))
            }
        }
        return Tensor(unchecked: [columns, rows], result)
    }
}
