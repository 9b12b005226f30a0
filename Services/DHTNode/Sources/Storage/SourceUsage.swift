/// What one source address may hold at a node.
struct SourceQuota: Sendable, Equatable {
    var maxRecords: Int
    var maxBytes: Int
}

/// Records and bytes held per source address (the IP a record came from:
/// the client that wrote it, or the node that forwarded it). Sources that
/// hold nothing are forgotten, so this stays as small as what it counts.
struct SourceUsage: Sendable {
    struct Usage: Sendable, Equatable {
        var records = 0
        var bytes = 0
    }

    private(set) var bySource: [String: Usage] = [:]

    subscript(source: String) -> Usage { bySource[source] ?? Usage() }

    mutating func add(_ source: String, records: Int = 1, bytes: Int) {
        bySource[source, default: Usage()].records += records
        bySource[source, default: Usage()].bytes += bytes
    }

    mutating func remove(_ source: String, records: Int = 1, bytes: Int) {
        guard var usage = bySource[source] else { return }
        usage.records -= records
        usage.bytes -= bytes
        bySource[source] = usage.records <= 0 && usage.bytes <= 0 ? nil : usage
    }

    /// Why `source` may not take `records` more records of `bytes` more bytes
    /// (after `releasing` what they replace), or nil if it may.
    /// - Parameter what: how the quota's holdings are named in the message.
    func refusal(_ source: String, records: Int, bytes: Int, releasing released: Usage = Usage(),
                 quota: SourceQuota, what: String) -> StoreRefusal? {
        let usage = self[source]
        let newRecords = usage.records - released.records + records, newBytes = usage.bytes - released.bytes + bytes
        guard newRecords > quota.maxRecords || newBytes > quota.maxBytes else { return nil }
        let name = source.isEmpty ? "an unknown address" : source
        return StoreRefusal(.quotaExceeded, "\(name) \(what) \(usage.records) records of \(usage.bytes) bytes; one address may have at most \(quota.maxRecords) records and \(quota.maxBytes) bytes (its share of the node, --max-source-share); try again once some of them expire")
    }
}
