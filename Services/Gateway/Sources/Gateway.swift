import Shared

/// The front door: a mixture-of-experts layer over the DHT's experts, and a
/// proxy to single experts, for trainers in any language. It keeps no state
/// between calls, so replicas can serve the same clients.
public struct Gateway: Sendable {
    public let layer: MixtureLayer
    public let switchLayer: SwitchLayer
    let directory: any ExpertDirectory
    let client: HTTPClient
    public let metrics: Metrics
    /// The DHT the mesh view reads (nodes, averagers, progress); nil shows no DHT.
    let dht: DHTClient?
    let sightings = ExpertSightings()
    /// Seals the routing records forward issues; backward accepts only sealed ones.
    let seal: RoutingSeal

    /// - Parameters:
    ///   - dht: for `GET /v1/mesh`; by default the directory's own DHT client.
    ///   - seal: the routing records' seal; replicas that serve each other's clients need one secret.
    ///   - expertToken: the gateway's own bearer token for expert hosts that ask for one (`--expert-token`);
    ///     a caller's credentials are never passed on to a host.
    public init(directory: any ExpertDirectory, client: HTTPClient = .shared, metrics: Metrics, dht: DHTClient? = nil,
                seal: RoutingSeal = RoutingSeal(), expertToken: String? = nil) {
        self.directory = directory
        self.client = client
        self.metrics = metrics
        self.dht = dht ?? (directory as? DHTExpertDirectory)?.dht
        self.seal = seal
        layer = MixtureLayer(directory: directory, client: client, metrics: metrics, expertToken: expertToken)
        switchLayer = SwitchLayer(layer: layer)
        metrics.declare("beam_search_seconds", .histogram, help: "Time to choose the batch's experts in the DHT.")
        metrics.declare("answers_per_sample", .histogram, help: "Experts that answered per sample.", buckets: [0, 1, 2, 3, 4, 6, 8, 16])
        metrics.declare("expert_seconds", .histogram, help: "Time from sending an expert call to its answer, before the gateway reads it; calls that answered, by expert and pass.")
        metrics.declare("expert_failures_total", .counter, help: "Expert calls that failed or were cut off, by expert and pass.")
    }

    /// The gateway's REST API (see openapi/gateway.yaml).
    public func makeRouter() -> Router {
        var router = Router()
        router.serve(.gateway)
        router.post("/v1/moe/forward", accepts: ["application/octet-stream"], maxBodyBytes: ServerLimits.serverMaximum) { request in
            let parameters = try MixtureParameters(query: request.query)
            let bundle = try decode(request.body, names: ["x", "scores"])
            let (output, routing) = try await layer.forward(x: bundle["x"]!, scores: bundle["scores"]!, parameters)
            let text = routing.serialized()
            return try encode([("output", output)], metadata: ["routing": text, "routing_seal": seal.seal(routing: text, x: bundle["x"]!)],
                              codec: parameters.codec)
        }
        router.post("/v1/moe/backward", accepts: ["application/octet-stream"], maxBodyBytes: ServerLimits.serverMaximum) { request in
            let parameters = try MixtureParameters(query: request.query)
            let bundle = try decode(request.body, names: ["x", "grad_output"])
            let x = bundle["x"]!
            let routing = try routingRecord(bundle, parameters, batch: x.shape.first ?? 0)
            let (gradX, gradScores) = try await layer.backward(x: x, gradOutput: bundle["grad_output"]!, routing: routing, parameters)
            return try encode([("grad_x", gradX), ("grad_scores", gradScores)], metadata: [:], codec: parameters.codec)
        }
        router.post("/v1/moe/switch/forward", accepts: ["application/octet-stream"], maxBodyBytes: ServerLimits.serverMaximum) { request in
            let parameters = try SwitchParameters(query: request.query)
            let bundle = try decode(request.body, names: ["x", "scores"])
            let result = try await switchLayer.forward(x: bundle["x"]!, scores: bundle["scores"]!, utilization: bundle["utilization"], parameters)
            let text = result.routing.serialized()
            var metadata = ["routing": text, "routing_seal": seal.seal(routing: text, x: bundle["x"]!)]
            if let seed = result.seed { metadata["jitter_seed"] = String(seed) }
            return try encode([("output", result.output), ("balancing_loss", result.balancingLoss), ("utilization", result.utilization)],
                              metadata: metadata, codec: parameters.mixture.codec)
        }
        router.post("/v1/moe/switch/backward", accepts: ["application/octet-stream"], maxBodyBytes: ServerLimits.serverMaximum) { request in
            let parameters = try SwitchParameters(query: request.query)
            let bundle = try decode(request.body, names: ["x", "scores", "grad_output", "utilization"])
            let x = bundle["x"]!
            let routing = try routingRecord(bundle, parameters.mixture, batch: x.shape.first ?? 0)
            var seed = parameters.seed
            if let text = bundle.metadata["jitter_seed"] {
                guard let value = UInt64(text) else { throw HTTPError.badRequest("metadata 'jitter_seed' must be the seed forward returned, got '\(text)'") }
                seed = value
            }
            let gradLoss = bundle["grad_balancing_loss"]
            guard gradLoss == nil || gradLoss!.count == 1 else {
                throw HTTPError.unprocessable("grad_balancing_loss must hold one number, got shape \(gradLoss!.shape)")
            }
            let (gradX, gradScores) = try await switchLayer.backward(
                x: x, scores: bundle["scores"]!, gradOutput: bundle["grad_output"]!, utilization: bundle["utilization"]!,
                gradLoss: gradLoss?.scalars[0] ?? 0, routing: routing, seed: seed, parameters)
            return try encode([("grad_x", gradX), ("grad_scores", gradScores)], metadata: [:], codec: parameters.mixture.codec)
        }
        router.get("/v1/experts") { request in
            guard let prefix = request.query["prefix"], ExpertUID.isValidPrefix(prefix) else {
                throw HTTPError.badRequest("query 'prefix' must be a grid prefix such as ffn. or ffn.3.")
            }
            let experts = try await listExperts(under: prefix)
            return .json(["experts": .array(experts.map { ["uid": .string($0.uid.description), "url": .string($0.url)] })])
        }
        router.get("/v1/mesh") { request in
            .json(await meshSnapshot(try MeshQuery(query: request.query)))
        }
        router.get("/dashboard") { _ in DashboardPage.response }
        for pass in ["forward", "backward"] {
            router.post("/v1/experts/{uid}/\(pass)", accepts: ["application/octet-stream"], maxBodyBytes: ServerLimits.serverMaximum) { request in
                try await proxy(request, pass: pass)
            }
        }
        return router
    }

    /// Every alive expert under a prefix, walking its dictionaries to the full uids.
    func listExperts(under prefix: String) async throws(HTTPError) -> [ExpertInfo] {
        var frontier = [prefix]
        var found: Set<ExpertInfo> = []
        do {
            while !frontier.isEmpty {
                let children = try await directory.children(of: frontier)
                frontier = []
                for (parent, entries) in children {
                    for (coordinate, expert) in entries {
                        if expert.uid.parentPrefix == parent { found.insert(expert) } else { frontier.append("\(parent)\(coordinate).") }
                    }
                }
            }
        } catch {
            throw .serviceUnavailable("cannot read the DHT: \(error)")
        }
        return found.sorted { $0.uid < $1.uid }
    }

    /// Forwards a request to the host that declares the uid.
    private func proxy(_ request: HTTPRequest, pass: String) async throws -> HTTPResponse {
        guard let uid = ExpertUID(request.parameter("uid")) else {
            throw HTTPError.badRequest("'\(request.parameter("uid"))' is not an expert uid like ffn.3.14")
        }
        let expert: ExpertInfo?
        do { expert = try await directory.expert(uid) } catch { throw HTTPError.serviceUnavailable("cannot read the DHT: \(error)") }
        guard let expert else { throw HTTPError.notFound("no alive host declares expert \(uid) in the DHT") }
        // The host reads only `codec`; passing it on checked (rather than the raw
        // query) keeps the host's URL well-formed whatever the client sent.
        var query = ""
        if let name = request.query["codec"] {
            guard let codec = CompressionCodec(rawValue: name) else {
                throw HTTPError.badRequest("query 'codec' must be one of \(CompressionCodec.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name.prefix(40))'")
            }
            query = "?codec=\(codec.rawValue)"
        }
        do {
            // The caller's credentials stay here: a host that wants a token gets the gateway's own.
            let response = try await client.post("\(expert.url)/v1/experts/\(uid)/\(pass)\(query)", bytes: request.body,
                                                 headers: layer.expertHeaders, maxResponseBytes: expertAnswerCap(request.body.count))
            return .bytes(response.body)
        } catch let error where error.kind == .httpStatus && (400..<500).contains(error.status ?? 0) && error.status != 401 && error.status != 403 {
            // The caller's request was wrong: its status and code, in our words.
            throw HTTPError(status: error.status!, code: error.code ?? "expert_refused", message: "\(uid) at \(expert.url) \(error.message)")
        } catch {
            throw HTTPError(status: 502, code: "expert_failed", message: "\(uid) at \(expert.url): \(error)")
        }
    }

    /// The routing record that forward returned, from the body's metadata.
    /// Only a record this gateway (or a replica) sealed for this batch `x` is read (see `RoutingSeal`).
    private func routingRecord(_ bundle: TensorBundle, _ parameters: MixtureParameters, batch: Int) throws(HTTPError) -> RoutingRecord {
        guard let text = bundle.metadata["routing"] else {
            throw HTTPError.badRequest("metadata 'routing' must hold the routing record that forward returned")
        }
        try seal.verify(bundle.metadata["routing_seal"], routing: text, x: bundle["x"]!)
        return try RoutingRecord(text: text, prefix: parameters.prefix, gridSize: parameters.gridSize, batch: batch)
    }

    private func decode(_ body: [UInt8], names: [String]) throws(HTTPError) -> TensorBundle {
        let bundle: TensorBundle
        do { bundle = try TensorBundle.decode(body) } catch {
            throw .badRequest("the body must be a safetensors payload with \(names.joined(separator: " and ")): \(error.message)")
        }
        if let missing = names.first(where: { bundle[$0] == nil }) {
            throw .badRequest("missing tensor '\(missing)'; expected \(names.joined(separator: " and "))")
        }
        return bundle
    }

    private func encode(_ tensors: [(String, Tensor)], metadata: [String: String], codec: CompressionCodec) throws(HTTPError) -> HTTPResponse {
        do { return .bytes(try TensorBundle(tensors, metadata: metadata).encode(codec: codec)) } catch {
            throw .unprocessable("cannot encode the response: \(error.message)")
        }
    }
}
