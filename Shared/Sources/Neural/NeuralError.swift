/// A neural-network operation refused its arguments: a request's tensors do
/// not fit an expert, a gradient does not fit its parameter, a checkpoint
/// does not fit its module, or a configuration cannot work. The message says
/// what was wrong and what was expected, so a service can return it as is.
public struct NeuralError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What class of problem this is; compare with the static members,
    /// e.g. `error.kind == .invalidInput`. New kinds may be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: String {
            case invalidInput, invalidConfiguration, parameterMismatch, unknownExpertClass, invalidData
        }
        private let code: Code
        private init(_ code: Code) { self.code = code }

        /// Inputs or output gradients of the wrong count, shape or value (a
        /// client's mistake: a service answers 400).
        public static let invalidInput = Kind(.invalidInput)
        /// A layer, expert or optimizer was configured with values it cannot
        /// work with (e.g. a hidden size the head count does not divide).
        public static let invalidConfiguration = Kind(.invalidConfiguration)
        /// Named tensors (gradients, a checkpoint, optimizer state) do not
        /// match a module's parameters by name or shape.
        public static let parameterMismatch = Kind(.parameterMismatch)
        /// No expert class is registered under the requested name.
        public static let unknownExpertClass = Kind(.unknownExpertClass)
        /// A data set or checkpoint file is missing or malformed.
        public static let invalidData = Kind(.invalidData)

        /// The kind's name, e.g. "invalidInput".
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

extension NeuralError {
    /// An `.invalidInput` error for `layer` (e.g. "Linear"): "Linear: <reason>".
    static func input(_ layer: String, _ reason: String) -> NeuralError { NeuralError(.invalidInput, "\(layer): \(reason)") }
    /// An `.invalidConfiguration` error for `layer`.
    static func configuration(_ layer: String, _ reason: String) -> NeuralError {
        NeuralError(.invalidConfiguration, "\(layer): \(reason)")
    }
}
