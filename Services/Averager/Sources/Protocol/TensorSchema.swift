import Shared

/// The names, dtypes and shapes of the tensors a trainer averages, in the
/// canonical order (by name) in which every member flattens them, and the hash
/// that peers compare before they group up (the reference's `schema_hash`).
public struct TensorSchema: Sendable, Equatable {
    /// One tensor's description.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name in the trainer's safetensors file.
        public let name: String
        /// Its element type as sent (the average comes back in it).
        public let dtype: DType
        /// Its shape.
        public let shape: [Int]
        /// The element count.
        public var count: Int { shape.reduce(1, *) }
    }

    /// The tensors, sorted by name so that writers that order them differently still agree.
    public let entries: [Entry]

    /// Describes `tensors`, sorting them by name.
    public init(_ tensors: [(name: String, tensor: WireTensor)]) {
        entries = tensors.map { Entry(name: $0.name, dtype: $0.tensor.dtype, shape: $0.tensor.shape) }
            .sorted { $0.name < $1.name }
    }

    /// The total element count, i.e. the length of the flattened vector.
    public var totalCount: Int { entries.reduce(0) { $0 + $1.count } }

    /// Element counts in canonical order.
    public var counts: [Int] { entries.map(\.count) }

    /// A hash of the schema and of the settings every member of a group must
    /// share to cut and combine the vector the same way: the part size and the
    /// aggregation rule (a group where only some reducers clip would let
    /// outliers through the others' parts).
    public func hash(partSize: Int, aggregation: Aggregation) -> String {
        let tensors = entries.map { entry -> JSON in
            [.string(entry.name), .string(entry.dtype.name), .array(entry.shape.map(JSON.int))]
        }
        let canonical: JSON = ["tensors": .array(tensors), "part_size": .int(partSize), "aggregation": .string(aggregation.description)]
        return Hashing.hex(canonical.serialized())
    }
}
