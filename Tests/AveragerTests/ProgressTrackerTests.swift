import Shared
import Synchronization
import Testing
@testable import Averager

/// The collaborative optimizer's progress logic, driven by a clock the test sets.
@Suite struct ProgressTrackerTests {
    final class TestClock: Sendable {
        let time = Mutex(1000.0)
        func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
        var now: Double { time.withLock { $0 } }
    }

    static let me = Identity().ownerMarker
    static let other = Identity().ownerMarker

    static func tracker(target: Int = 100, clock: TestClock) -> RunTracker {
        RunTracker(run: "run", settings: RunSettings(targetBatchSize: target), ownerMarker: me, clock: { clock.now })
    }

    static func remote(_ name: String, epoch: Int, samples: Int, rate: Double = 0, time: Double, owner: String = other) -> TrainerProgress {
        TrainerProgress(subkey: owner + name, epoch: epoch, samplesAccumulated: samples, samplesPerSecond: rate, time: time)
    }

    // MARK: The estimate

    @Test func samplesCountOnlyInTheGlobalEpochAndThroughputForEveryone() {
        let records = [Self.remote("a", epoch: 3, samples: 40, rate: 10, time: 100), Self.remote("b", epoch: 3, samples: 20, rate: 10, time: 100),
                       Self.remote("c", epoch: 2, samples: 90, rate: 20, time: 100)]
        let progress = GlobalProgress.estimate(records, targetBatchSize: 100, epochFloor: 0, now: 100)
        #expect(progress.epoch == 3)
        #expect(progress.samplesAccumulated == 60)
        #expect(progress.peers == 3)
        // 40 samples to go at 10 + 10 + 20 samples/s.
        #expect(abs(progress.etaNextEpoch - 101) < 1e-6)
    }

    @Test func samplesAreExtrapolatedFromEachRecordsTime() {
        let records = [Self.remote("a", epoch: 0, samples: 50, rate: 10, time: 100)]
        let progress = GlobalProgress.estimate(records, targetBatchSize: 100, epochFloor: 0, now: 102)
        // 50 + 2 s * 10 = 70 by now; 30 to go at 10/s.
        #expect(abs(progress.etaNextEpoch - 105) < 1e-6)
        #expect(!progress.readyToUpdateEpoch(localEpoch: 0, now: 104.9))
        #expect(progress.readyToUpdateEpoch(localEpoch: 0, now: 105))
    }

    @Test func clientsDoNotRaiseTheEpochAndTheFloorHolds() {
        var client = Self.remote("c", epoch: 9, samples: 5, time: 100)
        client.clientMode = true
        let progress = GlobalProgress.estimate([client, Self.remote("a", epoch: 1, samples: 5, time: 100)], targetBatchSize: 100, epochFloor: 2, now: 100)
        #expect(progress.epoch == 2)
        #expect(progress.clients == 1)
        #expect(GlobalProgress.estimate([], targetBatchSize: 10, epochFloor: 4, now: 0).epoch == 4)
    }

    @Test func refreshPeriodShrinksAsTheEpochEndApproachesWithinItsBounds() {
        let far = GlobalProgress.estimate([Self.remote("a", epoch: 0, samples: 0, rate: 1, time: 0)], targetBatchSize: 1000, epochFloor: 0, now: 0)
        #expect(far.nextFetchTime == 10)
        let near = GlobalProgress.estimate([Self.remote("a", epoch: 0, samples: 99, rate: 100, time: 0)], targetBatchSize: 100, epochFloor: 0, now: 0)
        #expect(near.nextFetchTime == 0.5)
        let middle = GlobalProgress.estimate([Self.remote("a", epoch: 0, samples: 0, rate: 10, time: 0)], targetBatchSize: 80, epochFloor: 0, now: 0)
        // 8 s to go, one peer of an expected max(1 + 3, 1.2): 8 / 4 = 2 s.
        #expect(abs(middle.nextFetchTime - 2) < 1e-6)
    }

    @Test func recordsRoundTripAndMalformedOnesAreIgnored() {
        let record = Self.remote("a", epoch: 2, samples: 7, rate: 1.5, time: 10)
        #expect(TrainerProgress(subkey: record.subkey, json: record.json) == record)
        var withLoss = record
        withLoss.loss = 0.25
        #expect(TrainerProgress(subkey: record.subkey, json: withLoss.json) == withLoss)
        #expect(TrainerProgress(subkey: "x", json: .null) == nil)
        #expect(TrainerProgress(subkey: "x", json: ["epoch": -1, "samples_accumulated": 1, "samples_per_second": 0, "time": 1]) == nil)
        #expect(TrainerProgress(subkey: "x", json: ["epoch": 1, "samples_accumulated": "1", "samples_per_second": 0, "time": 1]) == nil)
        // Counts that could overflow a sum over trainers are ignored.
        #expect(TrainerProgress(subkey: "x", json: ["epoch": 1, "samples_accumulated": .int(Int.max), "samples_per_second": 0, "time": 1]) == nil)
        #expect(record.ownerMarker.map(String.init) == Self.other)
    }

    // MARK: The tracker's answers

    @Test func trainersAccumulateUntilTheRunReachesTheTargetThenStep() throws {
        let clock = TestClock()
        let tracker = Self.tracker(target: 100, clock: clock)
        #expect(try tracker.report(trainer: "a", epoch: 0, samples: 32, samplesPerSecond: 0).action == .accumulate)
        tracker.update(remote: [Self.remote("b", epoch: 0, samples: 32, time: clock.now)])
        let second = try tracker.report(trainer: "a", epoch: 0, samples: 64, samplesPerSecond: 0)
        #expect(second.action == .accumulate)
        #expect(second.global.samplesAccumulated == 96)
        #expect(second.global.peers == 2)
        tracker.update(remote: [Self.remote("b", epoch: 0, samples: 64, time: clock.now)])
        let third = try tracker.report(trainer: "a", epoch: 0, samples: 64, samplesPerSecond: 0)
        #expect(third.action == .step)
        #expect(third.global.samplesAccumulated == 128)
    }

    @Test func theEstimateEndsTheEpochWithoutWaitingForTheNextRead() throws {
        let clock = TestClock()
        let tracker = Self.tracker(target: 100, clock: clock)
        tracker.update(remote: [Self.remote("b", epoch: 0, samples: 40, rate: 20, time: clock.now)])
        #expect(try tracker.report(trainer: "a", epoch: 0, samples: 40, samplesPerSecond: 20).action == .accumulate)
        clock.advance(0.6)  // b: 40 + 12 = 52 by now; with a's 40 + 0 still short of 100
        #expect(try tracker.report(trainer: "a", epoch: 0, samples: 40, samplesPerSecond: 20).action == .accumulate)
        clock.advance(0.5)  // b: 40 + 22 = 62, a reports 40: 102
        #expect(try tracker.report(trainer: "a", epoch: 0, samples: 40, samplesPerSecond: 20).action == .step)
    }

    @Test func aTrainerOneEpochBehindStepsAndOneMoreBehindLoadsState() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        _ = try tracker.report(trainer: "a", epoch: 0, samples: 10, samplesPerSecond: 1)
        tracker.update(remote: [Self.remote("b", epoch: 1, samples: 0, time: clock.now)])
        // The run just moved on: a ends its epoch too (no state to load).
        #expect(try tracker.report(trainer: "a", epoch: 0, samples: 20, samplesPerSecond: 1).action == .step)
        tracker.update(remote: [Self.remote("b", epoch: 2, samples: 0, time: clock.now)])
        let lagging = try tracker.report(trainer: "a", epoch: 0, samples: 30, samplesPerSecond: 1)
        #expect(lagging.action == .loadState)
        #expect(lagging.epoch == 2)
        // After loading, it continues at the epoch it was given.
        #expect(try tracker.report(trainer: "a", epoch: 2, samples: 0, samplesPerSecond: 1).action == .accumulate)
    }

    @Test func aLateJoinerLoadsStateFirst() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        tracker.update(remote: [Self.remote("b", epoch: 1, samples: 10, time: clock.now)])
        let answer = try tracker.report(trainer: "new", epoch: 0, samples: 0, samplesPerSecond: 0)
        #expect(answer.action == .loadState)
        #expect(answer.epoch == 1)
        #expect(tracker.epoch(of: "new") == 1)  // it continues there
        // The run moves on while it loads: one epoch behind, it ends its epoch with the others instead of loading again.
        tracker.update(remote: [Self.remote("b", epoch: 2, samples: 0, time: clock.now)])
        #expect(try tracker.report(trainer: "new", epoch: 1, samples: 32, samplesPerSecond: 0).action == .step)
        // A brand-new run: nobody to load from, every trainer starts at 0.
        let fresh = Self.tracker(clock: clock)
        #expect(try fresh.report(trainer: "first", epoch: 0, samples: 0, samplesPerSecond: 0).action == .accumulate)
    }

    @Test func badReportsAreRefusedWithTheirReason() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        #expect(throws: AveragerError.self) { try tracker.report(trainer: "a", epoch: 0, samples: -1, samplesPerSecond: 0) }
        #expect(throws: AveragerError.self) { try tracker.report(trainer: "a", epoch: -1, samples: 0, samplesPerSecond: 0) }
        #expect(throws: AveragerError.self) { try tracker.report(trainer: "a", epoch: 0, samples: 0, samplesPerSecond: .nan) }
        #expect(throws: AveragerError.self) { try tracker.report(trainer: "a", epoch: 0, samples: 0, samplesPerSecond: 0, loss: .infinity) }
        #expect(throws: AveragerError.self) { try tracker.report(trainer: "a", epoch: 0, samples: Int.max, samplesPerSecond: 0) }
        do {
            _ = try tracker.report(trainer: "a", epoch: 3, samples: 0, samplesPerSecond: 0)
            Issue.record("an epoch from the future was accepted")
        } catch {
            #expect(error.kind == .conflict)
            #expect(error.message.contains("ahead"))
        }
    }

    @Test func advancingMovesTheTrainersToTheRunsEpochWithFreshSamples() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        _ = try tracker.report(trainer: "a", epoch: 0, samples: 100, samplesPerSecond: 1)
        _ = try tracker.report(trainer: "b", epoch: 0, samples: 50, samplesPerSecond: 1)
        #expect(tracker.localTrainers(inEpoch: 0) == ["a", "b"])
        #expect(tracker.advance(["a", "b"], from: 0) == 1)
        #expect(tracker.epoch(of: "a") == 1)
        #expect(tracker.global().samplesAccumulated == 0)
        // The run is ahead: advancing jumps there.
        tracker.update(remote: [Self.remote("c", epoch: 4, samples: 0, time: clock.now)])
        #expect(tracker.advance(["a"], from: 1) == 4)
        // A trainer silent for longer than the record lifetime is not waited for.
        clock.advance(61)
        #expect(tracker.localTrainers(inEpoch: 1).isEmpty)
    }

    @Test func aReportNearTheEpochsEndBringsTheNextReadForward() throws {
        let clock = TestClock()
        let tracker = Self.tracker(target: 100, clock: clock)
        tracker.update(remote: [])  // nobody yet: read again in the default 3 s
        #expect(!tracker.needsFetch())
        _ = try tracker.report(trainer: "a", epoch: 0, samples: 90, samplesPerSecond: 100)
        clock.advance(0.5)
        #expect(tracker.needsFetch())
    }

    @Test func partnersAreOtherAveragersUntilTheyMissAStep() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        let third = Identity().ownerMarker
        tracker.update(remote: [Self.remote("b", epoch: 2, samples: 0, time: clock.now), Self.remote("c", epoch: 2, samples: 0, time: clock.now),
                                Self.remote("d", epoch: 0, samples: 0, time: clock.now, owner: third),
                                Self.remote("mine", epoch: 2, samples: 0, time: clock.now, owner: Self.me)])
        #expect(tracker.partnerAveragers() == [Substring(Self.other), Substring(third)])
        clock.advance(1)
        tracker.missed([Substring(third)])
        #expect(tracker.partnerAveragers() == [Substring(Self.other)])
        #expect(tracker.hasMissedPartners)
        // Looking for a group right now (its trainer is blocked in a step, waiting for us): waited for again.
        #expect(tracker.partnerAveragers(lookingNow: [Substring(third)]) == [Substring(Self.other), Substring(third)])
        #expect(tracker.partnerAveragers(lookingNow: [Substring(Identity().ownerMarker)]) == [Substring(Self.other)],
                "an averager outside the run is no partner")
        // Its trainer reports again: it is waited for again.
        clock.advance(1)
        tracker.update(remote: [Self.remote("b", epoch: 2, samples: 0, time: clock.now - 2), Self.remote("d", epoch: 3, samples: 5, time: clock.now, owner: third)])
        #expect(tracker.partnerAveragers() == [Substring(Self.other), Substring(third)])
        #expect(!tracker.hasMissedPartners)
    }

    @Test func recordsArePublishedWhenChangedAndRenewedAtHalfTheirLifetime() throws {
        let clock = TestClock()
        let tracker = Self.tracker(clock: clock)
        _ = try tracker.report(trainer: "a", epoch: 0, samples: 10, samplesPerSecond: 1, loss: 1.5)
        let first = tracker.recordsToPublish()
        #expect(first.records.map(\.subkey) == [Self.me + "a"])
        #expect(first.records.first?.value["loss"]?.doubleValue == 1.5)
        #expect(first.expiration == clock.now + 60)
        #expect(tracker.recordsToPublish().records.isEmpty)
        clock.advance(30)
        #expect(tracker.recordsToPublish().records.count == 1)
        #expect(tracker.leave("a"))
        let withdrawn = tracker.recordsToPublish().records
        #expect(withdrawn.count == 1 && withdrawn[0].value == .null)
        #expect(!tracker.leave("a"))
    }

    @Test func theWeightedMeanWeighsBySamples() throws {
        let a = StepSubmission(trainer: "a", samples: 30, tensors: [("g", try Tensor(shape: [2], scalars: [1, 2]))])
        let b = StepSubmission(trainer: "b", samples: 10, tensors: [("g", try Tensor(shape: [2], scalars: [5, -2]))])
        let mean = StepGather.weightedMean([a, b])["g"]!.scalars
        #expect(abs(mean[0] - 2) < 1e-6 && abs(mean[1] - 1) < 1e-6)
        let zero = StepSubmission(trainer: "c", samples: 0, tensors: [("g", try Tensor(shape: [2], scalars: [3, 3]))])
        #expect(StepGather.weightedMean([zero, StepSubmission(trainer: "d", samples: 0, tensors: [("g", try Tensor(shape: [2], scalars: [1, 1]))])])["g"]!.scalars == [2, 2])
    }
}
