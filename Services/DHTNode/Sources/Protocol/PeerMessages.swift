import SharedCore

// The bodies of the RPCs between DHT nodes (POST /v1/dht/ping|store|find).
// A request carries its sender as `peer` so that the receiver can add it to
// its routing table; a node in client mode leaves `peer` out and is never added.

/// `POST /v1/dht/ping`: "are you there, and what is your id?"
struct PingRequest: Sendable {
    var sender: DHTPeer?
    /// Ask the receiver to ping the sender back, to prove the sender is reachable at its address.
    var validate: Bool

    var json: JSON {
        var members: [String: JSON] = ["validate": .bool(validate)]
        if let sender { members["peer"] = sender.json }
        return .object(members)
    }

    init(sender: DHTPeer?, validate: Bool) {
        self.sender = sender
        self.validate = validate
    }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        sender = try fields.optional("peer", JSONObjectReader.object).map { reader throws(JSONFieldError) in try DHTPeer(fields: reader) }
        validate = try fields.optional("validate", JSONObjectReader.bool) ?? false
    }
}

struct PingResponse: Sendable {
    var peer: DHTPeer
    /// The responder's clock (epoch seconds), for the caller's clock-skew check.
    var time: Double
    /// With `validate`: whether the responder could ping the sender back.
    var available: Bool

    var json: JSON { ["peer": peer.json, "time": .double(time), "available": .bool(available)] }

    init(peer: DHTPeer, time: Double, available: Bool) {
        self.peer = peer
        self.time = time
        self.available = available
    }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        peer = try DHTPeer(fields: fields.object("peer"))
        time = try fields.double("time")
        available = try fields.bool("available")
    }
}

/// `POST /v1/dht/store`: store many records at once.
struct StoreRequest: Sendable {
    var sender: DHTPeer?
    var records: [DHTRecord]
    /// Per record: keep it in the cache (evictable) rather than in storage.
    var inCache: [Bool]

    init(sender: DHTPeer?, records: [DHTRecord], inCache: Bool = false) {
        self.sender = sender
        self.records = records
        self.inCache = Array(repeating: inCache, count: records.count)
    }

    var json: JSON {
        let items = zip(records, inCache).map { record, inCache -> JSON in
            guard inCache, case .object(var members) = record.json else { return record.json }
            members["in_cache"] = true
            return .object(members)
        }
        var members: [String: JSON] = ["records": .array(items)]
        if let sender { members["peer"] = sender.json }
        return .object(members)
    }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        sender = try fields.optional("peer", JSONObjectReader.object).map { reader throws(JSONFieldError) in try DHTPeer(fields: reader) }
        records = []
        inCache = []
        for (index, item) in try fields.array("records").enumerated() {
            let reader = try JSONObjectReader(item, path: "records[\(index)]")
            records.append(try DHTRecord(fields: reader))
            inCache.append(try reader.optional("in_cache", JSONObjectReader.bool) ?? false)
        }
    }
}

struct StoreResponse: Sendable {
    var peer: DHTPeer
    /// Per record: nil if stored, else why not. On the wire `results` holds
    /// the verdicts as booleans and `refused` the reasons (null where stored);
    /// a node that sends no reasons is read as refusing for `outdated`.
    var refusals: [StoreRefusal?]

    var results: [Bool] { refusals.map { $0 == nil } }

    var json: JSON {
        ["peer": peer.json, "results": .array(results.map(JSON.bool)),
         "refused": .array(refusals.map { $0?.wire.json ?? .null })]
    }

    init(peer: DHTPeer, refusals: [StoreRefusal?]) {
        self.peer = peer
        self.refusals = refusals
    }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        peer = try DHTPeer(fields: fields.object("peer"))
        let results = try fields.array("results").enumerated().map { index, value throws(JSONFieldError) in
            guard let stored = value.boolValue else { throw JSONFieldError(path: "results[\(index)]", expected: "a boolean", found: value.typeName) }
            return stored
        }
        let reasons = try fields.optional("refused", JSONObjectReader.array) ?? []
        refusals = results.enumerated().map { index, stored in
            guard !stored else { return nil }
            let reason = index < reasons.count ? (try? JSONObjectReader(reasons[index])).flatMap { try? DHTRefusal(fields: $0) } : nil
            return reason.map(StoreRefusal.init(wire:)) ?? StoreRefusal(.outdated, "refused")
        }
    }
}

/// `POST /v1/dht/find`: per id, the value held (if any) and the nearest nodes known.
struct FindRequest: Sendable {
    var sender: DHTPeer?
    var ids: [DHTID]
    /// Whether the answer should carry the values held. A lookup that only
    /// looks for nodes (to store, to fill the routing table) sends `"values":
    /// false` and saves the responder copying and the network carrying every
    /// record under the key; a node that does not know the field answers with
    /// values, which such a lookup ignores.
    var values: Bool

    init(sender: DHTPeer?, ids: [DHTID], values: Bool = true) {
        self.sender = sender
        self.ids = ids
        self.values = values
    }

    var json: JSON {
        var members: [String: JSON] = ["ids": .array(ids.map { .string($0.hex) })]
        if let sender { members["peer"] = sender.json }
        if !values { members["values"] = false }
        return .object(members)
    }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        values = try fields.optional("values", JSONObjectReader.bool) ?? true
        sender = try fields.optional("peer", JSONObjectReader.object).map { reader throws(JSONFieldError) in try DHTPeer(fields: reader) }
        ids = try fields.array("ids").enumerated().map { index, value throws(JSONFieldError) in
            guard let hex = value.stringValue, let id = DHTID(hex: hex) else {
                throw JSONFieldError(path: "ids[\(index)]", expected: "an id of 40 hex digits", found: value.typeName)
            }
            return id
        }
    }
}

struct FindResult: Sendable {
    /// What the responder holds under the id (storage or cache, whichever expires later).
    var entry: DHTEntry?
    /// The responder's nearest known nodes to the id, nearest first, without the requester.
    var nearest: [DHTPeer]

    init(entry: DHTEntry?, nearest: [DHTPeer]) {
        self.entry = entry
        self.nearest = nearest
    }

    var json: JSON { ["entry": entry?.json ?? .null, "nearest": .array(nearest.map(\.json))] }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        entry = try fields.optional("entry", JSONObjectReader.object).map { reader throws(JSONFieldError) in try DHTEntry(fields: reader) }
        // A peer the responder names in a form we do not call is left out, not fatal to the answer.
        nearest = try fields.array("nearest").compactMap { value in try? DHTPeer(fields: JSONObjectReader(value)) }
    }
}

struct FindResponse: Sendable {
    var peer: DHTPeer
    /// One result per requested id, in order.
    var results: [FindResult]

    init(peer: DHTPeer, results: [FindResult]) {
        self.peer = peer
        self.results = results
    }

    var json: JSON { ["peer": peer.json, "results": .array(results.map(\.json))] }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        peer = try DHTPeer(fields: fields.object("peer"))
        results = try fields.array("results").enumerated().map { index, value throws(JSONFieldError) in
            try FindResult(fields: JSONObjectReader(value, path: "results[\(index)]"))
        }
    }
}
