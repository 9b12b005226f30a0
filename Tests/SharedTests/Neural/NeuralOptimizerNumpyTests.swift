import Foundation
import Testing
@testable import Shared

extension NeuralTests {
    /// The optimizers take the same 20 steps as an independent numpy
    /// implementation written from the published formulas (in float64).
    @Suite struct NeuralOptimizerNumpyTests {
        /// One optimizer configuration.
        struct Case {
            let label: String
            let rule: UpdateRule
            let learningRate: Float
            var schedule: LearningRateSchedule = .constant
            var maxGradientNorm: Float?

            /// The same settings for the Python side (floats as the exact float32 values).
            var config: [String: Any] {
                var config: [String: Any] = ["steps": NeuralOptimizerNumpyTests.steps, "lr": Double(learningRate)]
                switch rule {
                case .sgd(let momentum, let dampening, let nesterov, let weightDecay):
                    config.merge(["rule": "sgd", "momentum": Double(momentum), "dampening": Double(dampening),
                                  "nesterov": nesterov, "wd": Double(weightDecay)]) { $1 }
                case .adam(let beta1, let beta2, let epsilon, let weightDecay), .adamW(let beta1, let beta2, let epsilon, let weightDecay):
                    config.merge(["rule": rule.name, "b1": Double(beta1), "b2": Double(beta2), "eps": Double(epsilon),
                                  "wd": Double(weightDecay)]) { $1 }
                }
                switch schedule {
                case .constant: break
                case .linear(let warmup, let total): config["schedule"] = ["linear", warmup, total]
                case .cosine(let warmup, let total): config["schedule"] = ["cosine", warmup, total]
                }
                if let maxGradientNorm { config["clip"] = Double(maxGradientNorm) }
                return config
            }
        }

        static let steps = 20

        static let cases: [Case] = [
            Case(label: "sgd momentum + weight decay", rule: .sgd(momentum: 0.9, weightDecay: 0.01), learningRate: 0.05),
            Case(label: "sgd nesterov", rule: .sgd(momentum: 0.8, nesterov: true), learningRate: 0.05),
            Case(label: "sgd dampening, cosine", rule: .sgd(momentum: 0.5, dampening: 0.25), learningRate: 0.1,
                 schedule: .cosine(warmupSteps: 3, totalSteps: 20)),
            Case(label: "adam + L2 weight decay", rule: .adam(weightDecay: 0.01), learningRate: 0.01),
            Case(label: "adamw, linear warmup, clipping", rule: .adamW(beta1: 0.8, beta2: 0.99, weightDecay: 0.1), learningRate: 0.02,
                 schedule: .linear(warmupSteps: 5, totalSteps: 25), maxGradientNorm: 1.5),
        ]

        /// Each argument is a directory with `config.json`, `initial` and `noise`;
        /// the script writes `trajectory` there (one Python start for all cases).
        static let script = """
        import sys, json, math, numpy as np

        def multiplier(cfg, done):
            if "schedule" not in cfg:
                return 1.0
            kind, warmup, total = cfg["schedule"]
            if done < warmup:
                return done / max(1, warmup)
            if kind == "linear":
                return max(0.0, (total - done) / max(1, total - warmup))
            progress = (done - warmup) / max(1, total - warmup)
            return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

        def run(d):
            cfg = json.load(open(f"{d}/config.json"))
            steps, lr0 = cfg["steps"], cfg["lr"]
            p = np.fromfile(f"{d}/initial", dtype="<f4").astype(np.float64)
            noise = np.fromfile(f"{d}/noise", dtype="<f4").astype(np.float64).reshape(steps, p.size)
            m = np.zeros_like(p); v = np.zeros_like(p); buf = None
            trajectory = []
            for t in range(1, steps + 1):
                g = 0.5 * p + noise[t - 1]
                if "clip" in cfg:
                    g = g * min(1.0, cfg["clip"] / (np.sqrt((g * g).sum()) + 1e-6))
                lr = lr0 * multiplier(cfg, t - 1)
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

        for d in sys.argv[1:]:
            run(d)
        """

        /// Trains a small Linear with gradients `0.5 · p + noise` (so they depend
        /// on the trajectory), writes its inputs for Python, and returns every
        /// step's parameters.
        static func train(_ testCase: Case, writingInputsTo directory: URL) throws -> [Float] {
            var generator = SplitMix64(seed: 99)
            var module = try Linear(inputSize: 7, outputSize: 5, using: &generator)
            let count = module.parameterCount
            let noise = Tensor.randomNormal(shape: [steps, count], using: &generator)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: testCase.config).write(to: directory.appendingPathComponent("config.json"))
            try writeRaw(module.parameters.flatMap(\.tensor.scalars), to: directory.appendingPathComponent("initial"))
            try writeRaw(noise.scalars, to: directory.appendingPathComponent("noise"))

            var optimizer = try Optimizer(rule: testCase.rule, learningRate: testCase.learningRate, schedule: testCase.schedule,
                                          maxGradientNorm: testCase.maxGradientNorm)
            var trajectory: [Float] = []
            for step in 0..<steps {
                // The noise is laid out in parameter order, as Python reads it.
                var offset = step * count
                var gradients: [String: Tensor] = [:]
                for (name, tensor) in module.parameters {
                    let slice = try Tensor(shape: tensor.shape, scalars: Array(noise.scalars[offset..<(offset + tensor.count)]))
                    gradients[name] = try tensor * 0.5 + slice
                    offset += tensor.count
                }
                try optimizer.step(&module, gradients: gradients)
                trajectory += module.parameters.flatMap(\.tensor.scalars)
            }
            return trajectory
        }

        @Test func twentyStepsMatchNumpy() async throws {
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let caseDirectories = Self.cases.indices.map { directory.appendingPathComponent("case\($0)") }
            let ours = try zip(Self.cases, caseDirectories).map { try Self.train($0, writingInputsTo: $1) }
            _ = try await runPythonScript(Self.script, caseDirectories.map(\.path))
            for (testCase, (trajectory, caseDirectory)) in zip(Self.cases, zip(ours, caseDirectories)) {
                let theirs = try readRaw(caseDirectory.appendingPathComponent("trajectory"))
                #expect(theirs.count == trajectory.count, "\(testCase.label)")
                let worst = zip(trajectory, theirs).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
                #expect(worst < 1e-5, "\(testCase.label): largest relative difference \(worst)")
            }
        }
    }
}
