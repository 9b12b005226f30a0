import Synchronization
import Testing
@testable import Shared
@testable import SharedCore
import TestSupport

/// `GET /readyz`, JSON-lines logs and the announced address: what lets the
/// services run in containers on different hosts.
@Suite struct ReadinessTests {
    /// The status and JSON of a request: the body on 2xx, else the error's code and message.
    func fetch(_ url: String) async throws -> (status: Int, body: JSON) {
        do {
            let response = try await HTTPClient.shared.get(url, timeout: 5)
            return (response.status, try response.json())
        } catch let error as HTTPClientError where error.kind == .httpStatus {
            return (error.status ?? 0, ["error": ["code": .string(error.code ?? ""), "message": .string(error.serverMessage)]])
        }
    }

    /// Runs `body` against a server with `readiness` and `router`, and stops the server afterwards, also when `body` throws.
    func withServer(readiness: Readiness = Readiness(), router: Router = Router(),
                    _ body: (_ url: String) async throws -> Void) async throws {
        let server = try HTTPServer(configuration: HTTPServerConfiguration(), router: router,
                                    metrics: Metrics(namespace: "hivemind_test"), logger: Logger(service: "test", level: .error),
                                    readiness: readiness)
        do {
            try await body("http://127.0.0.1:\(server.port)")
            await server.stop(timeout: 10)
        } catch {
            await server.stop(timeout: 10)
            throw error
        }
    }

    @Test func readyzAnswers503WithTheReasonsUntilEveryConditionHolds() async throws {
        let readiness = Readiness()
        let problem = Mutex<String?>("experts not loaded")
        readiness.add("experts") { problem.withLock { $0 } }
        try await withServer(readiness: readiness) { base in
            let url = "\(base)/readyz"

            readiness.hold("started", reason: "joining the DHT")
            var answer = try await fetch(url)
            #expect(answer.status == 503)
            #expect(answer.body["error"]?["code"] == "not_ready")
            let message = answer.body["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("started: joining the DHT") && message.contains("experts: experts not loaded"), "\(message)")
            #expect(try JSON.parse(await readiness.response().body)["checks"] == ["started": "joining the DHT", "experts": "experts not loaded"])

            readiness.release("started")
            answer = try await fetch(url)
            #expect(answer.status == 503)
            #expect(answer.body["error"]?["message"] == "not ready: experts: experts not loaded")

            problem.withLock { $0 = nil }
            answer = try await fetch(url)
            #expect(answer.status == 200)
            #expect(answer.body == ["status": "ready", "checks": ["experts": "ok"]])
            // Liveness does not depend on readiness.
            readiness.hold("stopping", reason: "stopping")
            #expect(try await fetch("\(base)/healthz").status == 200)
            #expect(try await fetch(url).status == 503)
        }
    }

    @Test func dhtReachableNamesTheNodesThatDoNotAnswer() async throws {
        // A port that was just free: nothing listens there.
        var deadURL = ""
        try await withServer { url in deadURL = url }
        let unreachable = Readiness.dhtReachable(DHTClient(nodes: [deadURL], timeout: 5))
        let reason = await unreachable()
        #expect(reason?.contains("no DHT node answers") == true && reason?.contains(deadURL) == true, "\(reason ?? "nil")")

        var router = Router()
        router.get("/v1/node") { _ in .json(["id": "00"]) }
        try await withServer(router: router) { url in
            let reachable = Readiness.dhtReachable(DHTClient(nodes: [deadURL, url], timeout: 5))
            let reason = await reachable()
            #expect(reason == nil, "\(reason ?? "")")
        }
    }

    @Test func jsonLogLinesCarryTheSameParts() throws {
        let logger = Logger(service: "hivemind-test", level: .info, format: .json)
        let line = logger.jsonLine(.warning, "peer skipped", ["peer": "http://10.0.0.2:31337", "message": "not this"])
        #expect(line.hasSuffix("\n") && !line.dropLast().contains("\n"))
        let object = try JSON.parse(String(line.dropLast()))
        #expect(object["level"] == "warning")
        #expect(object["service"] == "hivemind-test")
        #expect(object["message"] == "peer skipped")
        #expect(object["peer"] == "http://10.0.0.2:31337")
        let time = object["time"]?.stringValue ?? ""
        #expect(time.count == 24 && time.hasSuffix("Z"), "\(time)")
    }

    @Test func logFormatComesFromTheFlagOrTheEnvironment() throws {
        let fromEnvironment = try ServiceOptions(service: "s", specs: OptionSpec.common, arguments: [],
                                                 environment: ["HIVEMIND_LOG_FORMAT": "json"])
        #expect(try fromEnvironment.logger().format == .json)
        let fromFlag = try ServiceOptions(service: "s", specs: OptionSpec.common, arguments: ["--log-format", "text"],
                                          environment: ["HIVEMIND_LOG_FORMAT": "json"])
        #expect(try fromFlag.logger().format == .text)
        let wrong = try ServiceOptions(service: "s", specs: OptionSpec.common, arguments: ["--log-format", "xml"], environment: [:])
        #expect(throws: OptionError.self) { try wrong.logger() }
    }

    @Test func announcedAddressIsNeverAWildcard() {
        #expect(AnnounceAddress.url(announce: "http://expert-1:8000", host: "0.0.0.0", port: 1) == "http://expert-1:8000")
        #expect(AnnounceAddress.url(announce: nil, host: "10.1.2.3", port: 8000) == "http://10.1.2.3:8000")
        let wildcard = AnnounceAddress.url(announce: nil, host: "0.0.0.0", port: 8000)
        #expect(!wildcard.contains("0.0.0.0"))
        if let external = AnnounceAddress.firstExternalIPv4() {
            #expect(wildcard == "http://\(external):8000")
            #expect(!external.hasPrefix("127."))
        } else {
            #expect(wildcard == "http://127.0.0.1:8000")
        }
    }
}
