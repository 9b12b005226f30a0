import Shared

/// A sender's side of one round: its flattened values, overwritten part by
/// part with the averages the reducers return. A part whose reducer failed
/// keeps the local values (the reference's `register_failed_reducer`).
struct RoundOutput {
    let plan: PartPlan
    /// The flattened vector: local values until a part's average arrives.
    let values: FlatVector
    /// Per part: how many senders the average combined; 0 while pending or
    /// when the part kept its local values.
    private(set) var contributors: [Int]
    /// Per part: whether a result (average or failure) is in.
    private var settled: [Bool]

    init(plan: PartPlan, values: FlatVector) {
        self.plan = plan
        self.values = values
        contributors = Array(repeating: 0, count: plan.parts.count)
        settled = Array(repeating: false, count: plan.parts.count)
    }

    /// Whether every part has its average or its failure.
    var isComplete: Bool { !settled.contains(false) }

    /// Stores a part's average (in place; the part's local values were sent already).
    /// - Throws: `AveragerError` if the reducer returned the wrong number of elements or non-finite values.
    mutating func receive(part: Int, average: Tensor, contributors count: Int) throws(AveragerError) {
        let range = plan.parts[part].range
        guard average.count == range.count else {
            throw AveragerError(.unprocessable, "the average of part \(part) has \(average.count) elements, expected \(range.count)")
        }
        guard Finite.all(average.scalars) else {
            throw AveragerError(.unprocessable, "the average of part \(part) holds NaN or infinite values")
        }
        average.scalars.withUnsafeBufferPointer { values.write(range, from: $0) }
        contributors[part] = count
        settled[part] = true
    }

    /// Keeps the local values of a part whose reducer failed or could not combine anything.
    mutating func keepLocal(part: Int) {
        contributors[part] = 0
        settled[part] = true
    }

    /// Keeps the local values of every part not yet settled (the round's deadline).
    mutating func keepLocalWherePending() {
        for part in settled.indices where !settled[part] { keepLocal(part: part) }
    }
}
