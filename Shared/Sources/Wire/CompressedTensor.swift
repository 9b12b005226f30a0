/// A float tensor in compressed form: the codec, the original shape, the
/// stored parts (each an ordinary safetensors tensor) and the codec's
/// parameters. `TensorBundle` writes the parts as `name`, `name.codebook`...
/// and describes them in `__metadata__`, so any safetensors reader sees them.
public struct CompressedTensor: Sendable, Equatable {
    /// One stored piece; the main part (codes or 16-bit values) has an empty suffix.
    public struct Part: Sendable, Equatable {
        /// Appended to the tensor's name to name this part, e.g. ".codebook".
        public let suffix: String
        /// The stored data.
        public let tensor: WireTensor

        /// A part named by `suffix` ("" for the main part).
        public init(_ suffix: String, _ tensor: WireTensor) {
            self.suffix = suffix
            self.tensor = tensor
        }
    }

    /// The codec that produced the parts.
    public let codec: CompressionCodec
    /// The shape of the original tensor.
    public let shape: [Int]
    /// The dtype of the original tensor (always F32: tensors compute in float32).
    public let originalDType: DType
    /// The stored pieces, main part first.
    public let parts: [Part]
    /// Codec parameters worth recording (block size, scale...); informative,
    /// except where a decoder needs them (`block_size`).
    public let parameters: [String: JSON]

    /// Assembles a compressed tensor from received parts; `decompressed()` checks that they fit.
    public init(codec: CompressionCodec, shape: [Int], parts: [Part], parameters: [String: JSON] = [:]) {
        self.codec = codec
        self.shape = shape
        self.originalDType = .f32
        self.parts = parts
        self.parameters = parameters
    }

    init(_ codec: CompressionCodec, _ shape: [Int], _ parts: [Part], _ parameters: [String: JSON] = [:]) {
        self.init(codec: codec, shape: shape, parts: parts, parameters: parameters)
    }

    /// The element count of the original tensor.
    public var count: Int { shape.reduce(1, *) }

    /// Bytes of all parts together (what the data section carries).
    public var byteCount: Int { parts.reduce(0) { $0 + $1.tensor.bytes.count } }

    /// The original tensor (up to the codec's error).
    /// - Throws: `SafetensorsError` if the parts do not fit the codec and shape.
    public func decompressed() throws(SafetensorsError) -> Tensor {
        _ = try WireTensor.elementCount(shape)
        return try codec.decompress(self)
    }

    /// The part with this suffix, checked for dtype and element count.
    func part(_ suffix: String, dtype: DType, count: Int) throws(SafetensorsError) -> WireTensor {
        guard let part = parts.first(where: { $0.suffix == suffix }) else {
            throw SafetensorsError(.invalidCompression, "\(codec.rawValue) tensor is missing its part '\(suffix.isEmpty ? "(main)" : suffix)'")
        }
        guard part.tensor.dtype == dtype, part.tensor.count == count else {
            throw SafetensorsError(.invalidCompression, "\(codec.rawValue) part '\(suffix.isEmpty ? "(main)" : suffix)' must hold "
                + "\(count) \(dtype.name) values for shape \(describe(shape)), got \(part.tensor.count) \(part.tensor.dtype.name)")
        }
        return part.tensor
    }

    /// The description written to `__metadata__`: codec, original dtype and shape, part suffixes, parameters.
    var descriptor: JSON {
        var fields = parameters
        fields["codec"] = .string(codec.rawValue)
        fields["dtype"] = .string(originalDType.name)
        fields["shape"] = .array(shape.map(JSON.int))
        fields["parts"] = .array(parts.map { .string($0.suffix) })
        return .object(fields)
    }
}
