import Testing
import Shared
@testable import Averager

struct FiniteTests {
    /// The bit trick agrees with `isFinite` on every kind of float and at every position.
    @Test func agreesWithIsFinite() {
        let special: [Float] = [0, -0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                .leastNormalMagnitude, .infinity, -.infinity, .nan, -.nan, .signalingNaN,
                                Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFFF_FFFF), Float(bitPattern: 0x7F7F_FFFF)]
        for value in special {
            for count in [1, 7, 64, 1000] {
                for position in Set([0, count / 2, count - 1]) {
                    var values = [Float](repeating: 0.5, count: count)
                    values[position] = value
                    #expect(Finite.all(values) == values.allSatisfy { $0.isFinite }, "\(value) at \(position) of \(count)")
                }
            }
        }
        #expect(Finite.all([]))
        var generator = SystemRandom()
        let random = (0..<10_000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
        #expect(Finite.all(random) == random.allSatisfy { $0.isFinite })
    }
}
