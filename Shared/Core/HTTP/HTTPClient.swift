#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Synchronization

/// An HTTP client over one libcurl multi handle driven by one thread: many
/// requests run in parallel without a thread each, connections to the same
/// host are kept alive and reused, and every call has a connect and a total
/// timeout and a byte cap on its answer. Every URL and every address it
/// connects to is checked against the process's `EgressPolicy` first; only
/// http and https are spoken, and redirects are never followed. HTTPS calls
/// authenticate the server as `TLSClientSettings` says (a peer address's key,
/// the swarm's roots, or the web's authorities), present the process's
/// membership certificate, and share one TLS session cache, so a new
/// connection to a known server resumes its session instead of paying a
/// whole handshake.
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Seconds to establish a TCP connection.
        public var connectTimeout = 3.0
        /// Seconds for a whole exchange when the request names none.
        public var timeout = 30.0
        /// Idle connections kept for reuse.
        public var connectionCacheSize = 256
        /// Connections open to one host at most; more calls wait for one (within
        /// their timeout). Half a server's `ServerLimits.maxConnectionsPerAddress`,
        /// so that a busy caller is never refused at accept.
        public var maxConnectionsPerHost = 64
        /// Bytes of an answer accepted when the request names no cap: the
        /// largest request body a service accepts by default, plus headroom.
        public var maxResponseBytes = (256 << 20) + (1 << 20)
        /// What this client may call; nil follows the process's `EgressPolicy.current`.
        public var egress: EgressPolicy?
        /// How HTTPS calls authenticate; nil follows the process's `TLSClientSettings.current`.
        public var tls: TLSClientSettings?

        public init(connectTimeout: Double = 3.0, timeout: Double = 30.0) {
            self.connectTimeout = connectTimeout
            self.timeout = timeout
        }
    }

    /// A client shared by a process's callers (its connection cache is shared too).
    public static let shared = HTTPClient()

    public let configuration: Configuration
    private let multi: CURLMultiHandle
    private let queue = Mutex(Queue())
    /// Per peer id: keys of operators' certificates its identity vouched for
    /// (`GET /v1/identity`), and when the peer was last asked.
    private let vouched = Mutex<[String: (pins: Set<String>, asked: Double)]>([:])
    /// Peer ids come from records anyone can write: at most this many are remembered, and when a new
    /// one would pass the bound the table starts over (forgetting costs one more `GET /v1/identity`).
    private static let maxVouchedPeers = 4096

    private struct Queue {
        var pending: [Transfer] = []
        /// Ids of transfers whose callers were cancelled. Not ObjectIdentifiers: a cancellation that
        /// arrives just after its transfer finished would cancel the next transfer at the same address.
        var cancelled: Set<UInt64> = []
        var shuttingDown = false
    }

    public init(configuration: Configuration = Configuration()) {
        _ = curlGlobalInit
        self.configuration = configuration
        multi = CURLMultiHandle()
        ccurl_multi_setopt_long(multi.handle, CURLMOPT_MAXCONNECTS, configuration.connectionCacheSize)
        ccurl_multi_setopt_long(multi.handle, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        var thread = pthread_t()
        let client = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { argument in
            Unmanaged<HTTPClient>.fromOpaque(argument!).takeRetainedValue().runLoop()
            return nil
        }, client)
        pthread_detach(thread)
    }

    /// Ends the loop thread after cancelling what is still running; later
    /// requests fail at once with `.cancelled`.
    public func shutdown() {
        queue.withLock { $0.shuttingDown = true }
        curl_multi_wakeup(multi.handle)
    }

    /// Sends a request and waits for the whole response. A URL that names a
    /// peer (`https://<peer id>@host:port/...`) is called only if the server
    /// presents that peer's key, or a key its identity vouches for at
    /// `GET /v1/identity` (asked once a minute at most, on a mismatch).
    /// - Throws: `HTTPClientError`; a status outside 2xx is `.httpStatus` with the server's error.
    public func send(_ request: HTTPClientRequest) async throws(HTTPClientError) -> HTTPClientResponse {
        let policy = configuration.egress ?? EgressPolicy.current
        let tls = configuration.tls ?? TLSClientSettings.current
        let url: OutboundURL
        do {
            url = try policy.check(url: request.url)
        } catch {
            throw HTTPClientError(.refused, url: request.url, message: "not called: \(error.message)")
        }
        if url.scheme == "http" && tls.httpsOnly {
            throw HTTPClientError(.refused, url: request.url, message: "not called: this service speaks TLS and calls https:// peers only")
        }
        guard url.scheme == "https", let peer = url.peer else {
            return try await perform(request, TransferTLS(settings: tls, pins: []), policy: policy)
        }
        if tls.revocations?.contains(peer) == true {
            throw HTTPClientError(.refused, url: request.url, message: "not called: peer \(peer) is revoked (--swarm-revoked)")
        }
        let known = vouched.withLock { $0[peer] }
        let pins = [PeerPin.pin(peer: peer)!] + (known?.pins.sorted() ?? [])
        do {
            return try await perform(request, TransferTLS(settings: tls, pins: pins), policy: policy)
        } catch where error.kind == .untrusted && error.isPinMismatch && Clock.now - (known?.asked ?? -.infinity) > 60 {
            // Perhaps an operator's certificate: does the peer's identity vouch for the key it presents?
            remember(peer) { $0.asked = Clock.now }
            guard let card = try? await perform(HTTPClientRequest(url: "https://\(url.authority)/v1/identity", timeout: request.timeout,
                                                                  maxResponseBytes: 64 << 10),
                                                TransferTLS(settings: tls, pins: [], unverified: true), policy: policy).json(),
                  let pin = IdentityCard.vouchedPin(card, peer: peer), !pins.contains(pin) else { throw error }
            remember(peer) { _ = $0.pins.insert(pin) }
            return try await perform(request, TransferTLS(settings: tls, pins: pins + [pin]), policy: policy)
        }
    }

    private func remember(_ peer: String, _ update: (inout (pins: Set<String>, asked: Double)) -> Void) {
        vouched.withLock { table in
            if table[peer] == nil, table.count >= Self.maxVouchedPeers { table.removeAll(keepingCapacity: true) }
            update(&table[peer, default: ([], Clock.now)])
        }
    }

    /// Runs one exchange on the loop thread.
    private func perform(_ request: HTTPClientRequest, _ tls: TransferTLS, policy: EgressPolicy) async throws(HTTPClientError) -> HTTPClientResponse {
        let transfer = Transfer(request, timeout: request.timeout ?? configuration.timeout,
                                connectTimeout: configuration.connectTimeout,
                                maxResponseBytes: request.maxResponseBytes ?? configuration.maxResponseBytes, policy: policy,
                                tls: tls, share: multi.share)
        let id = transfer.id
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    transfer.continuation = continuation
                    // After shutdown the loop thread is gone: nothing would ever finish the transfer.
                    let queued = queue.withLock { queue in
                        guard !queue.shuttingDown else { return false }
                        queue.pending.append(transfer)
                        return true
                    }
                    if queued {
                        curl_multi_wakeup(multi.handle)
                    } else {
                        transfer.finish(.failure(HTTPClientError(.cancelled, url: request.url, message: "the client was shut down")))
                    }
                }
            } onCancel: {
                queue.withLock { _ = $0.cancelled.insert(id) }
                curl_multi_wakeup(multi.handle)
            }
        } catch let error as HTTPClientError {
            throw error
        } catch {
            throw HTTPClientError(.transport, url: request.url, message: "\(error)")
        }
    }

    public func get(_ url: String, timeout: Double? = nil, maxResponseBytes: Int? = nil) async throws(HTTPClientError) -> HTTPClientResponse {
        try await send(HTTPClientRequest(url: url, timeout: timeout, maxResponseBytes: maxResponseBytes))
    }

    /// POSTs (or PUTs) a JSON document.
    public func send(_ method: String = "POST", _ url: String, json: JSON, timeout: Double? = nil,
                     maxResponseBytes: Int? = nil) async throws(HTTPClientError) -> HTTPClientResponse {
        try await send(HTTPClientRequest(method: method, url: url, headers: [("Content-Type", "application/json")],
                                         body: json.serializedBytes(), timeout: timeout, maxResponseBytes: maxResponseBytes))
    }

    /// POSTs a binary payload such as safetensors.
    public func post(_ url: String, bytes: [UInt8], contentType: String = "application/octet-stream",
                     headers: [(name: String, value: String)] = [], timeout: Double? = nil,
                     maxResponseBytes: Int? = nil) async throws(HTTPClientError) -> HTTPClientResponse {
        try await send(HTTPClientRequest(method: "POST", url: url, headers: [("Content-Type", contentType)] + headers,
                                         body: bytes, timeout: timeout, maxResponseBytes: maxResponseBytes))
    }

    // MARK: - The loop thread

    private func runLoop() {
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        while true {
            let (pending, cancelled, shuttingDown) = queue.withLock { queue in
                defer { queue.pending = []; queue.cancelled = [] }
                return (queue.pending, queue.cancelled, queue.shuttingDown)
            }
            for transfer in pending {
                if cancelled.contains(transfer.id) {
                    transfer.finish(.failure(HTTPClientError(.cancelled, url: transfer.url, message: "cancelled")))
                } else {
                    active[transfer.easy] = transfer
                    curl_multi_add_handle(multi.handle, transfer.easy)
                }
            }
            for (easy, transfer) in active where shuttingDown || cancelled.contains(transfer.id) {
                curl_multi_remove_handle(multi.handle, easy)
                active[easy] = nil
                transfer.finish(.failure(HTTPClientError(.cancelled, url: transfer.url, message: "cancelled")))
            }
            if shuttingDown { break }

            var running: Int32 = 0
            curl_multi_perform(multi.handle, &running)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi.handle, &remaining) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let transfer = active.removeValue(forKey: easy) else { continue }
                let code = message.pointee.data.result
                curl_multi_remove_handle(multi.handle, easy)
                transfer.finish(transfer.result(code))
            }
            curl_multi_poll(multi.handle, nil, 0, 1000, nil)
        }
    }
}

/// `curl_global_init` must run once before any other libcurl call.
private let curlGlobalInit: Void = {
    OpenSSLLibrary.initialized
    curl_global_init(Int(CURL_GLOBAL_ALL))
}()

/// The owner of the multi handle.
private final class CURLMultiHandle: @unchecked Sendable {
    // Sendable: after init only the loop thread uses the handle, except
    // curl_multi_wakeup, which libcurl allows from any thread.
    let handle: UnsafeMutableRawPointer
    /// The TLS session cache of the multi's transfers (used by the loop thread only, so it needs no locks).
    let share: UnsafeMutableRawPointer
    init() {
        handle = curl_multi_init()
        share = curl_share_init()!
        ccurl_share_ssl_sessions(share)
    }
    deinit {
        curl_multi_cleanup(handle)
        curl_share_cleanup(share)
    }
}

/// One exchange: its easy handle, the request body it sends and the response it collects.
/// `@unchecked Sendable`: after `send` queues it, only the loop thread touches it.
private final class Transfer: @unchecked Sendable {
    private static let lastID = Atomic<UInt64>(0)
    /// Unique over the process's life.
    let id = Transfer.lastID.add(1, ordering: .relaxed).newValue
    let easy: UnsafeMutableRawPointer
    let url: String
    var continuation: CheckedContinuation<HTTPClientResponse, any Error>?
    /// libcurl reads the body from this array's storage, which stays put
    /// because the array lives as long as the transfer and never changes.
    private let requestBody: [UInt8]
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// libcurl keeps this pointer and writes its detailed error text there.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    var responseBody: [UInt8] = []
    var responseHeaders: [String: String] = [:]
    let maxResponseBytes: Int
    let policy: EgressPolicy
    /// Set when the transfer was stopped by the byte cap or the egress policy.
    var stopped: HTTPClientError?
    let tls: TransferTLS
    /// The TLS credentials libcurl's context callback reads; held for the transfer's life (https only).
    private var credentials: TLSClientCredentials?

    init(_ request: HTTPClientRequest, timeout: Double, connectTimeout: Double, maxResponseBytes: Int, policy: EgressPolicy,
         tls: TransferTLS, share: UnsafeMutableRawPointer) {
        easy = curl_easy_init()
        url = request.url
        self.tls = tls
        self.maxResponseBytes = maxResponseBytes
        self.policy = policy
        // Never empty: libcurl would read a NULL body from standard input (the size sent stays 0).
        requestBody = request.body.isEmpty ? [0] : request.body
        errorBuffer[0] = 0

        ccurl_easy_setopt_string(easy, CURLOPT_URL, PeerAddress.unpinned(request.url))  // the peer id is for us, never sent
        if request.url.prefix(6).lowercased() == "https:" {
            ccurl_easy_setopt_pointer(easy, CURLOPT_SHARE, share)
            credentials = tls.apply(to: easy)
        }
        ccurl_easy_setopt_string(easy, CURLOPT_PROXY, "")  // loopback and peers never go through a proxy
        // Only HTTP(S), never a redirect: a URL from a record cannot become file://, gopher:// or another host.
        ccurl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        ccurl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        ccurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        ccurl_easy_setopt_offset(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(maxResponseBytes))
        ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout * 1000))
        ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000)))
        switch request.method {
        case "GET": ccurl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case "HEAD": ccurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        default: ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if !request.body.isEmpty || request.method == "POST" || request.method == "PUT" {
            ccurl_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            _ = requestBody.withUnsafeBytes { ccurl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress)) }
        }
        if request.body.count > 1 << 16 {
            // Larger writes to the socket than the default 64 KiB: fewer system calls for a large body.
            ccurl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, min(request.body.count, 2 << 20))
        }
        // Larger reads than the default 16 KiB, for large responses (allocated per transfer, touched only as used).
        ccurl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 1 << 20)
        // "Expect:" turns off 100-continue, which would cost a round trip per large body.
        for header in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, header)
        }
        ccurl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, headerList)
        ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        let context = Unmanaged.passUnretained(self).toOpaque()
        // Every address libcurl connects to, whatever DNS said, passes the policy first.
        ccurl_easy_setopt_opensocket_function(easy) { context, _, address in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            guard let address else { return CURL_SOCKET_BAD }
            guard let ip = IPAddress(socketAddress: ccurl_sockaddr_address(address)) else {
                transfer.stopped = HTTPClientError(.refused, url: transfer.url, message: "not called: not an IP address")
                return CURL_SOCKET_BAD
            }
            if let refusal = transfer.policy.refusal(ip) {
                transfer.stopped = HTTPClientError(.refused, url: transfer.url, message: "not called: \(refusal.message)")
                return CURL_SOCKET_BAD
            }
            // Close-on-exec, as libcurl's own sockets are: a child process (hivemind mesh up's services) must not inherit them.
            return socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
        }
        ccurl_easy_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, context)
        ccurl_easy_setopt_write_function(easy) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            guard transfer.responseBody.count + size * count <= transfer.maxResponseBytes else {
                transfer.overflow()
                return 0
            }
            transfer.responseBody.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        ccurl_easy_setopt_header_function(easy) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingSpaces().trimmingCharacters("\r\n")
                transfer.responseHeaders[name] = String(value)
                if name == "content-length", let length = Int(value) {
                    guard length <= transfer.maxResponseBytes else {
                        transfer.overflow()
                        return 0
                    }
                    // One buffer for the whole body (see the server's request bodies).
                    transfer.responseBody.reserveCapacity(length)
                }
            }
            return size * count
        }
        ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Stops the transfer for exceeding the byte cap and returns what it received.
    func overflow() {
        stopped = HTTPClientError(.tooLarge, url: url, message: "the answer exceeds \(maxResponseBytes) bytes, the most this call accepts")
        responseBody = []
    }

    /// The outcome of a finished exchange.
    func result(_ code: CURLcode) -> Result<HTTPClientResponse, HTTPClientError> {
        var elapsed = 0.0
        ccurl_easy_getinfo_double(easy, CURLINFO_TOTAL_TIME, &elapsed)
        if var stopped, code != CURLE_OK {
            stopped.elapsed = elapsed
            return .failure(stopped)
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            var error = switch code {
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                HTTPClientError(.untrusted, url: url, message: "not called: the server does not present the key of peer \(PeerAddress.peer(in: url) ?? "?") (nor one its identity vouches for)",
                                pinMismatch: true)
            case CURLE_PEER_FAILED_VERIFICATION:
                HTTPClientError(.untrusted, url: url, message: tls.settings.authoritiesPEM != nil
                    ? "not called: the server's certificate is not a membership of this swarm (--swarm-ca): \(message)"
                    : "not called: the server's certificate is not trusted for its name (\(message)); name the peer to pin its key: https://PEER_ID@host:port")
            // A plain server answers a ClientHello with a plain 400 ("wrong version number") or, when it
            // closes before OpenSSL reads that, with nothing (SSL_ERROR_SYSCALL).
            case CURLE_SSL_CONNECT_ERROR where message.containsUTF8("wrong version number"):
                HTTPClientError(.transport, url: url, message: "the server does not speak TLS (\(message)): call http:// if it is not started with --tls")
            case CURLE_SSL_CONNECT_ERROR where message.containsUTF8("SSL_ERROR_SYSCALL"):
                HTTPClientError(.transport, url: url, message: "the server closed the connection during the TLS handshake (\(message)): "
                    + "it does not speak TLS (call http:// if it is not started with --tls), or it went away")
            case CURLE_OPERATION_TIMEDOUT: HTTPClientError(.timeout, url: url, message: "timed out: \(message)")
            case CURLE_COULDNT_CONNECT: HTTPClientError(.connectionRefused, url: url, message: "cannot connect: \(message)")
            case CURLE_FILESIZE_EXCEEDED:
                HTTPClientError(.tooLarge, url: url, message: "the answer exceeds \(maxResponseBytes) bytes, the most this call accepts")
            default: HTTPClientError(.transport, url: url, message: message)
            }
            error.elapsed = elapsed
            return .failure(error)
        }
        var status = 0
        var connects = 0
        ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        ccurl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        guard (100...599).contains(status) else {
            return .failure(HTTPClientError(.transport, url: url, message: "answered with status \(status), which is not an HTTP status"))
        }
        guard (200..<300).contains(status) else {
            var error = HTTPClientError.status(status, url: url, body: responseBody)
            error.elapsed = elapsed
            return .failure(error)
        }
        return .success(HTTPClientResponse(status: status, headers: responseHeaders, body: responseBody, connectionsOpened: connects))
    }

    func finish(_ result: Result<HTTPClientResponse, HTTPClientError>) {
        continuation?.resume(with: result.mapError { $0 as any Error })
        continuation = nil
    }
}

/// How one HTTPS exchange authenticates the server, and itself (see `TLSClientSettings`).
struct TransferTLS {
    let settings: TLSClientSettings
    /// `sha256//...` pins: the server must present one of these keys.
    let pins: [String]
    /// Check nothing about the server (only for `GET /v1/identity`, whose answer is signed).
    var unverified = false

    /// Sets up an HTTPS transfer.
    ///
    /// libcurl (7.88) reuses a pooled connection or a TLS session without comparing
    /// the credentials a context callback installs, so one `HTTPClient` must call
    /// with one set: services install theirs once, at start; a caller with other
    /// credentials makes an `HTTPClient` of its own (`Configuration.tls`).
    /// - Returns: the credentials the transfer's connections get, which the transfer must keep.
    func apply(to easy: UnsafeMutableRawPointer) -> TLSClientCredentials {
        // AES-128-GCM first: the same AEAD with 10 rounds instead of 14, about
        // 10% less CPU per byte here (OpenSSL and GnuTLS alike), and 128-bit keys
        // are TLS 1.3's own default; a server that prefers another still gets it.
        ccurl_easy_setopt_string(easy, CURLOPT_TLS13_CIPHERS, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")
        if !pins.isEmpty || unverified {
            // The key is the identity: pinned, it needs no authority and no name.
            ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)
            ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
            if !pins.isEmpty { ccurl_easy_setopt_string(easy, CURLOPT_PINNEDPUBLICKEY, pins.joined(separator: ";")) }
        } else if settings.authoritiesPEM != nil {
            // Any member of the swarm: its root signed the certificate; members have keys, not names.
            // Only the swarm's roots (installed with the credentials), never the system's.
            ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
            ccurl_easy_setopt_pointer(easy, CURLOPT_CAINFO, nil)
            ccurl_easy_setopt_pointer(easy, CURLOPT_CAPATH, nil)
            // libcurl would otherwise cache the first connection's store for every later one
            // without a CA file, whatever roots their credentials hold.
            ccurl_easy_setopt_long(easy, CURLOPT_CA_CACHE_TIMEOUT, 0)
        }
        let roots = pins.isEmpty && !unverified ? settings.authoritiesPEM : nil
        let credentials = TLSClientCredentials.cached(certificatePEM: settings.certificatePEM, privateKeyPEM: settings.privateKeyPEM,
                                                      authoritiesPEM: roots)
        ccurl_easy_setopt_ssl_ctx_function(easy, installCredentials)
        ccurl_easy_setopt_pointer(easy, CURLOPT_SSL_CTX_DATA, Unmanaged.passUnretained(credentials).toOpaque())
        return credentials
    }
}

/// libcurl's `CURLOPT_SSL_CTX_FUNCTION`: a new connection's context gets the transfer's credentials.
private func installCredentials(_ easy: UnsafeMutableRawPointer?, _ context: UnsafeMutableRawPointer?,
                                _ credentials: UnsafeMutableRawPointer?) -> CURLcode {
    guard let context, let credentials else { return CURLE_SSL_CERTPROBLEM }
    return Unmanaged<TLSClientCredentials>.fromOpaque(credentials).takeUnretainedValue().install(into: OpaquePointer(context))
        ? CURLE_OK : CURLE_SSL_CERTPROBLEM
}

extension Substring {
    func trimmingCharacters(_ characters: String) -> Substring {
        var result = self
        while let last = result.last, characters.contains(last) { result.removeLast() }
        return result
    }
}
