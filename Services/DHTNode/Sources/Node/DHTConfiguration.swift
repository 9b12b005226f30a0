/// The settings of one DHT node; the defaults are the reference's.
public struct DHTConfiguration: Sendable {
    /// k: nodes per k-bucket, and nodes returned per find.
    public var bucketSize = 20
    /// b: a full bucket far from our id splits only at depths that are not multiples of b.
    public var depthModulo = 5
    /// Nodes that store each record.
    public var numReplicas = 5
    /// alpha: find requests in flight per lookup.
    public var parallelism = 3
    /// Seconds one RPC to another node may take.
    public var rpcTimeout = 3.0
    /// Seconds a whole lookup may take before it settles for what it found.
    public var lookupTimeout = 15.0
    /// Seconds a failed node is skipped; doubled per further failure.
    public var blacklistSeconds = 5.0
    /// Seconds between refreshes of buckets nobody was heard from in; nil turns refreshing off.
    public var refreshPeriod: Double? = 30
    /// Ask but never be added to other nodes' routing tables (for nodes behind NAT).
    public var clientMode = false
    /// Largest key and subkey, in UTF-8 bytes.
    public var maxKeyBytes = 1024
    /// Largest value, in bytes of compact JSON.
    public var maxValueBytes = 1 << 20
    /// Most find ids or store records in one request.
    public var maxBatch = 1024
    /// Clocks of peers may differ from ours by at most this many seconds.
    public var maxClockSkew = 3.0
    /// Seconds a record may live: a store expiring later than now plus this
    /// is refused, so that no record outlives its writer for long (one day).
    public var maxRecordLifetime = 86_400.0
    /// Records this node keeps for the DHT.
    public var storageLimits = StorageLimits()
    /// Values it fetched or was sent for caching; evicted first, since the DHT holds them elsewhere.
    public var cacheLimits = StorageLimits(maxRecords: 5_000, maxBytes: 16 << 20, sourceShare: nil)
    /// After a get, push the value to this many nearest visited nodes that lacked it.
    public var cacheNearest = 1
    /// Refresh a cached value that was read this many seconds before it expires.
    public var cacheRefreshBeforeExpiry = 5.0

    /// The reference's defaults.
    public init() {}
}

/// Bounds on the records a node keeps. A record is one value or one subkey.
/// Storage refuses what does not fit (expired records go first); the cache
/// makes room by dropping the records that expire soonest.
public struct StorageLimits: Sendable {
    /// Records kept at most.
    public var maxRecords: Int
    /// Approximate bytes of keys, values and signatures.
    public var maxBytes: Int
    /// Subkeys one key may hold: room for a grid dimension of 1024 experts, or
    /// for the averagers of one group key, while a GET of one key stays bounded.
    public var maxSubkeysPerKey: Int
    /// Bytes one key may hold (its subkeys together): four values of the
    /// largest size, and what one find answer or GET carries at most per key.
    public var maxBytesPerKey: Int
    /// The share of `maxRecords` and `maxBytes` one source address may hold
    /// (nil: no per-source quota, as for the cache), so that one address cannot fill the node.
    public var sourceShare: Double?

    /// The defaults: 50,000 records and 128 MiB (a full node stays under
    /// 300 MB resident: a small record takes about 1.4 KB), 1024 subkeys and
    /// 4 MiB per key, a tenth of the node per source address.
    public init(maxRecords: Int = 50_000, maxBytes: Int = 128 << 20, maxSubkeysPerKey: Int = 1024,
                maxBytesPerKey: Int = 4 << 20, sourceShare: Double? = 0.1) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
        self.maxSubkeysPerKey = maxSubkeysPerKey
        self.maxBytesPerKey = maxBytesPerKey
        self.sourceShare = sourceShare
    }

    /// What one source may hold, given the share; nil without a quota.
    var sourceQuota: SourceQuota? {
        sourceShare.map { SourceQuota(maxRecords: max(1, Int(Double(maxRecords) * $0)), maxBytes: max(1, Int(Double(maxBytes) * $0))) }
    }
}
