import Foundation
import Testing
@testable import Shared

/// The optimizers take the same 20 steps as an independent numpy
/// implementation written from the published formulas (in float64).
@Suite struct NeuralOptimizerNumpyTests {
    /// One optimizer configuration, with the same settings in JSON for Python.
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let rule: UpdateRule
        let learningRate: Float
        var schedule: LearningRateSchedule = .constant
        var maxGradientNorm: Float?
        let json: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "sgd momentum + weight decay", rule: .sgd(momentum: 0.9, weightDecay: 0.01), learningRate: 0.05,
             json: #"{"rule": "sgd", "momentum": 0.9, "dampening": 0, "nesterov": false, "wd": 0.01}"#),
        Case(label: "sgd nesterov", rule: .sgd(momentum: 0.8, nesterov: true), learningRate: 0.05,
             json: #"{"rule": "sgd", "momentum": 0.8, "dampening": 0, "nesterov": true, "wd": 0}"#),
        Case(label: "sgd dampening, cosine", rule: .sgd(momentum: 0.5, dampening: 0.25), learningRate: 0.1,
             schedule: .cosine(warmupSteps: 3, totalSteps: 20),
             json: #"{"rule": "sgd", "momentum": 0.5, "dampening": 0.25, "nesterov": false, "wd": 0, "schedule": ["cosine", 3, 20]}"#),
        Case(label: "adam + L2 weight decay", rule: .adam(weightDecay: 0.01), learningRate: 0.01,
             json: #"{"rule": "adam", "b1": 0.9, "b2": 0.999, "eps": 1e-8, "wd": 0.01}"#),
        Case(label: "adamw, linear warmup, clipping", rule: .adamW(beta1: 0.8, beta2: 0.99, weightDecay: 0.1), learningRate: 0.02,
             schedule: .linear(warmupSteps: 5, totalSteps: 25), maxGradientNorm: 1.5,
             json: #"{"rule": "adamw", "b1": 0.8, "b2": 0.99, "eps": 1e-8, "wd": 0.1, "schedule": ["linear", 5, 25], "clip": 1.5}"#),
    ]

    static let script = """
    import sys, json, math, numpy as np
    d, cfg, steps = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    p = np.fromfile(f"{d}/initial", dtype="<f4").astype(np.float64)
    noise = np.fromfile(f"{d}/noise", dtype="<f4").astype(np.float64).reshape(steps, p.size)
    lr0 = float(sys.argv[4])

    def multiplier(done):
        if "schedule" not in cfg:
            return 1.0
        kind, warmup, total = cfg["schedule"]
        if done < warmup:
            return done / max(1, warmup)
        if kind == "linear":
            return max(0.0, (total - done) / max(1, total - warmup))
        progress = (done - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

    m = np.zeros_like(p); v = np.zeros_like(p); buf = None
    trajectory = []
    for t in range(1, steps + 1):
        g = 0.5 * p + noise[t - 1]
        if "clip" in cfg:
            g = g * min(1.0, cfg["clip"] / (np.sqrt((g * g).sum()) + 1e-6))
        lr = lr0 * multiplier(t - 1)
        if cfg["rule"] == "sgd":
            g = g + cfg["wd"] * p
            mu = cfg["momentum"]
            if mu:
                buf = g.copy() if buf is None else mu * buf + (1 - cfg["dampening"]) * g
                g = g + mu * buf if cfg["nesterov"] else buf
            p = p - lr * g
        else:
            if cfg["rule"] == "adam":
                g = g + cfg["wd"] * p
            else:
                p = p * (1 - lr * cfg["wd"])
            m = cfg["b1"] * m + (1 - cfg["b1"]) * g
            v = cfg["b2"] * v + (1 - cfg["b2"]) * g * g
            m_hat = m / (1 - cfg["b1"] ** t)
            v_hat = v / (1 - cfg["b2"] ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + cfg["eps"])
        trajectory.append(p.copy())
    np.array(trajectory).astype("<f4").tofile(f"{d}/trajectory")
    """

    @Test(arguments: cases)
    func twentyStepsMatchNumpy(_ testCase: Case) throws {
        let steps = 20
        var generator = SplitMix64(seed: 99)
        var module = try Linear(inputSize: 7, outputSize: 5, using: &generator)
        let count = module.parameterCount
        let noise = Tensor.randomNormal(shape: [steps, count], using: &generator)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try writeRaw(module.parameters.flatMap(\.tensor.scalars), to: directory.appendingPathComponent("initial"))
        try writeRaw(noise.scalars, to: directory.appendingPathComponent("noise"))

        var optimizer = try Optimizer(rule: testCase.rule, learningRate: testCase.learningRate, schedule: testCase.schedule,
                                      maxGradientNorm: testCase.maxGradientNorm)
        var ours: [Float] = []
        for step in 0..<steps {
            // g = 0.5 · p + noise, with the noise laid out in parameter order as for Python.
            var offset = step * count
            var gradients: [String: Tensor] = [:]
            for (name, tensor) in module.parameters {
                let slice = try Tensor(shape: tensor.shape, scalars: Array(noise.scalars[offset..<(offset + tensor.count)]))
                gradients[name] = try tensor * 0.5 + slice
                offset += tensor.count
            }
            try optimizer.step(&module, gradients: gradients)
            ours += module.parameters.flatMap(\.tensor.scalars)
        }
        _ = try runPython(Self.script, [directory.path, testCase.json, String(steps), String(testCase.learningRate)])
        let theirs = try readRaw(directory.appendingPathComponent("trajectory"))
        #expect(theirs.count == ours.count)
        let worst = zip(ours, theirs).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        #expect(worst < 1e-5, "largest relative difference \(worst)")
    }
}
