/// A tensor payload that cannot be read or written: malformed safetensors,
/// a tensor of the wrong dtype for the conversion asked for, or a compressed
/// tensor whose parts do not fit together. The message says what was wrong
/// and what was expected, so a service can return it as a 400 as is.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What class of problem this is; compare with the static members,
    /// e.g. `error.kind == .invalidHeader`. New kinds may be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: String {
            case truncated, invalidHeader, invalidTensorEntry, invalidOffsets, invalidMetadata
            case invalidTensor, dtypeMismatch, invalidCompression, unknownCodec
        }
        private let code: Code
        private init(_ code: Code) { self.code = code }

        /// The buffer is shorter than its own header says.
        public static let truncated = Kind(.truncated)
        /// The header is not a JSON object, or too large.
        public static let invalidHeader = Kind(.invalidHeader)
        /// A tensor's dtype, shape or data_offsets entry is malformed.
        public static let invalidTensorEntry = Kind(.invalidTensorEntry)
        /// Tensor data ranges fall outside the buffer, overlap or leave gaps.
        public static let invalidOffsets = Kind(.invalidOffsets)
        /// `__metadata__` is not an object of strings.
        public static let invalidMetadata = Kind(.invalidMetadata)
        /// A tensor being built or encoded is inconsistent (byte count, names).
        public static let invalidTensor = Kind(.invalidTensor)
        /// A tensor has a dtype the requested conversion cannot take.
        public static let dtypeMismatch = Kind(.dtypeMismatch)
        /// A compressed tensor's description or parts are inconsistent.
        public static let invalidCompression = Kind(.invalidCompression)
        /// A compression codec name is not one we know.
        public static let unknownCodec = Kind(.unknownCodec)

        /// The kind's name, e.g. "invalidHeader".
        public var description: String { code.rawValue }
    }

    /// The class of problem.
    public let kind: Kind
    /// What was wrong and what was expected.
    public let message: String

    /// An error of `kind` whose `message` says what was wrong and what was expected.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
