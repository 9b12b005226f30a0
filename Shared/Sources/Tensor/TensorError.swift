/// A tensor operation was given operands it cannot work on (wrong ranks,
/// mismatched dimensions, an axis out of range...). Operations throw this
/// instead of trapping, so a service can turn bad input into a clear 4xx.
public struct TensorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The operation that refused its operands, e.g. "matmul".
    public let operation: String
    /// What was wrong and what was expected, e.g. "inner dimensions differ: [2, 3] x [4, 5]".
    public let reason: String

    /// An error of `operation` (e.g. "matmul") for `reason` (what was wrong and what was expected).
    public init(_ operation: String, _ reason: String) {
        self.operation = operation
        self.reason = reason
    }

    /// "operation: reason", e.g. "matmul: inner dimensions differ: [2, 3] x [4, 5]".
    public var description: String { "\(operation): \(reason)" }
}

/// Renders a shape the way error messages show it: `[2, 3]`.
func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
