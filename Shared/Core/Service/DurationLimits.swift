/// The bounds every duration a caller sets is checked against, in one place so
/// that the services agree with each other and with their OpenAPI documents
/// (`minimum` there). Values outside get a 400 that names the bound.
public enum DurationLimits {
    /// The shortest timeout a call takes, 1 ms: less cannot reach even a peer
    /// on loopback, so a few nanoseconds is a mistake, not a wish.
    public static let minimumTimeout = 0.001
    /// The shortest lifetime of a record another peer is meant to read, 1 s:
    /// a shorter one expires before anybody could read it.
    public static let minimumExpiration = 1.0

    /// Checks `value` (seconds) against `range`.
    /// - Throws: `DurationError` naming `name`, the bounds and the value.
    public static func check(_ value: Double, _ name: String, in range: ClosedRange<Double>) throws(DurationError) -> Double {
        guard range.contains(value) else { throw DurationError(name: name, range: range, got: "\(value)") }
        return value
    }

    /// `text` read as seconds within `range`.
    /// - Throws: `DurationError` for text that is not a number, or a number out of range.
    public static func parse(_ text: String, _ name: String, in range: ClosedRange<Double>) throws(DurationError) -> Double {
        guard let value = Double(text), range.contains(value) else {
            throw DurationError(name: name, range: range, got: "'\(text.prefix(40))'")
        }
        return value
    }
}

/// A duration outside its bounds; the message names them.
public struct DurationError: Error, CustomStringConvertible, Sendable {
    public let message: String

    init(name: String, range: ClosedRange<Double>, got: String) {
        message = "\(name) must be a number of seconds from \(Self.format(range.lowerBound)) to \(Self.format(range.upperBound)), got \(got)"
    }

    public var description: String { message }

    /// 0.001 as "0.001 (1 ms)", 60 as "60".
    private static func format(_ seconds: Double) -> String {
        let text = seconds == seconds.rounded() ? String(Int(seconds)) : "\(seconds)"
        return seconds > 0 && seconds < 1 ? "\(text) (\(Int((seconds * 1000).rounded())) ms)" : text
    }
}
