import Shared

/// The reducer of one round as a live object: senders' part requests wait
/// here until their part is complete (`PartReducer` decides when), so each
/// request's response carries the part's average.
actor ReducerSession {
    /// The group this session reduces for.
    let group: GroupInfo
    /// Our index in the group (our own parts need no encoded answer).
    let index: Int
    private var reducer: PartReducer
    /// Encoded answers by part and codec, until every remote contributor took
    /// its copy: the senders of a part get the same bytes, so the average is
    /// encoded once per codec rather than once per sender.
    private var answers: [Int: (bytes: [CompressionCodec: [UInt8]], remaining: Int)] = [:]
    private var waiters: [Int: [CheckedContinuation<PartReducer.Completion, Never>]] = [:]
    private var completionWaiters: [CheckedContinuation<Void, Never>] = []
    /// Every completion, in the order it happened (for the round's record).
    private(set) var completions: [PartReducer.Completion] = []

    init(group: GroupInfo, index: Int, reducer: PartReducer) {
        self.group = group
        self.index = index
        self.reducer = reducer
    }

    /// Whether every part is complete.
    var isComplete: Bool { reducer.isComplete }

    /// Senders excluded from parts they did not deliver.
    var excludedSenders: Set<Int> { reducer.excluded }

    /// Delivers one sender's part and waits until the part is complete.
    /// - Returns: the completion, or why the part was refused.
    func submit(part: Int, sender: Int, weight: Double, values: consuming Tensor) async -> Result<PartReducer.Completion, AveragerError> {
        let delivery = reducer.deliver(part: part, sender: sender, weight: weight, values: values, now: Clock.now)
        resolve(delivery.completions)
        if let refusal = delivery.refusal { return .failure(refusal) }
        if let done = delivery.completions.first(where: { $0.part == part }) { return .success(done) }
        return .success(await withCheckedContinuation { waiters[part, default: []].append($0) })
    }

    /// The answer to a remote sender of a completed part, in its codec.
    func answer(_ completion: PartReducer.Completion, codec: CompressionCodec) throws(SafetensorsError) -> [UInt8] {
        var entry = answers[completion.part]
            ?? ([:], completion.contributors.filter { $0 != index }.count)
        let bytes: [UInt8]
        if let cached = entry.bytes[codec] {
            bytes = cached
        } else {
            bytes = try PartMessage.response(completion, codec: codec)
            entry.bytes[codec] = bytes
        }
        entry.remaining -= 1
        answers[completion.part] = entry.remaining > 0 ? entry : nil
        return bytes
    }

    /// Excludes senders silent for too long (called periodically).
    func excludeSilentSenders() {
        resolve(reducer.excludeSilentSenders(now: Clock.now))
    }

    /// Completes every remaining part with what it has (the round's deadline).
    func finish() {
        resolve(reducer.finish(now: Clock.now))
    }

    /// Returns once every part is complete.
    func waitUntilComplete() async {
        guard !reducer.isComplete else { return }
        await withCheckedContinuation { completionWaiters.append($0) }
    }

    private func resolve(_ newCompletions: [PartReducer.Completion]) {
        guard !newCompletions.isEmpty else { return }
        completions += newCompletions
        for completion in newCompletions {
            for waiter in waiters.removeValue(forKey: completion.part) ?? [] { waiter.resume(returning: completion) }
        }
        if reducer.isComplete {
            for waiter in completionWaiters { waiter.resume() }
            completionWaiters = []
        }
    }
}
