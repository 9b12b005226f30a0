import Foundation
import Testing
@testable import Shared

/// The experts' forward passes agree with numpy implementations written from
/// the reference's formulas. Parameters and inputs travel in one safetensors
/// file under the experts' PyTorch names.
@Suite struct NeuralExpertNumpyTests {
    static let helpers = """
    import sys, numpy as np
    from safetensors.numpy import load_file
    t = {k: v.astype(np.float64) if v.dtype != np.bool_ else v for k, v in load_file(sys.argv[1]).items()}
    def linear(x, name):
        return x @ t[name + ".weight"].T + t[name + ".bias"]
    def gelu_tanh(x):
        return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))
    def layer_norm(x, name, eps):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]
    def save(y):
        y.astype("<f4").tofile(sys.argv[2])
    """

    static let scripts: [String: String] = [
        "ffn": """
        x = t["input.0"]
        save(layer_norm(x + linear(gelu_tanh(linear(x, "ffn")), "ffn_output"), "layer_norm", 1e-12))
        """,
        "transformer": """
        x, pad = t["input.0"], t["input.1"]
        n, s, e = x.shape
        h = 16; d = e // h
        qkv = x @ t["self_attn.in_proj_weight"].T + t["self_attn.in_proj_bias"]
        q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(n, s, h, d).transpose(0, 2, 1, 3) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        scores = np.where(pad[:, None, None, :], -np.inf, scores)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        attended = linear((p @ v).transpose(0, 2, 1, 3).reshape(n, s, e), "self_attn.out_proj")
        n1 = layer_norm(x + attended, "norm1", 1e-5)
        save(layer_norm(n1 + linear(gelu_tanh(linear(n1, "linear1")), "linear2"), "norm2", 1e-5))
        """,
        "det_dropout": """
        x, mask = t["input.0"], t["input.1"]
        save(linear(np.maximum(linear(x * mask / 0.8, "linear_in"), 0), "linear_out"))
        """,
    ]

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

    @Test(arguments: ["ffn", "transformer", "det_dropout"])
    func forwardMatchesNumpy(expertClass: String) throws {
        var generator = SplitMix64(seed: 61)
        let hiddenSize = ["ffn": 32, "transformer": 64, "det_dropout": 16][expertClass]!
        let expert = try ExpertRegistry.standard.make(expertClass, hiddenSize: hiddenSize, seed: 62)
        // Perturb every parameter so that zero biases and unit norms do not hide mistakes.
        var perturbed: any Expert = expert
        perturbed.visitParameters(prefix: "") { _, tensor in
            tensor = try! tensor + Tensor.randomNormal(shape: tensor.shape, standardDeviation: 0.1, using: &generator)
        }
        let inputs = try Self.inputs(expertClass, &generator)
        let payload = try Safetensors.encode(perturbed.parameters.map { ($0.name, try WireTensor($0.tensor)) }
            + inputs.map { ($0.0, $0.1) })
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("expert.safetensors"), output = directory.appendingPathComponent("output")
        try Data(payload).write(to: file)

        _ = try runSafetensorsPython(Self.helpers + "\n" + Self.scripts[expertClass]!, [file.path, output.path])
        let expected = try readRaw(output)
        let ours = try perturbed.forward(inputs: inputs.map(\.2))[0]
        #expect(ours.count == expected.count)
        let worst = zip(ours.scalars, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "largest difference \(worst)")
    }
}
