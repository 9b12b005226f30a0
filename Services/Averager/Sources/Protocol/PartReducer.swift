import Shared

/// A reducer's side of one round, as a plain value: it accumulates the parts
/// it is responsible for as senders deliver them, and says which parts are
/// complete (the reference's `TensorPartReducer`, with its fault rules).
///
/// - A part completes when every sender has either delivered it or been
///   excluded. Its result combines the delivered values (weighted mean, or
///   CenteredClip), and the completion names the contributing members.
/// - A sender that has nothing in flight here and has not delivered for
///   `senderTimeout` seconds while it still owes parts is excluded from every
///   part it has not delivered (those parts complete without it).
///
/// Every mutating call takes the current time and returns the parts it completed.
public struct PartReducer: Sendable {
    /// A finished part.
    public struct Completion: Sendable, Equatable {
        /// The part's index in the round's `PartPlan`.
        public let part: Int
        /// The combined values, or nil when nothing could be combined (no
        /// sender delivered, or all weights were 0): senders keep their own values.
        public let values: Tensor?
        /// Member indices of the senders whose values are in the result, ascending.
        public let contributors: [Int]
    }

    private struct PartState {
        let count: Int
        var contributors: [Int] = []
        /// Mean: the weighted sum so far.
        var sum: Tensor?
        var totalWeight: Double = 0
        /// CenteredClip: every delivered input.
        var inputs: [(values: Tensor, weight: Double)] = []
    }

    /// Member indices of the senders this reducer waits for.
    public let senders: Set<Int>
    /// How the parts' values are combined.
    public let aggregation: Aggregation
    /// Seconds an idle sender that still owes parts may stay silent.
    public let senderTimeout: Double

    private var pending: [Int: PartState]
    private let partCounts: [Int: Int]
    /// Senders excluded from every part they had not delivered.
    public private(set) var excluded: Set<Int> = []
    private var lastActivity: [Int: Double]
    private var inFlight: [Int: Int]

    /// - Parameters:
    ///   - parts: the parts this member reduces, with their element counts.
    ///   - senders: member indices of the group's senders (every member but auxiliaries).
    ///   - now: seconds on a monotonic clock; the senders' silence is measured from here.
    public init(parts: [(index: Int, count: Int)], senders: [Int], aggregation: Aggregation, senderTimeout: Double, now: Double) {
        self.senders = Set(senders)
        self.aggregation = aggregation
        self.senderTimeout = senderTimeout
        partCounts = Dictionary(uniqueKeysWithValues: parts.map { ($0.index, $0.count) })
        pending = Dictionary(uniqueKeysWithValues: parts.map { ($0.index, PartState(count: $0.count)) })
        lastActivity = Dictionary(uniqueKeysWithValues: senders.map { ($0, now) })
        inFlight = Dictionary(uniqueKeysWithValues: senders.map { ($0, 0) })
    }

    /// Whether every part is complete.
    public var isComplete: Bool { pending.isEmpty }

    /// The parts not yet complete.
    public var pendingParts: [Int] { pending.keys.sorted() }

    /// What a delivery did: the parts it completed and, if the delivery was
    /// refused, why. A refusal can still complete parts, when it excludes the sender.
    public struct Delivery: Sendable {
        /// The parts completed by this delivery (or by the exclusion a refusal caused).
        public let completions: [Completion]
        /// Why the delivery was refused, if it was.
        public let refusal: AveragerError?
    }

    /// Accepts one sender's values for one part.
    ///
    /// Refused: a part this member does not reduce (`.unknownGroup`), a
    /// member that is not a sender (`.notInGroup`), a part delivered twice, a
    /// part already complete, an excluded sender (`.conflict`), a wrong element
    /// count, a negative or non-finite weight, or non-finite values
    /// (`.unprocessable`). Bad weights and values also exclude the sender, so
    /// a bad peer can neither corrupt nor stall the part.
    /// - Parameter values: consumed, so that the first sender's buffer becomes the sum without a copy.
    public mutating func deliver(part: Int, sender: Int, weight: Double, values: consuming Tensor, now: Double) -> Delivery {
        func refuse(_ kind: AveragerError.Kind, _ message: String) -> Delivery {
            Delivery(completions: [], refusal: AveragerError(kind, message))
        }
        guard let expected = partCounts[part] else {
            return refuse(.unknownGroup, "part \(part) is not reduced by this member")
        }
        guard senders.contains(sender) else {
            return refuse(.notInGroup, "member \(sender) is not a sender of this group")
        }
        guard !excluded.contains(sender) else {
            return refuse(.conflict, "member \(sender) was excluded from this round (silent for more than \(senderTimeout) s, or sent bad values)")
        }
        guard var state = pending[part] else {
            return refuse(.conflict, "part \(part) is already complete; it was averaged without member \(sender)")
        }
        guard !state.contributors.contains(sender) else {
            return refuse(.conflict, "member \(sender) already delivered part \(part)")
        }
        guard values.count == expected else {
            return refuse(.unprocessable, "part \(part) has \(expected) elements, got \(values.count)")
        }
        let weightIsValid = weight.isFinite && weight >= 0
        guard weightIsValid, Finite.all(values.scalars) else {
            let message = weightIsValid
                ? "part \(part) holds NaN or infinite values; member \(sender) is excluded from the round"
                : "weight must be a finite number >= 0, got \(weight); member \(sender) is excluded from the round"
            return Delivery(completions: exclude(sender: sender, now: now), refusal: AveragerError(.unprocessable, message))
        }
        lastActivity[sender] = now
        inFlight[sender, default: 0] += 1
        state.contributors.append(sender)
        if weight > 0 {
            switch aggregation {
            case .mean:
                if state.sum == nil {
                    var sum = consume values
                    if weight != 1 { sum.scale(by: Float(weight)) }
                    state.sum = sum
                } else {
                    try? state.sum!.add(values, scaledBy: Float(weight))  // equal counts, checked above
                }
            case .centeredClip:
                state.inputs.append((values, weight))
            }
            state.totalWeight += weight
        }
        pending[part] = state
        return Delivery(completions: completeReadyParts(now: now), refusal: nil)
    }

    /// Excludes a sender from every part it has not delivered.
    public mutating func exclude(sender: Int, now: Double) -> [Completion] {
        guard senders.contains(sender), excluded.insert(sender).inserted else { return [] }
        return completeReadyParts(now: now)
    }

    /// Excludes every sender that has nothing in flight here, still owes a
    /// part, and has been silent for longer than `senderTimeout`.
    public mutating func excludeSilentSenders(now: Double) -> [Completion] {
        let owing = Set(pending.values.flatMap { state in senders.subtracting(state.contributors) })
        for sender in owing.subtracting(excluded) where inFlight[sender, default: 0] == 0 {
            if now - lastActivity[sender, default: now] > senderTimeout { excluded.insert(sender) }
        }
        return completeReadyParts(now: now)
    }

    /// Completes every remaining part with what it has (the round's deadline).
    public mutating func finish(now: Double) -> [Completion] {
        let parts = pending.keys.sorted()
        return parts.map { complete($0, now: now) }
    }

    private mutating func completeReadyParts(now: Double) -> [Completion] {
        let ready = pending.filter { _, state in
            senders.allSatisfy { state.contributors.contains($0) || excluded.contains($0) }
        }.keys.sorted()
        return ready.map { complete($0, now: now) }
    }

    private mutating func complete(_ part: Int, now: Double) -> Completion {
        let state = pending.removeValue(forKey: part)!
        for sender in state.contributors {
            inFlight[sender, default: 1] -= 1
            lastActivity[sender] = now
        }
        let contributors = state.contributors.sorted()
        guard state.totalWeight > 0 else { return Completion(part: part, values: nil, contributors: contributors) }
        switch aggregation {
        case .mean:
            var mean = state.sum!
            mean.scale(by: Float(1 / state.totalWeight))
            return Completion(part: part, values: mean, contributors: contributors)
        case .centeredClip(let tau, let iterations):
            let values = CenteredClip.aggregate(state.inputs, tau: tau, iterations: iterations)
            return Completion(part: part, values: values, contributors: contributors)
        }
    }
}
