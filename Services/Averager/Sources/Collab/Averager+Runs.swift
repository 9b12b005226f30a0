import Shared

/// The collaborative optimizer as a service (the reference's `hivemind.Optimizer`
/// split between trainer and averager): trainers report their progress under
/// a run id, the averager publishes it in the DHT and tells each trainer when
/// the run's epoch ends; then it averages the trainers' gradients (or
/// parameters), weighted by samples, with the averagers of the same epoch.
extension Averager {
    /// Creates or reconfigures a run (`PUT /v1/runs/{run}`).
    /// - Returns: true if the run is new.
    @discardableResult
    public func configureRun(_ run: String, settings: RunSettings) throws(AveragerError) -> Bool {
        try RunSettings.validate(name: run, "run")
        let limits = configuration.limits
        let (entry, created) = try runs.withLock { runs throws(AveragerError) -> (CollaborativeRun, Bool) in
            if let existing = runs[run] {
                existing.tracker.configure(settings)
                return (existing, false)
            }
            guard runs.count < limits.maxRuns else {
                throw AveragerError(.tooMany, "this averager holds \(limits.maxRuns) runs, the most it takes (--max-runs); use another averager")
            }
            let tracker = RunTracker(run: run, settings: settings, ownerMarker: identity.ownerMarker,
                                     clientMode: configuration.mode == .client, maxTrainers: limits.maxTrainersPerRun, clock: clock)
            let entry = CollaborativeRun(tracker: tracker)
            runs[run] = entry
            return (entry, true)
        }
        if created {
            entry.startSync { [weak self] in await self?.syncProgress(entry.tracker) }
        }
        return created
    }

    /// The run named `run`.
    /// - Throws: `AveragerError` 404 if no trainer configured it on this averager.
    func collaborativeRun(_ run: String) throws(AveragerError) -> CollaborativeRun {
        guard let entry = runs.withLock({ $0[run] }) else {
            throw AveragerError(.notFound, "no run '\(run)' on this averager; create it first with PUT /v1/runs/\(run) {\"target_batch_size\": N}")
        }
        return entry
    }

    /// A trainer's progress report (`POST /v1/runs/{run}/progress`).
    public func reportProgress(run: String, trainer: String, epoch: Int, samples: Int, samplesPerSecond: Double,
                               loss: Double? = nil) throws(AveragerError) -> ProgressAnswer {
        try RunSettings.validate(name: trainer, "trainer")
        let answer = try collaborativeRun(run).tracker.report(trainer: trainer, epoch: epoch, samples: samples, samplesPerSecond: samplesPerSecond, loss: loss)
        metrics.increment("progress_reports_total", labels: ["action": answer.action.rawValue])
        return answer
    }

    /// A trainer leaves the run (`DELETE /v1/runs/{run}/trainers/{trainer}`): its record is withdrawn.
    public func leaveRun(run: String, trainer: String) throws(AveragerError) {
        guard try collaborativeRun(run).tracker.leave(trainer) else {
            throw AveragerError(.notFound, "trainer '\(trainer)' is not in run '\(run)' on this averager")
        }
    }

    /// The end of a trainer's epoch (`POST /v1/runs/{run}/step`): averages its
    /// tensors with this averager's other trainers of the epoch and, through
    /// one all-reduce (prefix `{run}_grads`), weighted by samples, with the
    /// other averagers whose trainers take part in the run; everyone continues
    /// after the group's latest epoch. Alone (no partner in the DHT, or none
    /// found before the run's averaging timeout, counted from the step's
    /// arrival), the trainers get their own average.
    /// `codec` compresses the parts this averager exchanges in that all-reduce
    /// (the trainer's `grad_compression`); the epoch's first submission on this
    /// averager sets it for all of its trainers.
    /// - Throws: `AveragerError` 404 for an unknown run or trainer, 409 for an
    ///   epoch other than the trainer's or tensors unlike the others'.
    func step(run: String, trainer: String, epoch: Int, samples: Int, tensors: [(name: String, tensor: WireTensor)],
              codec: CompressionCodec = .none) async throws(AveragerError) -> StepOutcome {
        let entry = try collaborativeRun(run)
        let deadline = Deadline(after: entry.tracker.settings.averagingTimeout)
        guard (0...TrainerProgress.maxCount).contains(samples) else {
            throw AveragerError(.unprocessable, "samples must be from 0 to 2^40 (the samples behind these tensors), got \(samples)")
        }
        guard let current = entry.tracker.epoch(of: trainer) else {
            throw AveragerError(.notFound, "trainer '\(trainer)' has not reported progress in run '\(run)' on this averager; "
                + "POST /v1/runs/\(run)/progress first")
        }
        guard epoch == current else {
            throw AveragerError(.conflict, "trainer '\(trainer)' is in epoch \(current), not \(epoch); step the epoch it is in")
        }
        var decoded: [(name: String, tensor: Tensor)] = []
        for (name, wire) in tensors {
            do { decoded.append((name, try Tensor(wire))) } catch { throw AveragerError(.unprocessable, "tensor '\(name)': \(error.message)") }
            guard Finite.all(decoded.last!.tensor.scalars) else {
                throw AveragerError(.unprocessable, "tensor '\(name)' holds NaN or infinite values; send finite gradients (or skip the step)")
            }
        }
        let submission = StepSubmission(trainer: trainer, samples: samples, tensors: decoded, codec: codec)
        var gather = entry.gather(epoch: epoch)
        var drives: Bool
        while true {
            if let first = try gather.submit(submission) {
                drives = first
                break
            }
            entry.closed(gather)
            gather = entry.gather(epoch: epoch)
        }
        if drives { await driveStep(gather, entry, deadline: deadline) }
        return try await gather.outcome().get()
    }

    /// Waits briefly for this averager's other trainers of the epoch, then averages for all of them,
    /// answering by `deadline` (the run's averaging timeout after the first trainer's step arrived).
    private func driveStep(_ gather: StepGather, _ entry: CollaborativeRun, deadline: Deadline) async {
        let tracker = entry.tracker
        let settings = tracker.settings
        let epoch = gather.epoch
        // Local trainers of the epoch are told to step at their next report; a dead one is not waited for long.
        let gatherDeadline = min(Clock.now + min(5, settings.averagingTimeout / 2), deadline.instant)
        while Clock.now < gatherDeadline, !tracker.localTrainers(inEpoch: epoch).isSubset(of: gather.trainers) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let submissions = gather.close()
        entry.closed(gather)
        var tensors = StepGather.weightedMean(submissions)
        let samples = submissions.reduce(0) { $0 + $1.samples }
        let codec = submissions.first?.codec ?? .none

        _ = await deadline.run { await self.fetchProgress(tracker) }  // partners as of now, not as of the last periodic read
        let prefix = "\(tracker.run)_grads"
        var lookingNow: Set<Substring> = []
        if tracker.hasMissedPartners, let members = await deadline.run({ await self.lookingForGroup(prefix: prefix) }) ?? nil {
            lookingNow = Set(members.compactMap { TrainerProgress.ownerMarker(ofSubkey: $0.subkey) })
        }
        let partners = tracker.partnerAveragers(lookingNow: lookingNow)
        var outcome = "local"
        var groupSize = 1
        var groupEpoch = epoch
        if !partners.isEmpty {
            let names = tensors.keys.sorted()
            let wire = names.map { (name: $0, tensor: try! WireTensor(tensors[$0]!)) }  // float32 of finite values
            let request = AverageRequest(prefix: prefix, tensors: wire, weight: Double(samples), timeout: settings.averagingTimeout,
                                         codec: codec, metadata: ["epoch": .int(epoch), "trainers": .int(submissions.count),
                                                   "averager": .string(identity.ownerMarker)])
            do {
                let result = try await average(request, targetGroupSize: partners.count + 1, deadline: deadline)
                for (name, value) in result.tensors { tensors[name] = try Tensor(value) }
                groupSize = result.record.group.members.count
                outcome = result.record.outcome == "failed" ? "local" : "averaged"
                // Members behind or ahead all continue after the latest epoch among them.
                groupEpoch = result.record.group.members.compactMap { $0.metadata["epoch"]?.intValue }.reduce(epoch, max)
                let joined = Set(result.record.group.members.compactMap { $0.metadata["averager"]?.stringValue })
                tracker.missed(partners.filter { !joined.contains(String($0)) })
            } catch {
                tracker.missed(partners)
                logger.info("step averaged locally: no group", ["run": tracker.run, "epoch": "\(epoch)", "error": "\(error)"])
            }
        }
        metrics.increment("steps_total", labels: ["outcome": outcome])
        let next = tracker.advance(submissions.map(\.trainer), from: groupEpoch)
        let record: JSON = ["epoch": .int(next), "previous_epoch": .int(epoch), "outcome": .string(outcome), "group_size": .int(groupSize),
                            "trainers": .int(submissions.count), "samples": .int(samples), "codec": .string(codec.rawValue)]
        gather.finish(.success(StepOutcome(tensors: tensors, epoch: next, record: record)))
    }

    /// Whether an averaging call under `prefix` for a trainer of `run` could
    /// find anyone: a trainer still in the run (on any averager), or a peer
    /// looking for a group under the prefix's current key (a trainer that
    /// left the run and is averaging for the last time). A trainer alone in
    /// its run is told at once rather than waiting out its timeout. When the
    /// DHT cannot be read, anyone may be there.
    /// - Throws: `AveragerError` 404 for a run this averager does not know.
    func mayFindPartners(run: String, prefix: String) async throws(AveragerError) -> Bool {
        let tracker = try collaborativeRun(run).tracker
        await fetchProgress(tracker)
        guard tracker.global().peers == 0 else { return true }
        guard let members = await lookingForGroup(prefix: prefix) else { return true }
        return !members.isEmpty
    }

    /// The other averagers declared as looking for a group under `prefix`'s current key, or nil
    /// when the DHT cannot be read.
    func lookingForGroup(prefix: String) async -> [DHTMember]? {
        guard let key = try? await groupKey(of: prefix), let members = try? await dht.members(key: key) else { return nil }
        return members.filter { $0.peer != peerID && $0.value == .bool(true) }
    }

    // MARK: - Progress in the DHT

    /// Publishes the local trainers' records and reads everyone's, for as long as the run exists.
    func syncProgress(_ tracker: RunTracker) async {
        while !Task.isCancelled {
            await publishProgress(tracker)
            if tracker.needsFetch() { await fetchProgress(tracker) }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func publishProgress(_ tracker: RunTracker) async {
        let (records, expiration) = tracker.recordsToPublish()
        var failed: [String] = []
        for (subkey, value) in records {
            do {
                try await dht.declare(key: tracker.progressKey, subkey: subkey, value: value, expiration: expiration, signedBy: identity)
            } catch {
                failed.append(subkey)
                logger.warning("cannot publish progress in the DHT", ["run": tracker.run, "error": explained(error)])
            }
        }
        if !failed.isEmpty { tracker.unpublished(failed) }
    }

    func fetchProgress(_ tracker: RunTracker) async {
        do {
            let members = try await dht.members(key: tracker.progressKey)
            tracker.update(remote: members.compactMap { TrainerProgress(subkey: $0.subkey, json: $0.value) })
        } catch {
            logger.warning("cannot read progress from the DHT", ["run": tracker.run, "error": explained(error)])
        }
    }

    /// Withdraws every local trainer's record (the averager is stopping).
    func withdrawProgress() async {
        let entries = runs.withLock { Array($0.values) }
        for entry in entries {
            entry.stopSync()
            for subkey in entry.tracker.localSubkeys() {
                try? await dht.declare(key: entry.tracker.progressKey, subkey: subkey, value: .null,
                                       expiration: Clock.epoch + entry.tracker.settings.metadataExpiration, signedBy: identity)
            }
        }
    }
}
