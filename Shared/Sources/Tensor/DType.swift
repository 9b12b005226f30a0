/// The element types a tensor payload can carry, named as safetensors names them.
///
/// Computation happens in `Tensor` (float32); the other types exist so
/// payloads can carry compressed floats (F16, BF16), labels (I64, I32),
/// masks and codes (U8, BOOL), and what numpy writes by default (F64).
public enum DType: String, CaseIterable, Sendable, Hashable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"
    case i64 = "I64"
    case i32 = "I32"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16: 2
        case .u8, .bool: 1
        }
    }

    /// Whether values of this type convert to a float `Tensor`.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: true
        default: false
        }
    }

    /// The safetensors name, e.g. "F32".
    public var name: String { rawValue }
}
