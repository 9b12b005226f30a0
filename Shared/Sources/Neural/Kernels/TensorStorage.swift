/// Raw access to tensor storage for the layer kernels.
///
/// Kernels run after validation, on tensors whose storage matches their
/// shape, so they can loop over pointers without per-element checks.
extension Tensor {
    /// A tensor of `shape` whose storage `fill` initializes completely (fresh
    /// memory with huge-page advice when large; nothing is zeroed first).
    static func filled(shape: [Int], _ fill: (UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        Tensor(unchecked: shape, FreshMemory.array(count: shape.reduce(1, *), fill))
    }

    /// Calls `body` with a pointer to the scalars.
    @inline(__always)
    func read<Result>(_ body: (UnsafePointer<Float>) -> Result) -> Result {
        scalars.withUnsafeBufferPointer { body($0.baseAddress ?? Tensor.emptyStorage) }
    }

    /// Calls `body` with a mutable pointer to the scalars (copying them first
    /// if the storage is shared).
    @inline(__always)
    mutating func write<Result>(_ body: (UnsafeMutablePointer<Float>) -> Result) -> Result {
        scalars.withUnsafeMutableBufferPointer { body($0.baseAddress ?? UnsafeMutablePointer(mutating: Tensor.emptyStorage)) }
    }

    /// Stands in for the base address of empty storage; never dereferenced,
    /// since a kernel touches `count` elements and `count` is zero.
    private static var emptyStorage: UnsafePointer<Float> { UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)! }
}

/// A tensor read as a matrix: every axis but the last is flattened into rows.
///
/// Layers that act on the last axis (Linear, LayerNorm, Softmax) accept any
/// leading shape, `[batch, features]` or `[batch, sequence, features]`, and
/// check it here once.
struct Rows {
    /// The number of rows (the product of the leading axes).
    let count: Int
    /// The length of each row (the last axis).
    let width: Int

    /// - Parameters:
    ///   - width: the required last dimension, or nil to accept any.
    ///   - layer: the layer's name, for the error message.
    ///   - role: what the tensor is to the layer ("input", "output gradient").
    init(_ tensor: Tensor, width: Int?, _ layer: String, _ role: String = "input") throws(NeuralError) {
        try checkStorage(tensor, layer, role)
        guard let last = tensor.shape.last, tensor.rank >= 2 else {
            throw .input(layer, "\(role) must have a batch axis and a feature axis, got shape \(describe(tensor.shape))")
        }
        if let width, last != width {
            throw .input(layer, "\(role) has \(last) features (shape \(describe(tensor.shape))), expected \(width)")
        }
        guard tensor.count > 0 else { throw .input(layer, "\(role) is empty (shape \(describe(tensor.shape)))") }
        // BLAS takes 32-bit dimensions.
        guard tensor.count / last <= Int(Int32.max), last <= Int(Int32.max) else {
            throw .input(layer, "\(role) of shape \(describe(tensor.shape)) exceeds the BLAS limit of \(Int32.max) rows or columns")
        }
        self.count = tensor.count / last
        self.width = last
    }
}

/// `shape` with its last dimension replaced: the output shape of a layer
/// that maps the feature axis to `last` features.
func replacingLast(_ shape: [Int], with last: Int) -> [Int] {
    var result = shape
    result[result.count - 1] = last
    return result
}

/// Checks that a gradient has the shape of the value it is the gradient of.
func checkSameShape(_ gradient: Tensor, _ value: Tensor, _ layer: String, _ role: String = "output gradient") throws(NeuralError) {
    try checkStorage(gradient, layer, role)
    guard gradient.shape == value.shape else {
        throw .input(layer, "\(role) has shape \(describe(gradient.shape)), expected \(describe(value.shape))")
    }
}

/// Checks that a tensor's storage holds as many scalars as its shape says
/// (`scalars` is public and can be replaced), so kernels may trust the shape.
func checkStorage(_ tensor: Tensor, _ layer: String, _ role: String = "input") throws(NeuralError) {
    do { try tensor.checkStorage(layer) } catch { throw .input(layer, "\(role): \(error.reason)") }
}
