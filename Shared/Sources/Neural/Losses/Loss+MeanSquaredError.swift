extension Loss {
    /// The mean of `(prediction - target)²` over all elements (PyTorch's
    /// `F.mse_loss`), with gradient `2 · (prediction - target) / count`.
    /// - Throws: `NeuralError` if the shapes differ or the tensors are empty.
    public static func meanSquaredError(prediction: Tensor, target: Tensor) throws(NeuralError) -> (loss: Float, gradient: Tensor) {
        let name = "meanSquaredError"
        try checkStorage(prediction, name, "prediction")
        try checkSameShape(target, prediction, name, "target")
        guard prediction.count > 0 else { throw .input(name, "prediction is empty (shape \(describe(prediction.shape)))") }
        let gradient = Elementwise.map(prediction, target, ScaledDifference(scale: 2 / Float(prediction.count)))
        var total: Double = 0
        prediction.read { p in
            target.read { t in
                for i in 0..<prediction.count {
                    let difference = Double(p[i] - t[i])
                    total += difference * difference
                }
            }
        }
        return (Float(total / Double(prediction.count)), gradient)
    }
}
