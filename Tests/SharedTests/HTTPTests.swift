import Synchronization
import Foundation
import Testing
@testable import Shared
import TestSupport

/// Runs `body` against a server on a port chosen by the OS, and stops the
/// server afterwards, also when `body` throws.
func withTestServer<T>(maxBodyBytes: Int = 1 << 20, _ configure: (inout Router) -> Void,
                       _ body: (_ url: String, _ server: HTTPServer) async throws -> T) async throws -> T {
    var router = Router()
    configure(&router)
    var configuration = HTTPServerConfiguration()
    configuration.limits.maxBodyBytes = maxBodyBytes
    configuration.limits.defaultRouteBodyBytes = maxBodyBytes
    let server = try HTTPServer(configuration: configuration, router: router,
                                metrics: Metrics(namespace: "hivemind_test"), logger: Logger(service: "test", level: .error))
    do {
        let result = try await body("http://127.0.0.1:\(server.port)", server)
        await server.stop(timeout: 10)
        return result
    } catch {
        await server.stop(timeout: 10)
        throw error
    }
}

/// Routes that exercise each outcome.
func exampleRoutes(_ router: inout Router) {
    router.get("/items/{id}") { request in .json(["id": .string(request.parameter("id")), "q": .string(request.query["q"] ?? "")]) }
    router.post("/echo") { request in .bytes(request.body) }
    router.post("/json", accepts: ["application/json"]) { request in
        let body = try request.jsonObject()
        let count = try body.int("count")
        guard count >= 0 else { throw HTTPError.unprocessable("field 'count' must be >= 0, got \(count)") }
        return .json(["count": .int(count)])
    }
    router.get("/sleep") { request in
        try await Task.sleep(for: .seconds(Double(request.query["seconds"] ?? "0") ?? 0))
        return .json(["ok": true])
    }
}

@Suite struct HTTPTests {
    @Test func pathParametersAndQuery() async throws {
        try await withTestServer(exampleRoutes) { url, _ in
            let response = try await HTTPClient.shared.get("\(url)/items/a%20b?q=x%26y")
            #expect(try response.json() == ["id": "a b", "q": "x&y"])
            let escapedPercent = try await HTTPClient.shared.get("\(url)/items/a%2541")
            #expect(try escapedPercent.json()["id"] == "a%41", "decoded once, not twice")
        }
    }

    @Test func keepAliveReusesOneConnection() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        try await withTestServer(exampleRoutes) { url, server in
            var opened = 0
            for index in 0..<20 {
                let response = try await client.post("\(url)/echo", bytes: [UInt8(index)])
                #expect(response.body == [UInt8(index)])
                opened += response.connectionsOpened
            }
            #expect(opened == 1)
            #expect(server.metrics.value("http_connections_opened_total") == 1)
        }
    }

    @Test func twoHundredConcurrentRequestsSucceed() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        try await withTestServer(exampleRoutes) { url, _ in
            let bodies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let payload = Array("request \(index)".utf8)
                        return (index, try await client.post("\(url)/echo", bytes: payload).body)
                    }
                }
                return try await group.reduce(into: [Int: [UInt8]]()) { $0[$1.0] = $1.1 }
            }
            #expect(bodies.count == 200)
            #expect(bodies.allSatisfy { $0.value == Array("request \($0.key)".utf8) })
        }
    }

    @Test func slowHandlerTimesOutOnTime() async throws {
        try await withTestServer(exampleRoutes) { url, _ in
            let timeout = 1.0
            do {
                _ = try await HTTPClient.shared.send(HTTPClientRequest(url: "\(url)/sleep?seconds=5", timeout: timeout))
                Issue.record("a 5 s handler answered within a \(timeout) s timeout")
            } catch let error as HTTPClientError {
                #expect(error.kind == .timeout)
                // The client's own clock: CPU-bound tests running in parallel may
                // delay this task's resumption, but not when the timeout fired.
                let elapsed = try #require(error.elapsed)
                #expect(elapsed >= timeout * 0.8 && elapsed <= timeout * 1.2, "timed out after \(elapsed) s for a \(timeout) s timeout")
            }
        }
    }

    @Test func refusedConnectionIsTyped() async throws {
        let refusing = try BoundPort()
        let port = refusing.port
        await #expect {
            _ = try await HTTPClient.shared.get("http://127.0.0.1:\(port)/healthz", timeout: 2)
        } throws: { error in
            (error as? HTTPClientError)?.kind == .connectionRefused
        }
        withExtendedLifetime(refusing) {}
    }

    static let errorCases: [(name: String, request: HTTPClientRequest, status: Int, code: String, mentions: String)] = [
        ("malformed JSON", HTTPClientRequest(method: "POST", url: "/json", headers: [("Content-Type", "application/json")], body: Array("{\"count\": ".utf8)), 400, "bad_request", "line 1"),
        ("missing field", HTTPClientRequest(method: "POST", url: "/json", headers: [("Content-Type", "application/json")], body: Array("{}".utf8)), 400, "bad_request", "count"),
        ("unknown route", HTTPClientRequest(url: "/nowhere"), 404, "not_found", "/nowhere"),
        ("wrong method", HTTPClientRequest(method: "DELETE", url: "/echo"), 405, "method_not_allowed", "POST"),
        ("too large", HTTPClientRequest(method: "POST", url: "/echo", body: Array(repeating: 7, count: 2 << 20)), 413, "payload_too_large", "1048576"),
        ("wrong content type", HTTPClientRequest(method: "POST", url: "/json", headers: [("Content-Type", "text/plain")], body: Array("x".utf8)), 415, "unsupported_media_type", "application/json"),
        ("semantically invalid", HTTPClientRequest(method: "POST", url: "/json", headers: [("Content-Type", "application/json")], body: Array("{\"count\": -1}".utf8)), 422, "unprocessable", ">= 0"),
    ]

    @Test(arguments: errorCases.indices)
    func everyErrorIsAClearJSONError(_ index: Int) async throws {
        let testCase = Self.errorCases[index]
        try await withTestServer(exampleRoutes) { url, _ in
            var request = testCase.request
            request.url = url + request.url
            do {
                _ = try await HTTPClient.shared.send(request)
                Issue.record("\(testCase.name): expected HTTP \(testCase.status)")
            } catch let error as HTTPClientError {
                #expect(error.kind == .httpStatus)
                #expect(error.status == testCase.status, "\(testCase.name)")
                #expect(error.code == testCase.code, "\(testCase.name)")
                #expect(error.serverMessage.contains(testCase.mentions), "\(testCase.name): \(error.serverMessage)")
            }
            // The server keeps serving after every kind of bad request.
            #expect(try await HTTPClient.shared.get("\(url)/healthz").json() == ["status": "ok"])
        }
    }

    @Test func metricsCountRequestsByRouteAndStatus() async throws {
        try await withTestServer(exampleRoutes) { url, _ in
            _ = try await HTTPClient.shared.get("\(url)/items/1")
            _ = try? await HTTPClient.shared.get("\(url)/missing")
            let text = String(decoding: try await HTTPClient.shared.get("\(url)/metrics").body, as: UTF8.self)
            #expect(text.contains(#"hivemind_test_http_requests_total{method="GET",route="/items/{id}",status="200"} 1"#))
            #expect(text.contains(#"hivemind_test_http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
            #expect(text.contains(#"hivemind_test_http_request_duration_seconds_count{route="/items/{id}"} 1"#))
        }
    }

    @Test func sigtermLetsTheRequestInFlightFinish() async throws {
        let service = try await ServiceProcess.start("HTTPFixture", ["--port", "0"])
        async let slow = HTTPClient.shared.get("\(service.url)/sleep?seconds=1", timeout: 10)
        let deadline = Clock.now + 10
        while try await HTTPClient.shared.get("\(service.url)/sleepers").json()["sleepers"] != 1, Clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        service.signal(SIGTERM)
        let response = try await slow
        #expect(try response.json() == ["slept": 1.0])
        #expect(await service.exitStatus(timeout: 10) == 0)
    }

    /// In process: a stop gives requests in flight the grace period, answers
    /// the ones still running 503, and returns soon after (libmicrohttpd would
    /// abort the process if stopped with a suspended connection).
    @Test func stopAnswersWhatOutlivesTheGrace() async throws {
        let running = Atomic<Int>(0)
        var router = Router()
        router.get("/hold") { request in
            running.add(1, ordering: .relaxed)
            try await Task.sleep(for: .seconds(Double(request.query["seconds"] ?? "0") ?? 0))
            return .json(["ok": true])
        }
        let server = try HTTPServer(configuration: HTTPServerConfiguration(), router: router,
                                    metrics: Metrics(namespace: "hivemind_test"), logger: Logger(service: "test", level: .error))
        let url = "http://127.0.0.1:\(server.port)"
        let quick = Task { try await HTTPClient.shared.get("\(url)/hold?seconds=0.3", timeout: 20) }
        let stuck = Task { try await HTTPClient.shared.get("\(url)/hold?seconds=60", timeout: 20) }
        // Both handlers running (a busy machine may take a while to deliver the requests).
        let deadline = Clock.now + 60
        while running.load(ordering: .relaxed) < 2, Clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let started = Clock.now
        await server.stop(timeout: 0.8)
        let stopped = Clock.now - started
        #expect(stopped > 0.75 && stopped < 0.8 + 1.2, "stopped after \(stopped) s with a 0.8 s grace")
        #expect(try await quick.value.json() == ["ok": true])
        await #expect { _ = try await stuck.value } throws: { error in
            let error = error as? HTTPClientError
            return error?.status == 503 && error?.serverMessage.contains("stopped before this request finished") == true
        }
    }

    /// As a process: SIGTERM with `--shutdown-grace 1` under 8 requests, 4 of
    /// them short: those finish, the others get 503, and the process exits
    /// within the grace plus 1 s (3 s under a sanitizer).
    @Test func sigtermAnswersEveryCallerWithinTheGrace() async throws {
        let service = try await ServiceProcess.start("HTTPFixture", ["--port", "0", "--shutdown-grace", "1", "--log-level", "error"])
        let client = HTTPClient()
        defer { client.shutdown() }
        let calls = (0..<8).map { index in
            Task { () -> Int in
                do {
                    _ = try await client.get("\(service.url)/sleep?seconds=\(index < 4 ? 0.5 : 60)", timeout: 30)
                    return 200
                } catch {
                    return (error as? HTTPClientError)?.status ?? 0
                }
            }
        }
        let deadline = Clock.now + 10
        while try await HTTPClient.shared.get("\(service.url)/sleepers").json()["sleepers"] != 8, Clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let signalled = Clock.now
        service.signal(SIGTERM)
        #expect(await service.exitStatus(timeout: 10) == 0)
        let exited = Clock.now - signalled
        var statuses: [Int] = []
        for call in calls { statuses.append(await call.value) }
        #expect(exited < 1 + Sanitizer.timeScale, "exited \(exited) s after SIGTERM with a 1 s grace")
        #expect(statuses == [200, 200, 200, 200, 503, 503, 503, 503])
    }
}
