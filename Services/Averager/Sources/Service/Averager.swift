import Shared
import Synchronization

/// An averaging service: it averages the tensors trainers submit with other
/// averagers found through the DHT, and answers those averagers' matchmaking
/// and part requests. `AveragerRouter` exposes it over REST.
public final class Averager: Sendable {
    /// The settings.
    public let configuration: AveragerConfiguration
    /// The service's metrics (`hivemind_averager_...`).
    public let metrics: Metrics
    let dht: any AveragerDHT
    let http: HTTPClient
    let logger: Logger
    let registry = SessionRegistry()
    let rounds: RoundStore
    let states: StateStore
    /// Per prefix: the task renewing this averager's donor declaration.
    let donorTasks = Mutex<[String: Task<Void, Never>]>([:])
    /// Signs the progress records this averager publishes for its trainers.
    public let identity: Identity
    /// Seconds since the Unix epoch (tests drive it).
    let clock: @Sendable () -> Double
    /// Collaborative runs by id (`PUT /v1/runs/{run}`).
    let runs = Mutex<[String: CollaborativeRun]>([:])
    private let peer = Mutex<PeerID?>(nil)
    private let matchmakers = Mutex<[String: Matchmaker]>([:])
    /// What this averager measured of its link in its all-reduces: declared as its bandwidth unless --bandwidth is set.
    let throughput = Mutex(ThroughputEstimate())
    /// How long peers took to answer join requests: every prefix's request timeout follows it.
    let roundTrips = RoundTrips()

    /// - Parameters:
    ///   - dht: where peers declare themselves.
    ///   - http: the client for calls to other averagers (tests give a client per averager).
    ///   - identity: signs every declaration in the DHT: group, donor and progress records (a new key pair by default).
    public init(configuration: AveragerConfiguration, dht: any AveragerDHT, http: HTTPClient = .shared, metrics: Metrics, logger: Logger,
                identity: Identity = Identity(), clock: @escaping @Sendable () -> Double = { Clock.epoch }) {
        self.configuration = configuration
        self.identity = identity
        self.clock = clock
        self.dht = dht
        self.http = http
        self.metrics = metrics
        self.logger = logger
        states = StateStore(maxDownloads: configuration.maxStateDownloads, limits: configuration.limits)
        rounds = RoundStore(limit: configuration.limits.maxRounds)
        Self.declareMetrics(metrics)
    }

    /// Sets the address other averagers reach this one at, once the server listens.
    /// A node or auxiliary is known by its peer address (pinned to its identity);
    /// a client, which nobody calls, by a random id.
    public func start(address: String) {
        var generator = SystemRandom()
        let peer = configuration.mode == .client ? "client-" + Hashing.randomHex(bytes: 8, using: &generator) : address
        self.peer.withLock { $0 = $0 ?? peer }
    }

    /// This averager's name in groups, its peer address (nil until `start`).
    public var peerID: PeerID? { peer.withLock { $0 } }

    /// The matchmaker of `prefix`, created on first use with the initial group bits.
    func matchmaker(for prefix: String, me: PeerID) throws(AveragerError) -> Matchmaker {
        let key = try GroupKey(prefix: prefix, bits: configuration.initialGroupBits)
        return matchmakers.withLock { matchmakers in
            if let existing = matchmakers[prefix] { return existing }
            let settings = MatchmakingState.Settings(targetGroupSize: configuration.targetGroupSize, minGroupSize: configuration.minGroupSize,
                                                     requestTimeout: configuration.requestTimeout, clientMode: configuration.mode == .client)
            let matchmaker = Matchmaker(state: MatchmakingState(me: me, groupKey: key, settings: settings), dht: dht, identity: identity, http: http,
                                        minMatchmakingTime: configuration.minMatchmakingTime, roundTrips: roundTrips, logger: logger, metrics: metrics)
            matchmakers[prefix] = matchmaker
            return matchmaker
        }
    }

    /// The matchmaker of a prefix another averager asks about; never creates one.
    func existingMatchmaker(forKey key: String) -> Matchmaker? {
        guard let prefix = GroupKey.prefix(ofKey: key) else { return nil }
        return matchmakers.withLock { $0[prefix] }
    }

    /// The current group key of `prefix`: its initial one until this averager averages under it.
    func groupKey(of prefix: String) async throws(AveragerError) -> String {
        if let matchmaker = matchmakers.withLock({ $0[prefix] }) { return await matchmaker.groupKey.key }
        return try GroupKey(prefix: prefix, bits: configuration.initialGroupBits).key
    }

    /// The current group key of every prefix this averager has averaged.
    public func groupKeys() async -> [String: String] {
        var keys: [String: String] = [:]
        for (prefix, matchmaker) in matchmakers.withLock({ $0 }) { keys[prefix] = await matchmaker.groupKey.key }
        return keys
    }

    // MARK: - Averaging

    /// Finds a group and averages `request.tensors` with it, retrying with a
    /// new group after an all-reduce that averaged nothing, until the request's timeout.
    ///
    /// The timeout bounds the whole call from its arrival: waiting for the
    /// prefix's previous round, matchmaking and the all-reduce. Matchmaking
    /// stops a quarter of the timeout (at most `--allreduce-timeout`) before
    /// the deadline, so a group found last still has time to average; an
    /// all-reduce that runs past the deadline finishes in the background for
    /// the group's sake, and the caller gets 504 at its deadline.
    /// - Throws: `AveragerError`: 422 for NaN/inf tensors (unless excluded by
    ///   configuration), 409 when the run's peers average other tensors, 504
    ///   when no group formed before the deadline (`no_group_found`) or the
    ///   deadline passed while the call waited for anything else (`timeout`).
    /// - Parameters:
    ///   - targetGroupSize: the group size to start at once with, if not the configured one (a run's step knows its partners).
    ///   - deadline: when the call must have answered (default: the request's timeout from now).
    public func average(_ request: AverageRequest, targetGroupSize: Int? = nil, deadline: Deadline? = nil) async throws(AveragerError) -> AverageResult {
        let timeout = request.timeout ?? configuration.defaultTimeout
        let deadline = deadline ?? Deadline(after: timeout)
        let progress = CallProgress("checking its tensors")
        let outcome = await deadline.run { () async -> Result<AverageResult, AveragerError> in
            do throws(AveragerError) {
                return .success(try await self.averageInTurn(request, targetGroupSize: targetGroupSize, deadline: deadline,
                                                             timeout: timeout, progress: progress))
            } catch {
                return .failure(error)
            }
        }
        guard let outcome else { throw progress.deadlineError(timeout: timeout) }
        return try outcome.get()
    }

    /// `average` without the deadline's answer: it may run on after the caller got its 504.
    private func averageInTurn(_ request: AverageRequest, targetGroupSize: Int?, deadline: Deadline, timeout: Double,
                               progress: CallProgress) async throws(AveragerError) -> AverageResult {
        guard let me = peerID else { throw AveragerError(.unavailable, "the averager is not listening yet") }
        let schema = TensorSchema(request.tensors)
        let (values, excludedTensors) = try flatten(request.tensors, schema: schema)
        let sends = configuration.mode.sends
        let weight = !sends || !excludedTensors.isEmpty ? 0 : request.weight

        if let run = request.run {
            progress.waiting(for: "reading who takes part in run '\(run)' from the DHT", kind: .noGroupFound)
            guard try await mayFindPartners(run: run, prefix: request.prefix) else {
                throw AveragerError(.noGroupFound, "no group to find under '\(request.prefix)': run '\(run)' has no other trainer, "
                    + "and nobody else is looking for a group under it")
            }
        }
        progress.waiting(for: "waiting for the previous round on prefix '\(request.prefix)' to finish")
        let matchmaker = try matchmaker(for: request.prefix, me: me)
        guard await matchmaker.roundLock.lock(until: deadline) else { throw progress.deadlineError(timeout: timeout) }
        defer { matchmaker.roundLock.unlock() }
        if let targetGroupSize { await matchmaker.setTargetGroupSize(targetGroupSize) }
        registry.roundStarted()
        defer { registry.roundEnded() }

        let schemaHash = schema.hash(partSize: configuration.partSize, aggregation: configuration.aggregation)
        let member = GroupMember(peer: me, mode: configuration.mode, bandwidth: configuration.bandwidth ?? throughput.withLock { $0.bytesPerSecond },
                                 metadata: request.metadata)
        let searchDeadline = deadline.earlier(by: min(timeout / 4, configuration.allreduceTimeout)).epoch
        var attempts = 0
        var matchmakingSeconds = 0.0
        while true {
            attempts += 1
            progress.waiting(for: "looking for a group under \(await matchmaker.groupKey.key)", kind: .noGroupFound)
            // Time taken by the previous round (or by a failed all-reduce) may have used up the search's share.
            guard Clock.epoch < searchDeadline else { throw progress.deadlineError(timeout: timeout) }
            let searchStarted = Clock.now
            let group: GroupInfo
            do {
                group = try await matchmaker.findGroup(schemaHash: schemaHash, member: member, deadline: searchDeadline)
            } catch {
                metrics.increment("rounds_total", labels: ["outcome": error.kind.description])
                throw error
            }
            matchmakingSeconds += Clock.now - searchStarted
            metrics.observe("matchmaking_seconds", Clock.now - searchStarted)
            metrics.observe("group_size", Double(group.members.count))

            progress.waiting(for: "waiting for the all-reduce of group \(group.groupID) (\(group.members.count) members), "
                + "which goes on without this call")
            let allreduceStarted = Clock.now
            let outcome: AllReduceRound.Outcome
            do {
                let round = try AllReduceRound(group: group, index: group.index(of: me)!, schema: schema, settings: configuration,
                                               http: http, registry: registry, metrics: metrics)
                outcome = await round.run(values: sends ? values : nil, weight: weight, codec: request.codec,
                                          deadline: Clock.now + configuration.allreduceTimeout)
            } catch {
                logger.warning("cannot run the all-reduce", ["group": group.groupID, "error": error.message])
                outcome = AllReduceRound.Outcome(partsAveragedBy: [0], failedReducers: [], excludedSenders: [])
            }
            metrics.observe("allreduce_seconds", Clock.now - allreduceStarted)
            throughput.withLock { $0.observe(bytes: outcome.exchangedBytes, seconds: outcome.exchangeSeconds) }
            let record = RoundRecord(group: group, index: group.index(of: me)!, nextGroupKey: await matchmaker.groupKey.key,
                                     partsAveragedBy: outcome.partsAveragedBy, failedReducers: outcome.failedReducers,
                                     excludedSenders: outcome.excludedSenders, excludedTensors: excludedTensors, attempts: attempts,
                                     matchmakingSeconds: matchmakingSeconds, allreduceSeconds: Clock.now - allreduceStarted)
            metrics.increment("rounds_total", labels: ["outcome": record.outcome])
            if record.outcome == "failed", Clock.epoch < searchDeadline {
                logger.info("all-reduce averaged nothing; looking for another group", ["group": group.groupID])
                continue
            }
            // The round wrote the averages into `values`; a failed round left it as it was.
            let tensors = sends ? unflatten(values, like: request.tensors, schema: schema) : []
            return AverageResult(tensors: tensors, record: record)
        }
    }

    /// The tensors' values as float32, concatenated in schema order, and the
    /// names of tensors holding NaN or infinities (when those are excluded
    /// rather than refused; their non-finite values become 0).
    private func flatten(_ tensors: [(name: String, tensor: WireTensor)], schema: TensorSchema) throws(AveragerError) -> (FlatVector, [String]) {
        var byName: [String: WireTensor] = [:]
        for (name, wire) in tensors { byName[name] = wire }
        let values = FlatVector(count: schema.totalCount)
        var nonFinite: [String] = []
        var offset = 0
        for entry in schema.entries {
            let wire = byName[entry.name]!
            let target = values.buffer(offset..<(offset + entry.count))
            offset += entry.count
            if wire.dtype == .f32 {
                // Straight from the request's bytes: one copy instead of two.
                wire.bytes.withUnsafeBytes { bytes in
                    if let source = bytes.baseAddress { UnsafeMutableRawPointer(target.baseAddress!).copyMemory(from: source, byteCount: bytes.count) }
                }
            } else {
                let tensor: Tensor
                do { tensor = try Tensor(wire) } catch { throw AveragerError(.unprocessable, "tensor '\(entry.name)': \(error.message)") }
                tensor.scalars.withUnsafeBufferPointer { _ = target.initialize(fromContentsOf: $0) }
            }
            if !Finite.all(UnsafeBufferPointer(target)) {
                nonFinite.append(entry.name)
                for index in target.indices where !target[index].isFinite { target[index] = 0 }
            }
        }
        if !nonFinite.isEmpty, configuration.nonFinite == .refuse {
            throw AveragerError(.unprocessable, "tensors \(nonFinite) hold NaN or infinite values; send finite values "
                + "(or run the averager with --non-finite exclude to take part with weight 0)")
        }
        return (values, nonFinite)
    }

    /// Cuts the flattened vector back into tensors, in the request's order and dtypes.
    private func unflatten(_ values: FlatVector, like tensors: [(name: String, tensor: WireTensor)], schema: TensorSchema) -> [(name: String, tensor: WireTensor)] {
        var ranges: [String: Range<Int>] = [:]
        var offset = 0
        for entry in schema.entries {
            ranges[entry.name] = offset..<(offset + entry.count)
            offset += entry.count
        }
        return tensors.map { name, original in
            let range = ranges[name]!
            if original.dtype == .f32 {
                // Straight into the answer's bytes: one copy instead of two.
                return (name, try! WireTensor(dtype: .f32, shape: original.shape, bytes: values.bytes(range)))  // counts match the schema
            }
            let tensor = try! Tensor(shape: original.shape, scalars: Array(values.buffer(range)))  // counts match the schema
            return (name, try! WireTensor(tensor, as: original.dtype))  // float dtypes only, checked on input
        }
    }

    private static func declareMetrics(_ metrics: Metrics) {
        metrics.declare("rounds_total", .counter, help: "Averaging calls by outcome (complete, partial, failed, no_group_found, schema_mismatch).")
        metrics.declare("group_size", .histogram, help: "Members of the assembled groups.", buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64])
        metrics.declare("matchmaking_seconds", .histogram, help: "Time from looking for a group to having one.")
        metrics.declare("allreduce_seconds", .histogram, help: "Time an all-reduce took once its group was assembled.")
        metrics.declare("part_latency_seconds", .histogram, help: "Time from sending a part to receiving its average.")
        metrics.declare("bytes_sent_total", .counter, help: "Bytes of parts and averages this averager sent.")
        metrics.declare("bytes_received_total", .counter, help: "Bytes of parts and averages this averager received.")
        metrics.declare("join_requests_total", .counter, help: "Join requests answered, by decision.")
        metrics.declare("state_downloads_total", .counter, help: "State chunks served to newcomers, by result.")
        metrics.declare("progress_reports_total", .counter, help: "Trainers' progress reports, by the action answered.")
        metrics.declare("steps_total", .counter, help: "Epoch steps, by outcome (averaged with other averagers, or local).")
    }
}
