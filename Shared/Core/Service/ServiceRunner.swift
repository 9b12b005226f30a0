#if canImport(Glibc)
import Glibc
#endif

/// Runs a service's HTTP server until SIGTERM or SIGINT, then stops it
/// gracefully: no new connections or requests, requests in flight get
/// `--shutdown-grace` seconds to finish, those still running get 503, exit 0.
public enum ServiceRunner {
    /// Starts `router` with the common options, prints the ready line, waits for
    /// a termination signal, stops, and exits the process.
    /// - Parameters:
    ///   - security: the service's identity and TLS (its peer id goes into the ready line as `peer_id`).
    ///   - details: extra fields for the ready line (e.g. the DHT node id).
    ///   - onStop: runs after the server stopped (e.g. a final checkpoint).
    ///   - readiness: what `GET /readyz` checks besides having started.
    public static func run(_ options: ServiceOptions, security: ServiceSecurity, router: Router, metrics: Metrics, logger: Logger,
                           readiness: Readiness = Readiness(), details: [String: JSON] = [:], onStop: () -> Void = {}) -> Never {
        let (server, url, grace) = listen(options, security: security, router: router, metrics: metrics, logger: logger, readiness: readiness)
        serveUntilTerminated(options, server: server, url: url, grace: grace, logger: logger,
                             details: details.merging(["peer_id": .string(security.identity.peerID)]) { $1 }, onStop: onStop)
    }

    /// Like `run`, for a service that has work to do once it listens and
    /// before it is ready, such as a DHT node joining the DHT (its peers call
    /// it back meanwhile). `start` gets the service's URL and returns extra
    /// fields for the ready line; if it throws, the error is logged and the
    /// process exits with status 1 without printing a ready line. Until `start`
    /// returns, `GET /readyz` answers 503 ("started: starting").
    ///
    /// Before `start`, a service that names peers (`--dht`, `--initial-peers`)
    /// checks that it can be called (`Reachability`); if not, it is reached
    /// through `--use-relay` and `start` gets the relayed URL, or, when
    /// `unreachable` says why the service is useless uncalled, it exits with
    /// status 2 and that advice.
    public static func run(_ options: ServiceOptions, security: ServiceSecurity, router: Router, metrics: Metrics, logger: Logger,
                           readiness: Readiness = Readiness(), unreachable: String? = nil,
                           start: (_ url: String) async throws -> [String: JSON], onStop: () -> Void = {}) async -> Never {
        readiness.hold("started", reason: "starting")
        var (server, url, grace) = listen(options, security: security, router: router, metrics: metrics, logger: logger, readiness: readiness)
        url = await reachableURL(options, url: url, peerID: security.identity.peerID, port: server.port, logger: logger,
                                 unreachable: unreachable)
        var details: [String: JSON]
        do {
            details = try await start(url)
            details["peer_id"] = .string(security.identity.peerID)
            readiness.release("started")
        } catch {
            // Stopped before the message is made: held across that await until exit(1), its string was
            // reported as leaked by LeakSanitizer.
            await server.stop(timeout: 1)
            logger.error("cannot start", ["reason": "\(error)"])
            exit(1)
        }
        serveUntilTerminated(options, server: server, url: url, grace: grace, logger: logger, details: details, onStop: onStop)
    }

    /// The URL others can call: `url` if a peer could call it back (or no
    /// peer could tell), else a relayed URL (`--use-relay`); with neither,
    /// a service that must be called exits with status 2 and `unreachable`'s advice.
    /// Over TLS the peer is asked to call the peer address (`https://PEER_ID@host:port`), so that it
    /// checks this service's identity as every other caller will.
    private static func reachableURL(_ options: ServiceOptions, url: String, peerID: String, port: Int, logger: Logger,
                                     unreachable: String?) async -> String {
        let peers = options.list("dht") + options.list("initial-peers")
        guard (try? options.bool("check-reachability")) != false, !peers.isEmpty else { return url }
        let callable = url.hasPrefix("https:") ? PeerAddress.pinned(url, to: peerID) ?? url : url
        switch await Reachability.check(callable, asking: peers, http: .shared) {
        case .reachable(let peer):
            logger.info("reachable: a peer called this service back", ["url": url, "peer": peer])
            return url
        case .unknown(let reason):
            logger.warning("reachability not checked: no peer could call this service back", ["url": url, "reason": reason])
            return url
        case .unreachable(let peer, let reason):
            if let relay = options.list("use-relay").first {
                do {
                    let client = try await RelayClient(relay: relay, scheme: url.hasPrefix("https:") ? "https" : "http",
                                                       local: (options.string("host") ?? "127.0.0.1", port), http: .shared, logger: logger)
                    client.start()
                    logger.info("unreachable at its own address; reached through a relay", ["url": url, "peer": peer, "reason": reason,
                                                                                         "relay": relay, "relayed_url": client.url])
                    return client.url
                } catch {
                    logger.error("cannot start", ["reason": "\(options.service) cannot be called at \(url) and the relay failed: \(error)"])
                    exit(2)
                }
            }
            let message = "\(options.service) cannot be called at \(url): \(peer) tried to call it back and failed (\(reason)). "
                + "Behind NAT or a firewall, start it with --use-relay URL (a DHT node started with --relay), or open the port "
                + "and set --announce-address to the address others reach"
            guard let unreachable else {
                logger.warning("unreachable", ["reason": message])
                return url
            }
            logger.error("cannot start", ["reason": message + "; \(unreachable)"])
            exit(2)
        }
    }

    /// Starts the server; exits with status 1 if it cannot listen. Returns it, its URL and the shutdown grace.
    private static func listen(_ options: ServiceOptions, security: ServiceSecurity, router: Router, metrics: Metrics, logger: Logger,
                               readiness: Readiness) -> (HTTPServer, String, Double) {
        installTerminationHandlers()
        security.install()
        do {
            let grace = try options.shutdownGrace()
            if let parent = try options.int("parent-pid") { stopWhenOrphaned(parent: pid_t(truncatingIfNeeded: parent)) }
            var configuration = try options.serverConfiguration()
            configuration.tls = security.server
            configuration.identity = security.card
            let server = try HTTPServer(configuration: configuration, router: router, metrics: metrics, logger: logger,
                                        readiness: readiness)
            let url = AnnounceAddress.url(announce: options.string("announce-address"), host: options.string("host") ?? "127.0.0.1",
                                          port: server.port, scheme: security.scheme)
            return (server, url, grace)
        } catch {
            logger.error("cannot start", ["reason": "\(error)"])
            exit(1)
        }
    }

    private static func serveUntilTerminated(_ options: ServiceOptions, server: HTTPServer, url: String, grace: Double, logger: Logger,
                                             details: [String: JSON], onStop: () -> Void) -> Never {
        printReadyLine(service: options.service, url: url, details: details)
        logger.info("listening", ["url": url])
        let signal = waitForTermination()
        logger.info("stopping", ["signal": signal == SIGTERM ? "SIGTERM" : "SIGINT"])
        server.readiness.hold("stopping", reason: "stopping")
        server.stop(timeout: grace)
        onStop()
        logger.info("stopped")
        exit(0)
    }

    /// One JSON line on standard output that a script can read:
    /// `{"event":"listening","service":"...","url":"http://127.0.0.1:PORT",...}`.
    public static func printReadyLine(service: String, url: String, details: [String: JSON] = [:]) {
        var fields = details
        fields["event"] = "listening"
        fields["service"] = .string(service)
        fields["url"] = .string(url)
        // write(2), not print: stdout may be a pipe, and the line must not wait in a buffer.
        let line = JSON.object(fields).serialized() + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    }

    /// Routes SIGTERM and SIGINT to a pipe, so that waiting for them is a plain
    /// blocking read on any thread, whichever thread the kernel delivers them to.
    public static func installTerminationHandlers() {
        guard signalPipe.read < 0 else { return }
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        signalPipe = (fds[0], fds[1])
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            var number = UInt8(truncatingIfNeeded: signal)
            _ = write(signalPipe.write, &number, 1)
        }
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
        signal(SIGPIPE, SIG_IGN)
        // A parent started from a libdispatch thread passes on a mask that blocks
        // every signal; threads started after this inherit the unblocked mask.
        var termination = sigset_t()
        sigemptyset(&termination)
        sigaddset(&termination, SIGTERM)
        sigaddset(&termination, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &termination, nil)
    }

    /// Sends this process SIGTERM (a graceful stop) once `parent` is no longer
    /// its parent: a supervisor killed with SIGKILL cannot stop its services
    /// itself, and the kernel then hands them to another parent.
    private static func stopWhenOrphaned(parent: pid_t) {
        Task.detached {
            while getppid() == parent { try? await Task.sleep(for: .milliseconds(250)) }
            kill(getpid(), SIGTERM)
        }
    }

    /// Blocks until SIGTERM or SIGINT arrives and returns which.
    public static func waitForTermination() -> Int32 {
        installTerminationHandlers()
        var number: UInt8 = 0
        while read(signalPipe.read, &number, 1) != 1 {}
        return Int32(number)
    }
}

/// Written once before the handlers are installed; the handler only reads it.
nonisolated(unsafe) private var signalPipe: (read: Int32, write: Int32) = (-1, -1)
