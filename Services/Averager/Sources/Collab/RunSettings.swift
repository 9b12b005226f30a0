import Shared

/// A collaborative training run as a trainer configures it with `PUT /v1/runs/{run}`.
/// The defaults are the reference Optimizer's and ProgressTracker's, except the
/// averaging timeout, which is shorter for loopback and LAN meshes.
public struct RunSettings: Sendable, Equatable {
    /// Samples the whole run accumulates per epoch; the epoch ends when they are reached.
    public var targetBatchSize: Int
    /// Seconds a step may look for and run its all-reduce before the trainers use their own average.
    public var averagingTimeout = 30.0
    /// Seconds a published progress record lives (renewed at half that).
    public var metadataExpiration = 60.0
    /// How often the run's records are re-read.
    public var refresh = RefreshSettings()

    public init(targetBatchSize: Int) {
        self.targetBatchSize = targetBatchSize
    }

    /// Reads `{"target_batch_size", "averaging_timeout"?, "metadata_expiration"?, "min_refresh_period"?, "max_refresh_period"?}`.
    /// - Throws: `AveragerError`: 400 for a malformed body or a duration out of its bounds
    ///   (`averaging_timeout` from 1 ms, `metadata_expiration` from 1 s, refresh periods from 50 ms; each at most an hour),
    ///   422 for other values out of range.
    public init(json: JSON) throws(AveragerError) {
        do {
            let reader = try JSONObjectReader(json)
            targetBatchSize = try reader.int("target_batch_size")
            averagingTimeout = try reader.optional("averaging_timeout", JSONObjectReader.double) ?? averagingTimeout
            metadataExpiration = try reader.optional("metadata_expiration", JSONObjectReader.double) ?? metadataExpiration
            refresh.minPeriod = try reader.optional("min_refresh_period", JSONObjectReader.double) ?? refresh.minPeriod
            refresh.maxPeriod = try reader.optional("max_refresh_period", JSONObjectReader.double) ?? refresh.maxPeriod
        } catch {
            throw AveragerError(.badRequest, "\(error); expected {\"target_batch_size\": 256} with optional averaging_timeout, "
                + "metadata_expiration, min_refresh_period and max_refresh_period in seconds")
        }
        guard targetBatchSize >= 1 else { throw AveragerError(.unprocessable, "target_batch_size must be at least 1, got \(targetBatchSize)") }
        do throws(DurationError) {
            _ = try DurationLimits.check(averagingTimeout, "averaging_timeout", in: DurationLimits.minimumTimeout...Self.maxSeconds)
            _ = try DurationLimits.check(metadataExpiration, "metadata_expiration", in: DurationLimits.minimumExpiration...Self.maxSeconds)
            _ = try DurationLimits.check(refresh.minPeriod, "min_refresh_period", in: Self.minRefreshPeriod...Self.maxSeconds)
            _ = try DurationLimits.check(refresh.maxPeriod, "max_refresh_period", in: Self.minRefreshPeriod...Self.maxSeconds)
        } catch {
            throw AveragerError(.badRequest, error.message)
        }
        guard refresh.minPeriod <= refresh.maxPeriod else {
            throw AveragerError(.unprocessable, "min_refresh_period (\(refresh.minPeriod)) must not exceed max_refresh_period (\(refresh.maxPeriod))")
        }
    }

    /// The longest of the durations: an hour.
    static let maxSeconds = 3600.0
    /// Records are re-read at most this often: the averager checks them every 50 ms.
    static let minRefreshPeriod = 0.05

    public var json: JSON {
        ["target_batch_size": .int(targetBatchSize), "averaging_timeout": .double(averagingTimeout),
         "metadata_expiration": .double(metadataExpiration), "min_refresh_period": .double(refresh.minPeriod),
         "max_refresh_period": .double(refresh.maxPeriod)]
    }

    /// Checks a run id or trainer name: what a group key prefix allows, short enough for the per-epoch prefixes built from it.
    static func validate(name: String, _ what: String) throws(AveragerError) {
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-")
        }
        guard !name.isEmpty, name.utf8.count <= 100, allowed else {
            throw AveragerError(.badRequest, "\(what) '\(name.prefix(120))' is not valid: expected 1 to 100 letters, digits, '_' or '-', e.g. 'digits'")
        }
    }
}
