import Shared

extension ExpertHost {
    /// The host's REST API (see openapi/expert-host.yaml).
    public func makeRouter() -> Router {
        var router = Router()
        router.serve(.expertHost)
        let forwardBytes = maxBodyBytes(backward: false), backwardBytes = maxBodyBytes(backward: true)
        router.get("/v1/experts") { [self] _ in
            .json(["experts": .array(uids.map { backends[$0.description]!.info })])
        }
        router.get("/v1/experts/{uid}") { [self] request in
            .json(try backend(request.parameter("uid")).info)
        }
        router.get("/v1/experts/{uid}/state") { [self] request in
            try authorize(request, token: configuration.backwardToken, action: "reading an expert's state")
            return .bytes(try backend(request.parameter("uid")).checkpoint())
        }
        router.post("/v1/checkpoint") { [self] request in
            try authorize(request, token: configuration.backwardToken, action: "checkpointing")
            guard configuration.checkpointDirectory != nil else {
                throw HTTPError.conflict("this host has no --checkpoint-dir to write checkpoints to")
            }
            try saveCheckpoints()
            return .json(["experts": .array(uids.map { .string($0.description) })])
        }
        router.post("/v1/experts/{uid}/forward", accepts: ["application/octet-stream"], maxBodyBytes: forwardBytes) { [self] request in
            try authorize(request, token: configuration.forwardToken, action: "forward")
            let backend = try backend(request.parameter("uid"))
            let codec = try responseCodec(request)
            let schema = backend.expert.schema
            let inputs = try ExpertPayload.decode(request.body, groups: [("input", schema.inputs)])[0]
            try validate(inputs, schema: schema)
            let outputs = try await backend.forward(inputs)
            return try ExpertPayload.encode([("output", outputs)], codec: codec)
        }
        router.post("/v1/experts/{uid}/backward", accepts: ["application/octet-stream"], maxBodyBytes: backwardBytes) { [self] request in
            try authorize(request, token: configuration.backwardToken, action: "backward")
            let backend = try backend(request.parameter("uid"))
            let codec = try responseCodec(request)
            let schema = backend.expert.schema
            let tensors = try ExpertPayload.decode(request.body, groups: [("input", schema.inputs), ("grad_output", schema.outputs)])
            let batch = try validate(tensors[0], schema: schema)
            do {
                try schema.validate(gradOutputs: tensors[1], batch: batch)
            } catch let error as NeuralError {
                throw HTTPError.unprocessable("\(error.message); expected \(ExpertPayload.describe([("grad_output", schema.outputs)]))")
            }
            try checkFinite(tensors[1], "grad_output")
            let (outputs, gradInputs) = try await backend.backward(tensors[0], gradOutputs: tensors[1])
            return try ExpertPayload.encode([("grad_input", gradInputs), ("output", outputs)], codec: codec)
        }
        return router
    }

    /// The largest forward (or backward) body any of this host's experts takes:
    /// `--max-batch-size` samples of every input (and output gradient) at 8 bytes
    /// an element (the widest dtype a client may send), plus the header.
    /// An expert with a free dimension besides the batch (a transformer's sequence)
    /// takes up to the server's limit.
    func maxBodyBytes(backward: Bool) -> Int {
        var largest = 0
        for backend in backends.values {
            let schema = backend.expert.schema
            let tensors = schema.inputs + (backward ? schema.outputs : [])
            let perSample = tensors.map { $0.shape.dropFirst() }
            guard perSample.allSatisfy({ !$0.contains(-1) }) else { return ServerLimits.serverMaximum }
            let elements = perSample.reduce(0.0) { $0 + $1.reduce(1.0) { $0 * Double($1) } }
            let bytes = Double(configuration.maxBatchSize) * elements * 8 + Double(64 << 10)
            guard bytes < Double(ServerLimits.serverMaximum / 2) else { return ServerLimits.serverMaximum }
            largest = max(largest, Int(bytes))
        }
        return largest
    }

    /// Checks shapes, batch size and (unless `--allow-non-finite`) finiteness before anything runs.
    @discardableResult
    private func validate(_ inputs: [Tensor], schema: ExpertSchema) throws(HTTPError) -> Int {
        let batch: Int
        do {
            batch = try schema.validate(inputs: inputs)
        } catch {
            throw .unprocessable("\(error.message); expected \(ExpertPayload.describe([("input", schema.inputs)]))")
        }
        guard batch <= configuration.maxBatchSize else {
            throw .payloadTooLarge("a batch of \(batch) samples exceeds this host's --max-batch-size \(configuration.maxBatchSize); split it")
        }
        try checkFinite(inputs, "input")
        return batch
    }

    private func checkFinite(_ tensors: [Tensor], _ prefix: String) throws(HTTPError) {
        guard !configuration.allowsNonFinite else { return }
        for (index, tensor) in tensors.enumerated() where !tensor.scalars.allSatisfy(\.isFinite) {
            throw .unprocessable("\(prefix).\(index) contains NaN or infinity, which this host refuses (--allow-non-finite accepts it)")
        }
    }

    private func authorize(_ request: HTTPRequest, token: String?, action: String) throws(HTTPError) {
        guard let token else { return }
        guard request.headers["authorization"] == "Bearer \(token)" else {
            var error = HTTPError.unauthorized("\(action) needs the header 'Authorization: Bearer <token>' with this host's token")
            error.headers = [("WWW-Authenticate", "Bearer")]
            throw error
        }
    }

    /// The codec of the response, from the query (`?codec=float16`); none by default.
    private func responseCodec(_ request: HTTPRequest) throws(HTTPError) -> CompressionCodec {
        guard let name = request.query["codec"] else { return .none }
        do { return try CompressionCodec(parsing: name) } catch { throw .badRequest("query 'codec': \(error.message)") }
    }
}

extension ExpertBackend {
    /// What `GET /v1/experts/{uid}` reports.
    var info: JSON {
        ["uid": .string(uid.description), "class": .string(className), "schema": expert.schema.json,
         "parameter_count": .int(expert.parameterCount), "optimizer": .string(optimizerName), "steps": .int(steps)]
    }
}
