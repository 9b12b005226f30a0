#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A service's side of a relay (`RelayServer`): it registers, announces the
/// relayed URL instead of its own, and keeps polling for streams; for each
/// it opens a tunnel connection out to the relay and splices it to its own
/// server. Only outbound connections, so it works from behind NAT.
public final class RelayClient: Sendable {
    /// The URL others call this service at.
    public let url: String
    private let relay: String
    private let session: String
    private let secret: String
    private let tunnel: (host: String, port: UInt16)
    private let local: (host: String, port: UInt16)
    private let http: HTTPClient
    private let logger: Logger
    private let stopped = Mutex(false)

    /// Registers with `relay` (a DHT node started with `--relay`).
    /// - Parameters:
    ///   - scheme: this service's scheme, kept in the relayed URL.
    ///   - local: where this service listens, for the tunnels to reach it.
    /// - Throws: `OptionError` naming the relay and what went wrong.
    public init(relay: String, scheme: String, local: (host: String, port: Int), http: HTTPClient, logger: Logger) async throws(OptionError) {
        let answer: JSON
        do {
            answer = try await http.send("POST", "\(relay)/v1/relay/sessions", json: ["scheme": .string(scheme)], timeout: 10, maxResponseBytes: 64 << 10).json()
        } catch {
            throw OptionError("the relay \(relay) did not register this service: \((error as? HTTPClientError).map { $0.upstreamMessage ?? $0.message } ?? "\(error)")")
        }
        guard let session = answer["id"]?.stringValue, let secret = answer["secret"]?.stringValue, let url = answer["url"]?.stringValue,
              let tunnel = answer["tunnel"]?.stringValue, let colon = tunnel.lastIndex(of: ":"), let port = UInt16(tunnel[tunnel.index(after: colon)...]) else {
            throw OptionError("the relay \(relay) answered without a session, URL and tunnel address")
        }
        // The tunnel must be the relay's own host: a relay cannot send this service's connections elsewhere.
        let tunnelHost = String(tunnel[..<colon])
        guard relay.split(separator: "/").dropFirst(1).first?.split(separator: ":").first.map(String.init) == tunnelHost else {
            throw OptionError("the relay \(relay) named a tunnel on another host (\(tunnelHost)); refused")
        }
        self.url = url
        self.relay = relay
        self.session = session
        self.secret = secret
        self.tunnel = (tunnelHost, port)
        self.local = (local.host == "0.0.0.0" ? "127.0.0.1" : local.host, UInt16(local.port))
        self.http = http
        self.logger = logger
    }

    /// Polls for streams until `stop`.
    public func start() {
        Task { [self] in
            var failures = 0
            while !stopped.withLock({ $0 }) {
                do {
                    let request = HTTPClientRequest(url: "\(relay)/v1/relay/sessions/\(session)/streams?wait=20",
                                                    headers: [("Authorization", "Bearer \(secret)")], timeout: 30, maxResponseBytes: 1 << 20)
                    let streams = try await http.send(request).json()["streams"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    failures = 0
                    for stream in streams { open(stream) }
                } catch {
                    failures += 1
                    logger.warning("the relay does not answer", ["relay": relay, "error": (error as? HTTPClientError).map { $0.upstreamMessage ?? $0.message } ?? "\(error)"])
                    try? await Task.sleep(for: .seconds(min(10, Double(failures))))
                }
            }
        }
    }

    public func stop() { stopped.withLock { $0 = true } }

    /// One stream: a tunnel out to the relay, spliced to this service's own server.
    private func open(_ stream: String) {
        let (tunnel, local, preface) = (self.tunnel, self.local, RelayProtocol.Preface(session: session, stream: stream, secret: secret))
        let logger = logger
        detachedThread {
            do {
                // The tunnel goes where this service's egress policy lets it, whatever the name resolves to now.
                let address = try RawSocket.resolve(tunnel.host, tunnel.port)
                if let refusal = IPAddress(RawSocket.addressText(address)).flatMap(EgressPolicy.current.refusal) { throw refusal }
                let outward = try RawSocket.connect(to: address)
                guard RawSocket.sendAll(outward, Array(preface.line.utf8), while: { true }) else {
                    close(outward)
                    return
                }
                let inward: Int32
                do { inward = try RawSocket.connect(local.host, local.port) } catch {
                    close(outward)
                    throw error
                }
                Splice.start(outward, inward, limiter: nil)
            } catch {
                logger.warning("a relayed stream failed", ["error": "\(error)"])
            }
        }
    }
}
