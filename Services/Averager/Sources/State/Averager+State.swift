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
            logger.warning("cannot declare state in the DHT", ["prefix": prefix, "error": "\(error)"])
        }
    }

    /// Serves the state of `prefix` (`GET /v1/state`), whole or as a byte range.
    /// - Parameters:
    ///   - requester: the newcomer's id (`X-Hivemind-Peer`), which holds a download slot across chunks.
    ///   - range: a `Range: bytes=a-b` header.
    ///   - version: an `If-Match` header pinning the snapshot of the first chunk.
    func serveState(prefix: String, requester: String?, range: String?, version: String?) throws(AveragerError) -> HTTPResponse {
        guard let snapshot = states.snapshot(prefix) else {
            throw AveragerError(.notFound, "this averager holds no state for prefix '\(prefix)'")
        }
        if let version, version.filter({ $0 != "\"" }) != snapshot.version {
            throw AveragerError(.stateChanged, "the state of '\(prefix)' changed since the download began (now version \(snapshot.version)); start again")
        }
        let size = snapshot.bytes.count
        var bounds = 0..<size
        if let range {
            bounds = try Self.byteRange(range, size: size)
        }
        // A request that names no downloader needs a free slot but holds none afterwards.
        var generator = SystemRandomNumberGenerator()
        try states.admit(requester ?? Hashing.randomHex(bytes: 8, using: &generator), prefix: prefix,
                         finished: requester == nil || bounds.upperBound >= size)
        metrics.increment("state_downloads_total", labels: ["result": "served"])
        metrics.increment("bytes_sent_total", by: Double(bounds.count))
        var response = HTTPResponse.bytes(Array(snapshot.bytes[bounds]), status: range == nil ? 200 : 206)
        response.headers.append(("ETag", "\"\(snapshot.version)\""))
        response.headers.append(("X-Hivemind-State-Priority", "\(snapshot.priority)"))
        if range != nil {
            response.headers.append(("Content-Range", "bytes \(bounds.lowerBound)-\(bounds.upperBound - 1)/\(size)"))
        }
        return response
    }

    /// Parses `bytes=a-b` or `bytes=a-` against a body of `size` bytes.
    static func byteRange(_ header: String, size: Int) throws(AveragerError) -> Range<Int> {
        let malformed = AveragerError(.badRequest, "Range must be 'bytes=START-END' or 'bytes=START-' with START <= END, got '\(header)'")
        guard header.hasPrefix("bytes="), let dash = header.firstIndex(of: "-") else { throw malformed }
        guard let start = Int(header[header.index(header.startIndex, offsetBy: 6)..<dash]), start >= 0 else { throw malformed }
        let endText = header[header.index(after: dash)...]
        let end = endText.isEmpty ? size - 1 : Int(endText)
        guard let end, end >= start || endText.isEmpty else { throw malformed }
        guard start <= size else {
            throw AveragerError(.badRequest, "Range starts at byte \(start), past the state's \(size) bytes")
        }
        // Clamp before adding one: END may be Int.max (`bytes=0-9223372036854775807`).
        return start..<(min(size - 1, end) + 1)
    }

    /// Downloads the latest state of `prefix` from the donors (`POST /v1/state/load`).
    func loadState(prefix: String, timeout: Double) async throws(AveragerError) -> (bytes: [UInt8], donor: PeerID) {
        try GroupKey.validate(prefix: prefix)
        guard let me = peerID else { throw AveragerError(.unavailable, "the averager is not listening yet") }
        let loader = StateLoader(me: me, dht: dht, http: http, chunkBytes: configuration.stateChunkBytes, chunkTimeout: configuration.requestTimeout,
                                 maxStateBytes: configuration.limits.maxStateBytes)
        return try await loader.load(prefix: prefix, deadline: Clock.now + timeout)
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
