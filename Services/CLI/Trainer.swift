import Foundation
import Shared

/// One trainer's loop: steps through the gateway, local Adam steps on the
/// dense layers, averaging rounds with the other trainers.
struct Trainer {
    let config: TrainerConfiguration
    var model: DenseModel
    var optimizer: Optimizer
    let train: LabeledDataset
    let test: LabeledDataset
    private var samplesSinceAverage = 0
    private var failures = 0
    private var rounds = 0

    init(_ config: TrainerConfiguration) async throws {
        self.config = config
        // Every trainer holds out the same fifth; each sees the rest (or its shard) in its own order.
        (train, test) = try config.loadData()
        var generator = SplitMix64(seed: config.seed)
        let inputs = train.features.shape[1]
        model = DenseModel(projection: try Linear(inputSize: inputs, outputSize: config.hidden, using: &generator),
                           gate: try Linear(inputSize: inputs, outputSize: config.scoreCount, using: &generator),
                           head: try Linear(inputSize: config.hidden, outputSize: 10, using: &generator))
        optimizer = try Optimizer(rule: .adam(), learningRate: config.learningRate)
        if await loadStateFromPeers() { log("joined late: loaded the dense layers from a peer") }
    }

    mutating func run() async throws {
        let started = Clock.now
        var step = 0
        var samples = 0
        for epoch in 0..<config.epochs {
            for batch in train.shuffledBatches(size: config.batchSize, seed: config.seed &+ UInt64(epoch)) {
                step += 1
                guard let (loss, correct, answers) = await trainStep(batch) else { continue }
                samples += batch.count
                samplesSinceAverage += batch.count
                if step % config.averageEvery == 0 { await average() }
                let rate = Double(samples) / (Clock.now - started)
                record(["trainer": .string(config.name), "epoch": .int(epoch), "step": .int(step), "loss": .double(Double(loss)),
                        "accuracy": .double(Double(correct) / Double(batch.count)), "time": .double(Clock.now - started)])
                if step % 10 == 0 {
                    log("epoch \(epoch) step \(step) loss \(format(loss)) accuracy \(format(Float(correct) / Float(batch.count))) "
                        + "\(Int(rate)) samples/s, \(format(Float(answers))) experts answering per sample")
                }
            }
        }
        await average(timeout: 10)  // the final round waits longer, so trainers that finish together end equal
        if let path = config.save { try Data(try TensorBundle(model.parameters).encode()).write(to: URL(fileURLWithPath: path)) }
        let accuracy = try await evaluate()
        let summary: JSON = ["trainer": .string(config.name), "held_out_accuracy": .double(accuracy), "steps": .int(step),
                             "seconds": .double(Clock.now - started), "failed_steps": .int(failures), "averaging_rounds": .int(rounds)]
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
            try optimizer.step(&model, gradients: gradients.parametersByName)
            let answers = (try? JSON.parse(routing).arrayValue?.map { Double($0.arrayValue?.count ?? 0) }) ?? []
            return (loss, correctCount(logits, batch.labels), answers.reduce(0, +) / Double(max(1, answers.count)))
        } catch {
            failures += 1
            log("step skipped: \(error)")
            return nil
        }
    }

    /// Held-out accuracy, through the mesh. A batch the mesh cannot serve is
    /// tried twice more (a service may be dying right now) before giving up.
    private func evaluate() async throws -> Double {
        var correct = 0
        for start in stride(from: 0, to: test.count, by: 128) {
            let batch = test.subset(Array(start..<min(start + 128, test.count)))
            let z = try model.projection.forward(batch.features).output
            let scores = try model.gate.forward(batch.features).output
            var attempt = 1
            while true {
                do {
                    let logits = try model.head.forward(try await moeForward(z, scores).0).output
                    correct += correctCount(logits, batch.labels)
                    break
                } catch where attempt < 3 {
                    log("evaluation batch failed (attempt \(attempt) of 3): \(error)")
                    attempt += 1
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }
        return Double(correct) / Double(test.count)
    }

    // MARK: The mesh

    private func moeForward(_ x: Tensor, _ scores: Tensor) async throws -> (Tensor, String) {
        let body = try TensorBundle([("x", x), ("scores", scores)]).encode()
        let response = try await postToGateway("/v1/moe/forward", body)
        let bundle = try TensorBundle.decode(response.body)
        guard let output = bundle["output"], let routing = bundle.metadata["routing"] else { throw OptionError("the gateway answered without output") }
        return (output, routing)
    }

    private func moeBackward(_ x: Tensor, _ gradOutput: Tensor, _ routing: String) async throws -> (Tensor, Tensor) {
        let body = try TensorBundle([("x", x), ("grad_output", gradOutput)], metadata: ["routing": routing]).encode()
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
    /// weighted by samples; alone, keeps its own. Then offers them to newcomers.
    private mutating func average(timeout: Double = 3) async {
        guard let averager = config.averager else { return }
        do {
            let body = try TensorBundle(model.parameters).encode()
            let response = try await HTTPClient.shared.post(
                "\(averager)/v1/average?prefix=\(config.run)&weight=\(max(1, samplesSinceAverage))&timeout=\(timeout)", bytes: body, timeout: timeout + 10)
            let averaged = try TensorBundle.decode(response.body)
            model.visitParameters(prefix: "") { name, tensor in
                if let value = averaged[name], value.shape == tensor.shape { tensor = value }
            }
            rounds += 1
            samplesSinceAverage = 0
            _ = try? await HTTPClient.shared.send(HTTPClientRequest(method: "PUT", url: "\(averager)/v1/state?prefix=\(config.statePrefix)",
                                                                    headers: [("Content-Type", "application/octet-stream")], body: response.body, timeout: 5))
        } catch {
            log("averaging skipped: \(error)")
        }
    }

    /// A newcomer starts from a peer's dense layers when some peer shares them.
    private mutating func loadStateFromPeers() async -> Bool {
        guard let averager = config.averager,
              let response = try? await HTTPClient.shared.send(HTTPClientRequest(method: "POST", url: "\(averager)/v1/state/load?prefix=\(config.statePrefix)&timeout=3", timeout: 10)),
              let state = try? TensorBundle.decode(response.body) else { return false }
        model.visitParameters(prefix: "") { name, tensor in
            if let value = state[name], value.shape == tensor.shape { tensor = value }
        }
        return true
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
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        }
    }
}

func correctCount(_ logits: Tensor, _ labels: [Int]) -> Int {
    let classes = logits.shape[1]
    return labels.enumerated().filter { index, label in
        let row = logits.scalars[(index * classes)..<((index + 1) * classes)]
        return row.indices.max { row[$0] < row[$1] }! - index * classes == label
    }.count
}

func format(_ value: Float) -> String { String(format: "%.3f", value) }
