import Testing
import Shared
@testable import Gateway

/// The whole HTTP path against finite differences: DHT, expert hosts, gateway.
@Suite struct GatewayGradientTests {
    @Test func forwardAndBackwardAgreeWithFiniteDifferences() async throws {
        let hidden = 6
        let mesh = try await TestMesh.start([
            ["--expert-uids", "ffn.0.0,ffn.0.1", "--hidden-dim", "\(hidden)", "--seed", "1"],
            ["--expert-uids", "ffn.1.0,ffn.1.1", "--hidden-dim", "\(hidden)", "--seed", "2"],
        ])
        // k_best covers the whole grid, so the routing cannot change under small perturbations.
        let query = "prefix=ffn.&grid=2,2&k_best=4"
        var generator = SplitMix64(seed: 5)
        let x = Tensor.randomNormal(shape: [3, hidden], using: &generator)
        let scores = Tensor.randomNormal(shape: [3, 4], using: &generator)
        let g = Tensor.randomNormal(shape: [3, hidden], using: &generator)
        try await withGatewayServer(mesh.gateway()) { url in
            /// The loss g . output, in Double.
            func loss(_ x: Tensor, _ scores: Tensor) async throws -> Double {
                let (output, _) = try await moeForward(url, x: x, scores: scores, query: query)
                return zip(output.scalars, g.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            let (_, routing) = try await moeForward(url, x: x, scores: scores, query: query)
            let (gradX, gradScores) = try await moeBackward(url, x: x, gradOutput: g, routing: routing, query: query)
            let step: Float = 1e-2
            for (tensor, gradient, name) in [(x, gradX, "x"), (scores, gradScores, "scores")] {
                for index in tensor.scalars.indices {
                    var plus = tensor, minus = tensor
                    plus.scalars[index] += step
                    minus.scalars[index] -= step
                    let numeric = name == "x"
                        ? (try await loss(plus, scores) - loss(minus, scores)) / Double(2 * step)
                        : (try await loss(x, plus) - loss(x, minus)) / Double(2 * step)
                    let analytic = Double(gradient.scalars[index])
                    #expect(abs(numeric - analytic) <= 2e-3 * max(1, abs(numeric)), "d loss / d \(name)[\(index)]: \(numeric) numerically, \(analytic) from backward")
                }
            }
        }
    }
}
