import Shared

/// One trainer's progress toward the run's next epoch, as averagers publish it
/// in the DHT (the reference's `LocalTrainingProgress`): under the key
/// `{run}_progress`, subkey `[owner:<averager's public key>]<trainer>`, signed
/// by the averager, expiring after the run's `metadata_expiration`.
public struct TrainerProgress: Sendable, Equatable {
    /// Epochs and sample counts above this (2^40) are refused in reports and
    /// ignored in DHT records, so sums over a run's trainers cannot overflow.
    public static let maxCount = 1 << 40

    /// The DHT subkey: the publishing averager's owner marker and the trainer's name.
    public var subkey: String
    /// The epoch the trainer is accumulating samples for.
    public var epoch: Int
    /// Samples accumulated since that epoch began.
    public var samplesAccumulated: Int
    /// The trainer's recent throughput.
    public var samplesPerSecond: Double
    /// When the numbers were true (seconds since the Unix epoch).
    public var time: Double
    /// A client-mode peer's epoch does not count toward the global epoch (as in the reference).
    public var clientMode: Bool
    /// The trainer's recent training loss, if it reports one (for people watching, e.g. the gateway's dashboard).
    public var loss: Double?

    public init(subkey: String, epoch: Int, samplesAccumulated: Int, samplesPerSecond: Double, time: Double, clientMode: Bool = false,
                loss: Double? = nil) {
        self.subkey = subkey
        self.epoch = epoch
        self.samplesAccumulated = samplesAccumulated
        self.samplesPerSecond = samplesPerSecond
        self.time = time
        self.clientMode = clientMode
        self.loss = loss
    }

    /// The value stored in the DHT.
    public var json: JSON {
        var fields: [String: JSON] = ["epoch": .int(epoch), "samples_accumulated": .int(samplesAccumulated),
                                      "samples_per_second": .double(samplesPerSecond), "time": .double(time), "client_mode": .bool(clientMode)]
        if let loss { fields["loss"] = .double(loss) }
        return .object(fields)
    }

    /// Reads a stored value; nil for `null` (a trainer that left) or anything malformed, which is ignored like the reference's schema validator would refuse it.
    public init?(subkey: String, json: JSON) {
        guard let reader = try? JSONObjectReader(json),
              let epoch = try? reader.int("epoch"), (0...Self.maxCount).contains(epoch),
              let samples = try? reader.int("samples_accumulated"), (0...Self.maxCount).contains(samples),
              let rate = try? reader.double("samples_per_second"), rate >= 0, rate.isFinite,
              let time = try? reader.double("time"), time.isFinite else { return nil }
        self.init(subkey: subkey, epoch: epoch, samplesAccumulated: samples, samplesPerSecond: rate, time: time,
                  clientMode: (try? reader.bool("client_mode")) ?? false,
                  loss: (try? reader.double("loss")).flatMap { $0.isFinite ? $0 : nil })
    }

    /// The owner marker that starts the subkey (`[owner:...]`), or nil.
    public var ownerMarker: Substring? { Self.ownerMarker(ofSubkey: subkey) }

    /// The owner marker that starts `subkey`, or nil (also for an averager's group declaration).
    public static func ownerMarker(ofSubkey subkey: String) -> Substring? {
        guard subkey.hasPrefix("[owner:"), let end = subkey.firstIndex(of: "]") else { return nil }
        return subkey[...end]
    }
}

/// How often an averager re-reads the run's progress (the reference's ProgressTracker defaults).
public struct RefreshSettings: Sendable, Equatable {
    /// Never sooner than this many seconds after the last read.
    public var minPeriod = 0.5
    /// Never later than this.
    public var maxPeriod = 10.0
    /// With no peers at all.
    public var defaultPeriod = 3.0
    /// Peers that may join before the epoch ends, in number and as a fraction.
    public var expectedDriftPeers = 3.0
    public var expectedDriftRate = 0.2

    public init() {}
}

/// The run's progress as one averager estimates it from every trainer's record
/// (the reference's `GlobalTrainingProgress` and `_parse_swarm_progress_data`).
public struct GlobalProgress: Sendable, Equatable {
    /// The highest epoch of any (non-client) trainer.
    public var epoch: Int
    /// Samples reported toward that epoch by the trainers in it.
    public var samplesAccumulated: Int
    /// Samples the run accumulates per epoch.
    public var targetBatchSize: Int
    /// Trainers with an unexpired record, and how many of them are clients.
    public var peers: Int
    public var clients: Int
    /// When the epoch is estimated to end (seconds since the Unix epoch).
    public var etaNextEpoch: Double
    /// When to read the records again.
    public var nextFetchTime: Double

    /// Estimates the run's progress from the trainers' records at time `now`.
    /// Samples count only for trainers in the global epoch, throughput for all
    /// (lagging trainers catch up shortly); each trainer's samples are
    /// extrapolated from its record's time at its throughput.
    /// - Parameter epochFloor: an epoch the run is known to have reached (this averager's own trainers' latest).
    public static func estimate(_ records: [TrainerProgress], targetBatchSize: Int, epochFloor: Int, now: Double,
                                refresh: RefreshSettings = RefreshSettings()) -> GlobalProgress {
        guard !records.isEmpty else {
            return GlobalProgress(epoch: epochFloor, samplesAccumulated: 0, targetBatchSize: targetBatchSize, peers: 0, clients: 0,
                                  etaNextEpoch: .infinity, nextFetchTime: now + refresh.defaultPeriod)
        }
        let epoch = records.filter { !$0.clientMode }.map(\.epoch).reduce(epochFloor, max)
        var accumulated = 0
        var estimated = 0.0
        var throughput = 1e-9  // the reference's epsilon: no throughput gives an ETA far away, not a division by zero
        for record in records {
            throughput += record.samplesPerSecond
            guard record.epoch == epoch else { continue }
            accumulated += record.samplesAccumulated
            estimated += Double(record.samplesAccumulated) + max(0, now - record.time) * record.samplesPerSecond
        }
        let secondsToNextEpoch = max(0, Double(targetBatchSize) - estimated) / throughput
        let peers = Double(records.count)
        let expectedPeers = max(peers + refresh.expectedDriftPeers, peers * (1 + refresh.expectedDriftRate))
        let untilFetch = min(max(secondsToNextEpoch * peers / expectedPeers, refresh.minPeriod), refresh.maxPeriod)
        return GlobalProgress(epoch: epoch, samplesAccumulated: accumulated, targetBatchSize: targetBatchSize, peers: records.count,
                              clients: records.count(where: \.clientMode), etaNextEpoch: now + secondsToNextEpoch,
                              nextFetchTime: now + untilFetch)
    }

    /// Whether a trainer in `localEpoch` should end its epoch now: the run moved
    /// on, enough samples were reported, or the estimate says they have been.
    public func readyToUpdateEpoch(localEpoch: Int, now: Double) -> Bool {
        epoch > localEpoch || samplesAccumulated >= targetBatchSize || now >= etaNextEpoch
    }
}
