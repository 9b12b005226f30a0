#if canImport(Glibc)
import Glibc
#endif

/// One command-line option of a service. Every option can also be set by an
/// environment variable, `HIVEMIND_` plus the name in upper snake case
/// (`--initial-peers` is `HIVEMIND_INITIAL_PEERS`), for containers.
public struct OptionSpec: Sendable {
    public let name: String
    public let defaultValue: String?
    public let help: String
    /// A switch takes no value: present means true.
    public let isSwitch: Bool

    public init(_ name: String, default defaultValue: String? = nil, help: String, isSwitch: Bool = false) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
        self.isSwitch = isSwitch
    }

    public var environmentName: String {
        "HIVEMIND_" + name.uppercased().replacingAll("-", with: "_")
    }

    /// Options every service has.
    public static let common: [OptionSpec] = [
        OptionSpec("host", default: "127.0.0.1", help: "IPv4 address to listen on (0.0.0.0 for all interfaces)"),
        OptionSpec("port", default: "0", help: "port to listen on; 0 lets the OS pick (the address is printed on start)"),
        OptionSpec("announce-address", help: "base URL other services use to reach this one (default http://HOST:PORT; for host 0.0.0.0, this machine's first non-loopback IPv4 address)"),
        OptionSpec("max-body-bytes", default: String(256 << 20), help: "largest request body any route accepts (routes take less: control messages 1 MiB); larger ones get 413"),
        OptionSpec("max-connections", default: "1024", help: "open connections at most; more are refused at accept"),
        OptionSpec("max-connections-per-address", default: "128", help: "open connections from one IP address at most, so that one address cannot lock out others"),
        OptionSpec("receive-timeout", default: "30", help: "seconds a request may take to arrive whole, plus 1 s per 64 KiB of its body (the same for an answer to leave); slower connections are cut"),
        OptionSpec("threads", default: "4", help: "HTTP polling threads"),
        OptionSpec("log-level", default: "info", help: "debug, info, warning or error"),
        OptionSpec("log-format", default: "text", help: "text (one readable line per event) or json (one JSON object per line, for log collectors)"),
        OptionSpec("shutdown-grace", default: "5", help: "seconds requests in flight may take to finish after SIGTERM or SIGINT; those still running then get 503, and the service exits"),
        OptionSpec("egress-allow", help: "comma-separated address ranges (CIDR) this service may call; when set, only these (default: any address but the never-called link-local, metadata and multicast ones, and loopback unless --host is loopback)"),
        OptionSpec("egress-deny", help: "comma-separated address ranges (CIDR) this service never calls, e.g. an internal network"),
        OptionSpec("check-reachability", default: "true", help: "at start, ask a DHT node to call this service back at its announced address, and say what it found (behind NAT: use --use-relay)"),
        OptionSpec("use-relay", help: "URL of a DHT node started with --relay: if the reachability check finds this service cannot be called, it is reached through that relay and announces the relayed address"),
        OptionSpec("parent-pid", help: "stop gracefully once the process with this pid is no longer this one's parent (set by supervisors such as hivemind mesh up, so that no service outlives them)"),
    ] + ServiceSecurity.options
}

/// A configuration problem, reported before the service starts.
public struct OptionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parsed options: command-line flags win over environment variables, which win over defaults.
public struct ServiceOptions: Sendable {
    public let service: String
    public let specs: [OptionSpec]
    private let values: [String: String]

    /// - Throws: `OptionError` for an unknown flag or a missing value;
    ///   `--help` is reported as `OptionError` with the usage text and `isHelp`.
    public init(service: String, specs: [OptionSpec], arguments: [String], environment: [String: String]) throws(OptionError) {
        self.service = service
        self.specs = specs
        var values: [String: String] = [:]
        for spec in specs {
            if let value = environment[spec.environmentName] { values[spec.name] = value }
            else if let value = spec.defaultValue { values[spec.name] = value }
        }
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if argument == "--help" || argument == "-h" {
                throw OptionError(Self.usage(service: service, specs: specs))
            }
            guard argument.hasPrefix("--") else {
                throw OptionError("unexpected argument '\(argument)'; options start with -- (see --help)")
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let spec = specs.first(where: { $0.name == name }) else {
                throw OptionError("unknown option --\(name); known options: \(specs.map { "--\($0.name)" }.joined(separator: ", "))")
            }
            if spec.isSwitch {
                values[name] = inlineValue ?? "true"
            } else if let value = inlineValue ?? remaining.popFirst() {
                values[name] = value
            } else {
                throw OptionError("option --\(name) needs a value: \(spec.help)")
            }
        }
        self.values = values
    }

    /// Sets up libcrypto (`OpenSSLLibrary`), reads the process's own arguments and environment and installs the
    /// process's `EgressPolicy` from them (before any call goes out); prints
    /// usage or the error and exits (0 for --help, 2 otherwise) when they are not usable.
    public static func parseOrExit(service: String, specs: [OptionSpec]) -> ServiceOptions {
        OpenSSLLibrary.initialized
        do {
            let options = try ServiceOptions(service: service, specs: OptionSpec.common + specs,
                                             arguments: Array(CommandLine.arguments.dropFirst()), environment: processEnvironment())
            EgressPolicy.current = try EgressPolicy(options)
            return options
        } catch {
            let isHelp = CommandLine.arguments.contains("--help") || CommandLine.arguments.contains("-h")
            print(isHelp ? error.message : "\(service): \(error.message)")
            exit(isHelp ? 0 : 2)
        }
    }

    public static func usage(service: String, specs: [OptionSpec]) -> String {
        var lines = ["usage: \(service) [options]", ""]
        for spec in specs {
            let flag = spec.isSwitch ? "--\(spec.name)" : "--\(spec.name) VALUE"
            let padded = flag + String(repeating: " ", count: max(1, 28 - flag.count))
            let defaultText = spec.defaultValue.map { " (default \($0))" } ?? ""
            lines.append("  \(padded)\(spec.help)\(defaultText) [env \(spec.environmentName)]")
        }
        return lines.joined(separator: "\n")
    }

    public func string(_ name: String) -> String? { values[name] }

    public func int(_ name: String) throws(OptionError) -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text) else { throw OptionError("--\(name) must be an integer, got '\(text)'") }
        return value
    }

    public func double(_ name: String) throws(OptionError) -> Double? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value.isFinite else { throw OptionError("--\(name) must be a finite number, got '\(text)'") }
        return value
    }

    /// A duration flag in seconds, at least `minimum` (see `DurationLimits`).
    public func seconds(_ name: String, atLeast minimum: Double) throws(OptionError) -> Double? {
        guard let value = try double(name) else { return nil }
        guard value >= minimum else { throw OptionError("--\(name) must be at least \(minimum) s, got \(value)") }
        return value
    }

    public func bool(_ name: String) throws(OptionError) -> Bool {
        switch values[name]?.lowercased() {
        case nil, "false", "0", "no": return false
        case "true", "1", "yes": return true
        case let other?: throw OptionError("--\(name) must be true or false, got '\(other)'")
        }
    }

    /// A comma-separated list (empty entries dropped).
    public func list(_ name: String) -> [String] {
        (values[name] ?? "").split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
    }

    /// The HTTP server settings from the common options.
    public func serverConfiguration() throws(OptionError) -> HTTPServerConfiguration {
        var configuration = HTTPServerConfiguration(host: string("host") ?? "127.0.0.1", port: try int("port") ?? 0)
        var limits = ServerLimits()
        limits.maxBodyBytes = try positive("max-body-bytes", int("max-body-bytes")) ?? limits.maxBodyBytes
        limits.maxConnections = try positive("max-connections", int("max-connections")) ?? limits.maxConnections
        limits.maxConnectionsPerAddress = try positive("max-connections-per-address", int("max-connections-per-address"))
            ?? limits.maxConnectionsPerAddress
        limits.receiveTimeout = try positive("receive-timeout", double("receive-timeout")) ?? limits.receiveTimeout
        configuration.limits = limits
        configuration.threads = max(1, try int("threads") ?? configuration.threads)
        return configuration
    }

    /// `--shutdown-grace`: seconds from 0 to an hour.
    public func shutdownGrace() throws(OptionError) -> Double {
        let grace = try seconds("shutdown-grace", atLeast: 0) ?? 5
        guard (0...3600).contains(grace) else { throw OptionError("--shutdown-grace must be a number of seconds from 0 to 3600, got \(grace)") }
        return grace
    }

    private func positive<T: Numeric & Comparable>(_ name: String, _ value: T?) throws(OptionError) -> T? {
        if let value, value <= 0 { throw OptionError("--\(name) must be positive, got \(value)") }
        return value
    }

    /// The logger from `--log-level` and `--log-format`.
    public func logger() throws(OptionError) -> Logger {
        let name = string("log-level") ?? "info"
        guard let level = Logger.Level(name: name) else {
            throw OptionError("--log-level must be debug, info, warning or error, got '\(name)'")
        }
        let formatName = string("log-format") ?? "text"
        guard let format = Logger.Format(rawValue: formatName.lowercased()) else {
            throw OptionError("--log-format must be text or json, got '\(formatName)'")
        }
        return Logger(service: service, level: level, format: format)
    }
}

/// The process environment as a dictionary.
public func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}
