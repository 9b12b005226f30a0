import SharedCore

/// What each client wrote through this node's public API and has not yet
/// expired, counted against the client's address before the node replicates
/// the records. The replicas count them against this node, so without this a
/// client could pass a flood through a node and use up that node's share at
/// every replica. A write of a key and subkey counts once: a later write of
/// the same one replaces it, an earlier or equal one adds nothing (the
/// replicas refuse it anyway), and one that no node stored is taken back.
struct WriteLedger: Sendable {
    private struct Name: Hashable, Comparable, Sendable {
        var id: DHTID
        var subkey: String?
        static func < (lhs: Name, rhs: Name) -> Bool { (lhs.id, lhs.subkey ?? "") < (rhs.id, rhs.subkey ?? "") }
    }

    private struct Entry: Sendable {
        var source: String
        var expirationTime: Double
        var bytes: Int
    }

    private struct Deadline: Comparable, Sendable {
        var expirationTime: Double
        var name: Name
        static func < (lhs: Deadline, rhs: Deadline) -> Bool { (lhs.expirationTime, lhs.name) < (rhs.expirationTime, rhs.name) }
    }

    /// What one client may have written and not yet expired.
    let quota: SourceQuota
    /// Writes tracked at most, over all clients.
    let capacity: Int
    private var entries: [Name: Entry] = [:]
    private var deadlines = MinHeap<Deadline>()
    private(set) var usage = SourceUsage()

    init(quota: SourceQuota, capacity: Int) {
        self.quota = quota
        self.capacity = capacity
    }

    /// Writes tracked, expired ones included until the next admission.
    var count: Int { entries.count }

    /// Counts `records` (with their sizes, as storage counts them) against
    /// `source`: all of them, or none.
    /// - Throws: `StoreRefusal` `quotaExceeded` past the client's quota,
    ///   `storageFull` when the ledger tracks its capacity.
    mutating func admit(_ records: [(id: DHTID, record: DHTRecord, bytes: Int)], source: String, now: Double) throws(StoreRefusal) {
        dropExpired(now: now)
        var added = SourceUsage.Usage(), released = SourceUsage.Usage()
        for (id, record, bytes) in records {
            if let old = entries[Name(id: id, subkey: record.subkey)] {
                guard old.expirationTime < record.expirationTime else { continue }
                if old.source == source {
                    released.records += 1
                    released.bytes += old.bytes
                }
            }
            added.records += 1
            added.bytes += bytes
        }
        if let refusal = usage.refusal(source, records: added.records, bytes: added.bytes, releasing: released,
                                       quota: quota, what: "has written through this node") {
            throw refusal
        }
        guard entries.count + added.records <= capacity else {
            throw StoreRefusal(.storageFull, "this node tracks \(entries.count) unexpired writes of its clients, its most (--max-records); try another node or again later")
        }
        for (id, record, bytes) in records {
            let name = Name(id: id, subkey: record.subkey)
            if let old = entries[name] {
                guard old.expirationTime < record.expirationTime else { continue }
                usage.remove(old.source, bytes: old.bytes)
            }
            entries[name] = Entry(source: source, expirationTime: record.expirationTime, bytes: bytes)
            usage.add(source, bytes: bytes)
            deadlines.push(Deadline(expirationTime: record.expirationTime, name: name))
        }
        if deadlines.count > 2 * entries.count + 1024 {
            deadlines = MinHeap(entries.map { Deadline(expirationTime: $0.value.expirationTime, name: $0.key) })
        }
    }

    /// Takes back the count of a write that no node stored (if it is still the one counted).
    mutating func withdraw(_ record: DHTRecord, id: DHTID, source: String) {
        let name = Name(id: id, subkey: record.subkey)
        guard let entry = entries[name], entry.source == source, entry.expirationTime == record.expirationTime else { return }
        entries[name] = nil
        usage.remove(source, bytes: entry.bytes)
    }

    /// Forgets writes whose expiration is past.
    mutating func dropExpired(now: Double) {
        while let top = deadlines.top, top.expirationTime < now {
            deadlines.pop()
            guard let entry = entries[top.name], entry.expirationTime == top.expirationTime else { continue }
            entries[top.name] = nil
            usage.remove(entry.source, bytes: entry.bytes)
        }
    }
}
