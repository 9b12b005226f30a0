import Testing
@testable import Shared

/// Naive triple loop over row-major matrices: the independent answer sgemm must match.
func naiveMatmul(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int], transposeA: Bool, transposeB: Bool) -> [Float] {
    let m = transposeA ? aShape[1] : aShape[0], k = transposeA ? aShape[0] : aShape[1]
    let n = transposeB ? bShape[0] : bShape[1]
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var sum: Double = 0
            for p in 0..<k {
                let x = transposeA ? a[p * aShape[1] + i] : a[i * aShape[1] + p]
                let y = transposeB ? b[j * bShape[1] + p] : b[p * bShape[1] + j]
                sum += Double(x) * Double(y)
            }
            c[i * n + j] = Float(sum)
        }
    }
    return c
}

/// True when every pair agrees to `tolerance`, relative to the larger magnitude (absolute near zero).
func close(_ x: [Float], _ y: [Float], tolerance: Float = 1e-5) -> Bool {
    guard x.count == y.count else { return false }
    return zip(x, y).allSatisfy { abs($0 - $1) <= tolerance * Swift.max(1, abs($0), abs($1)) }
}

@Suite struct TensorMatmulTests {
    static let transposes = [(false, false), (true, false), (false, true), (true, true)]

    @Test(arguments: transposes)
    func matmulMatchesNaiveLoops(transposeA: Bool, transposeB: Bool) throws {
        var rng = SplitMix64(seed: 7)
        let (m, k, n) = (5, 7, 3)
        let a = Tensor.randomNormal(shape: transposeA ? [k, m] : [m, k], using: &rng)
        let b = Tensor.randomNormal(shape: transposeB ? [n, k] : [k, n], using: &rng)
        let c = try Tensor.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [m, n])
        #expect(close(c.scalars, naiveMatmul(a.scalars, a.shape, b.scalars, b.shape, transposeA: transposeA, transposeB: transposeB)))
    }

    @Test func accumulatingMatmulAddsIntoExistingStorage() throws {
        var rng = SplitMix64(seed: 8)
        let a = Tensor.randomNormal(shape: [4, 6], using: &rng)
        let b = Tensor.randomNormal(shape: [6, 2], using: &rng)
        let start = Tensor.randomNormal(shape: [4, 2], using: &rng)
        var c = start
        try Tensor.matmul(a, b, alpha: 2, beta: 0.5, into: &c)
        let product = naiveMatmul(a.scalars, a.shape, b.scalars, b.shape, transposeA: false, transposeB: false)
        let expected = zip(product, start.scalars).map { 2 * $0 + 0.5 * $1 }
        #expect(close(c.scalars, expected))
        #expect(start.scalars != c.scalars, "the original must not change: storage is copy-on-write")
    }

    @Test(arguments: transposes)
    func batchedMatmulMatchesPerBatchLoops(transposeA: Bool, transposeB: Bool) throws {
        var rng = SplitMix64(seed: 9)
        let (batch, m, k, n) = (3, 4, 5, 2)
        let a = Tensor.randomNormal(shape: transposeA ? [batch, k, m] : [batch, m, k], using: &rng)
        let b = Tensor.randomNormal(shape: transposeB ? [batch, n, k] : [batch, k, n], using: &rng)
        let c = try Tensor.batchedMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [batch, m, n])
        for index in 0..<batch {
            let aSlice = Array(a.scalars[index * m * k ..< (index + 1) * m * k])
            let bSlice = Array(b.scalars[index * k * n ..< (index + 1) * k * n])
            let expected = naiveMatmul(aSlice, Array(a.shape.dropFirst()), bSlice, Array(b.shape.dropFirst()),
                                       transposeA: transposeA, transposeB: transposeB)
            #expect(close(Array(c.scalars[index * m * n ..< (index + 1) * m * n]), expected))
        }
    }

    @Test func emptyInnerDimensionGivesZeros() throws {
        let c = try Tensor.matmul(Tensor(zeros: [2, 0]), Tensor(zeros: [0, 3]))
        #expect(c == Tensor(zeros: [2, 3]))
    }

    @Test func wrongShapesThrowInsteadOfTrapping() {
        #expect(throws: TensorError("matmul", "inner dimensions differ: [2, 3] x [4, 5]")) {
            try Tensor.matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5]))
        }
        #expect(throws: TensorError.self) { try Tensor.matmul(Tensor(zeros: [2, 3, 1]), Tensor(zeros: [3, 5])) }
        #expect(throws: TensorError.self) { try Tensor.batchedMatmul(Tensor(zeros: [2, 3, 4]), Tensor(zeros: [3, 4, 5])) }
        var output = Tensor(zeros: [3, 3])
        #expect(throws: TensorError.self) { try Tensor.matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 5]), into: &output) }
        var broken = Tensor(zeros: [2, 3])
        broken.scalars = [1, 2]
        #expect(throws: TensorError.self) { try Tensor.matmul(broken, Tensor(zeros: [3, 5])) }
    }
}
