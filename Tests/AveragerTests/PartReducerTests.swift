import Testing
import Shared
@testable import Averager

@Suite struct PartReducerTests {
    static func vector(_ values: [Float]) -> Tensor { try! Tensor(shape: [values.count], scalars: values) }

    /// Two parts of 3 elements; senders 0, 1 and 3 (member 2 is an auxiliary).
    static func reducer(_ aggregation: Aggregation = .mean, timeout: Double = 5) -> PartReducer {
        PartReducer(parts: [(index: 4, count: 3), (index: 7, count: 3)], senders: [0, 1, 3], aggregation: aggregation, senderTimeout: timeout, now: 0)
    }

    @Test func weightedMeanOfEverySender() {
        var reducer = Self.reducer()
        let inputs: [(sender: Int, weight: Double, values: [Float])] = [(0, 1, [1, 2, 3]), (1, 3, [5, 6, 7]), (3, 0.5, [-1, 0, 10])]
        var completions: [PartReducer.Completion] = []
        for input in inputs {
            let delivery = reducer.deliver(part: 4, sender: input.sender, weight: input.weight, values: Self.vector(input.values), now: 1)
            #expect(delivery.refusal == nil)
            completions += delivery.completions
        }
        #expect(completions.count == 1)
        let total = inputs.reduce(0) { $0 + $1.weight }
        let expected = (0..<3).map { i in inputs.reduce(0) { $0 + $1.weight * Double($1.values[i]) } / total }
        #expect(completions[0].part == 4 && completions[0].contributors == [0, 1, 3])
        for (value, reference) in zip(completions[0].values!.scalars, expected) { #expect(abs(Double(value) - reference) < 1e-6) }
        #expect(!reducer.isComplete && reducer.pendingParts == [7])
    }

    @Test func aSilentSenderIsExcludedOnlyFromWhatItDidNotSend() {
        var reducer = Self.reducer(timeout: 2)
        _ = reducer.deliver(part: 4, sender: 3, weight: 1, values: Self.vector([9, 9, 9]), now: 0.5)
        for sender in [0, 1] {
            _ = reducer.deliver(part: 4, sender: sender, weight: 1, values: Self.vector([0, 0, 0]), now: 1)
            _ = reducer.deliver(part: 7, sender: sender, weight: 1, values: Self.vector([1, 1, 1]), now: 1)
        }
        // Member 3 delivered part 4, then fell silent; it owes part 7.
        #expect(reducer.excludeSilentSenders(now: 2.9).isEmpty, "not silent long enough yet")
        let completions = reducer.excludeSilentSenders(now: 3.1)
        #expect(completions.map(\.part) == [7])
        #expect(completions[0].contributors == [0, 1])
        #expect(completions[0].values!.scalars == [1, 1, 1])
        #expect(reducer.excluded == [3] && reducer.isComplete)
    }

    @Test func aSenderWaitingForItsResultsIsNotSilent() {
        var reducer = Self.reducer(timeout: 2)
        _ = reducer.deliver(part: 4, sender: 0, weight: 1, values: Self.vector([1, 1, 1]), now: 0)
        // Sender 0 waits for part 4, which waits for sender 1: only 1 and 3 are silent.
        #expect(reducer.excludeSilentSenders(now: 10).map(\.part) == [4])
        #expect(reducer.excluded == [1, 3])
        // Part 4's completion frees sender 0, which now owes part 7 and gets a fresh timeout.
        #expect(reducer.excludeSilentSenders(now: 11).isEmpty && reducer.pendingParts == [7])
    }

    @Test func badValuesExcludeTheSenderAndNeverReachTheAverage() {
        var reducer = Self.reducer()
        _ = reducer.deliver(part: 4, sender: 0, weight: 1, values: Self.vector([1, 2, 3]), now: 0)
        _ = reducer.deliver(part: 4, sender: 1, weight: 1, values: Self.vector([3, 4, 5]), now: 0)
        let bad = reducer.deliver(part: 4, sender: 3, weight: 1, values: Self.vector([.nan, 0, 0]), now: 0)
        #expect(bad.refusal?.kind == .unprocessable)
        #expect(bad.completions.map(\.part) == [4])
        #expect(bad.completions[0].values!.scalars == [2, 3, 4])
        var fresh = Self.reducer()
        let negative = fresh.deliver(part: 4, sender: 0, weight: -1, values: Self.vector([1, 1, 1]), now: 0)
        #expect(negative.refusal?.kind == .unprocessable)
    }

    @Test func refusals() {
        var reducer = Self.reducer()
        #expect(reducer.deliver(part: 5, sender: 0, weight: 1, values: Self.vector([1, 1, 1]), now: 0).refusal?.kind == .unknownGroup)
        #expect(reducer.deliver(part: 4, sender: 2, weight: 1, values: Self.vector([1, 1, 1]), now: 0).refusal?.kind == .notInGroup)
        #expect(reducer.deliver(part: 4, sender: 0, weight: 1, values: Self.vector([1, 1]), now: 0).refusal?.kind == .unprocessable)
        #expect(reducer.deliver(part: 4, sender: 0, weight: 1, values: Self.vector([1, 1, 1]), now: 0).refusal == nil)
        #expect(reducer.deliver(part: 4, sender: 0, weight: 1, values: Self.vector([1, 1, 1]), now: 0).refusal?.kind == .conflict)
        _ = reducer.exclude(sender: 1, now: 0)
        #expect(reducer.deliver(part: 7, sender: 1, weight: 1, values: Self.vector([1, 1, 1]), now: 0).refusal?.kind == .conflict)
    }

    @Test func theDeadlineCompletesWithWhatArrived() {
        var reducer = Self.reducer()
        _ = reducer.deliver(part: 4, sender: 1, weight: 2, values: Self.vector([2, 4, 6]), now: 0)
        let completions = reducer.finish(now: 1)
        #expect(completions.map(\.part) == [4, 7])
        #expect(completions[0].values!.scalars == [2, 4, 6] && completions[0].contributors == [1])
        #expect(completions[1].values == nil && completions[1].contributors.isEmpty)
    }

    @Test func zeroWeightsCombineNothing() {
        var reducer = Self.reducer()
        var completions: [PartReducer.Completion] = []
        for sender in [0, 1, 3] {
            completions += reducer.deliver(part: 4, sender: sender, weight: 0, values: Self.vector([1, 1, 1]), now: 0).completions
        }
        #expect(completions.count == 1 && completions[0].values == nil && completions[0].contributors == [0, 1, 3])
    }

    @Test func withoutSendersEveryPartCompletesAtOnce() {
        var reducer = PartReducer(parts: [(index: 0, count: 2)], senders: [], aggregation: .mean, senderTimeout: 1, now: 0)
        #expect(reducer.excludeSilentSenders(now: 0).count == 1)
        #expect(reducer.isComplete)
    }

    @Test func roundOutputKeepsLocalValuesOfFailedParts() throws {
        let plan = PartPlan(tensorCounts: [6], shares: [3, 3], partSize: 3)
        var output = RoundOutput(plan: plan, values: FlatVector([1, 2, 3, 4, 5, 6]))
        try output.receive(part: 1, average: Self.vector([0, 0, 0]), contributors: 2)
        #expect(!output.isComplete)
        output.keepLocalWherePending()
        #expect(output.isComplete && output.values.elements == [1, 2, 3, 0, 0, 0] && output.contributors == [0, 2])
        #expect(throws: AveragerError.self) { try output.receive(part: 0, average: Self.vector([0, 0]), contributors: 2) }
        #expect(throws: AveragerError.self) { try output.receive(part: 0, average: Self.vector([.infinity, 0, 0]), contributors: 2) }
    }
}
