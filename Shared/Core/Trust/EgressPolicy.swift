import Synchronization

/// What a service may call: the one place that decides, consulted by
/// `HTTPClient` twice, on the URL before anything is sent and on every
/// address libcurl is about to connect to (so a DNS name that resolves to a
/// forbidden address is refused too, whenever it is resolved).
///
/// The rules, in order:
/// 1. Link-local, metadata, unspecified, multicast and reserved addresses
///    (`alwaysDenied`) are never called: they reach cloud credentials and the
///    host itself, never a peer.
/// 2. `deny` (`--egress-deny`) is refused.
/// 3. Loopback is called when the service itself listens on loopback (a
///    local mesh, tests) or `allow` names it; otherwise refused, so that a
///    public service cannot be steered at its own host's private ports.
/// 4. With an `allow` list (`--egress-allow`), only what it names is called;
///    without one, any other address is.
public struct EgressPolicy: Sendable {
    /// Ranges the operator allows; empty means every address not denied.
    public var allow: [AddressRange]
    /// Ranges the operator denies.
    public var deny: [AddressRange]
    /// Whether loopback may be called without being in `allow`.
    public var allowsLoopback: Bool

    public init(allow: [AddressRange] = [], deny: [AddressRange] = [], allowsLoopback: Bool = true) {
        self.allow = allow
        self.deny = deny
        self.allowsLoopback = allowsLoopback
    }

    /// Never called, whatever the flags say.
    public static let alwaysDenied: [AddressRange] = [
        "0.0.0.0/8",           // "this network": 0.0.0.0 reaches the host itself
        "169.254.0.0/16",      // IPv4 link-local: cloud metadata (169.254.169.254) and the like
        "100.100.100.200/32",  // Alibaba Cloud's metadata service
        "224.0.0.0/3",         // multicast, reserved and broadcast
        "::/128",              // unspecified
        "fe80::/10",           // IPv6 link-local
        "fd00:ec2::254/128",   // AWS's IPv6 metadata service
        "ff00::/8",            // IPv6 multicast
    ].map { try! AddressRange($0) }

    private static let loopback: [AddressRange] = ["127.0.0.0/8", "::1/128"].map { try! AddressRange($0) }

    /// Whether `address` is a loopback address (127.0.0.0/8 or ::1).
    public static func isLoopback(_ address: IPAddress) -> Bool { loopback.contains { $0.contains(address) } }

    /// The process's policy; services set it once at start (`ServiceOptions.parseOrExit`).
    /// The default (tools, tests) calls loopback and anything not always denied.
    public static var current: EgressPolicy {
        get { installed.withLock { $0 } }
        set { installed.withLock { $0 = newValue } }
    }
    private static let installed = Mutex(EgressPolicy())

    /// Why `address` may not be called, or nil if it may.
    public func refusal(_ address: IPAddress) -> EgressError? {
        if let range = Self.alwaysDenied.first(where: { $0.contains(address) }) {
            return EgressError("\(address) is in \(range), which is never called (link-local, metadata, multicast or unspecified addresses)")
        }
        if let range = deny.first(where: { $0.contains(address) }) {
            return EgressError("\(address) is in \(range), which --egress-deny refuses")
        }
        if allow.contains(where: { $0.contains(address) }) { return nil }
        if Self.isLoopback(address) {
            return allowsLoopback ? nil
                : EgressError("\(address) is loopback, which a service not listening on loopback calls only with --egress-allow 127.0.0.0/8")
        }
        if !allow.isEmpty {
            return EgressError("\(address) is not in --egress-allow (\(allow.map(\.description).joined(separator: ",")))")
        }
        return nil
    }

    /// Parses `url` and checks what can be checked before resolving it: the
    /// scheme, the form, and the host when it is an address (or `localhost`).
    /// - Throws: `EgressError` saying why it is not called.
    public func check(url: String) throws(EgressError) -> OutboundURL {
        let parsed = try OutboundURL(url)
        let address = parsed.literalAddress ?? (parsed.host == "localhost" || parsed.host.hasSuffix(".localhost") ? IPAddress("127.0.0.1") : nil)
        if let address, let refusal = refusal(address) { throw refusal }
        return parsed
    }
}

extension EgressPolicy {
    /// The policy from `--egress-allow`, `--egress-deny` and `--host` (loopback
    /// is allowed when the service listens on a loopback address).
    public init(_ options: ServiceOptions) throws(OptionError) {
        var allow: [AddressRange] = []
        for text in options.list("egress-allow") { allow.append(try AddressRange(text)) }
        var deny: [AddressRange] = []
        for text in options.list("egress-deny") { deny.append(try AddressRange(text)) }
        self.init(allow: allow, deny: deny, allowsLoopback: options.listensOnLoopback)
    }
}

extension ServiceOptions {
    /// Whether `--host` is a loopback address: only processes on this machine can call the service.
    public var listensOnLoopback: Bool {
        let host = string("host") ?? "127.0.0.1"
        return host == "localhost" || IPAddress(host).map(EgressPolicy.isLoopback) == true
    }
}
