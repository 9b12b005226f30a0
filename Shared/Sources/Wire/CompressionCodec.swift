/// How float tensors are compressed on the wire, following the reference
/// hivemind's codecs (`hivemind/compression`). Raw values are the names used
/// in payload metadata and in requests that say what they accept.
public enum CompressionCodec: String, CaseIterable, Sendable {
    /// float32 as is.
    case none = "none"
    /// float16, after clamping to the finite float16 range (±65504).
    case float16 = "float16"
    /// bfloat16 (float32's range, 8 significant bits), rounded to nearest even.
    case bfloat16 = "bfloat16"
    /// Per row of the last axis: subtract the mean, divide by the standard
    /// deviation, store float16; means and deviations travel as float32.
    case meanStd16 = "mean_std_16bit"
    /// 256 uniform buckets over ±3 standard deviations around the mean
    /// (scale 6σ/256); each code decodes to the mean of its bucket's values.
    case uniform8 = "uniform_8bit"
    /// 256 buckets holding equal shares of the values (estimated quantiles);
    /// each code decodes to the mean of its bucket's values.
    case quantile8 = "quantile_8bit"
    /// Blocks of 4096 values, each scaled by its largest magnitude (absmax)
    /// into linear 8-bit codes.
    case blockwise8 = "blockwise_8bit"

    /// Parses a codec name such as "uniform_8bit".
    /// - Throws: `SafetensorsError` listing the valid names.
    public init(parsing name: String) throws(SafetensorsError) {
        guard let codec = CompressionCodec(rawValue: name) else {
            throw SafetensorsError(.unknownCodec, "unknown compression codec '\(name)'; expected one of "
                + CompressionCodec.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = codec
    }

    /// Compresses a float32 tensor into the parts this codec stores.
    /// - Throws: `SafetensorsError` if the tensor's storage does not match its shape.
    public func compress(_ tensor: Tensor) throws(SafetensorsError) -> CompressedTensor {
        do { try tensor.checkStorage("compress") } catch { throw SafetensorsError(.invalidTensor, error.description) }
        switch self {
        case .none: return CompressedTensor(self, tensor.shape, [.init("", try WireTensor(tensor, as: .f32))])
        case .float16: return CompressedTensor(self, tensor.shape, [.init("", try WireTensor(tensor, as: .f16))])
        case .bfloat16: return CompressedTensor(self, tensor.shape, [.init("", try WireTensor(tensor, as: .bf16))])
        case .meanStd16: return MeanStd16.compress(tensor)
        case .uniform8: return Uniform8.compress(tensor)
        case .quantile8: return Quantile8.compress(tensor)
        case .blockwise8: return Blockwise8.compress(tensor)
        }
    }

    /// Rebuilds the float32 tensor from its parts.
    func decompress(_ compressed: CompressedTensor) throws(SafetensorsError) -> Tensor {
        switch self {
        case .none, .float16, .bfloat16:
            let main = try compressed.part("", dtype: [.none: DType.f32, .float16: .f16, .bfloat16: .bf16][self]!, count: compressed.count)
            // The description's shape is the tensor's, whatever shape a sender gave the stored part.
            return Tensor(unchecked: compressed.shape, try Tensor(main).scalars)
        case .meanStd16: return try MeanStd16.decompress(compressed)
        case .uniform8, .quantile8: return try Codebook8.decompress(compressed)
        case .blockwise8: return try Blockwise8.decompress(compressed)
        }
    }
}
