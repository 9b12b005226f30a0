@testable import ExpertHost
@testable import Gateway
@testable import Shared

// What reaches experts: the gateway's routing records, the expert host's API, and checkpoints.

extension FuzzTarget {
    /// The routing record a client sends back with its backward call (metadata `routing`).
    static let routingRecord = FuzzTarget(
        name: "routing-record",
        about: "RoutingRecord: the compact reader against the generic JSON one, and round trips of what either accepts",
        seeds: { ExpertSeeds.routingRecords }
    ) { bytes in
        var input = FuzzInput(bytes)
        let batch = input.int(in: 0...8)
        let gridSize = (0..<input.int(in: 1...3)).map { _ in input.int(in: 1...8) }
        let text = String(decoding: input.rest(), as: UTF8.self)
        // The compact reader answers only for the form `serialized()` writes, and then as the generic reader does.
        if let compact = CompactRoutingReader.read(text, prefix: "ffn.", gridSize: gridSize) {
            let generic = try? RoutingRecord(json: JSON.parse(text), prefix: "ffn.", gridSize: gridSize, batch: compact.count)
            fuzzCheck(generic?.samples == compact, "the compact reader read \(compact) where the generic one read \(String(describing: generic))")
        }
        guard let record = try? RoutingRecord(text: text, prefix: "ffn.", gridSize: gridSize, batch: batch) else { return }
        fuzzCheck(record.samples.count == batch, "a record of \(record.samples.count) samples for a batch of \(batch)")
        let written = record.serialized()
        fuzzCheck((try? RoutingRecord(text: written, prefix: "ffn.", gridSize: gridSize, batch: batch)) == record, "\(written) reads back as another record")
        // The compact reader takes it unless a string needed an escape (then the generic one does).
        if !written.utf8.contains(UInt8(ascii: "\\")) {
            fuzzCheck(CompactRoutingReader.read(written, prefix: "ffn.", gridSize: gridSize) == record.samples, "the compact reader cannot read \(written)")
        }
        // Weights are Floats: `serialized()` writes each with the fewest digits that read back the same, so
        // compare records, not JSON values.
        let reread = try? RoutingRecord(json: JSON.parse(written), prefix: "ffn.", gridSize: gridSize, batch: batch)
        fuzzCheck(reread == record, "\(written) reads back through JSON.parse as another record")
    }

    /// An expert host's whole API in process: routes, tokens, codecs, forward and backward bodies,
    /// training steps and state downloads (no network: the host has no DHT).
    static let expertHost = FuzzTarget(
        name: "expert-host",
        about: "the expert host's router with ffn and transformer experts: forward, backward (training), info and state",
        seeds: { ExpertSeeds.requests }
    ) { bytes in
        var input = FuzzInput(bytes)
        let (host, router) = input.bool() ? ExpertSeeds.ffn : ExpertSeeds.transformer
        let uid = host.uids[0].description
        let path = input.bool() ? "/v1/experts/\(uid)/" + input.pick(["forward", "backward", "state", ""]) : input.cString(maxBytes: 40)
        let method = input.bool() ? "POST" : input.pick(["GET", "PUT", input.cString(maxBytes: 6)])
        var query: [String: String] = [:]
        if input.bool() { query["codec"] = input.bool() ? input.pick(CompressionCodec.allCases).rawValue : input.cString(maxBytes: 16) }
        let request = HTTPRequest(method: method, path: path, query: query, headers: ["content-type": "application/octet-stream"], body: input.rest())
        let (response, _) = blocking { await router.respond(to: request) }
        fuzzCheck(response.status < 500, "\(method) \(path) answered \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
        if response.status == 200, path.hasSuffix("forward") || path.hasSuffix("backward") {
            fuzzCheck((try? TensorBundle.decode(response.body)) != nil, "an expert's answer is not a tensor bundle")
        }
    }

    /// Checkpoint files, as a restarting expert host restores them.
    static let checkpoint = FuzzTarget(
        name: "checkpoint",
        about: "Checkpoint.restore into ffn and transformer experts with Adam; a restored expert saves the same file and still trains",
        seeds: { ExpertSeeds.checkpoints }
    ) { bytes in
        var input = FuzzInput(bytes)
        let className = input.pick(["ffn", "transformer"])
        let file = input.rest()
        let expert = try! ExpertRegistry.standard.make(className, hiddenSize: 16, seed: 1)
        var optimizer = try! Optimizer(rule: .adam(), learningRate: 0.01)
        var target = expert
        guard (try? Checkpoint.restore(file, into: &target, optimizer: &optimizer)) != nil else { return }
        // Saved again and restored into a fresh expert, it gives back the same file.
        let saved = try! Checkpoint.encode(expert, optimizer: optimizer)
        var copy = try! ExpertRegistry.standard.make(className, hiddenSize: 16, seed: 2)
        var copyOptimizer = try! Optimizer(rule: .adam(), learningRate: 0.01)
        do { try Checkpoint.restore(saved, into: &copy, optimizer: &copyOptimizer) } catch { return fuzzCheck(false, "a saved checkpoint does not restore: \(error)") }
        fuzzCheck((try? Checkpoint.encode(copy, optimizer: copyOptimizer)) == saved, "a checkpoint changed in a save and restore")
        // The restored state still takes a training step.
        var generator = SplitMix64(seed: 3)
        let inputs = ExpertSeeds.inputs(expert.schema, &generator)
        guard let result = try? expert.backward(inputs: inputs, gradOutputs: expert.forward(inputs: inputs)) else {
            return fuzzCheck(false, "a restored \(className) expert cannot run backward")
        }
        var stepped = expert
        do { try optimizer.step(&stepped, gradients: result.parameterGradients) } catch { fuzzCheck(false, "a restored optimizer cannot step: \(error)") }
    }
}

enum ExpertSeeds {
    static let ffn = served("ffn")
    static let transformer = served("transformer")

    /// A host of one expert of `className` (hidden size 16) and its router.
    static func served(_ className: String) -> (ExpertHost, Router) {
        let options = try! ServiceOptions(service: "fuzz", specs: OptionSpec.common + ExpertHostConfiguration.options,
                                          arguments: ["--expert-uids", "\(className).0", "--expert-class", className, "--hidden-dim", "16",
                                                      "--max-batch-size", "64"], environment: [:])
        let configuration = try! ExpertHostConfiguration(options)
        let host = try! ExpertHost(configuration: configuration, uids: configuration.uids, metrics: Metrics(namespace: "fuzz"),
                                   logger: Logger(service: "fuzz", level: .error))
        return (host, host.makeRouter())
    }

    /// Inputs fitting a schema: batch 2, 3 for other free dimensions, ones for masks.
    static func inputs(_ schema: ExpertSchema, _ generator: inout SplitMix64) -> [Tensor] {
        schema.inputs.enumerated().map { index, input in
            let shape = input.shape.enumerated().map { $0.offset == 0 ? 2 : ($0.element == -1 ? 3 : $0.element) }
            return index == 0 ? Tensor.randomNormal(shape: shape, using: &generator) : Tensor(repeating: 1, shape: shape)
        }
    }

    static var routingRecords: [(name: String, bytes: [UInt8])] {
        let route = { (uid: String, weight: Float) in RoutingRecord.Route(uid: ExpertUID(uid)!, url: "http://127.0.0.1:8000", weight: weight) }
        let record = RoutingRecord(samples: [[route("ffn.0.1", 0.75), route("ffn.3.2", 0.25)], [route("ffn.1.1", 1)]])
        // batch, grid rank, grid sizes, text
        return [("compact", [2, 1, 3, 3] + Array(record.serialized().utf8)),
                ("generic", [2, 1, 3, 3] + Array(record.json.serialized().flatMap { $0 == "," ? [",", " "] : [$0] }.map(String.init).joined().utf8)),
                ("empty", [0, 0, 3] + Array("[]".utf8))]
    }

    static var requests: [(name: String, bytes: [UInt8])] {
        var generator = SplitMix64(seed: 1)
        return [("ffn", ffn.0), ("transformer", transformer.0)].flatMap { name, host -> [(name: String, bytes: [UInt8])] in
            let schema = host.backends.values.first!.expert.schema
            let inputs = inputs(schema, &generator)
            let named = inputs.enumerated().map { ("input.\($0.offset)", $0.element) }
            let grads = try! host.backends.values.first!.expert.forward(inputs: inputs).enumerated().map { ("grad_output.\($0.offset)", $0.element) }
            let which: UInt8 = name == "ffn" ? 1 : 0
            // host, known path, path index, POST, codec flag, known codec, codec index, body
            return [("\(name)-forward", [which, 1, 0, 1, 1, 1, 1] + (try! TensorBundle(named).encode())),
                    ("\(name)-backward-uniform8", [which, 1, 1, 1, 1, 1, 4] + (try! TensorBundle(named + grads).encode(codec: .uniform8))),
                    ("\(name)-state", [which, 1, 2, 0, 0, 0] + [])]
        }
    }

    static var checkpoints: [(name: String, bytes: [UInt8])] {
        ["ffn", "transformer"].enumerated().map { index, className in
            let expert = try! ExpertRegistry.standard.make(className, hiddenSize: 16, seed: 1)
            var optimizer = try! Optimizer(rule: .adam(), learningRate: 0.01)
            var generator = SplitMix64(seed: 2)
            let inputs = inputs(expert.schema, &generator)
            let result = try! expert.backward(inputs: inputs, gradOutputs: expert.forward(inputs: inputs))
            var target = expert
            try! optimizer.step(&target, gradients: result.parameterGradients)
            return (className, [UInt8(index)] + (try! Checkpoint.encode(expert, optimizer: optimizer)))
        }
    }
}
