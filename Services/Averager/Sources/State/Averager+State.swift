import Shared

/// State sharing: trainers put their latest state, donors declare it in the
/// DHT with a priority, newcomers download it from the best donors.
extension Averager {
    /// Stores the state of `prefix` (`PUT /v1/state`) and declares this averager as its donor.
    /// - Throws: `AveragerError` `.conflict` for a client or an averager that does not share state,
    ///   `.badRequest` for a body that is not safetensors.
    func putState(prefix: String, bytes: [UInt8], priority: Double) async throws(AveragerError) -> StateStore.Snapshot {
        try GroupKey.validate(prefix: prefix)
        guard configuration.mode != .client, configuration.stateSharing else {
            throw AveragerError(.conflict, configuration.mode == .client
                ? "a client cannot share state: nobody can download from it"
                : "this averager does not share state (started with --state-sharing false)")
        }
        guard priority.isFinite else { throw AveragerError(.unprocessable, "priority must be a finite number, got \(priority)") }
        do { _ = try Safetensors.decode(bytes) } catch {
            throw AveragerError(.badRequest, "the state must be a safetensors file: \(error.message)")
        }
        let snapshot = try states.put(prefix: prefix, bytes: bytes, priority: priority)
        await declareDonor(prefix: prefix)
        donorTasks.withLock { tasks in
            guard tasks[prefix] == nil else { return }
            // Renew the declaration at half its lifetime, for as long as the averager runs.
            tasks[prefix] = Task { [weak self] in
                while !Task.isCancelled {
                    guard let period = self?.configuration.declareStatePeriod else { return }
                    try? await Task.sleep(for: .seconds(period / 2))
                    await self?.declareDonor(prefix: prefix)
                }
            }
        }
        return snapshot
    }

    private func declareDonor(prefix: String) async {
        guard let me = peerID, let snapshot = states.snapshot(prefix) else { return }
        do {
            try await dht.declare(key: StateLoader.donorKey(prefix), name: me, value: .double(snapshot.priority),
                                  expiration: Clock.epoch + configuration.declareStatePeriod, signedBy: identity)
        } catch {
            logger.warning("cannot declare state in the DHT", ["prefix": prefix, "error": explained(error)])
        }
    }

    /// Serves the state of `prefix` (`GET /v1/state`), whole or as a byte
    /// range, with its preconditions per RFC 9110 (see `StateRequest`).
    /// - Parameters:
    ///   - requester: the newcomer's id (`X-Hivemind-Peer`), which holds a download slot across chunks.
    ///   - headers: the request's headers (`Range`, `If-Match`, `If-None-Match`, `If-Range`), names lowercased.
    ///   - codec: how to send the state (`StateRequest` then applies to that representation, whose tag names the codec).
    func serveState(prefix: String, requester: String?, headers: [String: String],
                    codec: CompressionCodec = .none) async throws(AveragerError) -> HTTPResponse {
        guard let snapshot = states.snapshot(prefix) else {
            throw AveragerError(.notFound, "this averager holds no state for prefix '\(prefix)'")
        }
        if codec != .none { try states.checkRoom(for: requester, prefix: prefix) }
        let (bytes, version) = try await states.representation(snapshot, prefix: prefix, codec: codec)
        let size = bytes.count
        let tag = ("ETag", "\"\(version)\"")
        var bounds = 0..<size
        var partial = false
        switch try StateRequest.answer(headers: headers, etag: version, size: size) {
        case .preconditionFailed:
            throw AveragerError(.stateChanged, "If-Match names none of the current version \"\(version)\" of the state of "
                + "'\(prefix)': it changed since the download began; start again")
        case .notModified:
            return HTTPResponse(status: 304, headers: [tag], body: [])
        case .rangeNotSatisfiable:
            var response = AveragerError(.rangeNotSatisfiable, "the range starts past the state's \(size) bytes; ask for bytes 0 to \(size - 1)")
                .http.response
            response.headers += [("Content-Range", "bytes */\(size)"), tag]
            return response
        case .whole:
            break
        case .range(let range):
            (bounds, partial) = (range, true)
        }
        // A request that names no downloader needs a free slot but holds none afterwards.
        var generator = SystemRandom()
        try states.admit(requester ?? Hashing.randomHex(bytes: 8, using: &generator), prefix: prefix,
                         finished: requester == nil || bounds.upperBound >= size)
        metrics.increment("state_downloads_total", labels: ["result": "served"])
        metrics.increment("bytes_sent_total", by: Double(bounds.count))
        var response = HTTPResponse.bytes(Array(bytes[bounds]), status: partial ? 206 : 200)
        response.headers += [tag, ("Accept-Ranges", "bytes"), ("X-Hivemind-State-Priority", "\(snapshot.priority)")]
        if partial {
            response.headers.append(("Content-Range", "bytes \(bounds.lowerBound)-\(bounds.upperBound - 1)/\(size)"))
        }
        return response
    }

    /// Downloads the latest state of `prefix` from the donors (`POST /v1/state/load`),
    /// answering within `timeout` seconds of the call's arrival whatever the DHT and the donors do.
    /// With a `codec` the donors send it compressed (`StateCompression`), and it is rebuilt here.
    /// - Throws: `AveragerError`: 404 without donors, 503 when every donor failed or stayed busy,
    ///   504 (`timeout`) when the deadline passed while reading the DHT.
    func loadState(prefix: String, timeout: Double, codec: CompressionCodec = .none) async throws(AveragerError) -> (bytes: [UInt8], donor: PeerID) {
        try GroupKey.validate(prefix: prefix)
        guard let me = peerID else { throw AveragerError(.unavailable, "the averager is not listening yet") }
        let deadline = Deadline(after: timeout)
        let loader = StateLoader(me: me, dht: dht, http: http, chunkBytes: configuration.stateChunkBytes, chunkTimeout: configuration.requestTimeout,
                                 maxStateBytes: configuration.limits.maxStateBytes, codec: codec)
        let outcome = await deadline.run(cancellingLateWork: true) { () async -> Result<(bytes: [UInt8], donor: PeerID), AveragerError> in
            do throws(AveragerError) { return .success(try await loader.load(prefix: prefix, deadline: deadline.instant)) } catch { return .failure(error) }
        }
        guard let outcome else {
            throw AveragerError(.timeout, "the call's timeout of \(timeout) s passed while it was reading the donors of '\(prefix)' "
                + "from the DHT or downloading the state; retry, or give the call a longer timeout")
        }
        return try outcome.get()
    }

    /// Stops renewing donor declarations and withdraws them (value null, as the reference does).
    public func shutdown() async {
        await withdrawProgress()
        let tasks = donorTasks.withLock { tasks in
            defer { tasks = [:] }
            return tasks
        }
        guard let me = peerID else { return }
        for (prefix, task) in tasks {
            task.cancel()
            try? await dht.declare(key: StateLoader.donorKey(prefix), name: me, value: .null,
                                   expiration: Clock.epoch + configuration.declareStatePeriod, signedBy: identity)
        }
    }
}
