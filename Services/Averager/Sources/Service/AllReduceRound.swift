import Shared

/// One butterfly all-reduce in an assembled group (the reference's
/// `AllReduceRunner`): every member derives the same part plan from the group;
/// each sender sends every part to its reducer and gets the part's average in
/// the response; each reducer combines what its senders delivered.
///
/// Faults never make the round wait past its deadline: a reducer that fails
/// or stalls leaves its parts at our local values; a sender that stalls is
/// excluded by the reducers (`PartReducer`); at the deadline every reducer
/// completes its parts with what arrived.
struct AllReduceRound {
    /// What one part's exchange gave a sender.
    private struct PartEvent: Sendable {
        enum Result: Sendable {
            /// The part's average over this many senders.
            case averaged(Tensor, contributors: Int)
            /// The reducer answered but had nothing to combine (all weights 0): keep local values.
            case nothingCombined
            /// The reducer failed, stalled or refused: keep local values.
            case failed
        }
        let part: Int
        let reducer: Int
        let result: Result
        /// Bytes of the request and its answer (0 for local parts).
        var bytes = 0
    }

    /// What the round gave us.
    struct Outcome {
        /// See `RoundRecord.partsAveragedBy`.
        var partsAveragedBy: [Int]
        var failedReducers: [Int]
        var excludedSenders: [Int]
        /// Bytes of our part exchanges with remote reducers (sent and received) and the seconds they took: our link's throughput.
        var exchangedBytes = 0
        var exchangeSeconds = 0.0
    }

    let group: GroupInfo
    let index: Int
    let plan: PartPlan
    let senders: [Int]
    let settings: AveragerConfiguration
    let http: HTTPClient
    let registry: SessionRegistry
    let metrics: Metrics

    /// Plans the round from the group: shares from declared bandwidths (clients
    /// reduce nothing), then parts.
    /// - Throws: `AveragerError` if no member of the group can reduce.
    init(group: GroupInfo, index: Int, schema: TensorSchema, settings: AveragerConfiguration,
         http: HTTPClient, registry: SessionRegistry, metrics: Metrics) throws(AveragerError) {
        let bandwidths = group.members.map { $0.mode.acceptsConnections ? $0.bandwidth : 0 }
        // If every member declared 0, someone must still reduce: share among those that can.
        guard let shares = LoadBalancing.shares(total: schema.totalCount, bandwidths: bandwidths)
                ?? LoadBalancing.shares(total: schema.totalCount, bandwidths: group.members.map { $0.mode.acceptsConnections ? nil : 0 }) else {
            throw AveragerError(.unprocessable, "group \(group.groupID) has no member that can reduce (all are clients)")
        }
        self.group = group
        self.index = index
        self.plan = PartPlan(tensorCounts: schema.counts, shares: shares, partSize: settings.partSize)
        self.senders = group.members.indices.filter { group.members[$0].mode.sends }
        self.settings = settings
        self.http = http
        self.registry = registry
        self.metrics = metrics
    }

    private var me: GroupMember { group.members[index] }

    /// The round's timeouts, from the bytes one part puts on the wire with
    /// `codec` and the throughput the members declared (see `RoundTimeouts`).
    func timeouts(codec: CompressionCodec) -> RoundTimeouts {
        let bytesPerValue = switch codec {
        case .none: 4
        case .float16, .bfloat16, .meanStd16: 2
        case .uniform8, .quantile8, .blockwise8: 1
        }
        let reducers = plan.partsByReducer.filter { !$0.isEmpty }.count
        return RoundTimeouts(bandwidths: senders.map { group.members[$0].bandwidth }, partWireBytes: settings.partSize * bytesPerValue,
                             partsInFlight: settings.partsInFlight, reducers: reducers, floor: settings.senderTimeout,
                             ceiling: settings.allreduceTimeout, assumedBytesPerSecond: settings.assumedBandwidth)
    }

    /// Runs the round until every part is settled or `deadline` (monotonic seconds).
    /// - Parameter values: our flattened vector (nil for an auxiliary, which
    ///   sends nothing); the averages overwrite it part by part.
    func run(values: FlatVector?, weight: Double, codec: CompressionCodec, deadline: Double) async -> Outcome {
        let ownParts = plan.partsByReducer[index]
        let timeouts = timeouts(codec: codec)
        let reducing = ownParts.isEmpty ? nil : startReducing(ownParts, senderTimeout: timeouts.senderTimeout, deadline: deadline)

        var outcome = Outcome(partsAveragedBy: [], failedReducers: [], excludedSenders: [])
        if let values, me.mode.sends {
            let exchangeStarted = Clock.now
            var output = RoundOutput(plan: plan, values: values)
            var failed: Set<Int> = []
            await withTaskGroup(of: [PartEvent].self) { tasks in
                for (reducer, parts) in plan.partsByReducer.enumerated() where !parts.isEmpty {
                    tasks.addTask {
                        if reducer == index, let session = reducing?.session {
                            return await reduceLocally(parts, values: values, weight: weight, codec: codec, session: session)
                        }
                        return await send(parts, to: reducer, values: values, weight: weight, codec: codec,
                                          timeout: timeouts.reducerTimeout, deadline: deadline)
                    }
                }
                for await events in tasks {
                    for event in events {
                        outcome.exchangedBytes += event.bytes
                        switch event.result {
                        case .averaged(let average, let contributors):
                            if (try? output.receive(part: event.part, average: average, contributors: contributors)) == nil {
                                output.keepLocal(part: event.part)
                                failed.insert(event.reducer)
                            }
                        case .nothingCombined:
                            output.keepLocal(part: event.part)
                        case .failed:
                            output.keepLocal(part: event.part)
                            failed.insert(event.reducer)
                        }
                    }
                }
            }
            output.keepLocalWherePending()
            outcome.exchangeSeconds = Clock.now - exchangeStarted
            outcome.partsAveragedBy = output.contributors
            outcome.failedReducers = failed.sorted()
        }
        if let reducing {
            let session = reducing.session
            await session.waitUntilComplete()
            if !me.mode.sends {
                let byPart = Dictionary(await session.completions.map { ($0.part, $0.values == nil ? 0 : $0.contributors.count) }) { $1 }
                outcome.partsAveragedBy = ownParts.map { byPart[$0] ?? 0 }
            }
            outcome.excludedSenders = await session.excludedSenders.sorted()
            registry.remove(group.groupID)
            for helper in reducing.helpers { helper.cancel() }
        }
        return outcome
    }

    /// Registers our reducer for part requests, with a watchdog that excludes
    /// silent senders and a timer that completes everything at the deadline.
    private func startReducing(_ parts: [Int], senderTimeout: Double, deadline: Double) -> (session: ReducerSession, helpers: [Task<Void, Never>]) {
        let reducer = PartReducer(parts: parts.map { ($0, plan.parts[$0].count) }, senders: senders,
                                  aggregation: settings.aggregation, senderTimeout: senderTimeout, now: Clock.now)
        let session = ReducerSession(group: group, index: index, reducer: reducer)
        registry.register(session, for: group.groupID)
        let tick = max(0.01, min(0.25, senderTimeout / 4))
        let watchdog = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(tick))
                await session.excludeSilentSenders()
            }
        }
        let timer = Task {
            try? await Task.sleep(for: .seconds(max(0, deadline - Clock.now)))
            if !Task.isCancelled { await session.finish() }
        }
        return (session, [watchdog, timer])
    }

    private func slice(_ values: FlatVector, _ part: Int) -> Tensor {
        values.tensor(plan.parts[part].range)
    }

    /// Our own parts go straight into our reducer. With a lossy codec we keep
    /// the average as it reaches the other senders (through the codec), so
    /// that every member of the group holds the same numbers.
    private func reduceLocally(_ parts: [Int], values: FlatVector, weight: Double, codec: CompressionCodec, session: ReducerSession) async -> [PartEvent] {
        await withTaskGroup(of: PartEvent.self) { tasks in
            for part in parts {
                tasks.addTask {
                    switch await session.submit(part: part, sender: index, weight: weight, values: slice(values, part)) {
                    case .success(let completion):
                        guard let average = completion.values else { return PartEvent(part: part, reducer: index, result: .nothingCombined) }
                        let shared = codec == .none ? average : (try? codec.compress(average).decompressed()) ?? average
                        return PartEvent(part: part, reducer: index, result: .averaged(shared, contributors: completion.contributors.count))
                    case .failure:
                        return PartEvent(part: part, reducer: index, result: .failed)
                    }
                }
            }
            return await tasks.reduce(into: []) { $0.append($1) }
        }
    }

    /// Sends `parts` in order to a remote reducer, `partsInFlight` at a time;
    /// after the first failure the rest keep their local values.
    private func send(_ parts: [Int], to reducer: Int, values: FlatVector, weight: Double, codec: CompressionCodec,
                      timeout: Double, deadline: Double) async -> [PartEvent] {
        await withTaskGroup(of: PartEvent.self) { tasks in
            var next = 0
            func launch() {
                let part = parts[next]
                next += 1
                tasks.addTask { await sendPart(part, to: reducer, values: values, weight: weight, codec: codec, timeout: timeout, deadline: deadline) }
            }
            while next < min(parts.count, settings.partsInFlight) { launch() }
            var events: [PartEvent] = []
            var failed = false
            for await event in tasks {
                events.append(event)
                if case .failed = event.result { failed = true }
                if failed {
                    events += parts[next...].map { PartEvent(part: $0, reducer: reducer, result: .failed) }
                    next = parts.count
                } else if next < parts.count {
                    launch()
                }
            }
            return events
        }
    }

    private func sendPart(_ part: Int, to reducer: Int, values: FlatVector, weight: Double, codec: CompressionCodec,
                          timeout reducerTimeout: Double, deadline: Double) async -> PartEvent {
        let failure = PartEvent(part: part, reducer: reducer, result: .failed)
        let timeout = min(deadline - Clock.now, reducerTimeout)
        let range = plan.parts[part].range
        guard timeout > 0, let body = try? PartMessage.request(values: UnsafeBufferPointer(values.buffer(range)), sender: me.peer, weight: weight, codec: codec) else {
            return failure
        }
        let started = Clock.now
        do {
            let url = "\(group.members[reducer].peer)/v1/groups/\(group.groupID)/parts/\(part)"
            // The average of a part holds the part's elements, at most float32 each, plus its header.
            let response = try await http.post(url, bytes: body, timeout: timeout, maxResponseBytes: 4 * range.count + (64 << 10))
            metrics.increment("bytes_sent_total", by: Double(body.count))
            metrics.increment("bytes_received_total", by: Double(response.body.count))
            metrics.observe("part_latency_seconds", Clock.now - started)
            let (average, contributors) = try PartMessage.readResponse(response.body)
            return PartEvent(part: part, reducer: reducer, result: average.map { .averaged($0, contributors: contributors.count) } ?? .nothingCombined,
                             bytes: body.count + response.body.count)
        } catch {
            metrics.increment("bytes_sent_total", by: Double(body.count))
            return failure
        }
    }
}
