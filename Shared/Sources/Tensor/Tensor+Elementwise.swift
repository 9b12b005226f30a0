import COpenBLAS

/// Elementwise arithmetic between tensors, with broadcasting over trailing axes.
///
/// Broadcasting rule: the right operand's shape, after dropping leading 1s,
/// must be a suffix of the left operand's shape (so a `[4]` bias adds to every
/// row of a `[3, 4]` activation), or the right operand holds one element.
/// The result has the left operand's shape.
extension Tensor {
    /// `self + other`, broadcasting `other`.
    public func adding(_ other: Tensor) throws(TensorError) -> Tensor { try binary(other, .add) }
    /// `self - other`, broadcasting `other`.
    public func subtracting(_ other: Tensor) throws(TensorError) -> Tensor { try binary(other, .subtract) }
    /// `self * other` elementwise, broadcasting `other`.
    public func multiplying(_ other: Tensor) throws(TensorError) -> Tensor { try binary(other, .multiply) }
    /// `self / other` elementwise, broadcasting `other`.
    public func dividing(_ other: Tensor) throws(TensorError) -> Tensor { try binary(other, .divide) }

    /// In-place `self += other`, broadcasting `other`; no allocation when storage is unshared.
    public mutating func add(_ other: Tensor) throws(TensorError) { try formBinary(other, .add) }
    /// In-place `self -= other`, broadcasting `other`.
    public mutating func subtract(_ other: Tensor) throws(TensorError) { try formBinary(other, .subtract) }
    /// In-place `self *= other` elementwise, broadcasting `other`.
    public mutating func multiply(_ other: Tensor) throws(TensorError) { try formBinary(other, .multiply) }
    /// In-place `self /= other` elementwise, broadcasting `other`.
    public mutating func divide(_ other: Tensor) throws(TensorError) { try formBinary(other, .divide) }

    /// `self += alpha * other` for tensors of the same shape (BLAS `saxpy`),
    /// the update step of most optimizers.
    public mutating func add(_ other: Tensor, scaledBy alpha: Float) throws(TensorError) {
        try checkStorage("add")
        try other.checkStorage("add")
        guard other.shape == shape else {
            throw TensorError("add", "shapes differ: \(describe(shape)) and \(describe(other.shape)); a scaled add needs equal shapes")
        }
        let count = self.count
        other.scalars.withUnsafeBufferPointer { x in
            scalars.withUnsafeMutableBufferPointer { y in
                Tensor.blasChunks(count) { start, length in
                    cblas_saxpy(length, alpha, x.baseAddress! + start, 1, y.baseAddress! + start, 1)
                }
            }
        }
    }

    /// Multiplies every element by `factor` in place (BLAS `sscal`).
    public mutating func scale(by factor: Float) {
        let count = self.count
        scalars.withUnsafeMutableBufferPointer { x in
            Tensor.blasChunks(count) { start, length in cblas_sscal(length, factor, x.baseAddress! + start, 1) }
        }
    }

    /// Calls `body` over `count` elements in pieces small enough for BLAS's 32-bit lengths.
    static func blasChunks(_ count: Int, _ body: (Int, Int32) -> Void) {
        var start = 0
        while start < count {
            let length = Swift.min(count - start, Int(Int32.max))
            body(start, Int32(length))
            start += length
        }
    }

    /// `lhs.adding(rhs)`: elementwise sum, broadcasting `rhs`.
    public static func + (lhs: Tensor, rhs: Tensor) throws(TensorError) -> Tensor { try lhs.adding(rhs) }
    /// `lhs.subtracting(rhs)`: elementwise difference, broadcasting `rhs`.
    public static func - (lhs: Tensor, rhs: Tensor) throws(TensorError) -> Tensor { try lhs.subtracting(rhs) }
    /// `lhs.multiplying(rhs)`: elementwise (Hadamard) product, broadcasting `rhs`; see `matmul` for matrix products.
    public static func * (lhs: Tensor, rhs: Tensor) throws(TensorError) -> Tensor { try lhs.multiplying(rhs) }
    /// `lhs.dividing(rhs)`: elementwise quotient, broadcasting `rhs`.
    public static func / (lhs: Tensor, rhs: Tensor) throws(TensorError) -> Tensor { try lhs.dividing(rhs) }
}

/// The four elementwise operations, applied in loops the compiler can vectorize.
enum BinaryOperation: String {
    case add, subtract, multiply, divide

    @inline(__always)
    func apply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .add: for i in 0..<count { out[i] = a[i] + b[i] }
        case .subtract: for i in 0..<count { out[i] = a[i] - b[i] }
        case .multiply: for i in 0..<count { out[i] = a[i] * b[i] }
        case .divide: for i in 0..<count { out[i] = a[i] / b[i] }
        }
    }

    @inline(__always)
    func apply(_ a: UnsafePointer<Float>, scalar b: Float, _ out: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .add: for i in 0..<count { out[i] = a[i] + b }
        case .subtract: for i in 0..<count { out[i] = a[i] - b }
        case .multiply: for i in 0..<count { out[i] = a[i] * b }
        case .divide: for i in 0..<count { out[i] = a[i] / b }
        }
    }
}

extension Tensor {
    /// Checks that `other` broadcasts onto `self` and returns how many elements one copy of it covers.
    private func broadcastLength(of other: Tensor, _ operation: BinaryOperation) throws(TensorError) -> Int {
        try checkStorage(operation.rawValue)
        try other.checkStorage(operation.rawValue)
        let trimmed = other.shape.drop { $0 == 1 }
        let fits = other.rank <= rank && (other.count == 1 || shape.suffix(trimmed.count).elementsEqual(trimmed))
        guard fits else {
            throw TensorError(operation.rawValue, "cannot broadcast \(describe(other.shape)) onto \(describe(shape)): "
                + "the second shape must be a suffix of the first, or hold one element")
        }
        return other.count
    }

    private func binary(_ other: Tensor, _ operation: BinaryOperation) throws(TensorError) -> Tensor {
        let inner = try broadcastLength(of: other, operation)
        let count = self.count
        let result = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    Tensor.broadcastLoop(a.baseAddress, b.baseAddress, out, count, inner, operation)
                }
            }
        }
        return Tensor(unchecked: shape, result)
    }

    private mutating func formBinary(_ other: Tensor, _ operation: BinaryOperation) throws(TensorError) {
        let inner = try broadcastLength(of: other, operation)
        let count = self.count
        other.scalars.withUnsafeBufferPointer { b in
            scalars.withUnsafeMutableBufferPointer { a in
                Tensor.broadcastLoop(a.baseAddress, b.baseAddress, a.baseAddress, count, inner, operation)
            }
        }
    }

    /// Applies `operation` to each `inner`-long block of `a` against `b`; `out` may equal `a`.
    private static func broadcastLoop(_ a: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?,
                                      _ count: Int, _ inner: Int, _ operation: BinaryOperation) {
        guard count > 0, let a, let b, let out else { return }
        if inner == 1 {
            operation.apply(a, scalar: b[0], out, count)
            return
        }
        var offset = 0
        while offset < count {
            operation.apply(a + offset, b, out + offset, inner)
            offset += inner
        }
    }
}

/// Arithmetic with a scalar on either side; these cannot fail.
extension Tensor {
    /// Adds `rhs` to every element.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.scalarOp(rhs, .add) }
    /// Subtracts `rhs` from every element.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.scalarOp(rhs, .subtract) }
    /// Multiplies every element by `rhs`.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.scalarOp(rhs, .multiply) }
    /// Divides every element by `rhs`.
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.scalarOp(rhs, .divide) }
    /// Adds `lhs` to every element.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { rhs.scalarOp(lhs, .add) }
    /// Multiplies every element by `lhs`.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.scalarOp(lhs, .multiply) }
    /// `lhs - x` for every element x.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { rhs.mapped { lhs - $0 } }
    /// `lhs / x` for every element x.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { rhs.mapped { lhs / $0 } }
    /// Negates every element.
    public static prefix func - (operand: Tensor) -> Tensor { operand.mapped { -$0 } }

    /// Adds `rhs` to every element in place.
    public static func += (lhs: inout Tensor, rhs: Float) { lhs.formScalarOp(rhs, .add) }
    /// Subtracts `rhs` from every element in place.
    public static func -= (lhs: inout Tensor, rhs: Float) { lhs.formScalarOp(rhs, .subtract) }
    /// Multiplies every element by `rhs` in place (BLAS `sscal`).
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs.scale(by: rhs) }
    /// Divides every element by `rhs` in place.
    public static func /= (lhs: inout Tensor, rhs: Float) { lhs.formScalarOp(rhs, .divide) }

    /// A tensor of the same shape with `transform` applied to every element.
    @inlinable
    public func mapped(_ transform: (Float) -> Float) -> Tensor {
        var copy = self
        copy.scalars.withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices { buffer[index] = transform(buffer[index]) }
        }
        return copy
    }

    private func scalarOp(_ value: Float, _ operation: BinaryOperation) -> Tensor {
        let count = self.count
        let result = FreshMemory.array(count: count) { (target: UnsafeMutablePointer<Float>) in
            scalars.withUnsafeBufferPointer { a in
                if let source = a.baseAddress { operation.apply(source, scalar: value, target, count) }
            }
        }
        // Storage keeps its count, so the shape stays as valid as it was.
        var copy = self
        copy.scalars = result
        return copy
    }

    private mutating func formScalarOp(_ value: Float, _ operation: BinaryOperation) {
        let count = self.count
        scalars.withUnsafeMutableBufferPointer { a in
            if let base = a.baseAddress { operation.apply(base, scalar: value, base, count) }
        }
    }
}
