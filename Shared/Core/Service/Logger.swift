#if canImport(Glibc)
import Glibc
#endif

/// One line per event on standard error: time, level, service, message and
/// `key=value` fields for a person to read, or (format `.json`) one JSON
/// object per line with the same parts for a log collector.
public struct Logger: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-01-01T00:00:00.000Z info hivemind-dht: listening url=http://...`
        case text
        /// `{"time":"2026-01-01T00:00:00.000Z","level":"info","service":"hivemind-dht","message":"listening","url":"http://..."}`
        case json
    }

    public enum Level: Int, Comparable, Sendable, CaseIterable {
        case debug, info, warning, error

        public var name: String { ["debug", "info", "warning", "error"][rawValue] }

        public init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
            self = level
        }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let service: String
    public let level: Level
    public let format: Format

    public init(service: String, level: Level = .info, format: Format = .text) {
        self.service = service
        self.level = level
        self.format = format
    }

    public func debug(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.debug, message, fields) }
    public func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.info, message, fields) }
    public func warning(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.warning, message, fields) }
    public func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.error, message, fields) }

    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String>) {
        guard level >= self.level else { return }
        let line = format == .json ? jsonLine(level, message, fields) : textLine(level, message, fields)
        // One write(2) per line keeps lines from different threads whole.
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    func textLine(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String>) -> String {
        var line = "\(Self.timestamp()) \(level.name) \(service): \(message)"
        for (key, value) in fields {
            line += value.contains(" ") ? " \(key)=\"\(value)\"" : " \(key)=\(value)"
        }
        return line + "\n"
    }

    /// Fields sit next to the fixed keys; a field named like one of them cannot replace it.
    func jsonLine(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String>) -> String {
        var object: [String: JSON] = [:]
        for (key, value) in fields { object[key] = .string(value) }
        object["time"] = .string(Self.timestamp())
        object["level"] = .string(level.name)
        object["service"] = .string(service)
        object["message"] = .string(message)
        return JSON.object(object).serialized() + "\n"
    }

    /// UTC time as ISO 8601 with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

/// An error as an operator's log or a CLI's user should read it: a refusal by
/// another service or DHT node with that peer's own message, which answers to
/// API callers never relay (see `HTTPClientError`).
public func explained(_ error: any Error) -> String {
    if let error = error as? HTTPClientError { return error.detailedDescription }
    if let error = error as? DHTClientError { return error.detailedDescription }
    return "\(error)"
}
