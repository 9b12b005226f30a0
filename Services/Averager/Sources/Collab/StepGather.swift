import Shared
import Synchronization

/// What one trainer submits at the end of an epoch.
struct StepSubmission: Sendable {
    let trainer: String
    /// Its weight: samples it accumulated in the epoch.
    let samples: Int
    let tensors: [(name: String, tensor: Tensor)]
    /// Compression of the all-reduce's parts (the first submission's applies to the epoch).
    var codec: CompressionCodec = .none
}

/// What a step gives every trainer that took part.
struct StepOutcome: Sendable {
    /// The averaged tensors, by name.
    let tensors: [String: Tensor]
    /// The epoch the trainers are in now.
    let epoch: Int
    /// `{"epoch", "previous_epoch", "outcome", "group_size", "trainers", "samples", "codec"}`.
    let record: JSON
}

/// The submissions of one averager's trainers at the end of one epoch. The
/// first submitter drives the step: it waits for the averager's other trainers
/// of that epoch, combines them, runs one all-reduce for all of them with the
/// other averagers, and hands the result to everyone. (Two trainers on one
/// averager could not otherwise average together: an averager is one member of a group.)
final class StepGather: Sendable {
    let epoch: Int
    private struct State {
        var submissions: [StepSubmission] = []
        var closed = false
        var outcome: Result<StepOutcome, AveragerError>?
    }
    private let state = Mutex(State())

    init(epoch: Int) {
        self.epoch = epoch
    }

    /// Adds a submission.
    /// - Returns: true for the first, whose caller drives the step; nil if the gather is closed (make a new one).
    /// - Throws: `AveragerError` 409 if the tensors differ from the first submission's, or the trainer already submitted.
    func submit(_ submission: StepSubmission) throws(AveragerError) -> Bool? {
        try state.withLock { state throws(AveragerError) -> Bool? in
            guard !state.closed else { return nil }
            if let first = state.submissions.first {
                guard !state.submissions.contains(where: { $0.trainer == submission.trainer }) else {
                    throw AveragerError(.conflict, "trainer '\(submission.trainer)' already submitted its step for epoch \(epoch)")
                }
                let expected = first.tensors.map { "\($0.name) \($0.tensor.shape)" }.sorted()
                let got = submission.tensors.map { "\($0.name) \($0.tensor.shape)" }.sorted()
                guard expected == got else {
                    throw AveragerError(.schemaMismatch, "this epoch's step averages tensors \(expected) but trainer '\(submission.trainer)' sent \(got)")
                }
            }
            state.submissions.append(submission)
            return state.submissions.count == 1
        }
    }

    /// The trainers that submitted so far.
    var trainers: Set<String> { state.withLock { Set($0.submissions.map(\.trainer)) } }

    /// Takes no more submissions; returns them.
    func close() -> [StepSubmission] {
        state.withLock { state in
            state.closed = true
            return state.submissions
        }
    }

    func finish(_ outcome: Result<StepOutcome, AveragerError>) {
        state.withLock { $0.outcome = outcome }
    }

    /// Waits for the driver's result.
    func outcome() async -> Result<StepOutcome, AveragerError> {
        while true {
            if let outcome = state.withLock({ $0.outcome }) { return outcome }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The samples-weighted mean of the submissions (the plain mean if every weight is 0), by tensor name.
    static func weightedMean(_ submissions: [StepSubmission]) -> [String: Tensor] {
        let total = submissions.reduce(0) { $0 + $1.samples }
        var sums: [String: [Double]] = [:]
        var shapes: [String: [Int]] = [:]
        for submission in submissions {
            let weight = total > 0 ? Double(submission.samples) / Double(total) : 1 / Double(submissions.count)
            for (name, tensor) in submission.tensors {
                shapes[name] = tensor.shape
                var sum = sums[name] ?? [Double](repeating: 0, count: tensor.scalars.count)
                for index in sum.indices { sum[index] += weight * Double(tensor.scalars[index]) }
                sums[name] = sum
            }
        }
        return sums.reduce(into: [:]) { result, entry in result[entry.key] = try! Tensor(shape: shapes[entry.key]!, scalars: entry.value.map { Float($0) }) }
    }
}
