import Foundation
import Testing
@testable import Shared

extension NeuralTests {
    /// The experts' forward passes agree with numpy implementations written from
    /// the reference's formulas. Parameters and inputs travel in one safetensors
    /// file per expert under the experts' PyTorch names.
    @Suite struct NeuralExpertNumpyTests {
        /// Arguments come in threes: expert class, safetensors file, output file.
        static let script = """
        import sys, numpy as np
        from safetensors.numpy import load_file

        def linear(t, x, name):
            return x @ t[name + ".weight"].T + t[name + ".bias"]

        def gelu_tanh(x):
            return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

        def layer_norm(t, x, name, eps):
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]

        def ffn(t):
            x = t["input.0"]
            return layer_norm(t, x + linear(t, gelu_tanh(linear(t, x, "ffn")), "ffn_output"), "layer_norm", 1e-12)

        def transformer(t):
            x, pad = t["input.0"], t["input.1"]
            n, s, e = x.shape
            h = 16; d = e // h
            qkv = x @ t["self_attn.in_proj_weight"].T + t["self_attn.in_proj_bias"]
            q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(n, s, h, d).transpose(0, 2, 1, 3) for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
            scores = np.where(pad[:, None, None, :], -np.inf, scores)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            attended = linear(t, (p @ v).transpose(0, 2, 1, 3).reshape(n, s, e), "self_attn.out_proj")
            n1 = layer_norm(t, x + attended, "norm1", 1e-5)
            return layer_norm(t, n1 + linear(t, gelu_tanh(linear(t, n1, "linear1")), "linear2"), "norm2", 1e-5)

        def det_dropout(t):
            x, mask = t["input.0"], t["input.1"]
            return linear(t, np.maximum(linear(t, x * mask / 0.8, "linear_in"), 0), "linear_out")

        args = sys.argv[1:]
        for expert, path, output in zip(args[0::3], args[1::3], args[2::3]):
            t = {k: v.astype(np.float64) if v.dtype != np.bool_ else v for k, v in load_file(path).items()}
            globals()[expert](t).astype("<f4").tofile(output)
        """

        static let hiddenSizes = ["ffn": 32, "transformer": 64, "det_dropout": 16]

        /// Inputs per class, with the transformer's padding mask sent as BOOL as the reference does.
        static func inputs(_ name: String, _ generator: inout SplitMix64) throws -> [(String, WireTensor, Tensor)] {
            switch name {
            case "ffn":
                let x = Tensor.randomNormal(shape: [5, 32], using: &generator)
                return [("input.0", try WireTensor(x), x)]
            case "transformer":
                let x = Tensor.randomNormal(shape: [3, 6, 64], using: &generator)
                let padding = (0..<18).map { [5, 10, 11, 17].contains($0) }
                let mask = try Tensor(shape: [3, 6], scalars: padding.map { $0 ? 1 : 0 })
                return [("input.0", try WireTensor(x), x), ("input.1", try WireTensor(mask: padding, shape: [3, 6]), mask)]
            default:
                let x = Tensor.randomNormal(shape: [4, 16], using: &generator)
                let mask = Tensor.randomUniform(shape: [4, 16], using: &generator).mapped { $0 < 0.8 ? 1 : 0 }
                return [("input.0", try WireTensor(x), x), ("input.1", try WireTensor(mask), mask)]
            }
        }

        @Test func forwardMatchesNumpy() async throws {
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            var arguments: [String] = []
            var ours: [(String, Tensor)] = []
            var generator = SplitMix64(seed: 61)
            for (expertClass, hiddenSize) in Self.hiddenSizes.sorted(by: { $0.key < $1.key }) {
                var expert = try ExpertRegistry.standard.make(expertClass, hiddenSize: hiddenSize, seed: 62)
                // Perturb every parameter so that zero biases and unit norms do not hide mistakes.
                expert.visitParameters(prefix: "") { _, tensor in
                    tensor = try! tensor + Tensor.randomNormal(shape: tensor.shape, standardDeviation: 0.1, using: &generator)
                }
                let inputs = try Self.inputs(expertClass, &generator)
                let payload = try Safetensors.encode(expert.parameters.map { ($0.name, try WireTensor($0.tensor)) }
                    + inputs.map { ($0.0, $0.1) })
                let file = directory.appendingPathComponent("\(expertClass).safetensors")
                try Data(payload).write(to: file)
                arguments += [expertClass, file.path, directory.appendingPathComponent("\(expertClass).out").path]
                ours.append((expertClass, try expert.forward(inputs: inputs.map(\.2))[0]))
            }
            _ = try await runPythonScript(Self.script, arguments)
            for (expertClass, output) in ours {
                let expected = try readRaw(directory.appendingPathComponent("\(expertClass).out"))
                #expect(output.count == expected.count, "\(expertClass)")
                let worst = zip(output.scalars, expected).map { abs($0 - $1) }.max() ?? .infinity
                #expect(worst < 1e-4, "\(expertClass): largest difference \(worst)")
            }
        }
    }
}
