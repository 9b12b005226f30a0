import Shared

/// The averager's REST API (see `openapi/averager.yaml`). `main` and the
/// tests both build the router here.
public enum AveragerRouter {
    /// A function that wraps every handler: one place for authentication, or
    /// for a test's fault injection.
    public typealias Interceptor = @Sendable (_ route: String, _ handler: @escaping HTTPHandler) -> HTTPHandler

    /// The router serving `averager`.
    public static func build(_ averager: Averager, intercept: Interceptor = { _, handler in handler }) -> Router {
        var router = Router()
        router.serve(.averager)
        let access = RunAccess(token: averager.configuration.runToken, listensOnLoopback: averager.configuration.listensOnLoopback)
        /// `protected`: the route changes what others download, and needs the run's token (see `RunAccess`).
        func add(_ method: String, _ pattern: String, accepts: [String] = [], maxBodyBytes: Int? = nil, protected: Bool = false,
                 _ handler: @escaping @Sendable (HTTPRequest) async throws(AveragerError) -> HTTPResponse) {
            let handler: HTTPHandler = { request in
                do throws(AveragerError) {
                    if protected { try access.check(request) }
                    return try await handler(request)
                } catch { throw error.http }
            }
            router.add(method, pattern, accepts: accepts, maxBodyBytes: maxBodyBytes, intercept(pattern, handler))
        }
        let tensors = ["application/octet-stream", "application/vnd.safetensors"]
        // A trainer's tensors are as large as its model; a part is at most a part and its header.
        let model = ServerLimits.serverMaximum
        let part = averager.configuration.partSizeBytes + (64 << 10)
        let json = ["application/json"]

        // Trainers.
        add("POST", "/v1/average", accepts: tensors, maxBodyBytes: model) { request throws(AveragerError) in
            try encode(try await averager.average(AverageRequest(http: request)))
        }
        add("POST", "/v1/rounds", accepts: tensors, maxBodyBytes: model) { request throws(AveragerError) in
            let parsed = try AverageRequest(http: request)
            let id = try averager.rounds.schedule { () throws(AveragerError) in try await averager.average(parsed) }
            return .json(["id": .string(id), "status": "running"], status: 202)
        }
        add("GET", "/v1/rounds/{id}") { request throws(AveragerError) in
            let id = request.parameter("id")
            let wait: Double
            do throws(DurationError) { wait = try DurationLimits.parse(request.query["wait"] ?? "0", "query parameter 'wait'", in: 0...600) } catch {
                throw AveragerError(.badRequest, error.message)
            }
            guard let status = await averager.rounds.status(id, wait: wait) else { throw unknownRound(id) }
            switch status {
            case .running: return .json(["id": .string(id), "status": "running"])
            case .done(let result): return .json(["id": .string(id), "status": "done", "round": result.record.json])
            case .failed(let error):
                return .json(["id": .string(id), "status": "failed", "error": ["code": .string(error.kind.description), "message": .string(error.message)]])
            }
        }
        add("GET", "/v1/rounds/{id}/tensors") { request throws(AveragerError) in
            let id = request.parameter("id")
            guard let status = await averager.rounds.status(id) else { throw unknownRound(id) }
            switch status {
            case .running: throw AveragerError(.conflict, "round \(id) is still running; poll GET /v1/rounds/\(id)?wait=30 until it is done")
            case .done(let result): return try encode(result)
            case .failed(let error): throw error
            }
        }
        add("GET", "/v1/info") { _ throws(AveragerError) in
            let keys = await averager.groupKeys()
            return .json(["peer_id": .string(averager.identity.peerID), "address": averager.peerID.map(JSON.string) ?? .null,
                          "mode": .string(averager.configuration.mode.rawValue),
                          "group_keys": .object(keys.mapValues(JSON.string))])
        }

        // State sharing.
        add("PUT", "/v1/state", accepts: tensors, maxBodyBytes: model, protected: true) { request throws(AveragerError) in
            let priority = Double(request.query["priority"] ?? "0") ?? .nan
            let snapshot = try await averager.putState(prefix: try request.prefix(), bytes: request.body, priority: priority)
            return .json(["version": .string(snapshot.version), "bytes": .int(snapshot.bytes.count), "priority": .double(snapshot.priority)])
        }
        add("GET", "/v1/state") { request throws(AveragerError) in
            try await averager.serveState(prefix: try request.prefix(), requester: request.headers["x-hivemind-peer"], headers: request.headers,
                                          codec: try request.codec())
        }
        add("POST", "/v1/state/load") { request throws(AveragerError) in
            let timeout = try request.query["timeout"].map(AverageRequest.timeout) ?? averager.configuration.defaultTimeout
            let (bytes, donor) = try await averager.loadState(prefix: try request.prefix(), timeout: timeout, codec: try request.codec())
            var response = HTTPResponse.bytes(bytes)
            response.headers.append(("X-Hivemind-Donor", donor))
            return response
        }

        // Collaborative runs (the collaborative optimizer).
        add("PUT", "/v1/runs/{run}", accepts: json, protected: true) { request throws(AveragerError) in
            let run = request.parameter("run")
            let settings = try RunSettings(json: try readJSON(request) { $0 })
            let created = try averager.configureRun(run, settings: settings)
            return .json(try runJSON(averager, run), status: created ? 201 : 200)
        }
        add("GET", "/v1/runs/{run}") { request throws(AveragerError) in
            .json(try runJSON(averager, request.parameter("run")))
        }
        add("POST", "/v1/runs/{run}/progress", accepts: json, protected: true) { request throws(AveragerError) in
            let report = try readJSON(request) { json throws(JSONFieldError) in
                let reader = try JSONObjectReader(json)
                return (try reader.string("trainer"), try reader.int("epoch"), try reader.int("samples"),
                        try reader.optional("samples_per_second", JSONObjectReader.double) ?? 0,
                        try reader.optional("loss", JSONObjectReader.double))
            }
            return .json(try averager.reportProgress(run: request.parameter("run"), trainer: report.0, epoch: report.1,
                                                     samples: report.2, samplesPerSecond: report.3, loss: report.4).json)
        }
        add("POST", "/v1/runs/{run}/step", accepts: tensors, maxBodyBytes: model, protected: true) { request throws(AveragerError) in
            guard let trainer = request.query["trainer"] else {
                throw AveragerError(.badRequest, "query parameter 'trainer' is required: the name the trainer reports progress under")
            }
            func integer(_ name: String) throws(AveragerError) -> Int {
                guard let text = request.query[name], let value = Int(text) else {
                    throw AveragerError(.badRequest, "query parameter '\(name)' must be an integer, got '\(request.query[name] ?? "nothing")'")
                }
                return value
            }
            let (epoch, samples) = (try integer("epoch"), try integer("samples"))
            let (tensors, _) = try AverageRequest.readTensors(request.body)
            let outcome = try await averager.step(run: request.parameter("run"), trainer: trainer, epoch: epoch, samples: samples,
                                                  tensors: tensors, codec: try request.codec())
            var response: HTTPResponse
            do throws(SafetensorsError) {
                var wire: [(name: String, tensor: WireTensor)] = []
                for (name, original) in tensors { wire.append((name, try WireTensor(outcome.tensors[name]!, as: original.dtype))) }
                response = .bytes(try Safetensors.encode(wire, metadata: ["step": outcome.record.serialized()]))
            } catch {
                throw AveragerError(.unprocessable, "cannot encode the averaged tensors: \(error.message)")
            }
            response.headers.append(("X-Hivemind-Epoch", String(outcome.epoch)))
            return response
        }
        add("DELETE", "/v1/runs/{run}/trainers/{trainer}", protected: true) { request throws(AveragerError) in
            try averager.leaveRun(run: request.parameter("run"), trainer: request.parameter("trainer"))
            return .json(["run": .string(request.parameter("run")), "trainer": .string(request.parameter("trainer")), "left": true])
        }

        // Other averagers.
        add("POST", "/v1/matchmaking/join", accepts: json) { request throws(AveragerError) in
            let join = try readJSON(request) { json throws(JSONFieldError) in try JoinRequest(json: json) }
            return .json(await averager.join(join).json)
        }
        add("POST", "/v1/matchmaking/await", accepts: json) { request throws(AveragerError) in
            let (peer, key) = try readJSON(request) { json throws(JSONFieldError) in
                let reader = try JSONObjectReader(json)
                return (try reader.string("peer"), try reader.string("group_key"))
            }
            return .json(await averager.awaitOutcome(peer: peer, groupKey: key).json)
        }
        add("POST", "/v1/matchmaking/leave", accepts: json) { request throws(AveragerError) in
            let (peer, key, expiration) = try readJSON(request) { json throws(JSONFieldError) in
                let reader = try JSONObjectReader(json)
                return (try reader.string("peer"), try reader.string("group_key"), try reader.double("expiration"))
            }
            return .json(await averager.leave(peer: peer, groupKey: key, expiration: expiration).json)
        }
        add("POST", "/v1/groups/{group_id}/parts/{part}", accepts: tensors, maxBodyBytes: part) { request throws(AveragerError) in
            guard let part = Int(request.parameter("part")), part >= 0 else {
                throw AveragerError(.badRequest, "part must be a non-negative integer, got '\(request.parameter("part"))'")
            }
            return .bytes(try await averager.receivePart(groupID: request.parameter("group_id"), part: part, body: request.body))
        }
        return router
    }

    private static func encode(_ result: AverageResult) throws(AveragerError) -> HTTPResponse {
        do { return .bytes(try result.encoded()) } catch { throw AveragerError(.unprocessable, "cannot encode the averaged tensors: \(error.message)") }
    }

    /// `{"run", "settings", "progress", "trainers"}`.
    private static func runJSON(_ averager: Averager, _ run: String) throws(AveragerError) -> JSON {
        let tracker = try averager.collaborativeRun(run).tracker
        let answer = ProgressAnswer(trainer: "", action: .accumulate, epoch: 0, global: tracker.global(), now: tracker.clock())
        var progress = answer.json.objectValue!
        for key in ["trainer", "action", "epoch"] { progress[key] = nil }
        return ["run": .string(run), "settings": tracker.settings.json, "progress": .object(progress), "trainers": tracker.localJSON()]
    }

    private static func unknownRound(_ id: String) -> AveragerError {
        AveragerError(.notFound, "no round \(id): it never existed or was dropped (a newer round replaces the oldest finished one past --max-rounds)")
    }

    private static func readJSON<T>(_ request: HTTPRequest, _ read: (JSON) throws(JSONFieldError) -> T) throws(AveragerError) -> T {
        do {
            return try read(try request.json())
        } catch let error as HTTPError {
            throw AveragerError(.badRequest, error.message)
        } catch {
            throw AveragerError(.badRequest, "\(error)")
        }
    }
}

extension HTTPRequest {
    /// The required `prefix` query parameter, checked.
    func prefix() throws(AveragerError) -> String {
        guard let prefix = query["prefix"] else {
            throw AveragerError(.badRequest, "query parameter 'prefix' is required: the run's name, e.g. ?prefix=my_run")
        }
        try GroupKey.validate(prefix: prefix)
        return prefix
    }

    /// The optional `codec` query parameter (`none` when absent), else 400 naming the codecs.
    func codec() throws(AveragerError) -> CompressionCodec {
        do { return try CompressionCodec(parsing: query["codec"] ?? "none") } catch { throw AveragerError(.badRequest, error.message) }
    }
}
