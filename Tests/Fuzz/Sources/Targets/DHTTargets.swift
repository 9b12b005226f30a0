@testable import Averager
@testable import DHTNode
@testable import Shared

// What DHT nodes send each other, and the records anyone may store in the DHT for others to read.

extension FuzzTarget {
    /// The peer RPCs' bodies, read as the receiving node reads them, then handled as it handles
    /// them: records checked and stored, senders added to the routing table, nearest peers found.
    static let dhtMessages = FuzzTarget(
        name: "dht-messages",
        about: "ping, store and find requests and responses between DHT nodes; stored records, routing table and lookups",
        seeds: { DHTSeeds.messages.map { ($0.name, Array(seed: $0.json.serialized())) } }
    ) { bytes in
        guard let json = try? JSON.parse(bytes), let fields = try? JSONObjectReader(json) else { return }
        // Each message writes back what it read.
        func roundTrip(_ read: (JSONObjectReader) throws -> JSON, _ what: String) {
            guard let written = try? read(fields) else { return }
            fuzzCheck((try? read(JSONObjectReader(written))) == written, "a \(what) changed in a round trip")
        }
        roundTrip({ try PingRequest(fields: $0).json }, "ping request")
        roundTrip({ try PingResponse(fields: $0).json }, "ping response")
        roundTrip({ try StoreResponse(fields: $0).json }, "store response")
        roundTrip({ try FindResponse(fields: $0).json }, "find response")

        var node = DHTSeeds.NodeState()
        if let ping = try? PingRequest(fields: fields), let sender = ping.sender { node.heard(from: sender) }
        if let store = try? StoreRequest(fields: fields) {
            fuzzCheck(store.records.count == store.inCache.count, "a store request's records and in_cache flags differ in number")
            roundTrip({ try StoreRequest(fields: $0).json }, "store request")
            if let sender = store.sender { node.heard(from: sender) }
            for (record, inCache) in zip(store.records, store.inCache) { node.store(record, inCache: inCache) }
            for record in store.records { _ = node.find(DHTID(key: record.key), excluding: store.sender?.id) }
        }
        if let find = try? FindRequest(fields: fields) {
            roundTrip({ try FindRequest(fields: $0).json }, "find request")
            if let sender = find.sender { node.heard(from: sender) }
            for id in find.ids {
                let (entry, nearest) = node.find(id, excluding: find.sender?.id)
                fuzzCheck(nearest.count <= 20 && !nearest.contains { $0.id == find.sender?.id }, "find answered the requester or too many peers")
                _ = entry?.json
            }
        }
    }

    /// Records as clients store them (`PUT /v1/records`, batches) and as services read them back:
    /// owner markers and signatures, the node's checks, and the values experts, averagers and
    /// trainers declare (expert declarations, matchmaking and donor entries, training progress).
    static let dhtRecords = FuzzTarget(
        name: "dht-records",
        about: "DHTRecord, DHTEntry and DHTStoreResult; ownership and signatures; expert, matchmaking, donor and progress values",
        seeds: { DHTSeeds.records.map { ($0.name, Array(seed: $0.json.serialized())) } }
    ) { bytes in
        guard let json = try? JSON.parse(bytes), let fields = try? JSONObjectReader(json) else { return }
        let now = 1.7e9
        if let record = try? DHTRecord(fields: fields) {
            fuzzCheck((try? DHTRecord(fields: JSONObjectReader(record.json))) == record, "a record changed in a round trip")
            let validator = DHTSeeds.validator
            let checked = (try? validator.check(record, now: now, field: "")) != nil
            // A record the node accepts from a client it also accepts from a peer.
            let fromPeer = (try? validator.checkFromPeer(record, now: now).get()) != nil
            fuzzCheck(!checked || fromPeer, "a record passes the client's check but not the peer's")
            var node = DHTSeeds.NodeState()
            let stored = node.store(record, inCache: false)
            // (An empty store has room for one record of a few kilobytes.)
            if checked, record.expirationTime > now, record.json.serializedBytes().count < 8192 {
                fuzzCheck(stored, "an empty store refused an accepted record")
                fuzzCheck(node.find(DHTID(key: record.key), excluding: nil).entry != nil, "an accepted record is not found")
            }
        }
        if let entry = try? DHTEntry(fields: fields) {
            fuzzCheck((try? DHTEntry(fields: JSONObjectReader(entry.json))) == entry, "an entry changed in a round trip")
            _ = entry.records
            // Services read what others declared under the entry's key, believing only signed declarations.
            let items = entry.subkeys ?? [:]
            for (subkey, item) in items {
                let record = DHTRecord(key: entry.key, subkey: subkey, value: item.value, expirationTime: item.expirationTime, signature: item.signature)
                let owner = RecordOwnership.verifiedOwner(record)
                if let found = ExpertDeclaration.read(key: entry.key, subkey: subkey, item: item) {
                    fuzzCheck(found.owner == owner, "a declaration believed without its owner's signature: \(record)")
                }
                if let member = DHTMember(key: entry.key, subkey: subkey, item: item) {
                    fuzzCheck(member.isAuthentic == (owner != nil), "a member's authenticity is not its signature's: \(record)")
                }
            }
            if let uid = ExpertUID(entry.key), let claim = ExpertDeclaration.claim(of: uid, in: entry) {
                fuzzCheck(claim.uid == uid && claim.coordinate == nil, "a claim of \(claim.uid) read from the key of \(uid)")
            }
            let members = items.compactMap { DHTMember(key: entry.key, subkey: $0.key, item: $0.value) }
            var candidates = LeaderCandidates()
            while let chosen = candidates.next(from: members, me: "http://127.0.0.1:1", expiration: .infinity, now: now, authentic: \.isAuthentic) {
                fuzzCheck(members.contains { $0.peer == chosen.peer && $0.isAuthentic }, "a leader chosen without its owner's signature: \(chosen.peer)")
            }
            var generator = SplitMix64(seed: 1)
            _ = StateLoader.order(members, excluding: "http://127.0.0.1:1", using: &generator)
            let progress = items.compactMap { TrainerProgress(subkey: $0.key, json: $0.value.value) }
            let global = GlobalProgress.estimate(progress, targetBatchSize: 128, epochFloor: 0, now: now)
            fuzzCheck(global.peers == progress.count && !global.nextFetchTime.isNaN, "the run's progress from \(progress.count) records: \(global)")
            _ = GroupKey.prefix(ofKey: entry.key)
        }
        if let result = try? DHTStoreResult(fields: fields) {
            fuzzCheck((try? DHTStoreResult(fields: JSONObjectReader(result.json))) == result, "a store result changed in a round trip")
        }
    }
}

enum DHTSeeds {
    /// The node's defaults: a day's lifetime, 3 s of clock skew.
    static let validator = RecordValidator(maxKeyBytes: 1024, maxValueBytes: 1 << 20, maxLifetime: 86_400, clockSkew: 3)

    /// What a node keeps, as its RPC handlers change it, without the node's actor and network.
    struct NodeState {
        var routing = RoutingTable(ownID: DHTID(key: "fuzz"))
        var storage = RecordStorage(limits: StorageLimits(maxRecords: 64, maxBytes: 1 << 16))
        var cache = RecordStorage(limits: StorageLimits(maxRecords: 16, maxBytes: 1 << 14))
        let now = 1.7e9

        mutating func heard(from peer: DHTPeer) { _ = routing.addOrUpdate(peer, now: now) }

        /// Stores a record as a peer's STORE would; whether it was kept.
        @discardableResult
        mutating func store(_ record: DHTRecord, inCache: Bool) -> Bool {
            guard case .success(let bytes) = DHTSeeds.validator.checkFromPeer(record, now: now) else { return false }
            let id = DHTID(key: record.key)
            if inCache { return (try? cache.store(record, id: id, now: now, bytes: bytes)) != nil }
            return (try? storage.store(record, id: id, now: now, bytes: bytes)) != nil
        }

        mutating func find(_ id: DHTID, excluding sender: DHTID?) -> (entry: DHTEntry?, nearest: [DHTPeer]) {
            let stored = storage.get(id, now: now)
            let cached = cache.get(id, now: now)
            return (cached ?? stored, routing.nearest(to: id, count: 20, excluding: sender))
        }
    }

    static let peer = DHTPeer(id: DHTID(key: "peer"), address: "http://127.0.0.1:31337")
    static let owner = try! Identity(privateKeyHex: String(repeating: "42", count: 32))
    static let plain = DHTRecord(key: "ffn.0.1", value: ["uid": "ffn.0.1", "url": "http://127.0.0.1:8000"], expirationTime: 1.8e9)
    static let progress = TrainerProgress(subkey: "", epoch: 3, samplesAccumulated: 64, samplesPerSecond: 120, time: 1.7e9, loss: 0.4)
    static let signed = owner.sign(DHTRecord(key: "digits_progress", subkey: owner.ownerMarker + "trainer-1", value: progress.json, expirationTime: 1.8e9))

    /// A host's signed declarations of two experts.
    static let declarations = ExpertDeclaration.records(for: [ExpertUID("ffn.0.1")!, ExpertUID("ffn.0.2")!], hostURL: "http://127.0.0.1:8000",
                                                        expirationTime: 1.8e9, identity: owner)

    /// The dictionary entry the DHT holds for `records` (all of one key).
    static func entry(_ records: [DHTRecord]) -> JSON {
        DHTEntry(key: records[0].key, content: .dictionary(Dictionary(uniqueKeysWithValues: records.map { ($0.subkey!, $0.item) }))).json
    }

    static let messages: [(name: String, json: JSON)] = [
        ("ping", PingRequest(sender: peer, validate: false).json),
        ("ping-response", PingResponse(peer: peer, time: 1.7e9, available: true).json),
        ("store", StoreRequest(sender: peer, records: [plain, signed, DHTRecord(key: "ffn.", subkey: "0", value: 1, expirationTime: 1.8e9)], inCache: true).json),
        ("store-response", StoreResponse(peer: peer, refusals: [nil, StoreRefusal(.outdated, "a later value is held")]).json),
        ("find", FindRequest(sender: peer, ids: [DHTID(key: "ffn.0.1"), DHTID(key: "x")]).json),
        ("find-response", FindResponse(peer: peer, results: [FindResult(entry: DHTEntry(key: "k", content: .value(plain.item)), nearest: [peer])]).json),
    ]

    static let records: [(name: String, json: JSON)] = [
        ("plain", plain.json),
        ("signed", signed.json),
        ("dictionary-entry", DHTEntry(key: "run.0b01", content: .dictionary(["http://127.0.0.1:8100": DHTItem(value: true, expirationTime: 1.8e9),
                                                                            "http://127.0.0.1:8101": DHTItem(value: 2.5, expirationTime: 1.8e9)])).json),
        ("progress-entry", DHTEntry(key: "digits_progress", content: .dictionary([signed.subkey!: signed.item])).json),
        ("expert-claim", entry(declarations.filter { $0.key == "ffn.0.1" })),
        ("expert-prefix", entry(declarations.filter { $0.key == "ffn.0." })),
        ("store-result", DHTStoreResult(key: "k", subkey: "s", stored: true, replicas: 5).json),
    ]
}
