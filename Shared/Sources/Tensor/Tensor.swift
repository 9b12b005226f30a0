/// A dense, contiguous, row-major tensor of 32-bit floats.
///
/// Storage is a Swift `Array`, so copies are cheap until one side writes
/// (copy-on-write), and a tensor can be sent between tasks freely.
/// `scalars.count` must always equal the product of `shape`; every operation
/// checks this before it touches memory, so a tensor whose storage was
/// replaced with the wrong number of scalars gives a `TensorError`, never an
/// out-of-bounds access.
public struct Tensor: Sendable, Equatable {
    /// The extent of each axis, outermost first. Empty for a scalar.
    public private(set) var shape: [Int]
    /// The elements in row-major order (the last axis varies fastest).
    public var scalars: [Float]

    /// A tensor over existing scalars.
    /// - Throws: `TensorError` if a dimension is negative or the scalar count
    ///   differs from the product of `shape`.
    public init(shape: [Int], scalars: [Float]) throws(TensorError) {
        let expected = try Tensor.elementCount(of: shape, "init")
        guard expected == scalars.count else {
            throw TensorError("init", "shape \(describe(shape)) needs \(expected) scalars, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros. Negative dimensions are treated as zero; the shape
    /// must describe an allocatable tensor (check sizes that come from a
    /// request first, or use `init(shape:scalars:)`, which validates).
    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// A tensor with every element equal to `value`. Negative dimensions are treated as zero.
    public init(repeating value: Float, shape: [Int]) {
        let shape = shape.map { Swift.max($0, 0) }
        self.shape = shape
        self.scalars = Array(repeating: value, count: shape.reduce(1, *))
    }

    /// A rank-0 tensor holding one value.
    public init(scalar value: Float) {
        self.shape = []
        self.scalars = [value]
    }

    /// Builds a tensor whose storage was checked by the caller; internal fast path.
    init(unchecked shape: [Int], _ scalars: [Float]) {
        self.shape = shape
        self.scalars = scalars
    }

    /// The number of elements.
    public var count: Int { scalars.count }

    /// The number of axes (0 for a scalar).
    public var rank: Int { shape.count }

    /// The same scalars under a new shape with the same element count.
    /// One dimension may be `-1`, meaning "whatever makes the count match".
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        try checkStorage("reshape")
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1 else {
            throw TensorError("reshape", "at most one dimension may be -1, got \(describe(newShape))")
        }
        if let axis = inferred.first {
            let known = newShape.enumerated().filter { $0.offset != axis }.map(\.element)
            let rest = try Tensor.elementCount(of: known, "reshape")
            guard rest > 0, count % rest == 0 else {
                throw TensorError("reshape", "cannot infer -1 in \(describe(newShape)) for \(count) elements")
            }
            resolved[axis] = count / rest
        }
        let expected = try Tensor.elementCount(of: resolved, "reshape")
        guard expected == count else {
            throw TensorError("reshape", "cannot reshape \(describe(shape)) (\(count) elements) to \(describe(newShape)) (\(expected) elements)")
        }
        return Tensor(unchecked: resolved, scalars)
    }

    /// The element count of a shape, rejecting negative dimensions and overflow.
    static func elementCount(of shape: [Int], _ operation: String) throws(TensorError) -> Int {
        var product = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw TensorError(operation, "negative dimension in shape \(describe(shape))")
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw TensorError(operation, "shape \(describe(shape)) has too many elements") }
            product = next
        }
        return product
    }

    /// Confirms storage and shape agree before raw-pointer loops rely on it.
    func checkStorage(_ operation: String) throws(TensorError) {
        var product = 1
        for dimension in shape { product = product &* dimension }
        guard product == scalars.count else {
            throw TensorError(operation, "tensor of shape \(describe(shape)) holds \(scalars.count) scalars instead of \(product)")
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few scalars, enough for logs and test failures.
    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(describe(shape)), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}
