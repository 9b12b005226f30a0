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
        OptionSpec("gateway", default: "http://127.0.0.1:8080", help: "gateway URLs; each step goes to the first that answers"),
        OptionSpec("averager", help: "averager URL (none: train alone)"),
        OptionSpec("data", default: "data/digits.csv.gz", help: "the digits data set"),
        OptionSpec("train-samples", default: "0", help: "use only this many samples of the training split (0: all)"),
        OptionSpec("shard", help: "I/N: train on the I-th of N disjoint shards of the training split (one per trainer)"),
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
        OptionSpec("grad-compression", default: "none", help: "codec of the all-reduce at each epoch's end (none, float16, bfloat16, mean_std_16bit, uniform_8bit, quantile_8bit, blockwise_8bit): 8-bit moves a quarter of the bytes over slow links"),
        OptionSpec("state-compression", default: "none", help: "codec of the state a late or lagging trainer downloads from a peer (the same names): float32 tensors of 1024 values or more travel compressed, all else exact (counters, biases, Adam's second moments)"),
        OptionSpec("delay-grad-averaging", help: "overlap averaging with compute: an epoch's gradients average in the background while the next epoch computes, and apply one step late (the reference's delay_grad_averaging and delay_optimizer_step; gradients mode)", isSwitch: true),
        OptionSpec("mesh-wait", default: "10", help: "seconds to wait before training for a gateway that does not answer yet, reaches no DHT node yet or lists no expert yet (a mesh still starting)"),
        OptionSpec("averaging-timeout", default: "5", help: "seconds an epoch's averaging may take before a trainer goes on with its own"),
        OptionSpec("run", default: "digits", help: "the run id shared by the run's trainers"),
        OptionSpec("run-token", help: "the averager's --run-token, sent with the run's calls and shared states (needed when the averager is not on loopback)"),
        OptionSpec("init-seed", default: "0", help: "seeds the initial parameters (the same for every trainer of a run)"),
        OptionSpec("seed", default: "0", help: "seeds this trainer's batch order"),
        OptionSpec("name", default: "trainer", help: "this trainer's name in logs"),
        OptionSpec("history", help: "append one JSON line per step (for curves) to this file"),
        OptionSpec("save", help: "write the final dense layers to this safetensors file"),
    ])
    let config = try TrainerConfiguration(options)
    _ = try config.loadData()  // refuses a bad data configuration before any network call
    try await checkMesh(config)
    var trainer = try await Trainer(config)
    try await trainer.run()
}

struct TrainerConfiguration {
    /// The first gateway that answers serves each call (several survive one's death).
    let gateways: [String]
    let averager: String?
    let data: String
    let trainSamples: Int
    let shard: (index: Int, count: Int)?
    let prefix: String
    let moeQuery: String
    let hidden: Int
    let scoreCount: Int
    let batchSize: Int
    let epochs: Int
    let learningRate: Float
    let mode: OptimizerMode
    let targetBatchSize: Int
    let averagingTimeout: Double
    let meshWait: Double
    /// Averaging overlaps the next epoch's compute; its result applies one step late.
    let delayGradAveraging: Bool
    /// Compression of the all-reduce between averagers at each epoch's end.
    let gradCompression: CompressionCodec
    /// Compression of the state downloaded from a peer.
    let stateCompression: CompressionCodec
    let run: String
    let runToken: String?
    let initSeed: UInt64
    let seed: UInt64
    let name: String
    let history: String?
    let save: String?

    init(_ options: ServiceOptions) throws {
        gateways = options.list("gateway")
        guard !gateways.isEmpty else { throw OptionError("--gateway needs at least one URL") }
        averager = options.string("averager")
        data = options.string("data")!
        trainSamples = try options.int("train-samples") ?? 0
        if let text = options.string("shard") {
            let parts = text.split(separator: "/").map { Int($0) }
            guard parts.count == 2, let index = parts[0], let count = parts[1], count >= 1, (1...count).contains(index) else {
                throw OptionError("--shard must be I/N with 1 <= I <= N, e.g. 2/3, got '\(text)'")
            }
            shard = (index, count)
        } else {
            shard = nil
        }
        prefix = options.string("prefix")!
        let grid = options.list("grid").compactMap(Int.init)
        let kBest = try options.int("k-best") ?? 4
        let kMin = try options.int("k-min") ?? 1
        guard !grid.isEmpty, grid.allSatisfy({ $0 > 0 }) else { throw OptionError("--grid needs positive sizes, e.g. 4,4") }
        guard kMin <= kBest else { throw OptionError("--k-min (\(kMin)) must not exceed --k-best (\(kBest))") }
        moeQuery = "prefix=\(prefix)&grid=\(grid.map(String.init).joined(separator: ","))&k_best=\(kBest)&k_min=\(kMin)"
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
        averagingTimeout = try options.seconds("averaging-timeout", atLeast: DurationLimits.minimumTimeout) ?? 5
        meshWait = try options.seconds("mesh-wait", atLeast: 0) ?? 10
        delayGradAveraging = try options.bool("delay-grad-averaging")
        do { gradCompression = try CompressionCodec(parsing: options.string("grad-compression") ?? "none") } catch {
            throw OptionError("--grad-compression: \(error.message)")
        }
        do { stateCompression = try CompressionCodec(parsing: options.string("state-compression") ?? "none") } catch {
            throw OptionError("--state-compression: \(error.message)")
        }
        if delayGradAveraging, mode != .gradients {
            throw OptionError("--delay-grad-averaging overlaps gradient averaging; it needs --optimizer gradients, not \(mode.rawValue)")
        }
        initSeed = UInt64(try options.int("init-seed") ?? 0)
        run = options.string("run")!
        runToken = options.string("run-token")
        guard !run.isEmpty, run.count <= 100, run.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw OptionError("--run must be 1 to 100 letters, digits, '_' or '-' (it names the averaging group), got '\(run)'")
        }
        seed = UInt64(try options.int("seed") ?? 0)
        name = options.string("name")!
        history = options.string("history")
        save = options.string("save")
        guard hidden > 0, batchSize > 0, epochs > 0, targetBatchSize > 0, averagingTimeout > 0, trainSamples >= 0 else {
            throw OptionError("--hidden-dim, --batch-size, --epochs, --target-batch-size and --averaging-timeout must be positive, "
                              + "--train-samples not negative")
        }
    }

    /// The training samples this trainer sees (its shard of the first
    /// `trainSamples` of the training split) and the held-out fifth, which
    /// every trainer shares. Refuses more trainers than samples, and a shard
    /// smaller than one batch.
    func loadData() throws -> (train: LabeledDataset, test: LabeledDataset) {
        let data = try LabeledDataset.digits(contentsOf: URL(fileURLWithPath: self.data))
        let (allTrain, test) = data.split(testFraction: 0.2, seed: 0)
        let available = trainSamples > 0 ? min(trainSamples, allTrain.count) : allTrain.count
        var indices = Array(0..<available)
        if let (index, count) = shard {
            guard count <= available else {
                throw OptionError("--shard \(index)/\(count): more trainers (\(count)) than training samples (\(available)); use fewer shards")
            }
            indices = indices.filter { $0 % count == index - 1 }
        }
        guard indices.count >= batchSize else {
            let whose = shard.map { "shard \($0.index)/\($0.count)" } ?? "the training split"
            throw OptionError("\(whose) holds \(indices.count) samples, fewer than one batch (--batch-size \(batchSize)); "
                              + "use fewer shards, more --train-samples or a smaller --batch-size")
        }
        return (allTrain.subset(indices), test)
    }
}

/// Refuses to start against a mesh that cannot train: no gateway answers,
/// the gateway reaches no DHT node, or no expert is alive under the prefix.
/// Each of these may be a mesh still starting (a compose file's trainer can
/// start with its gateway: podman before 4.6 does not wait for healthchecks),
/// so it asks again for up to `--mesh-wait` seconds; a gateway that refuses
/// the listing (4xx, e.g. an unknown membership) is not going to change, and
/// ends the wait at once.
func checkMesh(_ config: TrainerConfiguration) async throws {
    let deadline = Clock.now + config.meshWait
    var problems: [String] = []
    var waiting = false
    while true {
        problems = []
        var hopeless = false
        for gateway in config.gateways {
            do {
                let response = try await HTTPClient.shared.get("\(gateway)/v1/experts?prefix=\(config.prefix)", timeout: 5)
                if !(try response.json()["experts"]?.arrayValue ?? []).isEmpty { return }
                problems.append("no expert is alive under '\(config.prefix)' in the DHT that the gateway at \(gateway) reads; "
                                + "start expert hosts (hivemind mesh up) or check --prefix")
            } catch let error as HTTPClientError where error.kind == .httpStatus && error.status == 503 {
                problems.append("the gateway at \(gateway) reaches no DHT node: \(explained(error))")
            } catch let error as HTTPClientError where error.kind == .httpStatus {
                problems.append("the gateway at \(gateway) refused the expert listing: \(explained(error))")
                hopeless = true
            } catch {
                problems.append("cannot reach the gateway at \(gateway): \(explained(error))")
            }
        }
        guard Clock.now < deadline, !hopeless else { break }
        if !waiting {
            FileHandle.standardError.write(Data("[\(config.name)] waiting up to \(Int(config.meshWait.rounded(.up))) s for the mesh: \(problems.joined(separator: "; "))\n".utf8))
            waiting = true
        }
        try await Task.sleep(for: .milliseconds(500))
    }
    throw OptionError(problems.joined(separator: "; "))
}
