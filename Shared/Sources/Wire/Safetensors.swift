/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors),
/// the stock format for tensor payloads that any language can read.
public enum Safetensors {
    /// Serializes tensors in the given order, with optional string metadata
    /// (`__metadata__`). The header is padded with spaces to a multiple of 8
    /// bytes so the data section stays aligned, as the reference writer does.
    /// - Throws: `SafetensorsError` for duplicate or reserved names.
    public static func encode(_ tensors: [(name: String, tensor: WireTensor)], metadata: [String: String] = [:]) throws(SafetensorsError) -> [UInt8] {
        try encode(tensors.map { (name: $0.name, source: .wire($0.tensor)) }, metadata: metadata)
    }

    /// One F32 tensor of shape `[values.count]` read straight from memory: a
    /// single copy into the payload, without an intermediate array.
    public static func encode(name: String, float32 values: UnsafeBufferPointer<Float>, metadata: [String: String] = [:]) throws(SafetensorsError) -> [UInt8] {
        try encode([(name: name, source: .float32(UnsafeRawBufferPointer(values)))], metadata: metadata)
    }

    /// Where an encoded tensor's bytes come from: a wire tensor, or a float
    /// tensor's storage or raw float32 memory directly (which saves a full copy for F32 payloads).
    enum Source {
        case wire(WireTensor)
        case floats(Tensor)
        /// Valid only during the `encode` call.
        case float32(UnsafeRawBufferPointer)

        var dtype: DType {
            if case .wire(let tensor) = self { return tensor.dtype }
            return .f32
        }
        var shape: [Int] {
            switch self {
            case .wire(let tensor): tensor.shape
            case .floats(let tensor): tensor.shape
            case .float32(let bytes): [bytes.count / 4]
            }
        }
        var byteCount: Int {
            switch self {
            case .wire(let tensor): tensor.bytes.count
            case .floats(let tensor): tensor.count * 4
            case .float32(let bytes): bytes.count
            }
        }
        func copy(to target: UnsafeMutableRawPointer) {
            switch self {
            case .wire(let tensor):
                tensor.bytes.withUnsafeBytes { if $0.count > 0 { FreshMemory.copy(target, $0.baseAddress!, byteCount: $0.count) } }
            case .floats(let tensor):
                tensor.scalars.withUnsafeBytes { if $0.count > 0 { FreshMemory.copy(target, $0.baseAddress!, byteCount: $0.count) } }
            case .float32(let bytes):
                if bytes.count > 0 { FreshMemory.copy(target, bytes.baseAddress!, byteCount: bytes.count) }
            }
        }
    }

    /// The encoder behind both public entry points; float sources must have consistent storage.
    static func encode(_ tensors: [(name: String, source: Source)], metadata: [String: String]) throws(SafetensorsError) -> [UInt8] {
        var header: [String: JSON] = [:]
        var offset = 0
        for (name, source) in tensors {
            guard name != "__metadata__" else {
                throw SafetensorsError(.invalidTensor, "'__metadata__' is reserved and cannot name a tensor")
            }
            guard header[name] == nil else { throw SafetensorsError(.invalidTensor, "duplicate tensor name '\(name)'") }
            let end = offset + source.byteCount
            header[name] = ["dtype": .string(source.dtype.name), "shape": .array(source.shape.map(JSON.int)),
                            "data_offsets": [.int(offset), .int(end)]]
            offset = end
        }
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues(JSON.string)) }
        var headerBytes = JSON.object(header).serializedBytes()
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))

        let total = 8 + headerBytes.count + offset
        return FreshMemory.array(count: total) { (target: UnsafeMutablePointer<UInt8>) in
            let base = UnsafeMutableRawPointer(target)
            base.storeBytes(of: UInt64(headerBytes.count).littleEndian, as: UInt64.self)
            headerBytes.withUnsafeBytes { base.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var position = 8 + headerBytes.count
            for (_, source) in tensors {
                source.copy(to: base + position)
                position += source.byteCount
            }
        }
    }

    /// Parses and validates a safetensors buffer, copying each tensor's bytes out.
    /// - Throws: `SafetensorsError` naming what is malformed and what was expected.
    public static func decode(_ bytes: [UInt8]) throws(SafetensorsError) -> SafetensorsPayload {
        // `withUnsafeBytes` rethrows untyped errors, so carry the typed one out in a Result.
        try bytes.withUnsafeBytes { buffer in Result { () throws(SafetensorsError) in try decode(buffer) } }.get()
    }

    /// Parses and validates a safetensors buffer held in raw memory (e.g. an HTTP body).
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(SafetensorsError) -> SafetensorsPayload {
        let header = try SafetensorsHeader(buffer)
        let tensors = header.entries.map { entry in
            let length = entry.end - entry.begin
            let bytes = length == 0 ? [] : FreshMemory.bytes(copying: buffer.baseAddress! + header.dataStart + entry.begin, byteCount: length)
            return (name: entry.name, tensor: WireTensor(unchecked: entry.dtype, entry.shape, bytes))
        }
        return SafetensorsPayload(tensors: tensors, metadata: header.metadata)
    }
}

/// The contents of a safetensors buffer: named tensors and string metadata.
public struct SafetensorsPayload: Sendable, Equatable {
    /// The tensors, in the order of their data in the buffer.
    public var tensors: [(name: String, tensor: WireTensor)]
    /// The `__metadata__` entries.
    public var metadata: [String: String]

    /// A payload of tensors (in data order) and metadata.
    public init(tensors: [(name: String, tensor: WireTensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The first tensor with this name.
    public subscript(name: String) -> WireTensor? {
        tensors.first { $0.name == name }?.tensor
    }

    /// The names, in order.
    public var names: [String] { tensors.map(\.name) }

    /// Serializes this payload; see `Safetensors.encode`.
    public func encoded() throws(SafetensorsError) -> [UInt8] {
        try Safetensors.encode(tensors, metadata: metadata)
    }

    /// Equal names, tensors (in order) and metadata.
    public static func == (lhs: SafetensorsPayload, rhs: SafetensorsPayload) -> Bool {
        lhs.metadata == rhs.metadata && lhs.tensors.elementsEqual(rhs.tensors) { $0.name == $1.name && $0.tensor == $1.tensor }
    }
}
