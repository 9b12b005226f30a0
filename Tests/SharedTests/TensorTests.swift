import Testing
@testable import Shared

@Suite struct TensorTests {
    @Test func initChecksTheScalarCount() throws {
        let tensor = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(tensor.count == 6 && tensor.rank == 2)
        #expect(throws: TensorError("init", "shape [2, 3] needs 6 scalars, got 5")) {
            try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5])
        }
        #expect(throws: TensorError.self) { try Tensor(shape: [-1, 3], scalars: []) }
        #expect(Tensor(zeros: [2, 2]).scalars == [0, 0, 0, 0])
        #expect(Tensor(repeating: 3, shape: [3]).scalars == [3, 3, 3])
        #expect(Tensor(scalar: 5).rank == 0)
    }

    @Test func reshapeKeepsScalarsAndInfersOneDimension() throws {
        let tensor = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(try tensor.reshaped([3, 2]).shape == [3, 2])
        #expect(try tensor.reshaped([-1]).shape == [6])
        #expect(try tensor.reshaped([3, -1]).scalars == tensor.scalars)
        #expect(throws: TensorError.self) { try tensor.reshaped([4, 2]) }
        #expect(throws: TensorError.self) { try tensor.reshaped([-1, -1]) }
        #expect(throws: TensorError.self) { try tensor.reshaped([4, -1]) }
    }

    @Test func seededGeneratorIsReproducibleAndNormal() {
        var first = SplitMix64(seed: 42), second = SplitMix64(seed: 42)
        let a = Tensor.randomNormal(shape: [10_001], using: &first)
        let b = Tensor.randomNormal(shape: [10_001], using: &second)
        #expect(a == b)
        let mean = a.scalars.reduce(0, +) / Float(a.count)
        let variance = a.scalars.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(a.count)
        #expect(abs(mean) < 0.05 && abs(variance - 1) < 0.05)
    }
}
