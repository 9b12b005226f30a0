import SharedCore

/// The records one node holds, each until its expiration time, within a
/// record count and byte limit: when over a limit, the records that expire
/// soonest go first. The rules are the reference's: a value is replaced only
/// by one with a later expiration that is not already past; a subkey turns
/// the key into a dictionary (if the dictionary is newer than a plain value
/// there) whose subkeys each follow the same rule.
struct RecordStorage: Sendable {
    private enum Content: Sendable {
        case value(Sized)
        case dictionary([String: Sized])
    }

    /// An item with its approximate size in memory.
    private struct Sized: Sendable {
        var item: DHTItem
        var bytes: Int
    }

    private struct Slot: Sendable {
        var key: String
        var content: Content
        /// The value's expiration, or the latest subkey's.
        var expirationTime: Double
        var bytes: Int
    }

    /// Ordered by expiration: the heap's top is the record to drop first.
    private struct Deadline: Comparable, Sendable {
        var expirationTime: Double
        var id: DHTID
        static func < (lhs: Deadline, rhs: Deadline) -> Bool {
            (lhs.expirationTime, lhs.id) < (rhs.expirationTime, rhs.id)
        }
    }

    let limits: StorageLimits
    private var slots: [DHTID: Slot] = [:]
    /// May hold outdated deadlines of replaced records; they are skipped when popped.
    private var deadlines = MinHeap<Deadline>()
    private(set) var totalBytes = 0

    init(limits: StorageLimits = StorageLimits()) {
        self.limits = limits
    }

    /// Records held, expired ones included until the next call that drops them.
    var count: Int { slots.count }

    /// Stores a record under `id` (the id of `record.key`).
    /// - Returns: true if it was stored; false if something with a later or
    ///   equal expiration is already there, or the expiration is past.
    @discardableResult
    mutating func store(_ record: DHTRecord, id: DHTID, now: Double) -> Bool {
        guard record.expirationTime >= now else { return false }
        let sized = Sized(item: record.item, bytes: Self.size(of: record))
        guard let subkey = record.subkey else {
            if let slot = slots[id], slot.expirationTime >= record.expirationTime { return false }
            put(Slot(key: record.key, content: .value(sized), expirationTime: record.expirationTime, bytes: sized.bytes), at: id)
            return true
        }
        guard let slot = slots[id], case .dictionary(var items) = slot.content else {
            if let slot = slots[id], slot.expirationTime >= record.expirationTime { return false }
            put(Slot(key: record.key, content: .dictionary([subkey: sized]), expirationTime: record.expirationTime, bytes: sized.bytes), at: id)
            return true
        }
        if let existing = items[subkey], existing.item.expirationTime >= record.expirationTime { return false }
        let bytes = slot.bytes - (items[subkey]?.bytes ?? 0) + sized.bytes
        items[subkey] = sized
        put(Slot(key: slot.key, content: .dictionary(items), expirationTime: max(slot.expirationTime, record.expirationTime), bytes: bytes), at: id)
        return true
    }

    /// What is held under `id` and has not expired (a dictionary without its expired subkeys).
    mutating func get(_ id: DHTID, now: Double) -> DHTEntry? {
        dropExpired(now: now)
        guard var slot = slots[id] else { return nil }
        switch slot.content {
        case .value(let sized):
            return DHTEntry(key: slot.key, content: .value(sized.item))
        case .dictionary(var items):
            let expired = items.filter { $0.value.item.expirationTime < now }
            guard !expired.isEmpty else { return DHTEntry(key: slot.key, content: .dictionary(items.mapValues(\.item))) }
            for (subkey, sized) in expired {
                items[subkey] = nil
                slot.bytes -= sized.bytes
                totalBytes -= sized.bytes
            }
            slot.content = .dictionary(items)
            slots[id] = slot
            return DHTEntry(key: slot.key, content: .dictionary(items.mapValues(\.item)))
        }
    }

    /// The expiration of what is held under `id`, if anything (expired records included).
    func expirationTime(of id: DHTID) -> Double? { slots[id]?.expirationTime }

    /// Every unexpired record, e.g. to hand some to a newly met node.
    mutating func entries(now: Double) -> [(id: DHTID, entry: DHTEntry)] {
        dropExpired(now: now)
        return slots.keys.compactMap { id in get(id, now: now).map { (id, $0) } }
    }

    /// Drops records whose expiration is past.
    mutating func dropExpired(now: Double) {
        while let top = deadlines.top, top.expirationTime < now {
            deadlines.pop()
            removeIfCurrent(top)
        }
    }

    private mutating func put(_ slot: Slot, at id: DHTID) {
        totalBytes += slot.bytes - (slots[id]?.bytes ?? 0)
        let deadlineChanged = slots[id]?.expirationTime != slot.expirationTime
        slots[id] = slot
        if deadlineChanged { deadlines.push(Deadline(expirationTime: slot.expirationTime, id: id)) }
        while slots.count > limits.maxRecords || totalBytes > limits.maxBytes, let top = deadlines.pop() {
            removeIfCurrent(top)
        }
        if deadlines.count > 2 * slots.count + 1024 {
            // Replaced records leave outdated deadlines behind; rebuild before they pile up.
            deadlines = MinHeap(slots.map { Deadline(expirationTime: $0.value.expirationTime, id: $0.key) })
        }
    }

    /// Removes the record a deadline belongs to, unless a newer store replaced it.
    private mutating func removeIfCurrent(_ deadline: Deadline) {
        guard let slot = slots[deadline.id], slot.expirationTime == deadline.expirationTime else { return }
        slots[deadline.id] = nil
        totalBytes -= slot.bytes
    }

    /// Approximate bytes a record takes (its text plus bookkeeping).
    private static func size(of record: DHTRecord) -> Int {
        64 + record.key.utf8.count + (record.subkey?.utf8.count ?? 0) + record.value.serializedBytes().count + (record.signature?.utf8.count ?? 0)
    }
}
