/// A lookup table of vectors: row `id` of the weight for each id.
public struct Embedding: Module {
    /// `[count, dimension]`, one row per id.
    public private(set) var weight: Tensor

    /// The number of ids the table holds.
    public var count: Int { weight.shape[0] }
    /// The length of each vector.
    public var dimension: Int { weight.shape[1] }

    /// What `backward` needs from `forward`: the ids.
    public struct Cache: Sendable {
        let ids: [Int]
    }

    /// A table initialized from N(0, 1), as PyTorch's `nn.Embedding`.
    /// - Throws: `NeuralError` if a size is not positive.
    public init<G: RandomNumberGenerator>(count: Int, dimension: Int, using generator: inout G) throws(NeuralError) {
        guard count > 0, dimension > 0 else {
            throw .configuration("Embedding", "count and dimension must be positive, got \(count) x \(dimension)")
        }
        weight = Tensor.randomNormal(shape: [count, dimension], using: &generator)
    }

    /// A table over a given non-empty `[count, dimension]` weight.
    public init(weight: Tensor) throws(NeuralError) {
        do { try weight.checkStorage("Embedding") } catch { throw .configuration("Embedding", error.reason) }
        guard weight.rank == 2, weight.count > 0 else {
            throw .configuration("Embedding", "expected a non-empty weight [count, dimension], got \(describe(weight.shape))")
        }
        self.weight = weight
    }

    /// Visits `weight`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try visit(prefix + "weight", &weight)
    }

    /// The vectors of `ids`, as `[ids.count, dimension]`.
    /// - Throws: `NeuralError` if an id is outside `0..<count`.
    public func forward(ids: [Int]) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw .input("Embedding", "id \(bad) is out of range 0..<\(count)")
        }
        let dimension = self.dimension
        let output = Tensor.filled(shape: [ids.count, dimension]) { out in
            weight.read { table in
                for (row, id) in ids.enumerated() { (out + row * dimension).update(from: table + id * dimension, count: dimension) }
            }
        }
        return (output, Cache(ids: ids))
    }

    /// The weight gradient: each row of `gradOutput` added into the row of its id.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Embedding {
        try checkStorage(gradOutput, "Embedding", "output gradient")
        guard gradOutput.shape == [cache.ids.count, dimension] else {
            throw .input("Embedding", "output gradient has shape \(describe(gradOutput.shape)), expected \(describe([cache.ids.count, dimension]))")
        }
        let dimension = self.dimension
        var gradients = self
        gradients.weight = Tensor(zeros: weight.shape)
        gradients.weight.write { table in
            gradOutput.read { dy in
                for (row, id) in cache.ids.enumerated() { BLAS.axpy(dimension, 1, dy + row * dimension, table + id * dimension) }
            }
        }
        return gradients
    }
}
