/// A trainer's state (any safetensors file) sent under a codec, as a donor
/// sends it to a newcomer that asks for one (`GET /v1/state?codec=`; the
/// reference's `state_compression`): float32 tensors of at least
/// `minimumCount` values are stored compressed, as a `TensorBundle` stores
/// them. Every other tensor travels byte for byte: other dtypes, small
/// tensors (biases, Adam's `step`), and the optimizer statistics that a step
/// divides by (`optimizer.exp_avg_sq.*` and its kin in the state layout of
/// `Checkpoint` and the Python package), whose small values a 16-bit code
/// would flush to zero, turning the next update into m / eps.
public enum StateCompression {
    /// Smaller float32 tensors are kept exact: they weigh little.
    public static let minimumCount = 1024
    /// Optimizer statistics kept exact (`optimizer.<statistic>.<parameter>`):
    /// Adam's and AMSGrad's second moments, RMSprop's, Adagrad's sums.
    public static let divisorStatistics = ["exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"]

    /// Whether `compress` compresses the tensor `name`.
    public static func compresses(_ name: String, _ tensor: WireTensor) -> Bool {
        tensor.dtype == .f32 && tensor.count >= minimumCount && !divisorStatistics.contains { name.hasPrefix("optimizer.\($0).") }
    }

    /// The file with its large float32 tensors compressed by `codec` (the file itself for `.none`).
    /// - Throws: `SafetensorsError` for a file that is not safetensors, one
    ///   whose metadata uses the reserved `compression` keys, or a tensor
    ///   whose parts' names would collide with another tensor's.
    public static func compress(_ file: [UInt8], codec: CompressionCodec) throws(SafetensorsError) -> [UInt8] {
        guard codec != .none else { return file }
        let payload = try Safetensors.decode(file)
        try TensorBundle.checkUnreserved(payload.metadata)
        var metadata = payload.metadata
        metadata[TensorBundle.codecKey] = codec.rawValue
        let names = Set(payload.names)
        var stored: [(name: String, tensor: WireTensor)] = []
        for (name, tensor) in payload.tensors {
            guard compresses(name, tensor) else {
                stored.append((name, tensor))
                continue
            }
            let compressed = try codec.compress(try Tensor(tensor))
            stored += try compressed.storedParts(as: name, besides: names)
            metadata[TensorBundle.descriptorPrefix + name] = compressed.descriptor.serialized()
        }
        return try Safetensors.encode(stored, metadata: metadata)
    }

    /// The file `compress` was given, up to the codec's error: compressed
    /// tensors back in float32, the rest as they came, the metadata without
    /// the `compression` keys. A file without compressed tensors comes back as it is.
    /// - Parameter maxBytes: the most tensor bytes rebuilt, checked before
    ///   anything is decoded (a hostile sender's 8-bit codes grow fourfold).
    /// - Throws: `SafetensorsError` for a file that is not safetensors,
    ///   compressed tensors whose parts do not fit their description, or a
    ///   file that would rebuild to more than `maxBytes`.
    public static func decompress(_ file: [UInt8], maxBytes: Int = .max) throws(SafetensorsError) -> [UInt8] {
        let payload = try Safetensors.decode(file)
        var metadata = payload.metadata
        let (descriptors, partNames) = try CompressedDescriptor.all(in: &metadata)
        guard !descriptors.isEmpty || payload.metadata[TensorBundle.codecKey] != nil else { return file }
        var tensors: [String: WireTensor] = [:]
        for (name, tensor) in payload.tensors { tensors[name] = tensor }
        try CompressedDescriptor.checkNoOrphans(descriptors) { tensors[$0] != nil }
        let restoredBytes = payload.tensors.reduce(0) { total, entry in
            partNames.contains(entry.name) ? total
                : total + (descriptors[entry.name].map { $0.shape.reduce(4, *) } ?? entry.tensor.bytes.count)
        }
        guard restoredBytes <= maxBytes else {
            throw SafetensorsError(.invalidCompression, "the compressed tensors rebuild to \(restoredBytes) bytes, more than the \(maxBytes) taken")
        }
        var restored: [(name: String, tensor: WireTensor)] = []
        for (name, tensor) in payload.tensors where !partNames.contains(name) {
            guard let descriptor = descriptors[name] else {
                restored.append((name, tensor))
                continue
            }
            restored.append((name, try WireTensor(try descriptor.decompress(name) { tensors[$0] }, as: .f32)))
        }
        return try Safetensors.encode(restored, metadata: metadata)
    }
}
