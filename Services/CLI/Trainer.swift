import Foundation
import Shared
import Synchronization

/// One trainer's loop: steps through the gateway and the collaborative
/// optimizer of its averager. In `gradients` mode it accumulates gradients
/// until the run has processed its target batch size, then takes one Adam step
/// with the run's samples-weighted average gradient; in `local-updates` mode it
/// takes an Adam step on every batch and averages parameters at each epoch's end.
struct Trainer {
    let config: TrainerConfiguration
    var model: DenseModel
    var optimizer: Optimizer
    let train: LabeledDataset
    let test: LabeledDataset
    let collaboration: CollaborativeOptimizer?
    /// The collaborative epoch and the samples (and, in gradients mode, the summed gradients) accumulated toward its end.
    private var epoch = 0
    private var samplesThisEpoch = 0
    private var gradientSums: [String: Tensor] = [:]
    /// Samples per second of computing (not waiting for peers), smoothed as the reference's PerformanceEMA.
    private var throughput = 0.0
    /// The training loss, smoothed the same way; published with the progress for dashboards.
    private var recentLoss: Double?
    /// Batches lost to faults (after retries), and attempts that failed.
    private var failures = 0
    private var lostInARow = 0
    private static let maxLostInARow = 12
    private var retries = 0
    private var rounds = 0
    /// With `--delay-grad-averaging`: the end of the last epoch, still averaging in the background.
    private var pendingStep: PendingStep?

    init(_ config: TrainerConfiguration) async throws {
        self.config = config
        // Every trainer holds out the same fifth; each sees the rest (or its shard) in its own order.
        (train, test) = try config.loadData()
        // Every trainer of a run starts from the same parameters, so averaged gradients keep them equal.
        var generator = SplitMix64(seed: config.initSeed)
        let inputs = train.features.shape[1]
        model = DenseModel(projection: try Linear(inputSize: inputs, outputSize: config.hidden, using: &generator),
                           gate: try Linear(inputSize: inputs, outputSize: config.scoreCount, using: &generator),
                           head: try Linear(inputSize: config.hidden, outputSize: 10, using: &generator))
        optimizer = try Optimizer(rule: .adam(), learningRate: config.learningRate)
        collaboration = config.averager.map {
            CollaborativeOptimizer(averager: $0, run: config.run, trainer: config.name, targetBatchSize: config.targetBatchSize,
                                   averagingTimeout: config.averagingTimeout, codec: config.gradCompression,
                                   stateCodec: config.stateCompression, runToken: config.runToken)
        }
        if let collaboration {
            do { try await collaboration.configure() } catch { log("cannot configure run \(config.run) on the averager: \(explained(error)); training alone until it answers") }
        }
    }

    mutating func run() async throws {
        let started = Clock.now
        var step = 0
        var samples = 0
        for pass in 0..<config.epochs {
            for batch in train.shuffledBatches(size: config.batchSize, seed: config.seed &+ UInt64(pass)) {
                step += 1
                var computeStarted = Clock.now
                var outcome = await trainStep(batch)
                // A dead expert stays in the DHT for up to two update periods: retry the batch for a while rather than lose it.
                for _ in 0..<20 where outcome == nil {
                    try? await Task.sleep(for: .milliseconds(250))
                    computeStarted = Clock.now
                    outcome = await trainStep(batch)
                }
                guard let (loss, correct, answers) = outcome else {
                    failures += 1
                    lostInARow += 1
                    // A whole minute of lost batches means the mesh is gone, not flaky: stop rather than spin.
                    if lostInARow >= Self.maxLostInARow {
                        throw OptionError("the mesh served no step for \(lostInARow) batches in a row (each retried for 5 s); giving up")
                    }
                    continue
                }
                lostInARow = 0
                let rate = Double(batch.count) / max(Clock.now - computeStarted, 1e-6)
                throughput = throughput == 0 ? rate : 0.9 * throughput + 0.1 * rate
                recentLoss = recentLoss.map { 0.9 * $0 + 0.1 * Double(loss) } ?? Double(loss)
                samples += batch.count
                samplesThisEpoch += batch.count
                await collaborate()
                record(["trainer": .string(config.name), "epoch": .int(epoch), "pass": .int(pass), "step": .int(step), "loss": .double(Double(loss)),
                        "accuracy": .double(Double(correct) / Double(batch.count)), "time": .double(Clock.now - started)])
                if step % 10 == 0 {
                    log("epoch \(epoch) step \(step) loss \(format(loss)) accuracy \(format(Float(correct) / Float(batch.count))) "
                        + "\(Int(Double(samples) / (Clock.now - started))) samples/s, \(format(Float(answers))) experts answering per sample")
                }
            }
        }
        if let pendingStep { await finish(pendingStep.wait()) }
        await collaboration?.leave()
        await averageParameters(timeout: 10)  // the final round waits longer, so trainers that finish together end equal
        if let path = config.save { try Data(try TensorBundle(model.parameters).encode()).write(to: URL(fileURLWithPath: path)) }
        let accuracy = try await evaluate()
        let summary: JSON = ["trainer": .string(config.name), "held_out_accuracy": .double(accuracy), "steps": .int(step), "epoch": .int(epoch),
                             "optimizer": .string(config.mode.rawValue), "seconds": .double(Clock.now - started),
                             "failed_steps": .int(failures), "retried_steps": .int(retries),
                             "averaging_rounds": .int(rounds)]
        record(summary)
        print(summary.serialized())
    }

    /// One step; nil if the mesh could not serve it (the step is skipped, training goes on).
    private mutating func trainStep(_ batch: LabeledDataset) async -> (Float, Int, Double)? {
        do {
            let (z, projectionCache) = try model.projection.forward(batch.features)
            let (scores, gateCache) = try model.gate.forward(batch.features)
            let (mixed, routing) = try await moeForward(z, scores)
            let (logits, headCache) = try model.head.forward(mixed)
            let (loss, gradLogits) = try Loss.softmaxCrossEntropy(logits: logits, labels: batch.labels)
            let (gradMixed, headGradients) = try model.head.backward(headCache, gradOutput: gradLogits)
            let (gradZ, gradScores) = try await moeBackward(z, gradMixed, routing)
            let (_, projectionGradients) = try model.projection.backward(projectionCache, gradOutput: gradZ)
            let (_, gateGradients) = try model.gate.backward(gateCache, gradOutput: gradScores)
            let gradients = DenseModel(projection: projectionGradients, gate: gateGradients, head: headGradients)
            if config.mode == .localUpdates || collaboration == nil {
                try optimizer.step(&model, gradients: gradients.parametersByName)
            } else {
                // Sums of batch-mean gradients times batch size: divided by the samples, the epoch's mean gradient.
                for (name, gradient) in gradients.parameters {
                    if gradientSums[name] == nil { gradientSums[name] = Tensor(zeros: gradient.shape) }
                    try gradientSums[name]!.add(gradient, scaledBy: Float(batch.count))
                }
            }
            let answers = (try? JSON.parse(routing["routing"] ?? "").arrayValue?.map { Double($0.arrayValue?.count ?? 0) }) ?? []
            return (loss, correctCount(logits, batch.labels), answers.reduce(0, +) / Double(max(1, answers.count)))
        } catch {
            retries += 1
            log("step failed: \(explained(error))")
            return nil
        }
    }

    // MARK: The collaborative optimizer

    /// Reports the batch to the averager and does what it answers: keep
    /// accumulating, end the epoch with the run, or load the state first.
    /// When the averager does not answer, the trainer ends epochs alone once
    /// it has the target batch size itself. (Without an averager it steps on
    /// every batch, in `trainStep`.)
    private mutating func collaborate() async {
        guard let collaboration else { return }
        if let pending = pendingStep {
            // Overlap: the last epoch still averages while this one computes; its result applies one step late.
            // A whole epoch later it is waited for, so parameters are never more than one step stale.
            guard pending.isDone || samplesThisEpoch >= config.targetBatchSize else { return }
            await finish(pending.wait())
        }
        let action: String
        do {
            let progress = try await collaboration.report(epoch: epoch, samples: samplesThisEpoch, samplesPerSecond: throughput, loss: recentLoss)
            action = progress.action
            if action == "load_state" {
                await loadState(epoch: progress.epoch)
                return
            }
        } catch let error as HTTPClientError where error.status == 404 || error.status == 409 {
            // The averager restarted (it forgot the run) or the run is behind this trainer's epoch: join again from epoch 0.
            log("the averager lost track of this trainer (\(explained(error))); joining the run again")
            try? await collaboration.configure()
            (epoch, samplesThisEpoch, gradientSums) = (0, 0, [:])
            return
        } catch {
            log("progress not reported: \(explained(error))")
            action = samplesThisEpoch >= config.targetBatchSize ? "local" : "accumulate"
        }
        guard action != "accumulate" else { return }
        let tensors = config.mode == .gradients
            ? gradientSums.map { (name: $0.key, tensor: $0.value * (1 / Float(max(samplesThisEpoch, 1)))) }
            : model.parameters
        let ending = EpochEnd(epoch: epoch, samples: samplesThisEpoch, tensors: tensors, averaging: action == "step")
        samplesThisEpoch = 0
        gradientSums = [:]
        if config.delayGradAveraging {
            pendingStep = PendingStep(ending, collaboration, name: config.name)
        } else {
            await finish(await ending.average(collaboration, name: config.name))
        }
    }

    /// Applies the end of an epoch: an optimizer step with the averaged gradients
    /// (the local ones where averaging failed), or the averaged parameters.
    private mutating func finish(_ ended: EpochEnd.Result) async {
        pendingStep = nil
        guard let collaboration else { return }
        let averaged = ended.averaged?.tensors
        do {
            switch config.mode {
            case .gradients:
                var gradients: [String: Tensor] = [:]
                for (name, tensor) in ended.ending.tensors { gradients[name] = averaged?[name] ?? tensor }
                try optimizer.step(&model, gradients: gradients)
            case .localUpdates:
                if let averaged { model.visitParameters(prefix: "") { name, tensor in if let value = averaged[name], value.shape == tensor.shape { tensor = value } } }
            }
        } catch {
            log("optimizer step failed: \(explained(error))")
        }
        if ended.averaged?.averaged == true { rounds += 1 }
        epoch = ended.averaged?.epoch ?? ended.ending.epoch + 1
        if let state = try? Checkpoint.encode(model, optimizer: optimizer) { await collaboration.share(state, epoch: epoch) }
    }

    /// Starts over from a peer's state (parameters and optimizer state) at the run's epoch.
    private mutating func loadState(epoch target: Int) async {
        guard let collaboration else { return }
        if let bytes = await collaboration.loadState() {
            do {
                _ = try Checkpoint.restore(bytes, into: &model, optimizer: &optimizer)
                log("behind the run (epoch \(epoch), run at \(target)): loaded the state from a peer")
            } catch {
                log("cannot use the peers' state: \(explained(error))")
            }
        } else {
            log("behind the run (epoch \(epoch), run at \(target)) but no peer shares its state yet")
        }
        epoch = target
        samplesThisEpoch = 0
        gradientSums = [:]
    }

    /// Held-out accuracy, through the mesh.
    private func evaluate() async throws -> Double {
        var correct = 0
        for start in stride(from: 0, to: test.count, by: 128) {
            let batch = test.subset(Array(start..<min(start + 128, test.count)))
            let z = try model.projection.forward(batch.features).output
            let scores = try model.gate.forward(batch.features).output
            var mixed: Tensor? = nil
            // As in training: the mesh may need a few seconds to forget a dead expert host.
            for attempt in 0..<40 where mixed == nil {
                do { mixed = try await moeForward(z, scores).0 } catch where attempt < 39 {
                    if attempt % 8 == 0 { log("evaluation batch failed (attempt \(attempt + 1) of 40): \(explained(error))") }
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            let logits = try model.head.forward(mixed!).output
            correct += correctCount(logits, batch.labels)
        }
        return Double(correct) / Double(test.count)
    }

    // MARK: The mesh

    /// Forward; returns the output and what backward must send back: the routing record and its seal.
    private func moeForward(_ x: Tensor, _ scores: Tensor) async throws -> (Tensor, [String: String]) {
        let body = try TensorBundle([("x", x), ("scores", scores)]).encode()
        let response = try await postToGateway("/v1/moe/forward", body)
        let bundle = try TensorBundle.decode(response.body)
        guard let output = bundle["output"], bundle.metadata["routing"] != nil else { throw OptionError("the gateway answered without output") }
        return (output, bundle.metadata.filter { $0.key == "routing" || $0.key == "routing_seal" })
    }

    private func moeBackward(_ x: Tensor, _ gradOutput: Tensor, _ routing: [String: String]) async throws -> (Tensor, Tensor) {
        let body = try TensorBundle([("x", x), ("grad_output", gradOutput)], metadata: routing).encode()
        let response = try await postToGateway("/v1/moe/backward", body)
        let bundle = try TensorBundle.decode(response.body)
        guard let gradX = bundle["grad_x"], let gradScores = bundle["grad_scores"] else { throw OptionError("the gateway answered without gradients") }
        return (gradX, gradScores)
    }

    /// Posts to the first gateway that answers; a 4xx (our mistake) is not retried elsewhere.
    private func postToGateway(_ path: String, _ body: [UInt8]) async throws -> HTTPClientResponse {
        var failures: [String] = []
        for gateway in config.gateways {
            do {
                return try await HTTPClient.shared.post("\(gateway)\(path)?\(config.moeQuery)", bytes: body, timeout: 10)
            } catch let error where error.kind == .httpStatus && (error.status ?? 500) < 500 {
                throw error
            } catch {
                failures.append(error.description)
            }
        }
        throw OptionError("no gateway answered: \(failures.joined(separator: "; "))")
    }

    /// Averages the dense layers with whichever trainers are averaging now,
    /// weighted equally; alone, keeps its own. The end of training, after
    /// leaving the run: the averager answers at once when no trainer is left
    /// in the run and nobody else is averaging (`run=`), so a lone trainer does not wait.
    private mutating func averageParameters(timeout: Double) async {
        guard let averager = config.averager else { return }
        do {
            let body = try TensorBundle(model.parameters).encode()
            // The averager answers within `timeout`; the rest is for the transfer.
            let response = try await HTTPClient.shared.post("\(averager)/v1/average?prefix=\(config.run)&run=\(config.run)&timeout=\(timeout)",
                                                            bytes: body, timeout: timeout + 5)
            let averaged = try TensorBundle.decode(response.body)
            model.visitParameters(prefix: "") { name, tensor in
                if let value = averaged[name], value.shape == tensor.shape { tensor = value }
            }
            rounds += 1
        } catch {
            log("final averaging skipped: \(explained(error))")
        }
    }

    // MARK: Output

    private func log(_ message: String) {
        FileHandle.standardError.write(Data("[\(config.name)] \(message)\n".utf8))
    }

    private func record(_ line: JSON) {
        guard let path = config.history else { return }
        let text = line.serialized() + "\n"
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            try? handle.close()
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        }
    }
}

/// What a trainer hands over at the end of an epoch.
struct EpochEnd: Sendable {
    let epoch: Int
    let samples: Int
    /// The epoch's mean gradients (or, with local updates, the parameters).
    let tensors: [(name: String, tensor: Tensor)]
    /// Whether the run's epoch ended (false: the averager did not answer and the trainer ends it alone).
    let averaging: Bool

    struct Result: Sendable {
        let ending: EpochEnd
        let averaged: (tensors: TensorBundle, epoch: Int, averaged: Bool)?
    }

    /// `POST /v1/runs/{run}/step`, or nothing when ending alone.
    func average(_ collaboration: CollaborativeOptimizer, name: String) async -> Result {
        guard averaging else { return Result(ending: self, averaged: nil) }
        let started = Clock.now
        var averaged: (tensors: TensorBundle, epoch: Int, averaged: Bool)?
        do { averaged = try await collaboration.step(epoch: epoch, samples: samples, tensors: tensors) } catch {
            FileHandle.standardError.write(Data("[\(name)] epoch \(epoch) ended alone: \(explained(error))\n".utf8))
        }
        if Clock.now - started > 2 {
            FileHandle.standardError.write(Data("[\(name)] the end of epoch \(epoch) took \(format(Float(Clock.now - started))) s (\(averaged?.averaged == true ? "averaged with peers" : "alone"))\n".utf8))
        }
        return Result(ending: self, averaged: averaged)
    }
}

/// An epoch's end averaging in the background (the reference's
/// `delay_grad_averaging` with `delay_optimizer_step`): the trainer computes
/// the next epoch meanwhile and applies the result when it is there.
final class PendingStep: Sendable {
    private final class Flag: Sendable { let done = Mutex(false) }
    private let task: Task<EpochEnd.Result, Never>
    private let flag = Flag()

    init(_ ending: EpochEnd, _ collaboration: CollaborativeOptimizer, name: String) {
        let flag = flag
        task = Task {
            let result = await ending.average(collaboration, name: name)
            flag.done.withLock { $0 = true }
            return result
        }
    }

    var isDone: Bool { flag.done.withLock { $0 } }

    func wait() async -> EpochEnd.Result { await task.value }
}

func correctCount(_ logits: Tensor, _ labels: [Int]) -> Int {
    let classes = logits.shape[1]
    return labels.enumerated().filter { index, label in
        let row = logits.scalars[(index * classes)..<((index + 1) * classes)]
        return row.indices.max { row[$0] < row[$1] }! - index * classes == label
    }.count
}

func format(_ value: Float) -> String { String(format: "%.3f", value) }
