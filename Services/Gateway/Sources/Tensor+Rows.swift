import Shared

extension Tensor {
    /// The elements of one sample (everything after the batch axis).
    var rowSize: Int { shape.isEmpty || shape[0] == 0 ? 0 : count / shape[0] }

    /// The rows at `indices`, in that order, as a new batch.
    func gatherRows(_ indices: [Int]) -> Tensor {
        let width = rowSize
        var scalars = [Float]()
        scalars.reserveCapacity(indices.count * width)
        self.scalars.withUnsafeBufferPointer { source in
            for index in indices { scalars.append(contentsOf: source[(index * width)..<((index + 1) * width)]) }
        }
        return try! Tensor(shape: [indices.count] + shape.dropFirst(), scalars: scalars)
    }

    /// The rows at `indices`, each multiplied by its scale, as a new batch.
    func gatherRows(_ indices: [Int], scaledBy scales: [Float]) -> Tensor {
        precondition(indices.count == scales.count, "one scale per row")
        let width = rowSize
        let scalars = [Float](unsafeUninitializedCapacity: indices.count * width) { target, initialized in
            self.scalars.withUnsafeBufferPointer { source in
                for (position, (index, scale)) in zip(indices, scales).enumerated() {
                    let row = source[(index * width)..<((index + 1) * width)]
                    for (offset, value) in row.enumerated() { target[position * width + offset] = scale * value }
                }
            }
            initialized = indices.count * width
        }
        return try! Tensor(shape: [indices.count] + shape.dropFirst(), scalars: scalars)
    }

    /// One row as a flat array.
    func row(_ index: Int) -> ArraySlice<Float> {
        scalars[(index * rowSize)..<((index + 1) * rowSize)]
    }
}
