import Shared

extension ExpertHostConfiguration {
    /// The service's identity and TLS (`ServiceSecurity`); the identity, which
    /// signs the declarations, defaults to `identity.key` in the checkpoint
    /// folder, created with it.
    public func security(_ options: ServiceOptions) throws -> ServiceSecurity {
        if options.string("identity") == nil, let directory = checkpointDirectory { try AtomicFile.createDirectory(directory) }
        return try ServiceSecurity(options, defaultIdentityPath: checkpointDirectory.map { "\($0)/identity.key" })
    }

    /// The uids to serve: the listed ones, or those of the pattern's grid that
    /// no other host holds a claim on in the DHT (all free ones, or `--num-experts` of
    /// them at random, as the reference does, so that hosts started together
    /// from one configuration, such as replicas, rarely pick the same ones).
    /// A uid that `identity` itself claims (this host, restarted) is free.
    public func chooseUIDs(dht: DHTClient?, identity: Identity, logger: Logger) async -> [ExpertUID] {
        guard let pattern else { return uids }
        var candidates = pattern.uids
        if let dht {
            do {
                let found = try await dht.getMany(candidates.map(\.description))
                candidates.removeAll { uid in
                    let claims = (found[uid.description]?.subkeys ?? [:]).compactMap { subkey, item in
                        ExpertDeclaration.read(key: uid.description, subkey: subkey, item: item)
                    }
                    return claims.contains { $0.owner != identity.publicKeyHex }
                }
            } catch {
                logger.warning("cannot check which uids are taken; using the whole pattern", ["error": "\(error)"])
            }
        }
        if let numExperts {
            candidates.shuffle()
            candidates = Array(candidates.prefix(numExperts)).sorted()
        }
        return candidates
    }
}

extension ExpertHost {
    /// `GET /readyz`: ready once it serves experts and (with a DHT) the last
    /// declaration in the DHT succeeded, so that gateways can find them.
    public func readiness(declaringThrough dht: DHTClient?) -> Readiness {
        let readiness = Readiness()
        readiness.add("experts") { [self] in
            backends.isEmpty ? "serves no experts (every uid of --expert-pattern is taken, or none was given)" : nil
        }
        if dht != nil {
            readiness.add("declared") { [self] in declarationProblem.withLock { $0 } }
        }
        return readiness
    }

    /// Every update period: declare the experts in the DHT (valid for two
    /// periods, as the reference does) and checkpoint them. A host that loses
    /// its DHT keeps serving and declares again once the DHT is back.
    /// - Parameter url: the address other services reach this host at.
    public func startPeriodicWork(dht: DHTClient?, url: String) {
        Task { [self] in
            while true {
                if let dht { await declare(through: dht, url: url) }
                try? await Task.sleep(for: .seconds(configuration.updatePeriod))
                do { try saveCheckpoints() } catch { logger.error("checkpoint failed", ["error": "\(error)"]) }
            }
        }
    }

    /// Stores the uid and prefix records of every expert; returns whether all were accepted.
    @discardableResult
    public func declare(through dht: DHTClient, url: String) async -> Bool {
        let expiration = Clock.epoch + 2 * configuration.updatePeriod
        let records = ExpertDeclaration.records(for: uids, hostURL: url, expirationTime: expiration, identity: identity)
        do {
            let results = try await dht.storeMany(records)
            metrics.increment("declarations_total", labels: ["outcome": "ok"])
            let stored = results.allSatisfy(\.stored)
            declarationProblem.withLock { $0 = stored ? nil : "the DHT did not store every declaration" }
            return stored
        } catch {
            metrics.increment("declarations_total", labels: ["outcome": "failed"])
            declarationProblem.withLock { $0 = "the last declaration in the DHT failed: \(error)" }
            logger.warning("cannot declare experts in the DHT; will retry", ["error": explained(error)])
            return false
        }
    }
}
