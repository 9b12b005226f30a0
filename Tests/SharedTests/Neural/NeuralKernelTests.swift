import Foundation
import Testing
@testable import Shared

extension NeuralTests {
    /// The vectorizable stand-ins for libm against libm itself.
    @Suite struct NeuralKernelTests {
        @Test func expIsWithinTwoTenthsOfAMillionthOfLibm() {
            var worst: Double = 0
            for step in 0...175_000 {
                let x = Float(-87 + Double(step) * 0.001)
                let exact = Foundation.exp(Double(x))
                worst = max(worst, abs(Double(Elementwise.exp(x)) - exact) / exact)
            }
            #expect(worst < 2e-7, "worst relative error \(worst)")
            // Saturates rather than overflowing or flushing to zero.
            #expect(Elementwise.exp(1000).isFinite && Elementwise.exp(-1000) > 0)
        }

        @Test func squareRootIsWithinThreeTenthsOfAMillionthOfLibm() {
            var worst: Double = 0
            var values: [Float] = [0, 1, 2, 0.25, 1e-30, 1e30]
            var generator = SplitMix64(seed: 91)
            // Log-uniform over 60 decades, where Adam's second moments live.
            for _ in 0..<100_000 { values.append(Float(pow(10, Double(generator.next() % 60_000) / 1000 - 30))) }
            for value in values {
                let exact = Double(value).squareRoot()
                let root = Double(Elementwise.squareRoot(value))
                worst = max(worst, exact == 0 ? root : abs(root - exact) / exact)
            }
            #expect(worst < 3e-7, "worst relative error \(worst)")
        }
    }
}
