/// Named float tensors plus string metadata: the unit services send, with
/// float tensors optionally compressed.
///
/// On the wire a bundle is a plain safetensors file. Uncompressed tensors are
/// F32. A compressed tensor `x` is stored as its parts (`x`, `x.codebook`,
/// `x.mean`...), and `__metadata__` describes it under the key
/// `compression.x` as a JSON string, e.g.
/// `{"codec":"uniform_8bit","dtype":"F32","shape":[128,64],"parts":["",".codebook"],...}`;
/// `compression` names the codec of the whole bundle. A Python reader thus
/// sees what each tensor is and how to rebuild it. Metadata keys `compression`
/// and `compression.*` are reserved for this.
public struct TensorBundle: Sendable, Equatable {
    /// The tensors, in order.
    public var tensors: [(name: String, tensor: Tensor)]
    /// Application metadata (request ids, expert uids...).
    public var metadata: [String: String]

    /// A bundle of named tensors (in order) and metadata.
    public init(_ tensors: [(name: String, tensor: Tensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The first tensor with this name.
    public subscript(name: String) -> Tensor? {
        tensors.first { $0.name == name }?.tensor
    }

    /// The names, in order.
    public var names: [String] { tensors.map(\.name) }

    static let codecKey = "compression"
    static let descriptorPrefix = "compression."

    /// Serializes the bundle as safetensors, compressing every tensor with `codec`.
    /// - Throws: `SafetensorsError` for duplicate names, names that collide with
    ///   another tensor's parts, reserved metadata keys, or inconsistent tensors.
    public func encode(codec: CompressionCodec = .none) throws(SafetensorsError) -> [UInt8] {
        if let reserved = metadata.keys.first(where: { $0 == TensorBundle.codecKey || $0.hasPrefix(TensorBundle.descriptorPrefix) }) {
            throw SafetensorsError(.invalidMetadata, "metadata key '\(reserved)' is reserved for compression descriptions")
        }
        var stored: [(name: String, source: Safetensors.Source)] = []
        var allMetadata = metadata
        if codec != .none { allMetadata[TensorBundle.codecKey] = codec.rawValue }
        let ownNames = Set(tensors.map(\.name))
        for (name, tensor) in tensors {
            guard codec != .none else {
                do { try tensor.checkStorage("encode") } catch { throw SafetensorsError(.invalidTensor, "tensor '\(name)': \(error)") }
                stored.append((name, .floats(tensor)))
                continue
            }
            let compressed = try codec.compress(tensor)
            for part in compressed.parts {
                let partName = name + part.suffix
                if !part.suffix.isEmpty, ownNames.contains(partName) {
                    throw SafetensorsError(.invalidTensor, "tensor name '\(partName)' collides with a part of compressed tensor '\(name)'")
                }
                stored.append((partName, .wire(part.tensor)))
            }
            allMetadata[TensorBundle.descriptorPrefix + name] = compressed.descriptor.serialized()
        }
        return try Safetensors.encode(stored, metadata: allMetadata)
    }

    /// Parses a bundle, decompressing compressed tensors and converting F16,
    /// BF16 and F64 tensors to float32. Tensor data goes straight from the
    /// buffer into tensor storage (one copy for F32).
    /// - Throws: `SafetensorsError` for malformed safetensors, non-float
    ///   tensors, or compressed tensors whose parts do not fit their description.
    public static func decode(_ bytes: [UInt8]) throws(SafetensorsError) -> TensorBundle {
        try bytes.withUnsafeBytes { buffer in Result { () throws(SafetensorsError) in try decode(buffer) } }.get()
    }

    /// Parses a bundle held in raw memory (e.g. an HTTP body).
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(SafetensorsError) -> TensorBundle {
        let header = try SafetensorsHeader(buffer)
        var metadata = header.metadata
        metadata[codecKey] = nil
        var descriptors: [String: CompressedDescriptor] = [:]
        for (key, value) in header.metadata where key.hasPrefix(descriptorPrefix) {
            let name = String(key.dropFirst(descriptorPrefix.count))
            descriptors[name] = try CompressedDescriptor(name: name, text: value)
            metadata[key] = nil
        }
        var entries: [String: SafetensorsHeader.Entry] = [:]
        for entry in header.entries { entries[entry.name] = entry }
        /// Copies one stored tensor out of the buffer.
        func wire(_ entry: SafetensorsHeader.Entry) -> WireTensor {
            let length = entry.end - entry.begin
            let bytes = length == 0 ? [] : FreshMemory.bytes(copying: buffer.baseAddress! + header.dataStart + entry.begin, byteCount: length)
            return WireTensor(unchecked: entry.dtype, entry.shape, bytes)
        }

        // Every part of a described tensor must exist; parts are not tensors of their own.
        var partNames: Set<String> = []
        for (name, descriptor) in descriptors {
            for suffix in descriptor.suffixes where !suffix.isEmpty { partNames.insert(name + suffix) }
        }
        var tensors: [(name: String, tensor: Tensor)] = []
        for entry in header.entries where !partNames.contains(entry.name) {
            if let descriptor = descriptors[entry.name] {
                var parts: [CompressedTensor.Part] = []
                for suffix in descriptor.suffixes {
                    guard let part = entries[entry.name + suffix] else {
                        throw SafetensorsError(.invalidCompression, "compressed tensor '\(entry.name)' is missing its part '\(entry.name + suffix)'")
                    }
                    parts.append(.init(suffix, wire(part)))
                }
                let compressed = CompressedTensor(codec: descriptor.codec, shape: descriptor.shape, parts: parts, parameters: descriptor.parameters)
                do {
                    tensors.append((entry.name, try compressed.decompressed()))
                } catch {
                    throw SafetensorsError(.invalidCompression, "compressed tensor '\(entry.name)': \(error.message)")
                }
            } else if entry.dtype == .f32 {
                tensors.append((entry.name, try directFloats(entry, buffer, header.dataStart)))
            } else {
                guard entry.dtype.isFloatingPoint else {
                    throw SafetensorsError(.dtypeMismatch, "tensor '\(entry.name)' has dtype \(entry.dtype.name); a tensor bundle "
                        + "holds float tensors (F32, F16, BF16, F64), read other dtypes with Safetensors.decode")
                }
                tensors.append((entry.name, try Tensor(wire(entry))))
            }
        }
        if let orphan = descriptors.keys.sorted().first(where: { entries[$0] == nil }) {
            throw SafetensorsError(.invalidCompression, "metadata describes compressed tensor '\(orphan)', but the payload has no tensor of that name")
        }
        return TensorBundle(tensors, metadata: metadata)
    }

    /// An F32 entry copied straight into tensor storage: one memcpy, no intermediate bytes.
    private static func directFloats(_ entry: SafetensorsHeader.Entry, _ buffer: UnsafeRawBufferPointer, _ dataStart: Int) throws(SafetensorsError) -> Tensor {
        let count = (entry.end - entry.begin) / 4
        let scalars = FreshMemory.array(count: count) { (target: UnsafeMutablePointer<Float>) in
            FreshMemory.copy(target, buffer.baseAddress! + dataStart + entry.begin, byteCount: count * 4)
        }
        return Tensor(unchecked: entry.shape, scalars)
    }

    /// Equal names, tensors (in order) and metadata.
    public static func == (lhs: TensorBundle, rhs: TensorBundle) -> Bool {
        lhs.metadata == rhs.metadata && lhs.tensors.elementsEqual(rhs.tensors) { $0.name == $1.name && $0.tensor == $1.tensor }
    }
}

/// A `compression.<name>` metadata entry, parsed and checked.
struct CompressedDescriptor {
    let codec: CompressionCodec
    let shape: [Int]
    let suffixes: [String]
    let parameters: [String: JSON]

    init(name: String, text: String) throws(SafetensorsError) {
        func fail(_ message: String) -> SafetensorsError {
            SafetensorsError(.invalidCompression, "metadata 'compression.\(name)': \(message)")
        }
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw fail("not valid JSON: \(error)") }
        guard case .object(var fields) = json else { throw fail("expected a JSON object, got \(json.typeName)") }
        guard case .string(let codecName)? = fields["codec"] else { throw fail("codec must be a string") }
        do { codec = try CompressionCodec(parsing: codecName) } catch { throw fail(error.message) }
        guard case .string(let dtype)? = fields["dtype"], dtype == DType.f32.name else {
            throw fail("dtype must be \"F32\", got \(fields["dtype"]?.serialized() ?? "nothing")")
        }
        guard case .array(let dimensions)? = fields["shape"] else { throw fail("shape must be a list of non-negative integers") }
        var shape: [Int] = []
        for dimension in dimensions {
            guard case .int(let value) = dimension, value >= 0 else { throw fail("shape must be a list of non-negative integers") }
            shape.append(value)
        }
        do { _ = try WireTensor.elementCount(shape) } catch { throw fail(error.message) }
        guard case .array(let parts)? = fields["parts"], !parts.isEmpty else { throw fail("parts must be a non-empty list of suffixes") }
        var suffixes: [String] = []
        for part in parts {
            guard case .string(let suffix) = part else { throw fail("parts must be a list of strings") }
            suffixes.append(suffix)
        }
        guard suffixes.first == "" else { throw fail("the first part must be the main part \"\"") }
        self.shape = shape
        self.suffixes = suffixes
        for key in ["codec", "dtype", "shape", "parts"] { fields[key] = nil }
        self.parameters = fields
    }
}
