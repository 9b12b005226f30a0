import Foundation

extension Tensor {
    /// Standard-normal samples (Box-Muller over `generator`), scaled and shifted.
    public static func randomNormal<G: RandomNumberGenerator>(shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                                            using generator: inout G) -> Tensor {
        var tensor = Tensor(zeros: shape)
        let count = tensor.count
        tensor.scalars.withUnsafeMutableBufferPointer { out in
            var index = 0
            while index < count {
                // Two uniforms in (0, 1]; 1 - u keeps log away from zero.
                let u1 = 1 - Double(generator.next() >> 11) * 0x1p-53
                let u2 = Double(generator.next() >> 11) * 0x1p-53
                let radius = (-2 * log(u1)).squareRoot()
                let angle = 2 * Double.pi * u2
                out[index] = Float(radius * cos(angle)) * standardDeviation + mean
                if index + 1 < count { out[index + 1] = Float(radius * sin(angle)) * standardDeviation + mean }
                index += 2
            }
        }
        return tensor
    }

    /// Samples uniform in `range` over `generator`.
    public static func randomUniform<G: RandomNumberGenerator>(shape: [Int], in range: ClosedRange<Float> = 0...1,
                                                             using generator: inout G) -> Tensor {
        var tensor = Tensor(zeros: shape)
        let width = range.upperBound - range.lowerBound
        tensor.scalars.withUnsafeMutableBufferPointer { out in
            for index in out.indices {
                out[index] = range.lowerBound + width * Float(Double(generator.next() >> 40) * 0x1p-24)
            }
        }
        return tensor
    }
}
