import Testing
import Shared
@testable import ExpertHost

@Suite struct ExpertHostHTTPTests {
    static let classes: [(name: String, hidden: Int)] = [("ffn", 16), ("transformer", 32), ("det_dropout", 16), ("nop", 16)]

    @Test(arguments: classes.indices)
    func httpMatchesTheInProcessExpertAndTrainsLikeIt(_ index: Int) async throws {
        let (name, hidden) = Self.classes[index]
        let reference = try ExpertRegistry.standard.make(name, hiddenSize: hidden, seed: ExpertHost.expertSeed(base: 0, index: 0))
        // The host clips gradients to norm 1 by default (--clip-grad-norm); so does the reference here.
        var optimizer = try Optimizer(rule: .adam(), learningRate: 1e-2, maxGradientNorm: 1)
        var generator = SplitMix64(seed: 11)
        try await withExpertHost(["--expert-uids", "x.0", "--expert-class", name, "--hidden-dim", "\(hidden)", "--learning-rate", "0.01"]) { url, host in
            let inputs = sampleInputs(reference.schema, batch: 3, generator: &generator)
            let forward = try await post("\(url)/v1/experts/x.0/forward", [("input", inputs)])
            let expected = try reference.forward(inputs: inputs)
            for (position, output) in expected.enumerated() {
                #expect(maxRelativeError(try #require(forward["output.\(position)"]), output) < 1e-5)
            }
            for _ in 0..<3 {
                let gradOutputs = sampleGradients(like: expected, generator: &generator)
                let backward = try await post("\(url)/v1/experts/x.0/backward", [("input", inputs), ("grad_output", gradOutputs)])
                var target = reference
                let local = try reference.backward(inputs: inputs, gradOutputs: gradOutputs)
                try optimizer.step(&target, gradients: local.parameterGradients)
                for (position, gradient) in local.gradInputs.enumerated() {
                    #expect(maxRelativeError(try #require(backward["grad_input.\(position)"]), gradient) < 1e-5)
                }
                for (position, output) in local.outputs.enumerated() {
                    #expect(maxRelativeError(try #require(backward["output.\(position)"]), output) < 1e-5)
                }
            }
            let served = host.backends["x.0"]!.expert.parametersByName
            for (parameter, tensor) in reference.parameters {
                #expect(maxRelativeError(try #require(served[parameter]), tensor) < 1e-5, "\(parameter) after 3 steps")
            }
            #expect(host.backends["x.0"]!.steps == 3)
        }
    }

    @Test func concurrentClientsAreBatched() async throws {
        let reference = try ExpertRegistry.standard.make("ffn", hiddenSize: 64, seed: ExpertHost.expertSeed(base: 0, index: 0))
        try await withExpertHost(["--expert-uids", "ffn.0", "--hidden-dim", "64"]) { url, host in
            let results = try await withThrowingTaskGroup(of: (Tensor, Tensor).self) { group in
                for client in 0..<32 {
                    group.addTask {
                        var generator = SplitMix64(seed: UInt64(client))
                        let input = Tensor.randomNormal(shape: [16, 64], using: &generator)
                        return (input, try #require(try await post("\(url)/v1/experts/ffn.0/forward", [("input", [input])])["output.0"]))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (input, output) in results {
                #expect(maxRelativeError(output, try reference.forward(inputs: [input])[0]) < 1e-5)
            }
            let labels = ["pool": "ffn.0/forward"]
            let batches = host.metrics.count("runtime_batch_size", labels: labels)
            let meanBatch = host.metrics.value("runtime_batch_size", labels: labels) / Double(batches)
            #expect(meanBatch > 16, "mean executed batch \(meanBatch) samples over \(batches) batches")
        }
    }

    /// Concurrent backward calls merge into fewer steps by default; with `--step-per-call`
    /// each is one step, so an expert trains as far on a number of samples whatever the load.
    @Test(arguments: [false, true]) func concurrentBackwardCalls(stepPerCall: Bool) async throws {
        try await withExpertHost(["--expert-uids", "ffn.0", "--hidden-dim", "512"] + (stepPerCall ? ["--step-per-call"] : [])) { url, host in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<16 {
                    group.addTask {
                        var generator = SplitMix64(seed: UInt64(client))
                        let input = Tensor.randomNormal(shape: [16, 512], using: &generator)
                        let gradient = Tensor.randomNormal(shape: [16, 512], using: &generator)
                        _ = try await post("\(url)/v1/experts/ffn.0/backward", [("input", [input]), ("grad_output", [gradient])])
                    }
                }
                try await group.waitForAll()
            }
            let batches = host.metrics.count("runtime_batch_size", labels: ["pool": "ffn.0/backward"])
            #expect(host.backends["ffn.0"]!.steps == batches)
            if stepPerCall {
                #expect(batches == 16)
            } else {
                #expect(batches < 16, "16 concurrent backward calls ran as \(batches) batches")
            }
        }
    }

    @Test func backwardWithoutTheTokenIsRefusedAndChangesNothing() async throws {
        try await withExpertHost(["--expert-uids", "ffn.0", "--hidden-dim", "8", "--backward-token", "secret"]) { url, host in
            let before = host.backends["ffn.0"]!.expert.parametersByName
            let inputs = [Tensor(repeating: 1, shape: [2, 8])]
            for headers in [[], [(name: "Authorization", value: "Bearer wrong")]] {
                do {
                    _ = try await post("\(url)/v1/experts/ffn.0/backward", [("input", inputs), ("grad_output", inputs)], headers: headers)
                    Issue.record("backward without the right token succeeded")
                } catch let error as HTTPClientError {
                    #expect(error.status == 401)
                }
            }
            #expect(host.backends["ffn.0"]!.expert.parametersByName == before)
            _ = try await post("\(url)/v1/experts/ffn.0/backward", [("input", inputs), ("grad_output", inputs)],
                               headers: [("Authorization", "Bearer secret")])
            #expect(host.backends["ffn.0"]!.steps == 1)
            _ = try await post("\(url)/v1/experts/ffn.0/forward", [("input", inputs)])  // forward stays open
        }
    }
}
