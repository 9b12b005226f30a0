import Shared

extension ExpertHostConfiguration {
    /// The uids to serve: the listed ones, or the pattern's grid (all of it,
    /// or `--num-experts` of it in an order fixed by `--seed`).
    public func chooseUIDs(logger: Logger) async -> [ExpertUID] {
        guard let pattern else { return uids }
        var candidates = pattern.uids
        if let numExperts {
            var generator = SplitMix64(seed: seed)
            candidates.shuffle(using: &generator)
            candidates = Array(candidates.prefix(numExperts)).sorted()
        }
        return candidates
    }
}

extension ExpertHost {
    /// Every update period: checkpoint the experts.
    public func startPeriodicWork() {
        Task { [self] in
            while true {
                try? await Task.sleep(for: .seconds(configuration.updatePeriod))
                do { try saveCheckpoints() } catch { logger.error("checkpoint failed", ["error": "\(error)"]) }
            }
        }
    }
}
