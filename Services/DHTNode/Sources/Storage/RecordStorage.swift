import SharedCore

/// The records one node holds, each until its expiration time. The rules are
/// the reference's: a value is replaced only by one with a later expiration
/// that is not already past; a subkey turns the key into a dictionary (if the
/// dictionary is newer than a plain value there) whose subkeys each follow the
/// same rule. On top of them, what keeps one writer from taking the node:
/// - a key holds at most `maxSubkeysPerKey` subkeys and `maxBytesPerKey` bytes;
/// - each source address holds at most its share of the node (`sourceShare`);
/// - a full node refuses (`.refuse`, for storage: expired records go first,
///   nobody's unexpired record is evicted) or, for a cache, drops the records
///   that expire soonest (`.evictSoonestExpiring`);
/// - a subkey that is exactly an owner marker claims its key: while it is
///   unexpired, records of any other owner (or of none) are refused there, so a
///   claim can be neither taken over nor replaced by a plain value.
struct RecordStorage: Sendable {
    /// What a store that does not fit does.
    enum WhenFull: Sendable {
        case refuse
        case evictSoonestExpiring
    }

    /// An unexpired claim on a key.
    struct Claim: Sendable, Equatable {
        /// The owner's public key, lowercase hex.
        var owner: String
        var until: Double
    }

    private enum Content: Sendable {
        case value(Sized)
        case dictionary([String: Sized])
    }

    /// An item with its approximate size in memory and the address it came from.
    private struct Sized: Sendable {
        var item: DHTItem
        var bytes: Int
        var source: String
    }

    private struct Slot: Sendable {
        var key: String
        var content: Content
        /// The value's expiration, or the latest subkey's.
        var expirationTime: Double
        var bytes: Int

        var items: [Sized] {
            switch content {
            case .value(let sized): [sized]
            case .dictionary(let items): Array(items.values)
            }
        }

        var records: Int {
            switch content {
            case .value: 1
            case .dictionary(let items): items.count
            }
        }
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
    let whenFull: WhenFull
    private let quota: SourceQuota?
    private var slots: [DHTID: Slot] = [:]
    /// May hold outdated deadlines of replaced records; they are skipped when popped.
    private var deadlines = MinHeap<Deadline>()
    /// Records held (values and subkeys), expired ones included until they are dropped.
    private(set) var count = 0
    private(set) var totalBytes = 0
    /// What each source address holds here.
    private(set) var usage = SourceUsage()

    init(limits: StorageLimits = StorageLimits(), whenFull: WhenFull = .refuse) {
        self.limits = limits
        self.whenFull = whenFull
        quota = limits.sourceQuota
    }

    /// Keys held.
    var keyCount: Int { slots.count }

    /// Stores a record under `id` (the id of `record.key`), counted against `source`.
    /// - Parameter bytes: `record.storedBytes`, if the caller knows it already.
    /// - Throws: `StoreRefusal` saying why it was not stored (`outdated`: something
    ///   with a later or equal expiration is held).
    mutating func store(_ record: DHTRecord, id: DHTID, now: Double, source: String = "", bytes: Int? = nil) throws(StoreRefusal) {
        guard record.expirationTime >= now else {
            throw StoreRefusal(.expired, "the expiration \(record.expirationTime) is already past (now is \(now))")
        }
        let sized = Sized(item: record.item, bytes: bytes ?? record.storedBytes, source: source)
        dropExpiredSubkeys(id, now: now)
        if count + 1 > limits.maxRecords || totalBytes + sized.bytes > limits.maxBytes { dropExpired(now: now) }

        if let refusal = claimRefusal(for: record, id: id, now: now) { throw refusal }
        let slot = slots[id]
        // The slot after the store, and the items the record replaces.
        var replaced: [Sized] = []
        let updated: Slot
        if let subkey = record.subkey, let slot, case .dictionary(var items) = slot.content {
            if let existing = items[subkey] {
                guard existing.item.expirationTime < record.expirationTime else { throw Self.outdated(existing.item.expirationTime) }
                replaced = [existing]
            }
            items[subkey] = sized
            updated = Slot(key: slot.key, content: .dictionary(items), expirationTime: max(slot.expirationTime, record.expirationTime),
                           bytes: slot.bytes - (replaced.first?.bytes ?? 0) + sized.bytes)
        } else {
            if let slot {
                guard slot.expirationTime < record.expirationTime else { throw Self.outdated(slot.expirationTime) }
                replaced = slot.items
            }
            updated = Slot(key: record.key, content: record.subkey.map { .dictionary([$0: sized]) } ?? .value(sized),
                           expirationTime: record.expirationTime, bytes: sized.bytes)
        }

        if updated.records > limits.maxSubkeysPerKey {
            throw StoreRefusal(.keyFull, "the key '\(record.key.prefix(200))' holds \(updated.records - 1) subkeys; at most \(limits.maxSubkeysPerKey) are allowed per key (--max-subkeys-per-key)")
        }
        if updated.bytes > limits.maxBytesPerKey {
            throw StoreRefusal(.keyFull, "the key '\(record.key.prefix(200))' would hold \(updated.bytes) bytes with this record; at most \(limits.maxBytesPerKey) are allowed per key (--max-bytes-per-key)")
        }
        if let quota {
            var released = SourceUsage.Usage()
            for item in replaced where item.source == source {
                released.records += 1
                released.bytes += item.bytes
            }
            if let refusal = usage.refusal(source, records: 1, bytes: sized.bytes, releasing: released, quota: quota, what: "holds") {
                throw refusal
            }
        }
        let replacedBytes = replaced.reduce(0) { $0 + $1.bytes }
        func fits() -> Bool {
            count - replaced.count + 1 <= limits.maxRecords && totalBytes - replacedBytes + sized.bytes <= limits.maxBytes
        }
        if !fits() && whenFull == .evictSoonestExpiring {
            var kept: [Deadline] = []
            while !fits(), let top = deadlines.pop() {
                if top.id == id { kept.append(top) } else { removeIfCurrent(top) }
            }
            for deadline in kept { deadlines.push(deadline) }
        }
        guard fits() else {
            throw StoreRefusal(.storageFull, "this node holds \(count) records of \(totalBytes) bytes, none of them expired; it keeps at most \(limits.maxRecords) records and \(limits.maxBytes) bytes (--max-records, --max-storage-bytes); store through other nodes or try again later")
        }

        for item in replaced { usage.remove(item.source, bytes: item.bytes) }
        usage.add(source, bytes: sized.bytes)
        count += 1 - replaced.count
        totalBytes += sized.bytes - replacedBytes
        if slot?.expirationTime != updated.expirationTime {
            deadlines.push(Deadline(expirationTime: updated.expirationTime, id: id))
        }
        slots[id] = updated
        if deadlines.count > 2 * slots.count + 1024 {
            // Replaced records leave outdated deadlines behind; rebuild before they pile up.
            deadlines = MinHeap(slots.map { Deadline(expirationTime: $0.value.expirationTime, id: $0.key) })
        }
    }

    /// What is held under `id` and has not expired (a dictionary without its expired subkeys).
    mutating func get(_ id: DHTID, now: Double) -> DHTEntry? {
        dropExpired(now: now)
        dropExpiredSubkeys(id, now: now)
        guard let slot = slots[id] else { return nil }
        switch slot.content {
        case .value(let sized): return DHTEntry(key: slot.key, content: .value(sized.item))
        case .dictionary(let items): return DHTEntry(key: slot.key, content: .dictionary(items.mapValues(\.item)))
        }
    }

    /// The bytes held under `id` (as `get` returns them, once expired subkeys are dropped).
    func bytes(of id: DHTID) -> Int { slots[id]?.bytes ?? 0 }

    /// The expiration of what is held under `id`, if anything (expired records included).
    func expirationTime(of id: DHTID) -> Double? { slots[id]?.expirationTime }

    /// The unexpired claim on the key `id`, if any.
    func claim(of id: DHTID, now: Double) -> Claim? {
        slots[id].flatMap { Self.claim(in: $0, now: now) }
    }

    /// Why `record` may not go under `id` while another owner's claim holds
    /// the key, or nil if no claim stands in its way.
    func claimRefusal(for record: DHTRecord, id: DHTID, now: Double) -> StoreRefusal? {
        guard let claim = claim(of: id, now: now), (try? RecordOwnership.owner(of: record)) != claim.owner else { return nil }
        return StoreRefusal(.claimed, "the key '\(record.key.prefix(200))' is claimed by the owner \(claim.owner) until \(claim.until) (its subkey \(RecordOwnership.marker(publicKeyHex: claim.owner))); other owners' records are refused there until then")
    }

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

    /// Drops the expired subkeys of one dictionary (the whole slot if it has expired),
    /// so that they count against no limit.
    private mutating func dropExpiredSubkeys(_ id: DHTID, now: Double) {
        guard var slot = slots[id] else { return }
        guard slot.expirationTime >= now else {
            remove(id)
            return
        }
        guard case .dictionary(var items) = slot.content else { return }
        let expired = items.filter { $0.value.item.expirationTime < now }
        guard !expired.isEmpty else { return }
        for (subkey, sized) in expired {
            items[subkey] = nil
            slot.bytes -= sized.bytes
            release(sized)
        }
        slot.content = .dictionary(items)
        slots[id] = slot
    }

    /// Removes the record a deadline belongs to, unless a newer store replaced it.
    private mutating func removeIfCurrent(_ deadline: Deadline) {
        guard let slot = slots[deadline.id], slot.expirationTime == deadline.expirationTime else { return }
        remove(deadline.id)
    }

    private mutating func remove(_ id: DHTID) {
        guard let slot = slots.removeValue(forKey: id) else { return }
        for item in slot.items { release(item) }
    }

    private mutating func release(_ item: Sized) {
        count -= 1
        totalBytes -= item.bytes
        usage.remove(item.source, bytes: item.bytes)
    }

    private static func outdated(_ held: Double) -> StoreRefusal {
        StoreRefusal(.outdated, "a value expiring at \(held) is held; a store needs a later expiration")
    }

    private static func claim(in slot: Slot, now: Double) -> Claim? {
        guard case .dictionary(let items) = slot.content else { return nil }
        for (subkey, sized) in items where sized.item.expirationTime >= now {
            if let owner = RecordOwnership.claimant(ofSubkey: subkey) { return Claim(owner: owner, until: sized.item.expirationTime) }
        }
        return nil
    }
}
