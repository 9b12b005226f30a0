#if _endian(big)
#error("WireTensor copies little-endian payload bytes straight into native storage; big-endian hosts need byte swaps")
#endif

/// A tensor as it travels: a dtype, a shape and the raw little-endian bytes,
/// for any dtype (floats to compute on, 16-bit floats, int64 labels, masks).
///
/// The byte count always equals `product(shape) * dtype.byteSize`; the
/// initializers check it, so a `WireTensor` that exists is well-formed.
public struct WireTensor: Sendable, Equatable {
    /// The element type of `bytes`.
    public let dtype: DType
    /// The extent of each axis, outermost first.
    public let shape: [Int]
    /// The elements in row-major order, little-endian.
    public let bytes: [UInt8]

    /// Wraps raw bytes after checking they hold exactly `product(shape)` elements of `dtype`.
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) throws(SafetensorsError) {
        let count = try WireTensor.elementCount(shape)
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, expected == bytes.count else {
            throw SafetensorsError(.invalidTensor, "a \(dtype.name) tensor of shape \(describe(shape)) needs "
                + "\(overflow ? "too many" : String(expected)) bytes, got \(bytes.count)")
        }
        self.init(unchecked: dtype, shape, bytes)
    }

    /// For callers that computed `bytes` from `shape` themselves.
    init(unchecked dtype: DType, _ shape: [Int], _ bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// The number of elements.
    public var count: Int { bytes.count / dtype.byteSize }

    /// The most elements a received shape may describe, counting zero
    /// dimensions as 1 (2^48, far beyond any tensor that fits in memory).
    public static let maximumElementCount = 1 << 48

    /// The element count of `shape`, rejecting negative dimensions and shapes
    /// too large to hold. The product of the nonzero dimensions is bounded
    /// too: a shape like [0, 2^62, 4] holds no elements, but code that
    /// multiplies its trailing dimensions (row widths, strides) would overflow.
    static func elementCount(_ shape: [Int]) throws(SafetensorsError) -> Int {
        guard !shape.contains(where: { $0 < 0 }) else {
            throw SafetensorsError(.invalidTensor, "shape \(describe(shape)) has a negative dimension")
        }
        guard let count = boundedElementCount(shape) else {
            throw SafetensorsError(.invalidTensor, "shape \(describe(shape)) has too many elements "
                + "(the product of its nonzero dimensions must be at most 2^48)")
        }
        return count
    }

    /// The element count of a shape of non-negative dimensions, or nil if the
    /// product of its nonzero dimensions exceeds `maximumElementCount`.
    static func boundedElementCount(_ shape: [Int]) -> Int? {
        var nonzero = 1
        var hasZero = false
        for dimension in shape {
            if dimension == 0 { hasZero = true; continue }
            let (next, overflow) = nonzero.multipliedReportingOverflow(by: dimension)
            guard !overflow, next <= maximumElementCount else { return nil }
            nonzero = next
        }
        return hasZero ? 0 : nonzero
    }

    /// Builds a tensor of `count` elements of `Element` by filling raw storage.
    static func make<Element>(_ dtype: DType, _ shape: [Int], _ count: Int, _ fill: (UnsafeMutablePointer<Element>) -> Void) -> WireTensor {
        let bytes = FreshMemory.array(count: count * dtype.byteSize) { (base: UnsafeMutablePointer<UInt8>) in
            fill(UnsafeMutableRawPointer(base).bindMemory(to: Element.self, capacity: count))
        }
        return WireTensor(unchecked: dtype, shape, bytes)
    }

    /// Calls `body` with the bytes viewed as `count` elements of `Element`.
    func withElements<Element, Result>(as type: Element.Type, _ body: (UnsafePointer<Element>) -> Result) -> Result? {
        guard !bytes.isEmpty else { return nil }
        return bytes.withUnsafeBytes { raw in
            // Array storage is 16-byte aligned, so every dtype here can be read in place.
            body(raw.baseAddress!.assumingMemoryBound(to: Element.self))
        }
    }
}

// MARK: Float tensors

extension WireTensor {
    /// A tensor's scalars encoded as `dtype`: F32 (a single copy), F16
    /// (clamped to the finite float16 range, as the float16 codec does), BF16 or F64.
    /// - Throws: `SafetensorsError` for a non-float dtype or a tensor whose storage does not match its shape.
    public init(_ tensor: Tensor, as dtype: DType = .f32) throws(SafetensorsError) {
        do { try tensor.checkStorage("encode") } catch { throw SafetensorsError(.invalidTensor, error.description) }
        let count = tensor.count
        self = try tensor.scalars.withUnsafeBufferPointer { (source) throws(SafetensorsError) -> WireTensor in
            let source = source.baseAddress
            switch dtype {
            case .f32:
                return WireTensor(unchecked: dtype, tensor.shape, FreshMemory.bytes(copying: source!, byteCount: count * 4))
            case .f16:
                return .make(dtype, tensor.shape, count) { (target: UnsafeMutablePointer<UInt16>) in
                    HalfPrecision.encodeFloat16(source!, target, count, clamp: true)
                }
            case .bf16:
                return .make(dtype, tensor.shape, count) { (target: UnsafeMutablePointer<UInt16>) in
                    HalfPrecision.encodeBFloat16(source!, target, count)
                }
            case .f64:
                return .make(dtype, tensor.shape, count) { (target: UnsafeMutablePointer<Double>) in
                    for i in 0..<count { target[i] = Double(source![i]) }
                }
            default:
                throw SafetensorsError(.dtypeMismatch, "cannot encode a float tensor as \(dtype.name); expected F32, F16, BF16 or F64")
            }
        }
    }
}

extension Tensor {
    /// Decodes a float payload (F32 in a single copy; F16, BF16 and F64 converted to float32).
    /// - Throws: `SafetensorsError` if the dtype is not a float type.
    public init(_ wire: WireTensor) throws(SafetensorsError) {
        let count = wire.count
        switch wire.dtype {
        case .f32:
            self.init(unchecked: wire.shape, FreshMemory.array(count: count) { (target: UnsafeMutablePointer<Float>) in
                wire.bytes.withUnsafeBytes { FreshMemory.copy(target, $0.baseAddress!, byteCount: $0.count) }
            })
        case .f16, .bf16, .f64:
            let scalars = FreshMemory.array(count: count) { (target: UnsafeMutablePointer<Float>) in
                switch wire.dtype {
                case .f16: wire.withElements(as: UInt16.self) { HalfPrecision.decodeFloat16($0, target, count) }
                case .bf16: wire.withElements(as: UInt16.self) { HalfPrecision.decodeBFloat16($0, target, count) }
                default: wire.withElements(as: Double.self) { for i in 0..<count { target[i] = Float($0[i]) } }
                }
            }
            self.init(unchecked: wire.shape, scalars)
        default:
            throw SafetensorsError(.dtypeMismatch, "expected a float tensor (F32, F16, BF16 or F64), got \(wire.dtype.name)")
        }
    }
}

// MARK: Labels and masks

extension WireTensor {
    /// An I64 tensor, e.g. class labels.
    public init(int64 values: [Int64], shape: [Int]) throws(SafetensorsError) {
        try self.init(dtype: .i64, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }

    /// A U8 tensor, e.g. quantization codes.
    public init(uint8 values: [UInt8], shape: [Int]) throws(SafetensorsError) {
        try self.init(dtype: .u8, shape: shape, bytes: values)
    }

    /// A BOOL tensor (one byte per element, 0 or 1), e.g. an attention or dropout mask.
    public init(mask values: [Bool], shape: [Int]) throws(SafetensorsError) {
        try self.init(dtype: .bool, shape: shape, bytes: values.map { $0 ? 1 : 0 })
    }

    /// The elements as Int64; accepts I64, I32, U8 and BOOL.
    public func int64Values() throws(SafetensorsError) -> [Int64] {
        let count = self.count
        switch dtype {
        case .i64:
            return [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
                bytes.withUnsafeBytes { raw in
                    if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                }
                initialized = count
            }
        case .i32: return withElements(as: Int32.self) { p in (0..<count).map { Int64(p[$0]) } } ?? []
        case .u8, .bool: return bytes.map { Int64($0) }
        default:
            throw SafetensorsError(.dtypeMismatch, "expected an integer tensor (I64, I32, U8 or BOOL), got \(dtype.name)")
        }
    }

    /// The elements as bytes; accepts U8 and BOOL.
    public func uint8Values() throws(SafetensorsError) -> [UInt8] {
        guard dtype == .u8 || dtype == .bool else {
            throw SafetensorsError(.dtypeMismatch, "expected a U8 or BOOL tensor, got \(dtype.name)")
        }
        return bytes
    }

    /// The elements as booleans (non-zero is true); accepts BOOL and U8.
    public func boolValues() throws(SafetensorsError) -> [Bool] {
        try uint8Values().map { $0 != 0 }
    }
}
