/// Expert classes by name: how a host turns `--expert-class ffn` into an
/// expert. A program adds its own classes in Swift with `register`, without
/// changing the host.
public struct ExpertRegistry: Sendable {
    /// Builds an expert of one class for a hidden size; `seed` fixes its
    /// initial parameters and its dropout masks. Throws for a hidden size the
    /// class cannot take (a `NeuralError` passes through `make` as is, any
    /// other error becomes an `.invalidConfiguration` one).
    public typealias Factory = @Sendable (_ hiddenSize: Int, _ seed: UInt64) throws -> any Expert

    private var factories: [String: Factory] = [:]

    /// An empty registry.
    public init() {}

    /// The reference's five classes: `ffn`, `transformer`, `nop`, `nop_delay`, `det_dropout`.
    public static let standard: ExpertRegistry = {
        var registry = ExpertRegistry()
        // Each model draws its parameters first; the dropout seed stream continues the same generator.
        try! registry.register(name: "ffn") { hiddenSize, seed in
            var generator = SplitMix64(seed: seed)
            return HostedExpert(try FeedForwardExpert(hiddenSize: hiddenSize, using: &generator), dropoutSeed: generator.next())
        }
        try! registry.register(name: "transformer") { hiddenSize, seed in
            var generator = SplitMix64(seed: seed)
            return HostedExpert(try TransformerExpert(hiddenSize: hiddenSize, using: &generator), dropoutSeed: generator.next())
        }
        try! registry.register(name: "nop") { hiddenSize, seed in
            HostedExpert(try NopExpert(hiddenSize: hiddenSize), dropoutSeed: seed)
        }
        try! registry.register(name: "nop_delay") { hiddenSize, seed in
            HostedExpert(try NopExpert(hiddenSize: hiddenSize, delay: 0.5), dropoutSeed: seed)
        }
        try! registry.register(name: "det_dropout") { hiddenSize, seed in
            var generator = SplitMix64(seed: seed)
            return HostedExpert(try DeterministicDropoutExpert(hiddenSize: hiddenSize, using: &generator), dropoutSeed: generator.next())
        }
        return registry
    }()

    /// The registered class names, sorted.
    public var names: [String] { factories.keys.sorted() }

    /// Adds a class.
    /// - Throws: `NeuralError` (`.invalidConfiguration`) if the name is empty or already registered.
    public mutating func register(name: String, factory: @escaping Factory) throws(NeuralError) {
        guard !name.isEmpty, !name.contains(where: \.isWhitespace) else {
            throw .configuration("ExpertRegistry", "an expert class name must be non-empty without spaces, got '\(name)'")
        }
        guard factories[name] == nil else {
            throw .configuration("ExpertRegistry", "expert class '\(name)' is already registered")
        }
        factories[name] = factory
    }

    /// A new expert of class `name`.
    /// - Throws: `NeuralError` (`.unknownExpertClass`) for an unregistered name, or the
    ///   class's error for a hidden size it cannot take.
    public func make(_ name: String, hiddenSize: Int, seed: UInt64) throws(NeuralError) -> any Expert {
        guard let factory = factories[name] else {
            throw NeuralError(.unknownExpertClass, "no expert class '\(name)'; registered classes are \(names.joined(separator: ", "))")
        }
        do {
            return try factory(hiddenSize, seed)
        } catch let error as NeuralError {
            throw error
        } catch {
            throw .configuration(name, "cannot build an expert of hidden size \(hiddenSize): \(error)")
        }
    }
}
