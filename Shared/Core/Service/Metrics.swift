import Synchronization

/// Prometheus metrics of one service: counters, gauges and histograms with
/// labels, rendered in the text exposition format on `GET /metrics`.
/// Every name is prefixed with the service's namespace (`hivemind_dht_...`).
public final class Metrics: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    /// Upper bounds for latency histograms, in seconds.
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    private struct Family {
        var kind: Kind
        var help: String
        var buckets: [Double]
        var series: [[String: String]: Series] = [:]
    }

    private struct Series {
        var value = 0.0
        var bucketCounts: [Int] = []
        var count = 0
    }

    public let namespace: String
    private let families = Mutex<[String: Family]>([:])

    public init(namespace: String) {
        self.namespace = namespace
    }

    /// Declares a metric so it has help text and, for histograms, its buckets.
    /// Undeclared names are created on first use (histograms with latency buckets).
    public func declare(_ name: String, _ kind: Kind, help: String, buckets: [Double] = Metrics.latencyBuckets) {
        families.withLock { $0[name] = $0[name] ?? Family(kind: kind, help: help, buckets: buckets) }
    }

    public func increment(_ name: String, labels: [String: String] = [:], by amount: Double = 1) {
        update(name, .counter, labels) { series, _ in series.value += amount }
    }

    public func set(_ name: String, labels: [String: String] = [:], to value: Double) {
        update(name, .gauge, labels) { series, _ in series.value = value }
    }

    public func observe(_ name: String, labels: [String: String] = [:], _ value: Double) {
        update(name, .histogram, labels) { series, buckets in
            if series.bucketCounts.isEmpty { series.bucketCounts = Array(repeating: 0, count: buckets.count) }
            for (index, bound) in buckets.enumerated() where value <= bound { series.bucketCounts[index] += 1 }
            series.count += 1
            series.value += value
        }
    }

    /// The current value of a counter or gauge (the sum, for a histogram); 0 if never set.
    public func value(_ name: String, labels: [String: String] = [:]) -> Double {
        families.withLock { $0[name]?.series[labels]?.value ?? 0 }
    }

    /// The number of observations of a histogram series.
    public func count(_ name: String, labels: [String: String] = [:]) -> Int {
        families.withLock { $0[name]?.series[labels]?.count ?? 0 }
    }

    /// Every series of a metric: its labels, value (the sum, for a histogram) and
    /// number of observations (histograms only), e.g. for a JSON summary.
    public func series(_ name: String) -> [(labels: [String: String], value: Double, count: Int)] {
        families.withLock { families in
            (families[name]?.series ?? [:]).map { (labels: $0.key, value: $0.value.value, count: $0.value.count) }
        }
    }

    private func update(_ name: String, _ kind: Kind, _ labels: [String: String], _ body: (inout Series, [Double]) -> Void) {
        families.withLock { families in
            // In place: copying the family out and back in would copy all its series on every update.
            let buckets = families[name]?.buckets ?? Metrics.latencyBuckets
            body(&families[name, default: Family(kind: kind, help: name, buckets: buckets)].series[labels, default: Series()], buckets)
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    public func render() -> String {
        let snapshot = families.withLock { $0 }
        var lines: [String] = []
        for name in snapshot.keys.sorted() {
            let family = snapshot[name]!
            let fullName = "\(namespace)_\(name)"
            lines.append("# HELP \(fullName) \(family.help)")
            lines.append("# TYPE \(fullName) \(family.kind.rawValue)")
            // Each series' label text once, not once per comparison of the sort.
            let ordered = family.series.map { (text: Self.labelText($0.key), labels: $0.key, series: $0.value) }.sorted { $0.text < $1.text }
            for (text, labels, series) in ordered {
                guard family.kind == .histogram else {
                    lines.append("\(fullName)\(text) \(Self.number(series.value))")
                    continue
                }
                for (index, bound) in family.buckets.enumerated() {
                    let bucketLabels = labels.merging(["le": Self.number(bound)]) { $1 }
                    lines.append("\(fullName)_bucket\(Self.labelText(bucketLabels)) \(series.bucketCounts[index])")
                }
                lines.append("\(fullName)_bucket\(Self.labelText(labels.merging(["le": "+Inf"]) { $1 })) \(series.count)")
                lines.append("\(fullName)_sum\(text) \(Self.number(series.value))")
                lines.append("\(fullName)_count\(text) \(series.count)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func labelText(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "" }
        let pairs = labels.sorted { $0.key < $1.key }.map { key, value in
            let escaped = value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }
        return "{\(pairs.joined(separator: ","))}"
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
