/// Samples with integer class labels, for training classifiers: the
/// features of all samples in one `[count, features]` tensor.
public struct LabeledDataset: Sendable, Equatable {
    /// `[count, featureCount]`.
    public let features: Tensor
    /// One class index per sample.
    public let labels: [Int]

    /// The number of samples.
    public var count: Int { labels.count }

    /// A data set over given samples.
    /// - Throws: `NeuralError` unless `features` is `[labels.count, n]` and every label is non-negative.
    public init(features: Tensor, labels: [Int]) throws(NeuralError) {
        try checkStorage(features, "LabeledDataset", "features")
        guard features.rank == 2, features.shape[0] == labels.count else {
            throw NeuralError(.invalidData, "expected features [\(labels.count), n] for \(labels.count) labels, got \(describe(features.shape))")
        }
        guard labels.allSatisfy({ $0 >= 0 }) else { throw NeuralError(.invalidData, "labels must be non-negative class indices") }
        self.features = features
        self.labels = labels
    }

    /// Parses comma-separated lines of feature values followed by an integer
    /// label, multiplying every feature by `featureScale`.
    /// - Throws: `NeuralError` (`.invalidData`) naming the first malformed line.
    public init(csv text: String, featureScale: Float = 1) throws(NeuralError) {
        var scalars: [Float] = []
        var labels: [Int] = []
        var width: Int?
        for (index, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 2, fields.count == width ?? fields.count else {
                let expected = width.map { "\($0 - 1) feature values" } ?? "feature values"
                throw NeuralError(.invalidData, "line \(index + 1): expected \(expected) and a label, got \(fields.count) fields")
            }
            guard let label = Int(fields.last!), label >= 0 else {
                throw NeuralError(.invalidData, "line \(index + 1): the label '\(fields.last!)' is not a non-negative integer")
            }
            width = fields.count
            for field in fields.dropLast() {
                guard let value = Float(field) else {
                    throw NeuralError(.invalidData, "line \(index + 1): '\(field)' is not a number")
                }
                scalars.append(value * featureScale)
            }
            labels.append(label)
        }
        guard let width else { throw NeuralError(.invalidData, "no samples") }
        try self.init(features: Tensor(unchecked: [labels.count, width - 1], scalars), labels: labels)
    }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledDataset {
        let width = features.shape[1]
        let scalars = features.read { source in
            [Float](unsafeUninitializedCapacity: indices.count * width) { target, initialized in
                for (row, index) in indices.enumerated() {
                    (target.baseAddress! + row * width).initialize(from: source + index * width, count: width)
                }
                initialized = indices.count * width
            }
        }
        // Indices come from this data set, so shapes and labels stay valid.
        return try! LabeledDataset(features: Tensor(unchecked: [indices.count, width], scalars), labels: indices.map { labels[$0] })
    }

    /// A random split into training and test samples (`testFraction` of them,
    /// rounded), the same for the same seed on every platform.
    public func split(testFraction: Double, seed: UInt64) -> (train: LabeledDataset, test: LabeledDataset) {
        let order = Self.permutation(count, seed: seed)
        let testCount = Int((Double(count) * min(max(testFraction, 0), 1)).rounded())
        return (subset(Array(order[testCount...])), subset(Array(order[..<testCount])))
    }

    /// The samples in a random order (fixed by `seed`), cut into batches of
    /// `size` (the last one may be smaller).
    public func shuffledBatches(size: Int, seed: UInt64) -> [LabeledDataset] {
        let order = Self.permutation(count, seed: seed)
        return stride(from: 0, to: count, by: max(size, 1)).map { subset(Array(order[$0..<min($0 + max(size, 1), count)])) }
    }

    /// A Fisher-Yates shuffle of `0..<count` over SplitMix64, spelled out so
    /// that a seed means the same order whatever the standard library does.
    static func permutation(_ count: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return order
    }
}
