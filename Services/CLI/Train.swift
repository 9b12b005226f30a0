import Foundation
import Shared

/// The trainer's own (dense) layers: an input projection and a gate before the
/// mixture of experts, a classification head after it. Averaged with peers.
struct DenseModel: Module {
    var projection: Linear
    var gate: Linear
    var head: Linear

    mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try projection.visitParameters(prefix: prefix + "projection.", visit)
        try gate.visitParameters(prefix: prefix + "gate.", visit)
        try head.visitParameters(prefix: prefix + "head.", visit)
    }
}

/// `hivemind train`: input projection -> DMoE through the gateway -> head, with
/// cross-entropy; the dense layers train with the run's other trainers through
/// the collaborative optimizer of an averager (see Trainer).
func runTrain(_ arguments: [String]) async throws {
    let (options, _) = try parse("hivemind train", arguments, [
        OptionSpec("gateway", default: "http://127.0.0.1:8080", help: "gateway URL"),
        OptionSpec("averager", help: "averager URL (none: train alone)"),
        OptionSpec("data", default: "data/digits.csv.gz", help: "the digits data set"),
        OptionSpec("prefix", default: "ffn.", help: "the experts' uid prefix"),
        OptionSpec("grid", default: "4,4", help: "the expert grid"),
        OptionSpec("k-best", default: "4", help: "experts per sample"),
        OptionSpec("k-min", default: "1", help: "answers each sample needs"),
        OptionSpec("hidden-dim", default: "64", help: "the experts' hidden size"),
        OptionSpec("batch-size", default: "32", help: "samples per step"),
        OptionSpec("epochs", default: "4", help: "passes over the training split"),
        OptionSpec("learning-rate", default: "0.003", help: "Adam's learning rate for the dense layers"),
        OptionSpec("optimizer", default: "gradients", help: "gradients (average gradients at each epoch's end, then step) or local-updates (step on every batch, average parameters at each epoch's end)"),
        OptionSpec("target-batch-size", default: "128", help: "samples the whole run processes per collaborative epoch"),
        OptionSpec("averaging-timeout", default: "5", help: "seconds an epoch's averaging may take before a trainer goes on with its own"),
        OptionSpec("run", default: "digits", help: "the run id shared by the run's trainers"),
        OptionSpec("init-seed", default: "0", help: "seeds the initial parameters (the same for every trainer of a run)"),
        OptionSpec("seed", default: "0", help: "seeds this trainer's batch order"),
        OptionSpec("name", default: "trainer", help: "this trainer's name in logs"),
        OptionSpec("history", help: "append one JSON line per step (for curves) to this file"),
        OptionSpec("save", help: "write the final dense layers to this safetensors file"),
    ])
    let config = try TrainerConfiguration(options)
    var trainer = try await Trainer(config)
    try await trainer.run()
}

struct TrainerConfiguration {
    let gateway: String
    let averager: String?
    let data: String
    let moeQuery: String
    let hidden: Int
    let scoreCount: Int
    let batchSize: Int
    let epochs: Int
    let learningRate: Float
    let mode: OptimizerMode
    let targetBatchSize: Int
    let averagingTimeout: Double
    let run: String
    let initSeed: UInt64
    let seed: UInt64
    let name: String
    let history: String?
    let save: String?

    init(_ options: ServiceOptions) throws {
        gateway = options.string("gateway")!
        averager = options.string("averager")
        data = options.string("data")!
        let grid = options.list("grid").compactMap(Int.init)
        let kBest = try options.int("k-best") ?? 4
        let kMin = try options.int("k-min") ?? 1
        guard !grid.isEmpty, grid.allSatisfy({ $0 > 0 }) else { throw OptionError("--grid needs positive sizes, e.g. 4,4") }
        guard kMin <= kBest else { throw OptionError("--k-min (\(kMin)) must not exceed --k-best (\(kBest))") }
        moeQuery = "prefix=\(options.string("prefix")!)&grid=\(grid.map(String.init).joined(separator: ","))&k_best=\(kBest)&k_min=\(kMin)"
            + "&forward_timeout=5&timeout_after_k_min=0.5&backward_timeout=5&backward_k_min=0"
        scoreCount = grid.reduce(0, +)
        hidden = try options.int("hidden-dim") ?? 64
        batchSize = try options.int("batch-size") ?? 32
        epochs = try options.int("epochs") ?? 4
        learningRate = Float(try options.double("learning-rate") ?? 0.003)
        guard let mode = OptimizerMode(rawValue: options.string("optimizer")!) else {
            throw OptionError("--optimizer must be gradients or local-updates, got '\(options.string("optimizer")!)'")
        }
        self.mode = mode
        targetBatchSize = try options.int("target-batch-size") ?? 128
        averagingTimeout = try options.double("averaging-timeout") ?? 5
        run = options.string("run")!
        initSeed = UInt64(try options.int("init-seed") ?? 0)
        seed = UInt64(try options.int("seed") ?? 0)
        name = options.string("name")!
        history = options.string("history")
        save = options.string("save")
        guard hidden > 0, batchSize > 0, epochs > 0, targetBatchSize > 0, averagingTimeout > 0 else {
            throw OptionError("--hidden-dim, --batch-size, --epochs, --target-batch-size and --averaging-timeout must be positive")
        }
    }
}
