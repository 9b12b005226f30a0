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

    /// - Throws: `SafetensorsError` when `metadata` uses a key reserved for compression descriptions.
    static func checkUnreserved(_ metadata: [String: String]) throws(SafetensorsError) {
        if let reserved = metadata.keys.first(where: { $0 == codecKey || $0.hasPrefix(descriptorPrefix) }) {
            throw SafetensorsError(.invalidMetadata, "metadata key '\(reserved)' is reserved for compression descriptions")
        }
    }

    /// Serializes the bundle as safetensors, compressing every tensor with `codec`.
    /// - Throws: `SafetensorsError` for duplicate names, names that collide with
    ///   another tensor's parts, reserved metadata keys, or inconsistent tensors.
    public func encode(codec: CompressionCodec = .none) throws(SafetensorsError) -> [UInt8] {
        try Self.checkUnreserved(metadata)
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
            stored += try compressed.storedParts(as: name, besides: ownNames).map { ($0.name, .wire($0.tensor)) }
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
        let (descriptors, partNames) = try CompressedDescriptor.all(in: &metadata)
        var entries: [String: SafetensorsHeader.Entry] = [:]
        for entry in header.entries { entries[entry.name] = entry }
        /// Copies one stored tensor out of the buffer.
        func wire(_ entry: SafetensorsHeader.Entry) -> WireTensor {
            let length = entry.end - entry.begin
            let bytes = length == 0 ? [] : FreshMemory.bytes(copying: buffer.baseAddress! + header.dataStart + entry.begin, byteCount: length)
            return WireTensor(unchecked: entry.dtype, entry.shape, bytes)
        }

        var tensors: [(name: String, tensor: Tensor)] = []
        for entry in header.entries where !partNames.contains(entry.name) {
            if let descriptor = descriptors[entry.name] {
                tensors.append((entry.name, try descriptor.decompress(entry.name) { entries[$0].map(wire) }))
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
        try CompressedDescriptor.checkNoOrphans(descriptors) { entries[$0] != nil }
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

extension CompressedTensor {
    /// The parts as stored under `name` (`name`, `name.codebook`...).
    /// - Throws: `SafetensorsError` when a part's name is one of `taken` (another tensor's).
    func storedParts(as name: String, besides taken: Set<String>) throws(SafetensorsError) -> [(name: String, tensor: WireTensor)] {
        try parts.map { part throws(SafetensorsError) in
            let partName = name + part.suffix
            if !part.suffix.isEmpty, taken.contains(partName) {
                throw SafetensorsError(.invalidTensor, "tensor name '\(partName)' collides with a part of compressed tensor '\(name)'")
            }
            return (partName, part.tensor)
        }
    }
}

/// A `compression.<name>` metadata entry, parsed and checked.
struct CompressedDescriptor {
    /// The descriptors in `metadata`, by tensor name, and the names of their
    /// extra parts (which are not tensors of their own); the `compression`
    /// keys are taken out of `metadata`.
    static func all(in metadata: inout [String: String]) throws(SafetensorsError) -> (descriptors: [String: CompressedDescriptor], partNames: Set<String>) {
        metadata[TensorBundle.codecKey] = nil
        var descriptors: [String: CompressedDescriptor] = [:]
        var partNames: Set<String> = []
        for (key, value) in metadata where key.hasPrefix(TensorBundle.descriptorPrefix) {
            let name = String(key.dropFirst(TensorBundle.descriptorPrefix.count))
            let descriptor = try CompressedDescriptor(name: name, text: value)
            descriptors[name] = descriptor
            for suffix in descriptor.suffixes where !suffix.isEmpty { partNames.insert(name + suffix) }
            metadata[key] = nil
        }
        return (descriptors, partNames)
    }

    /// Every described tensor must be in the payload (`exists`).
    static func checkNoOrphans(_ descriptors: [String: CompressedDescriptor], exists: (String) -> Bool) throws(SafetensorsError) {
        if let orphan = descriptors.keys.sorted().first(where: { !exists($0) }) {
            throw SafetensorsError(.invalidCompression, "metadata describes compressed tensor '\(orphan)', but the payload has no tensor of that name")
        }
    }

    /// Rebuilds the float32 tensor `name` from its parts, which `part` looks up by name.
    func decompress(_ name: String, part: (String) -> WireTensor?) throws(SafetensorsError) -> Tensor {
        var parts: [CompressedTensor.Part] = []
        for suffix in suffixes {
            guard let tensor = part(name + suffix) else {
                throw SafetensorsError(.invalidCompression, "compressed tensor '\(name)' is missing its part '\(name + suffix)'")
            }
            parts.append(.init(suffix, tensor))
        }
        do {
            return try CompressedTensor(codec: codec, shape: shape, parts: parts, parameters: parameters).decompressed()
        } catch {
            throw SafetensorsError(.invalidCompression, "compressed tensor '\(name)': \(error.message)")
        }
    }

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
