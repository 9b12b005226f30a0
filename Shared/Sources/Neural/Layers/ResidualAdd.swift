/// A residual connection, `x + branch(x)`: the sum of two tensors of the same shape.
public struct ResidualAdd: Sendable {
    /// A residual connection.
    public init() {}

    /// `x + branch`.
    public func forward(_ x: Tensor, _ branch: Tensor) throws(NeuralError) -> Tensor {
        try checkStorage(x, "ResidualAdd")
        try checkSameShape(branch, x, "ResidualAdd", "branch")
        return Elementwise.map(x, branch, Sum())
    }

    /// The output gradient flows unchanged into both summands.
    public func backward(gradOutput: Tensor) -> (gradInput: Tensor, gradBranch: Tensor) {
        (gradOutput, gradOutput)
    }
}
