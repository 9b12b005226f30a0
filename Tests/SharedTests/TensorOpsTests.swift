import Foundation
import Testing
@testable import Shared

/// Independent answers: straightforward loops over explicit indices.
private func naiveBroadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> [Float] {
    (0..<a.count).map { f(a.scalars[$0], b.scalars[b.count == 1 ? 0 : $0 % b.count]) }
}

/// Reduces `[outer, length, inner]` the slow way, one output element at a time.
private func naiveReduce(_ t: Tensor, axis: Int, _ f: ([Float]) -> Float) -> [Float] {
    let outer = t.shape[..<axis].reduce(1, *), length = t.shape[axis], inner = t.shape[(axis + 1)...].reduce(1, *)
    var out: [Float] = []
    for o in 0..<outer {
        for i in 0..<inner { out.append(f((0..<length).map { t.scalars[(o * length + $0) * inner + i] })) }
    }
    return out
}

@Suite struct TensorOpsTests {
    @Test(arguments: [[3, 4], [4], [1, 4], [1], [], [2, 3, 4]])
    func broadcastingMatchesNaiveLoops(rightShape: [Int]) throws {
        var rng = SplitMix64(seed: 1)
        let a = Tensor.randomNormal(shape: [2, 3, 4], using: &rng)
        let b = Tensor.randomUniform(shape: rightShape, in: 0.5...2, using: &rng)
        #expect(close(try (a + b).scalars, naiveBroadcast(a, b, +)))
        #expect(close(try (a - b).scalars, naiveBroadcast(a, b, -)))
        #expect(close(try (a * b).scalars, naiveBroadcast(a, b, *)))
        #expect(close(try (a / b).scalars, naiveBroadcast(a, b, /)))
        var inPlace = a
        try inPlace.add(b)
        #expect(close(inPlace.scalars, naiveBroadcast(a, b, +)))
        try inPlace.divide(b)
        #expect(close(inPlace.scalars, naiveBroadcast(Tensor(unchecked: a.shape, naiveBroadcast(a, b, +)), b, /)))
        #expect((try a + b).shape == a.shape)
    }

    @Test(arguments: [[3], [2, 4], [5, 3, 4], [2, 1]])
    func broadcastingRejectsShapesThatAreNotSuffixes(rightShape: [Int]) {
        let a = Tensor(zeros: [2, 3, 4])
        #expect(throws: TensorError.self) { try a + Tensor(zeros: rightShape) }
        var b = a
        #expect(throws: TensorError.self) { try b.multiply(Tensor(zeros: rightShape)) }
    }

    @Test func scalarOpsAxpyAndScale() throws {
        let a = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect((a + 1).scalars == [2, 3, 4, 5])
        #expect((2 * a).scalars == [2, 4, 6, 8])
        #expect((1 - a).scalars == [0, -1, -2, -3])
        #expect((a / 2).scalars == [0.5, 1, 1.5, 2])
        #expect((-a).scalars == [-1, -2, -3, -4])
        var b = a
        try b.add(a, scaledBy: 0.5)
        #expect(b.scalars == [1.5, 3, 4.5, 6])
        b.scale(by: 2)
        #expect(b.scalars == [3, 6, 9, 12])
        b -= 1
        #expect(b.scalars == [2, 5, 8, 11])
        #expect(throws: TensorError.self) { try b.add(Tensor(zeros: [4]), scaledBy: 1) }
    }

    @Test(arguments: [0, 1, 2, -1])
    func reductionsMatchNaiveLoops(axis: Int) throws {
        var rng = SplitMix64(seed: 2)
        let t = Tensor.randomNormal(shape: [3, 5, 7], using: &rng)
        let resolved = axis < 0 ? axis + 3 : axis
        var reducedShape = t.shape
        reducedShape.remove(at: resolved)
        let sum = try t.sum(alongAxis: axis)
        #expect(sum.shape == reducedShape)
        #expect(close(sum.scalars, naiveReduce(t, axis: resolved) { $0.reduce(0, +) }))
        #expect(close(try t.mean(alongAxis: axis).scalars, naiveReduce(t, axis: resolved) { $0.reduce(0, +) / Float($0.count) }))
        #expect(try t.max(alongAxis: axis).scalars == naiveReduce(t, axis: resolved) { $0.max()! })
        #expect(try t.sum(alongAxis: axis, keepingDimension: true).shape[resolved] == 1)
    }

    @Test func wholeTensorReductionsAndEdgeCases() throws {
        var rng = SplitMix64(seed: 3)
        let t = Tensor.randomNormal(shape: [1000, 13], using: &rng)
        let exact = t.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(Double(t.sum()) - exact) <= 1e-5 * max(1, abs(exact)))
        #expect(t.max() == t.scalars.max())
        #expect(Tensor(zeros: [0]).max() == nil)
        #expect(try Tensor(zeros: [2, 0]).sum(alongAxis: 1).scalars == [0, 0])
        #expect(try Tensor(zeros: [0, 3]).max(alongAxis: 1).shape == [0])
        #expect(throws: TensorError("max", "axis 1 of [2, 0] is empty")) { try Tensor(zeros: [2, 0]).max(alongAxis: 1) }
        #expect(throws: TensorError("sum", "axis 2 is out of range for shape [2, 0]")) { try Tensor(zeros: [2, 0]).sum(alongAxis: 2) }
    }

    @Test(arguments: [Float(1), 1000, 1e30])
    func softmaxIsStableAndMatchesTheDefinition(magnitude: Float) throws {
        var rng = SplitMix64(seed: 4)
        let logits = Tensor.randomNormal(shape: [4, 9], using: &rng) * magnitude
        let probabilities = try logits.softmax()
        let logProbabilities = try logits.logSoftmax()
        for row in 0..<4 {
            let values = logits.scalars[(row * 9)..<(row * 9 + 9)].map(Double.init)
            let top = values.max()!
            let total = values.map { exp($0 - top) }.reduce(0, +)
            let expected = values.map { Float(exp($0 - top) / total) }
            let expectedLog = values.map { Float($0 - top - log(total)) }
            #expect(close(Array(probabilities.scalars[(row * 9)..<(row * 9 + 9)]), expected))
            #expect(close(Array(logProbabilities.scalars[(row * 9)..<(row * 9 + 9)]), expectedLog))
        }
        #expect(probabilities.scalars.allSatisfy { $0.isFinite })
        #expect(throws: TensorError.self) { try Tensor(scalar: 1).softmax() }
    }

    @Test func concatenateSplitRowsAndTranspose() throws {
        let a = try Tensor(shape: [1, 3], scalars: [1, 2, 3])
        let b = try Tensor(shape: [2, 3], scalars: [4, 5, 6, 7, 8, 9])
        let joined = try Tensor.concatenate([a, b])
        #expect(joined.shape == [3, 3] && joined.scalars == Array(1...9).map(Float.init))
        #expect(try joined.split(sizes: [1, 2]) == [a, b])
        #expect(try joined.split(sizes: [0, 3])[0].shape == [0, 3])
        #expect(try joined.rows(1..<2).scalars == [4, 5, 6])
        #expect(throws: TensorError.self) { try Tensor.concatenate([a, Tensor(zeros: [1, 2])]) }
        #expect(throws: TensorError.self) { try Tensor.concatenate([]) }
        #expect(throws: TensorError.self) { try joined.split(sizes: [1, 1]) }
        #expect(throws: TensorError.self) { try joined.rows(2..<4) }

        var rng = SplitMix64(seed: 5)
        let m = Tensor.randomNormal(shape: [37, 19], using: &rng)
        let t = try m.transposed()
        #expect(t.shape == [19, 37])
        var mismatches = 0
        for i in 0..<37 {
            for j in 0..<19 where t.scalars[j &* 37 &+ i] != m.scalars[i &* 19 &+ j] { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(try t.transposed() == m)
        #expect(throws: TensorError.self) { try Tensor(zeros: [2, 2, 2]).transposed() }
    }
}
