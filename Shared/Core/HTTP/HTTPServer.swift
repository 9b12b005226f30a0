#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import Synchronization

/// How a server listens and what it accepts.
public struct HTTPServerConfiguration: Sendable {
    /// An IPv4 address to bind (`0.0.0.0` for every interface; `localhost` means 127.0.0.1).
    public var host = "127.0.0.1"
    /// 0 lets the OS pick a free port; `HTTPServer.port` tells which.
    public var port = 0
    /// Bodies, connections and deadlines.
    public var limits = ServerLimits()
    /// libmicrohttpd's internal thread pool (each thread polls many connections).
    public var threads = 4
    /// libmicrohttpd's memory per connection, about half of which buffers
    /// reads: 256 KiB reads a large body in far fewer system calls than the
    /// default 32 KiB. Pages are touched only as used.
    public var connectionMemoryBytes = 256 << 10
    /// Serve HTTPS (and, with a membership, admit only the swarm's members); nil serves plain HTTP.
    public var tls: TLSServerSettings?
    /// What `GET /v1/identity` answers; nil leaves the route out.
    public var identity: IdentityCard?

    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
    }
}

/// A libmicrohttpd daemon serving a `Router`. Bodies are read fully (up to the
/// route's limit), then each request runs as a Swift task while libmicrohttpd keeps the
/// connection suspended, so a slow handler never blocks a polling thread.
/// `ServerLimits` bound what clients can take: connections in all and per
/// address (libmicrohttpd refuses the excess at accept), body sizes per route
/// (413 before the body is read), and the time a request may take to arrive or
/// its answer to leave (a sweeper cuts connections past their deadline).
/// With TLS (`HTTPServerConfiguration.tls`), a plain HTTP request gets a 400
/// saying the port speaks HTTPS, session tickets let clients resume, and a
/// moderated swarm's `SwarmMembership` decides, before a body is read, who
/// may use any route but the open ones.
/// `GET /healthz` (alive), `GET /readyz` (ready to serve) and `GET /metrics`
/// are added to every server, and `GET /v1/identity` to one with an identity.
public final class HTTPServer: @unchecked Sendable {
    // Sendable: `daemon` is written once in init and read-only afterwards;
    // libmicrohttpd synchronizes its own state; counters are atomics; the
    // running requests are behind a mutex.
    /// The port the server listens on (the OS's pick when configured with 0).
    public private(set) var port = 0
    public let metrics: Metrics
    /// What `GET /readyz` reports.
    public let readiness: Readiness
    let router: Router
    let logger: Logger
    let limits: ServerLimits
    let membership: SwarmMembership?
    /// Set for a TLS server: the key its session tickets are sealed with.
    private let ticketKey: UnsafeMutablePointer<gnutls_datum_t>?
    private var daemon: OpaquePointer?
    private let inFlight = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let deadlines: Mutex<ConnectionDeadlines>
    /// Requests whose handler runs while libmicrohttpd keeps their connection
    /// suspended; whoever takes one out answers it (its handler, or a stop
    /// whose grace period ended). Once `stopping`, nothing is suspended any more.
    private let running = Mutex<(stopping: Bool, requests: [ObjectIdentifier: (RequestContext, ConnectionHandle)])>((false, [:]))

    /// Starts listening at once.
    /// - Throws: `HTTPServerError` if the address is invalid or the port is taken.
    public init(configuration: HTTPServerConfiguration, router: Router, metrics: Metrics, logger: Logger,
                readiness: Readiness = Readiness()) throws(HTTPServerError) {
        var router = router
        router.get("/healthz") { _ in .json(["status": "ok"]) }
        router.get("/readyz") { [readiness] _ in await readiness.response() }
        router.get("/metrics") { [metrics] _ in .text(metrics.render(), contentType: "text/plain; version=0.0.4") }
        if let card = configuration.identity { router.get("/v1/identity") { _ in .json(card.json) } }
        self.router = router
        self.metrics = metrics
        self.readiness = readiness
        self.logger = logger
        self.limits = configuration.limits
        membership = configuration.tls?.membership
        ticketKey = configuration.tls == nil ? nil : cmhd_new_ticket_key()
        deadlines = Mutex(ConnectionDeadlines(limits: configuration.limits))
        metrics.declare("http_connections_cut_total", .counter, help: "Connections closed because a request did not arrive, or an answer did not leave, in time.")
        metrics.declare("http_requests_total", .counter, help: "HTTP requests answered, by route, method and status.")
        metrics.declare("http_request_duration_seconds", .histogram, help: "Time from a request's first byte to its response, by route.")
        metrics.declare("http_connections_opened_total", .counter, help: "TCP connections accepted (fewer than requests when keep-alive works).")
        if configuration.tls != nil {
            metrics.declare("http_tls_handshakes_total", .counter, help: "TLS handshakes of connections that sent a request, by kind: full, or resumed from a session ticket.")
        }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: configuration.port).bigEndian)
        let host = configuration.host == "localhost" ? "127.0.0.1" : configuration.host
        guard (0...65535).contains(configuration.port), inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw HTTPServerError(message: "cannot listen on \(configuration.host):\(configuration.port): expected an IPv4 address and a port in 0...65535")
        }
        let flags = UInt32(MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue)
        let context = Unmanaged.passUnretained(self).toOpaque()
        let limits = configuration.limits
        // GnuTLS copies the key and certificates while the daemon starts.
        let tls = configuration.tls
        let trust = tls?.membership.map { $0.authorities.map(\.pem).joined() }
        daemon = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                cmhd_start_daemon(flags, UInt16(configuration.port), socketAddress,
                                  accessHandler, context, requestCompleted, context, connectionNotified, context,
                                  UInt32(configuration.threads), UInt32(limits.maxConnections), UInt32(limits.maxConnectionsPerAddress),
                                  UInt32(limits.receiveTimeout.rounded(.up)), configuration.connectionMemoryBytes,
                                  tls?.privateKeyPEM, tls?.certificatePEM, trust)
            }
        }
        guard let daemon else {
            throw HTTPServerError(message: "cannot listen on \(host):\(configuration.port): the address is in use or not available here"
                                  + (configuration.tls == nil ? "" : ", or the TLS certificate and key do not go together"))
        }
        port = Int(cmhd_bound_port(daemon))
        startSweeper()
    }

    /// Once a second, cuts the connections past their deadline until the server
    /// stops. `shutdown(2)`, not `close(2)`: libmicrohttpd still owns the
    /// descriptor, sees the connection end and cleans up as usual.
    private func startSweeper() {
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            let server = Unmanaged<HTTPServer>.fromOpaque(argument!).takeRetainedValue()
            while !server.stopped.load(ordering: .relaxed) {
                sleep(1)
                let late = server.deadlines.withLock { $0.expire(now: Clock.now) }
                for descriptor in late { shutdown(descriptor, Int32(SHUT_RDWR)) }
                if !late.isEmpty { server.metrics.increment("http_connections_cut_total", by: Double(late.count)) }
            }
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        pthread_detach(thread)
    }

    deinit {
        assert(daemon == nil || stopped.load(ordering: .relaxed), "HTTPServer must be stopped before it is released")
        // A running daemon may still seal tickets with the key: then it is left to the process's end.
        if daemon == nil || stopped.load(ordering: .relaxed) { cmhd_free_ticket_key(ticketKey) }
    }

    /// Stops gracefully: accepts no new connection (and answers new requests
    /// on open ones 503 at once), gives the requests in flight `timeout`
    /// seconds (the grace period) to finish, answers those still running 503,
    /// then closes every connection. Call it from a plain thread (a service's
    /// main); from async code use `stop(timeout:) async`.
    public func stop(timeout: Double = 5) {
        guard let listener = quiesce() else { return }
        let grace = Clock.now + timeout
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && Clock.now < grace { usleep(2_000) }
        let flushed = Clock.now + answerTheRest()
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && Clock.now < flushed { usleep(2_000) }
        shutDown(listener)
    }

    /// Like `stop(timeout:)`, but waits without holding a thread that handlers need.
    public func stop(timeout: Double = 5) async {
        guard let listener = quiesce() else { return }
        let grace = Clock.now + timeout
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && Clock.now < grace {
            try? await Task.sleep(for: .milliseconds(2))
        }
        let flushed = Clock.now + answerTheRest()
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && Clock.now < flushed {
            try? await Task.sleep(for: .milliseconds(2))
        }
        shutDown(listener)
    }

    /// Stops accepting new connections and new requests; returns the listening socket, or nil if already stopped.
    private func quiesce() -> Int32? {
        guard let daemon, !stopped.exchange(true, ordering: .sequentiallyConsistent) else { return nil }
        running.withLock { $0.stopping = true }
        return MHD_quiesce_daemon(daemon)
    }

    /// Answers every request whose handler still runs with 503 and resumes its
    /// connection: libmicrohttpd aborts the process if stopped while a
    /// connection is suspended. Their handlers' answers are dropped.
    /// - Returns: seconds to let the answers reach their callers before closing the connections.
    private func answerTheRest() -> Double {
        let leftovers = running.withLock { running in
            defer { running.requests = [:] }
            return Array(running.requests.values)
        }
        guard !leftovers.isEmpty else { return 0 }
        logger.warning("stopping: answering requests still running with 503", ["count": "\(leftovers.count)"])
        let error = HTTPError.serviceUnavailable("the server stopped before this request finished; send it elsewhere or retry")
        for (context, handle) in leftovers {
            complete(context, error.response, route: "unfinished")
            context.response = error.response
            MHD_resume_connection(handle.connection)
        }
        return 1
    }

    private func shutDown(_ listener: Int32) {
        MHD_stop_daemon(daemon)
        if listener >= 0 { close(listener) }
    }

    // MARK: - Called from libmicrohttpd's threads

    fileprivate func begin(_ connection: OpaquePointer, method: String, url: String) -> RequestContext {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        let context = RequestContext(method: method, path: url,
                                     headers: Self.values(connection, .HEADER_KIND),
                                     query: Self.values(connection, .GET_ARGUMENT_KIND),
                                     remoteAddress: Self.clientAddress(connection))
        switch cmhd_tls_first_request(connection) {
        case 0: metrics.increment("http_tls_handshakes_total", labels: ["kind": "full"])
        case 1: metrics.increment("http_tls_handshakes_total", labels: ["kind": "resumed"])
        default: break
        }
        if let membership, !SwarmMembership.openPaths.contains(url) {
            var size = 0
            let certificate = cmhd_client_certificate(connection, &size).map { Array(UnsafeBufferPointer(start: $0, count: size)) }
            if case .failure(let refusal) = membership.admit(certificate: certificate, now: Clock.epoch) { context.refusal = refusal }
        }
        context.maxBodyBytes = limits.bodyLimit(route: router.maxBodyBytes(method: method, path: url))
        let length = context.headers["content-length"].flatMap { Int($0) } ?? 0
        deadlines.withLock { $0.headReceived(Self.key(connection), bodyBytes: min(max(length, 0), context.maxBodyBytes)) }
        if context.refusal != nil {
            // A refused caller's small body is read and dropped before the answer, so that the
            // answer is not lost to a reset (with TLS, a client still sending cannot read it);
            // a larger one is answered at once and the connection cut.
            context.discardsBody = length <= limits.defaultRouteBodyBytes
        } else if length > context.maxBodyBytes {
            // Answer before reading the body; curl stops sending when it sees this.
            context.tooLarge = true
        } else if length > 0 {
            // One buffer for the whole body: growing it chunk by chunk copies
            // it again and faults in fresh pages at every doubling.
            context.body.reserveCapacity(length)
        }
        return context
    }

    private static func key(_ connection: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection))) }

    fileprivate func answering(_ connection: OpaquePointer, bytes: Int) {
        deadlines.withLock { $0.answering(Self.key(connection), bytes: bytes, now: Clock.now) }
    }

    fileprivate func requestDone(_ connection: OpaquePointer) {
        deadlines.withLock { $0.completed(Self.key(connection), now: Clock.now) }
    }

    fileprivate func finish(_ context: RequestContext) {
        inFlight.subtract(1, ordering: .releasing)
    }

    fileprivate func dispatch(_ context: RequestContext, on connection: OpaquePointer) {
        if let refusal = context.refusal {
            complete(context, refusal.response, route: "unmatched")
            answering(connection, bytes: refusal.response.body.count)
            Self.queue(refusal.response, on: connection)
            return
        }
        if context.tooLarge {
            let routeLimited = context.maxBodyBytes < limits.maxBodyBytes
            let error = HTTPError.payloadTooLarge("the request body exceeds \(context.maxBodyBytes) bytes, the most "
                + (routeLimited ? "\(context.method) \(context.path.prefix(120)) takes" : "this server takes (--max-body-bytes)") + "; send a smaller body")
            complete(context, error.response, route: "unmatched")
            answering(connection, bytes: error.response.body.count)
            Self.queue(error.response, on: connection)
            return
        }
        let id = ObjectIdentifier(context)
        let handle = ConnectionHandle(connection: connection)
        deadlines.withLock { $0.handling(Self.key(connection)) }
        // Registered and suspended under the lock, so that a stop either finds
        // the request to answer or has already turned it away here.
        let admitted = running.withLock { running in
            guard !running.stopping else { return false }
            running.requests[id] = (context, handle)
            MHD_suspend_connection(connection)
            return true
        }
        guard admitted else {
            // A quiesced daemon still reads new requests on open keep-alive
            // connections: answer at once instead of handling them.
            let error = HTTPError.serviceUnavailable("the server is stopping; send the request elsewhere or retry")
            complete(context, error.response, route: "unmatched")
            answering(connection, bytes: error.response.body.count)
            Self.queue(error.response, on: connection)
            return
        }
        let request = HTTPRequest(method: context.method, path: context.path, query: context.query,
                                  headers: context.headers, body: context.body, remoteAddress: context.remoteAddress)
        context.body = []
        Task { [self] in
            let (response, route) = await router.respond(to: request, logger: logger)
            // A stop whose grace period ended may have answered it already.
            guard running.withLock({ $0.requests.removeValue(forKey: id) }) != nil else { return }
            complete(context, response, route: route)
            context.response = response
            MHD_resume_connection(handle.connection)
        }
    }

    private func complete(_ context: RequestContext, _ response: HTTPResponse, route: String) {
        let seconds = Clock.now - context.started
        metrics.increment("http_requests_total", labels: ["route": route, "method": context.method, "status": String(response.status)])
        metrics.observe("http_request_duration_seconds", labels: ["route": route], seconds)
        // A readiness probe answered 503 is an expected state, not a failure (probes come every few
        // seconds); requests a stop cut short are logged once, by the stop.
        if response.status >= 500 && route != "/readyz" && route != "unfinished" {
            logger.error("request failed", ["method": context.method, "path": context.path, "status": String(response.status)])
        }
    }

    fileprivate static func queue(_ response: HTTPResponse, on connection: OpaquePointer) {
        // libmicrohttpd refuses a status outside 100...999 and leaves the client waiting: never let one through.
        var response = response
        if !(200...599).contains(response.status) {
            response = HTTPError(status: 500, code: "internal", message: "the handler answered with status \(response.status), which is not a final HTTP status").response
        }
        let mhdResponse: OpaquePointer?
        if response.body.isEmpty {
            mhdResponse = MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT)
        } else {
            // libmicrohttpd sends straight from the body's storage, which the
            // retained box keeps alive and unchanged until the free callback:
            // copying it (RESPMEM_MUST_COPY) costs a fresh buffer per response.
            let box = Unmanaged.passRetained(ResponseBody(response.body))
            let bytes = box.takeUnretainedValue().bytes
            mhdResponse = bytes.withUnsafeBytes { buffer in
                MHD_create_response_from_buffer_with_free_callback_cls(buffer.count, UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                                                                       releaseResponseBody, box.toOpaque())
            }
            if mhdResponse == nil { box.release() }
        }
        guard let mhdResponse else { return }
        for (name, value) in response.headers { MHD_add_response_header(mhdResponse, name, value) }
        MHD_queue_response(connection, UInt32(response.status), mhdResponse)
        MHD_destroy_response(mhdResponse)
    }

    /// Headers (names lowercased) or query arguments of a connection.
    private static func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [String: String] {
        let collector = ValueCollector(lowercaseKeys: kind == .HEADER_KIND)
        MHD_get_connection_values(connection, kind, { context, _, key, value in
            let collector = Unmanaged<ValueCollector>.fromOpaque(context!).takeUnretainedValue()
            if let key {
                let name = String(cString: key)
                collector.values[collector.lowercaseKeys ? name.lowercased() : name] = value.map { String(cString: $0) } ?? ""
            }
            return .YES
        }, Unmanaged.passUnretained(collector).toOpaque())
        return collector.values
    }

    /// The peer's IP address as text.
    private static func clientAddress(_ connection: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        cmhd_client_address(connection, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    fileprivate func connectionOpened(_ connection: OpaquePointer, _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        if ticketKey != nil { socketContext.pointee = cmhd_tls_connection_started(connection, ticketKey) }
        metrics.increment("http_connections_opened_total")
        let descriptor = cmhd_connection_fd(connection)
        deadlines.withLock { $0.opened(Self.key(connection), descriptor: descriptor, now: Clock.now) }
    }

    fileprivate func connectionClosed(_ connection: OpaquePointer, _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        if let state = socketContext.pointee {
            cmhd_tls_connection_closed(state)
            socketContext.pointee = nil
        }
        deadlines.withLock { $0.closed(Self.key(connection)) }
    }
}

/// A server that could not start.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// The state of one request across libmicrohttpd's calls.
/// `@unchecked Sendable`: the body is written only by the polling thread
/// before dispatch; `response` is written before the connection is resumed
/// (by the handler's task, or by a stop, whichever took the request out of
/// the running ones), and read by the polling thread after (libmicrohttpd's
/// resume orders the two).
private final class RequestContext: @unchecked Sendable {
    let method: String
    let path: String
    let headers: [String: String]
    let query: [String: String]
    let remoteAddress: String
    let started = Clock.now
    var body: [UInt8] = []
    /// The route's body limit.
    var maxBodyBytes = 0
    var tooLarge = false
    /// Set when the caller is no member of the server's swarm: answered without handling the request.
    var refusal: HTTPError?
    /// The body is read and dropped (a refused request's), not kept.
    var discardsBody = false
    var dispatched = false
    var response: HTTPResponse?

    init(method: String, path: String, headers: [String: String], query: [String: String], remoteAddress: String) {
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
        self.remoteAddress = remoteAddress
    }
}

/// A connection pointer carried into a task; libmicrohttpd allows resuming from any thread.
private struct ConnectionHandle: @unchecked Sendable {
    let connection: OpaquePointer
}

/// A response body kept alive while libmicrohttpd sends it.
private final class ResponseBody {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

private let releaseResponseBody: MHD_ContentReaderFreeCallback = { context in
    Unmanaged<ResponseBody>.fromOpaque(context!).release()
}

private final class ValueCollector {
    let lowercaseKeys: Bool
    var values: [String: String] = [:]
    init(lowercaseKeys: Bool) { self.lowercaseKeys = lowercaseKeys }
}

// MARK: - C callbacks (nonisolated globals, never main-actor closures)

private func server(_ context: UnsafeMutableRawPointer?) -> HTTPServer {
    Unmanaged<HTTPServer>.fromOpaque(context!).takeUnretainedValue()
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadSize, requestSlot in
    guard let connection, let requestSlot, let uploadSize else { return .NO }
    let server = server(cls)
    guard let slot = requestSlot.pointee else {
        let context = server.begin(connection, method: String(cString: method!), url: String(cString: url!))
        requestSlot.pointee = Unmanaged.passRetained(context).toOpaque()
        if context.tooLarge || (context.refusal != nil && !context.discardsBody) {
            context.dispatched = true
            server.dispatch(context, on: connection)
        }
        return .YES
    }
    let context = Unmanaged<RequestContext>.fromOpaque(slot).takeUnretainedValue()
    if uploadSize.pointee > 0 {
        if !context.tooLarge, !context.discardsBody, let uploadData {
            if context.body.count + uploadSize.pointee > context.maxBodyBytes {
                context.tooLarge = true
                context.body = []
            } else {
                context.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: uploadSize.pointee))
            }
        }
        uploadSize.pointee = 0
        return .YES
    }
    if let response = context.response {
        context.response = nil
        server.answering(connection, bytes: response.body.count)
        HTTPServer.queue(response, on: connection)
    } else if !context.dispatched {
        context.dispatched = true
        server.dispatch(context, on: connection)
    }
    return .YES
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, requestSlot, _ in
    if let connection { server(cls).requestDone(connection) }
    guard let slot = requestSlot?.pointee else { return }
    let context = Unmanaged<RequestContext>.fromOpaque(slot).takeRetainedValue()
    requestSlot?.pointee = nil
    server(cls).finish(context)
}

private let connectionNotified: MHD_NotifyConnectionCallback = { cls, connection, socketContext, code in
    guard let connection, let socketContext else { return }
    if code == .CONNECTION_NOTIFY_STARTED { server(cls).connectionOpened(connection, socketContext) }
    if code == .CONNECTION_NOTIFY_CLOSED { server(cls).connectionClosed(connection, socketContext) }
}
