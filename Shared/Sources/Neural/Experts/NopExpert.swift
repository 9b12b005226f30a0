import Foundation

/// The reference's `nop` and `nop_delay` experts: the output is the input
/// (`[batch, h]`), optionally after a fixed sleep, for tests of timeouts and
/// of the serving machinery itself. No parameters.
public struct NopExpert: ExpertModel {
    /// The hidden size `h`.
    public let hiddenSize: Int
    /// Seconds each forward and backward pass sleeps first (0.5 for `nop_delay`).
    public let delay: Double

    /// - Throws: `NeuralError` if `hiddenSize` is not positive or `delay` is negative.
    public init(hiddenSize: Int, delay: Double = 0) throws(NeuralError) {
        guard hiddenSize > 0 else { throw .configuration("nop", "hidden size must be positive, got \(hiddenSize)") }
        guard delay >= 0, delay.isFinite else { throw .configuration("nop", "delay must be finite and non-negative, got \(delay)") }
        self.hiddenSize = hiddenSize
        self.delay = delay
    }

    /// `input.0` and `output.0`, both `[batch, h]`.
    public var schema: ExpertSchema {
        ExpertSchema(inputs: [TensorSchema(name: "input.0", perSample: [hiddenSize])],
                     outputs: [TensorSchema(name: "output.0", perSample: [hiddenSize])])
    }

    /// There are no parameters.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {}

    /// The input, after the delay.
    public func forward(_ inputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError) -> [Tensor] {
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        return inputs
    }

    /// The output gradient is the input gradient; backward runs forward again, delay included, as the reference does.
    public func backward(_ inputs: [Tensor], gradOutputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError)
        -> (outputs: [Tensor], gradInputs: [Tensor], gradients: NopExpert) {
        (try forward(inputs, dropoutSeed: dropoutSeed), gradOutputs, self)
    }
}
