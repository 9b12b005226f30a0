import Foundation
import Testing
import Shared
import TestSupport
@testable import Gateway

/// The Switch variant through the whole HTTP path: gradients against finite
/// differences, the residual alone when the expert is too slow, bad input.
@Suite struct GatewaySwitchTests {
    @Test func forwardAndBackwardAgreeWithFiniteDifferences() async throws {
        let hidden = 6
        let mesh = try await TestMesh.start([
            ["--expert-uids", "ffn.0.0,ffn.0.1,ffn.0.2", "--hidden-dim", "\(hidden)", "--seed", "1"],
            ["--expert-uids", "ffn.1.0,ffn.1.1,ffn.1.2", "--hidden-dim", "\(hidden)", "--seed", "2"],
        ])
        // A fixed seed keeps the jitter the same across the perturbed calls.
        let query = "prefix=ffn.&grid=2,3&jitter=0.05&seed=11"
        let batch = 4
        var generator = SplitMix64(seed: 5)
        let x = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
        // One clear winner per dimension, so small perturbations cannot change the routing.
        var scores = Tensor.randomNormal(shape: [batch, 5], standardDeviation: 0.3, using: &generator)
        for sample in 0..<batch {
            scores.scalars[sample * 5 + sample % 2] += 2
            scores.scalars[sample * 5 + 2 + sample % 3] += 2
        }
        let utilization = try Tensor(shape: [5], scalars: [0.7, 0.3, 0.2, 0.5, 0.3])
        let g = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
        let gradLoss: Float = 0.8
        try await withGatewayServer(mesh.gateway()) { url in
            /// The loss g . output + gradLoss * balancing_loss, in Double.
            func loss(_ x: Tensor, _ scores: Tensor) async throws -> Double {
                let forward = try await switchForward(url, x: x, scores: scores, utilization: utilization, query: query)
                return zip(forward.output.scalars, g.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
                    + Double(gradLoss) * Double(forward.balancingLoss)
            }
            let forward = try await switchForward(url, x: x, scores: scores, utilization: utilization, query: query)
            #expect(forward.metadata["jitter_seed"] == "11")
            #expect(forward.utilization.scalars.reduce(0, +) > 1.99 && forward.utilization.scalars.reduce(0, +) < 2.01)
            let (gradX, gradScores) = try await switchBackward(url, x: x, scores: scores, gradOutput: g, gradLoss: gradLoss,
                                                               forward: forward, query: query)
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

    @Test func aSlowExpertLeavesTheResidualAlone() async throws {
        let mesh = try await TestMesh.start([
            ["--expert-uids", "nop.0.0", "--expert-class", "nop", "--hidden-dim", "4"],
            ["--expert-uids", "nop.1.0", "--expert-class", "nop_delay", "--hidden-dim", "4"],
        ])
        var generator = SplitMix64(seed: 3)
        let x = Tensor.randomNormal(shape: [2, 4], using: &generator)
        // Sample 0 chooses the fast expert, sample 1 the slow one (0.5 s), cut off at forward_timeout 0.2 s.
        let scores = try Tensor(shape: [2, 3], scalars: [3, -3, 0, -3, 3, 0])
        let query = "prefix=nop.&grid=2,1&k_min=0&forward_timeout=0.2&backward_timeout=0.2"
        try await withGatewayServer(mesh.gateway()) { url in
            // Warm up connections on the fast expert so the timed call measures the cut-off alone.
            _ = try await switchForward(url, x: x, scores: try Tensor(shape: [2, 3], scalars: [3, -3, 0, 3, -3, 0]), query: query)
            let started = Clock.now
            let forward = try await switchForward(url, x: x, scores: scores, query: query)
            #expect(Clock.now - started < 0.45)
            let weight = 1 / (1 + expf(-6))  // softmax of [3, -3] at 3, times softmax of [0] = 1
            for index in 0..<4 {
                #expect(abs(forward.output.scalars[index] - (1 + weight) * x.scalars[index]) < 1e-5)
            }
            #expect(Array(forward.output.scalars[4...]) == Array(x.scalars[4...]), "the slow expert's sample is the residual alone")
            #expect(forward.metadata["routing"]!.contains("nop.0.0") && !forward.metadata["routing"]!.contains("nop.1.0"))
            // Only the fast expert counts in the utilisation: 0.9 * 0.5 + 0.1 * [1, 0].
            #expect(forward.utilization.scalars.map { ($0 * 1000).rounded() / 1000 } == [0.55, 0.45, 1])

            let g = Tensor(repeating: 1, shape: [2, 4])
            let (gradX, _) = try await switchBackward(url, x: x, scores: scores, gradOutput: g, gradLoss: 0, forward: forward, query: query)
            #expect(Array(gradX.scalars[4...]) == Array(g.scalars[4...]), "the residual passes grad_output through")
        }
    }

    static let badRequests: [(query: String, utilization: Tensor?, status: Int, mentions: String)] = [
        ("prefix=ffn.&grid=2,2&k_best=2", nil, 422, "k_best must be 1"),
        ("prefix=ffn.&grid=2,2&jitter=1.5", nil, 400, "jitter"),
        ("prefix=ffn.&grid=2,2&utilization_alpha=-1", nil, 400, "utilization_alpha"),
        ("prefix=ffn.&grid=2,2&seed=x", nil, 400, "seed"),
        ("prefix=ffn.&grid=2,2", Tensor(zeros: [3]), 422, "utilization must be [4]"),
        ("prefix=ffn.&grid=3,3", nil, 422, "scores must be [2, 6]"),
    ]

    @Test(arguments: badRequests.indices)
    func badForwardInputGetsAClearError(_ index: Int) async throws {
        let testCase = Self.badRequests[index]
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        try await withGatewayServer(gateway) { url in
            do {
                _ = try await switchForward(url, x: Tensor(zeros: [2, 4]), scores: Tensor(zeros: [2, 4]), utilization: testCase.utilization,
                                            query: testCase.query)
                Issue.record("\(testCase.query) succeeded")
            } catch let error as HTTPClientError {
                #expect(error.status == testCase.status, "\(testCase.query): \(error)")
                #expect(error.serverMessage.contains(testCase.mentions), "\(testCase.query): \(error.serverMessage)")
            }
        }
    }

    @Test func badBackwardInputGetsAClearError() async throws {
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        let two = #"[[{"uid":"ffn.0.0","url":"http://127.0.0.1:1","weight":0.5},{"uid":"ffn.1.0","url":"http://127.0.0.1:1","weight":0.5}]]"#
        let x = Tensor(zeros: [1, 4])
        let cases: [(query: String, metadata: [String: String], mentions: String)] = [
            ("prefix=ffn.&grid=2,2", IssuedRouting.sealed(two, x: x).metadata, "routes to one"),
            ("prefix=ffn.&grid=2,2&jitter=0.1", IssuedRouting.sealed("[[]]", x: x).metadata, "jitter_seed"),
        ]
        try await withGatewayServer(gateway) { url in
            for testCase in cases {
                let forward = SwitchForwardResponse(output: Tensor(zeros: [1, 4]), balancingLoss: 0,
                                                    utilization: Tensor(repeating: 0.5, shape: [4]), metadata: testCase.metadata)
                do {
                    _ = try await switchBackward(url, x: x, scores: Tensor(zeros: [1, 4]), gradOutput: Tensor(zeros: [1, 4]),
                                                 gradLoss: 0, forward: forward, query: testCase.query)
                    Issue.record("\(testCase.query) backward succeeded")
                } catch let error as HTTPClientError {
                    #expect(error.status == 422 && error.serverMessage.contains(testCase.mentions), "\(testCase.query): \(error)")
                }
            }
        }
    }
}
