import Shared
import Synchronization

/// What a trainer should do after reporting its progress.
public enum TrainerAction: String, Sendable {
    /// Keep accumulating gradients (or stepping locally) toward the epoch's end.
    case accumulate
    /// The epoch ended: submit the accumulated gradients (or parameters) to `POST /v1/runs/{run}/step`.
    case step
    /// Too far behind, or new to a run already under way: load the state from
    /// peers (`POST /v1/state/load`), drop what was accumulated and continue at `epoch`.
    case loadState = "load_state"
}

/// The answer to a progress report.
public struct ProgressAnswer: Sendable, Equatable {
    public var trainer: String
    public var action: TrainerAction
    /// The epoch the trainer is in (after `load_state`: the one to continue at).
    public var epoch: Int
    public var global: GlobalProgress
    public var now: Double

    public var json: JSON {
        let eta = global.etaNextEpoch - now
        return ["trainer": .string(trainer), "action": .string(action.rawValue), "epoch": .int(epoch), "global_epoch": .int(global.epoch),
                "samples_accumulated": .int(global.samplesAccumulated), "target_batch_size": .int(global.targetBatchSize),
                "peers": .int(global.peers), "eta_seconds": eta.isFinite ? .double(max(0, eta)) : .null]
    }
}

/// One run's progress on one averager (the reference's ProgressTracker, for
/// every trainer that uses this averager): the local trainers' reports, the
/// other averagers' records from the last DHT read, and the decisions made
/// from both. Time comes from `clock`, so tests can drive it.
public final class RunTracker: Sendable {
    public let run: String
    /// This averager's `[owner:...]` marker, which starts its trainers' subkeys.
    let ownerMarker: String
    let clientMode: Bool
    let clock: @Sendable () -> Double
    private let state: Mutex<State>

    struct Local {
        var progress: TrainerProgress
        /// When the record was last published (nil: not since it changed).
        var published: Double?
    }

    struct State {
        var settings: RunSettings
        var local: [String: Local] = [:]
        var remote: [TrainerProgress] = []
        var epochFloor = 0
        var nextFetch = -Double.infinity
        /// Subkeys of trainers that left, to overwrite with null.
        var departed: [String] = []
        /// Partner averagers (owner markers) that missed a step, and when.
        var missedAt: [String: Double] = [:]

        /// Whether `record`'s averager missed a step after the record was made (its trainers
        /// have not reported since).
        func isMissed(_ record: TrainerProgress) -> Bool {
            guard let owner = record.ownerMarker, let missed = missedAt[String(owner)] else { return false }
            return record.time <= missed
        }

        func global(_ now: Double) -> GlobalProgress {
            GlobalProgress.estimate(remote + local.values.map(\.progress), targetBatchSize: settings.targetBatchSize,
                                    epochFloor: epochFloor, now: now, refresh: settings.refresh)
        }
    }

    /// Trainers reporting through this averager at most (`AveragerLimits.maxTrainersPerRun`).
    let maxTrainers: Int

    public init(run: String, settings: RunSettings, ownerMarker: String, clientMode: Bool = false, maxTrainers: Int = 256,
                clock: @escaping @Sendable () -> Double = { Clock.epoch }) {
        self.run = run
        self.maxTrainers = maxTrainers
        self.ownerMarker = ownerMarker
        self.clientMode = clientMode
        self.clock = clock
        state = Mutex(State(settings: settings))
    }

    public var settings: RunSettings {
        get { state.withLock { $0.settings } }
    }

    /// Replaces the run's settings (a trainer's `PUT /v1/runs/{run}`).
    public func configure(_ settings: RunSettings) {
        state.withLock { $0.settings = settings }
    }

    /// The run's progress as of now.
    public func global() -> GlobalProgress {
        let now = clock()
        return state.withLock { $0.global(now) }
    }

    /// Records a trainer's report and says what it should do next.
    /// - Parameters:
    ///   - epoch: the epoch the trainer is in (0 for a new trainer).
    ///   - samples: samples it accumulated since that epoch began.
    /// - Throws: `AveragerError` 422 for negative or non-finite numbers, 409 for an epoch the run has not reached.
    public func report(trainer: String, epoch: Int, samples: Int, samplesPerSecond: Double, loss: Double? = nil) throws(AveragerError) -> ProgressAnswer {
        let counts = 0...TrainerProgress.maxCount
        guard counts.contains(epoch) else { throw AveragerError(.unprocessable, "epoch must be from 0 to 2^40, got \(epoch)") }
        guard counts.contains(samples) else {
            throw AveragerError(.unprocessable, "samples must be from 0 to 2^40 (samples accumulated in this epoch), got \(samples)")
        }
        guard samplesPerSecond >= 0, samplesPerSecond.isFinite else {
            throw AveragerError(.unprocessable, "samples_per_second must be a finite number >= 0, got \(samplesPerSecond)")
        }
        if let loss, !loss.isFinite { throw AveragerError(.unprocessable, "loss must be a finite number, got \(loss)") }
        let now = clock()
        return try state.withLock { state throws(AveragerError) -> ProgressAnswer in
            let before = state.global(now)
            guard epoch <= before.epoch else {
                throw AveragerError(.conflict, "epoch \(epoch) is ahead of run '\(run)', which is at epoch \(before.epoch); "
                    + "report the epoch this averager answered last (0 for a new trainer)")
            }
            let known = state.local[trainer]
            if known == nil && state.local.count >= maxTrainers {
                // Trainers silent for a whole record lifetime are gone (their records expired): they make room first.
                state.local = state.local.filter { now - $0.value.progress.time < state.settings.metadataExpiration }
                guard state.local.count < maxTrainers else {
                    throw AveragerError(.tooMany, "run '\(run)' has \(maxTrainers) trainers on this averager, the most it takes (--max-trainers-per-run); use another averager")
                }
            }
            let rejoining = known.map { epoch < $0.progress.epoch } ?? true
            if (rejoining && epoch < before.epoch) || epoch < before.epoch - 1 {
                // Gradients from stale parameters would only hurt: load the state first. The trainer counts as
                // in the run's epoch from now on, so that if the run moves on while it loads, it is one epoch
                // behind (it steps) rather than new again (it would load again).
                state.local[trainer] = Local(progress: TrainerProgress(subkey: ownerMarker + trainer, epoch: before.epoch, samplesAccumulated: 0,
                                                                       samplesPerSecond: samplesPerSecond, time: now, clientMode: clientMode, loss: loss))
                return ProgressAnswer(trainer: trainer, action: .loadState, epoch: before.epoch, global: before, now: now)
            }
            state.local[trainer] = Local(progress: TrainerProgress(subkey: ownerMarker + trainer, epoch: epoch, samplesAccumulated: samples,
                                                                   samplesPerSecond: samplesPerSecond, time: now, clientMode: clientMode, loss: loss))
            let after = state.global(now)
            // Fresh local numbers may bring the epoch's end closer than the last read thought: read sooner then.
            state.nextFetch = min(state.nextFetch, after.nextFetchTime)
            let action: TrainerAction = after.readyToUpdateEpoch(localEpoch: epoch, now: now) ? .step : .accumulate
            return ProgressAnswer(trainer: trainer, action: action, epoch: epoch, global: after, now: now)
        }
    }

    /// The epoch `trainer` is in, or nil if it has not reported (or left).
    public func epoch(of trainer: String) -> Int? {
        state.withLock { $0.local[trainer]?.progress.epoch }
    }

    /// Moves `trainers` on from `epoch` after its step: to the next epoch, or
    /// further if the run is already there; their samples start again at 0.
    /// - Returns: the new epoch.
    @discardableResult
    public func advance(_ trainers: [String], from epoch: Int) -> Int {
        let now = clock()
        return state.withLock { state in
            let next = max(epoch + 1, state.global(now).epoch)
            for trainer in trainers {
                guard var local = state.local[trainer] else { continue }
                local.progress.epoch = next
                local.progress.samplesAccumulated = 0
                local.progress.time = now
                local.published = nil
                state.local[trainer] = local
            }
            state.epochFloor = max(state.epochFloor, next)
            return next
        }
    }

    /// Forgets a trainer; its record is overwritten with null at the next publication.
    public func leave(_ trainer: String) -> Bool {
        state.withLock { state in
            guard let local = state.local.removeValue(forKey: trainer) else { return false }
            state.departed.append(local.progress.subkey)
            return true
        }
    }

    /// Local trainers in `epoch` that reported within the metadata expiration: the ones a step waits for.
    public func localTrainers(inEpoch epoch: Int) -> Set<String> {
        let now = clock()
        return state.withLock { state in
            Set(state.local.filter { $0.value.progress.epoch == epoch && now - $0.value.progress.time < state.settings.metadataExpiration }.keys)
        }
    }

    /// Other averagers whose trainers take part in the run, by owner marker:
    /// the partners a step's all-reduce waits for, whatever their epoch (the
    /// group reconciles epochs, and waiting for each other keeps trainers in
    /// step, as the reference's synchronous default). An averager that missed
    /// a step is not waited for again until its trainers report anew, so a
    /// dead trainer costs the others one averaging timeout, not one per step.
    /// - Parameter lookingNow: owner markers of averagers looking for a group under the run's
    ///   prefix right now. One of them that missed a step is waited for again all the same: its
    ///   trainer is blocked in a step of its own, waiting for us, so it cannot report anew (without
    ///   this, one failed round could leave the two averaging alone, each in turn, for good).
    public func partnerAveragers(lookingNow: Set<Substring> = []) -> Set<Substring> {
        state.withLock { state in
            Set(state.remote.filter { record in
                guard let owner = record.ownerMarker else { return false }
                return lookingNow.contains(owner) || !state.isMissed(record)
            }.compactMap(\.ownerMarker))
        }
    }

    /// Whether some partner is not waited for because it missed a step.
    public var hasMissedPartners: Bool {
        state.withLock { state in state.remote.contains { state.isMissed($0) } }
    }

    /// Notes partners that did not join a step (none of their records is newer than now).
    public func missed(_ partners: some Sequence<Substring>) {
        let now = clock()
        state.withLock { state in
            for partner in partners { state.missedAt[String(partner)] = now }
        }
    }

    // MARK: - DHT

    /// The DHT key of the run's progress records.
    public var progressKey: String { "\(run)_progress" }

    /// Whether the records are due to be read again.
    public func needsFetch() -> Bool {
        let now = clock()
        return state.withLock { now >= $0.nextFetch }
    }

    /// Takes the records read from the DHT (this averager's own are dropped: it knows them better).
    public func update(remote records: [TrainerProgress]) {
        let now = clock()
        state.withLock { state in
            state.remote = records.filter { $0.ownerMarker.map { $0 != ownerMarker } ?? true }
            state.nextFetch = state.global(now).nextFetchTime
        }
    }

    /// Records to publish now: changed ones, ones at half their lifetime, and nulls for trainers that left.
    /// They count as published; `unpublished` puts back those whose store failed.
    public func recordsToPublish() -> (records: [(subkey: String, value: JSON)], expiration: Double) {
        let now = clock()
        return state.withLock { state in
            var records: [(subkey: String, value: JSON)] = state.departed.map { ($0, .null) }
            state.departed = []
            for (trainer, local) in state.local where local.published.map({ now - $0 >= state.settings.metadataExpiration / 2 }) ?? true {
                records.append((local.progress.subkey, local.progress.json))
                state.local[trainer]?.published = now
            }
            return (records, now + state.settings.metadataExpiration)
        }
    }

    /// Marks records whose store failed, so they are published again.
    public func unpublished(_ subkeys: [String]) {
        state.withLock { state in
            for subkey in subkeys {
                let trainer = String(subkey.dropFirst(ownerMarker.count))
                if state.local[trainer] != nil { state.local[trainer]?.published = nil }
            }
        }
    }

    /// Every local trainer's subkey (to overwrite with null when the averager stops).
    public func localSubkeys() -> [String] {
        state.withLock { $0.local.values.map(\.progress.subkey) }
    }

    /// The local trainers, for `GET /v1/runs/{run}`.
    public func localJSON() -> JSON {
        state.withLock { state in
            .object(state.local.mapValues(\.progress.json))
        }
    }
}
