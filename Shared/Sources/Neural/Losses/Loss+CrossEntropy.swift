extension Loss {
    /// Softmax cross-entropy with integer class labels, averaged over the
    /// batch (PyTorch's `F.cross_entropy` with the default mean reduction).
    ///
    /// The gradient with respect to the logits is `(softmax(logits) - onehot(label)) / batch`.
    /// - Parameters:
    ///   - logits: `[batch, classes]` unnormalized scores.
    ///   - labels: one class index in `0..<classes` per row.
    /// - Throws: `NeuralError` if the shapes disagree or a label is out of range.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int]) throws(NeuralError) -> (loss: Float, gradient: Tensor) {
        let name = "softmaxCrossEntropy"
        let rows = try Rows(logits, width: nil, name, "logits")
        guard logits.rank == 2, labels.count == rows.count else {
            throw .input(name, "expected logits [batch, classes] and one label per row, "
                + "got logits \(describe(logits.shape)) and \(labels.count) labels")
        }
        if let (row, label) = labels.enumerated().first(where: { $0.element < 0 || $0.element >= rows.width }) {
            throw .input(name, "label \(label) of row \(row) is out of range 0..<\(rows.width)")
        }
        let logProbabilities: Tensor
        do { logProbabilities = try logits.logSoftmax() } catch { throw .input(name, error.reason) }
        var total: Double = 0
        let scale = 1 / Float(rows.count)
        let gradient = Tensor.filled(shape: logits.shape) { gradient in
            logProbabilities.read { logP in
                for (row, label) in labels.enumerated() {
                    let offset = row * rows.width
                    total -= Double(logP[offset + label])
                    for i in 0..<rows.width { gradient[offset + i] = Elementwise.exp(logP[offset + i]) * scale }
                    gradient[offset + label] -= scale
                }
            }
        }
        return (Float(total / Double(rows.count)), gradient)
    }
}
