#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Shared
@testable import SharedCore
import TestSupport

@Suite struct ConnectionDeadlinesTests {
    @Test func requestsAndAnswersHaveDeadlinesAndHandlersDoNot() {
        var limits = ServerLimits()
        limits.receiveTimeout = 10
        var deadlines = ConnectionDeadlines(limits: limits)
        deadlines.opened(1, descriptor: 11, now: 0)
        deadlines.opened(2, descriptor: 12, now: 0)
        // A 1 MiB body earns 16 s at the minimum rate.
        deadlines.headReceived(2, bodyBytes: 1 << 20)
        #expect(deadlines.expire(now: 9.9).isEmpty)
        #expect(deadlines.expire(now: 10.1) == [11])
        #expect(deadlines.expire(now: 25.9).isEmpty)
        deadlines.handling(2)
        #expect(deadlines.expire(now: 1000).isEmpty, "a running handler bounds its own time")
        deadlines.answering(2, bytes: 0, now: 1000)
        #expect(deadlines.expire(now: 1010.1) == [12])
        #expect(deadlines.count == 0)
    }

    @Test func aCompletedRequestStartsTheIdleClock() {
        var limits = ServerLimits()
        limits.receiveTimeout = 5
        var deadlines = ConnectionDeadlines(limits: limits)
        deadlines.opened(1, descriptor: 3, now: 0)
        deadlines.handling(1)
        deadlines.completed(1, now: 100)
        #expect(deadlines.expire(now: 104).isEmpty)
        #expect(deadlines.expire(now: 105.5) == [3])
        deadlines.closed(1)
        #expect(deadlines.count == 0)
    }
}

/// The server's limits against real sockets.
@Suite struct ServerLimitsTests {
    /// A server with `limits`; routes: `/small` takes 1000 bytes, `/default` the default, `/status` answers 0.
    func withLimitedServer(_ limits: ServerLimits, _ body: (_ port: Int) async throws -> Void) async throws {
        var router = Router()
        router.post("/small", maxBodyBytes: 1000) { request in .json(["bytes": .int(request.body.count)]) }
        router.post("/default") { request in .json(["bytes": .int(request.body.count)]) }
        router.get("/status") { _ in HTTPResponse(status: 0, headers: [], body: []) }
        var configuration = HTTPServerConfiguration()
        configuration.limits = limits
        let server = try HTTPServer(configuration: configuration, router: router, metrics: Metrics(namespace: "hivemind_test"),
                                    logger: Logger(service: "test", level: .error))
        do {
            try await body(server.port)
            await server.stop(timeout: 5)
        } catch {
            await server.stop(timeout: 5)
            throw error
        }
    }

    @Test func eachRouteTakesBodiesUpToItsOwnLimit() async throws {
        var limits = ServerLimits()
        limits.defaultRouteBodyBytes = 4000
        limits.maxBodyBytes = 3000
        try await withLimitedServer(limits) { port in
            let url = "http://127.0.0.1:\(port)"
            let fits = try await HTTPClient.shared.post("\(url)/small", bytes: [UInt8](repeating: 1, count: 1000))
            #expect(fits.status == 200)
            let tooLarge = await #expect(throws: HTTPClientError.self) {
                try await HTTPClient.shared.post("\(url)/small", bytes: [UInt8](repeating: 1, count: 1001))
            }
            #expect(tooLarge?.status == 413 && tooLarge?.serverMessage.contains("1000 bytes, the most POST /small takes") == true)
            // The route's default is above the server's ceiling: the ceiling wins.
            let overCeiling = await #expect(throws: HTTPClientError.self) {
                try await HTTPClient.shared.post("\(url)/default", bytes: [UInt8](repeating: 1, count: 3001))
            }
            #expect(overCeiling?.status == 413 && overCeiling?.serverMessage.contains("--max-body-bytes") == true)
        }
    }

    @Test func aStatusThatIsNoHTTPStatusBecomesA500() async throws {
        try await withLimitedServer(ServerLimits()) { port in
            let error = await #expect(throws: HTTPClientError.self) { try await HTTPClient.shared.get("http://127.0.0.1:\(port)/status", timeout: 5) }
            #expect(error?.status == 500)
        }
    }

    @Test func oneAddressCannotTakeEveryConnection() async throws {
        var limits = ServerLimits()
        limits.maxConnectionsPerAddress = 8
        limits.maxConnections = 64
        try await withLimitedServer(limits) { port in
            // 40 idle connections from one address: 8 are kept, the rest are closed at accept.
            let hog = try (0..<40).map { _ in try RawConnection(port: port, from: "127.0.0.3") }
            try await Task.sleep(for: .milliseconds(300))
            let open = hog.filter { !$0.isClosed }.count
            #expect(open == 8, "\(open) of 40 connections from one address stayed open")
            let started = Clock.now
            let other = try RawConnection(port: port, from: "127.0.0.2")
            other.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            let answer = String(decoding: await other.receive(for: 2).bytes, as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(100))")
            #expect(Clock.now - started < 1)
        }
    }

    @Test func slowRequestsAreCutAtTheirDeadline() async throws {
        var limits = ServerLimits()
        limits.receiveTimeout = 1
        try await withLimitedServer(limits) { port in
            // A head that never ends, a body that trickles, and an idle connection.
            let slowHead = try RawConnection(port: port)
            slowHead.send("POST /small HTTP/1.1\r\nHost: x\r\n")
            let slowBody = try RawConnection(port: port)
            slowBody.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            let idle = try RawConnection(port: port)
            let started = Clock.now
            var trickled = 0
            while Clock.now - started < 10 && !(slowHead.isClosed && slowBody.isClosed && idle.isClosed) {
                slowHead.send("X-Slow: a\r\n")
                if slowBody.send("a") { trickled += 1 }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(slowHead.isClosed && slowBody.isClosed && idle.isClosed)
            // 1 s deadline plus the sweeper's second, with room for a loaded machine; trickling
            // connections are never closed by libmicrohttpd's inactivity timeout.
            #expect(Clock.now - started < 8, "cut at their deadline")
            #expect(trickled < 1000)
            // A request sent at once is still answered.
            let quick = try RawConnection(port: port)
            quick.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            let answer = String(decoding: await quick.receive(for: 2).bytes, as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"))
        }
    }
}
