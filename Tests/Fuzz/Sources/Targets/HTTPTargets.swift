import Dispatch
@testable import Averager
@testable import Gateway
@testable import Shared

// What a request carries before a handler reads its body: method, path, headers and query.

extension FuzzTarget {
    /// Route matching and the JSON errors of `Router`, then every service's query parser.
    static let router = FuzzTarget(
        name: "router",
        about: "Router.respond over the services' route shapes, and the gateway's and averager's query parsers",
        seeds: { RouterSeeds.requests }
    ) { bytes in
        var input = FuzzInput(bytes)
        let request = RouterSeeds.request(&input)
        let (response, route) = blocking { await RouterSeeds.router.respond(to: request) }
        fuzzCheck(response.status < 500, "\(request.method) \(request.path) answered \(response.status)")
        let body = try? JSON.parse(response.body)
        switch response.status {
        case 200:
            // The handler echoes the path parameters: each is one non-empty segment of the path.
            let segments = request.path.split(separator: "/")
            for (_, value) in body?["parameters"]?.objectValue ?? [:] {
                fuzzCheck(value.stringValue.map { !$0.isEmpty && segments.contains(Substring($0)) } ?? false,
                          "parameter \(value.serialized()) is not a segment of \(request.path)")
            }
        default:
            fuzzCheck(body?["error"]?["code"]?.stringValue != nil && body?["error"]?["message"]?.stringValue != nil,
                      "a \(response.status) without a JSON error body")
            fuzzCheck(response.status != 404 || route == "unmatched", "404 from route \(route)")
            fuzzCheck(response.status != 405 || response.headers.contains { $0.name == "Allow" }, "405 without Allow")
        }
        // Query parsers answer a value or a 4xx, never a trap.
        if let mixture = try? MixtureParameters(query: request.query) {
            fuzzCheck(mixture.kMin <= mixture.kBest && mixture.gridSize.allSatisfy { $0 > 0 }, "MixtureParameters accepted \(request.query)")
        }
        _ = try? SwitchParameters(query: request.query)
        _ = try? MeshQuery(query: request.query)
        if let average = try? AverageRequest(http: request) {
            fuzzCheck(average.weight.isFinite && average.weight >= 0 && !average.tensors.isEmpty, "AverageRequest accepted \(request.query)")
        }
    }
}

enum RouterSeeds {
    /// Routes shaped like the services' (path parameters in the middle and at the end, the same path
    /// with several methods); each handler echoes its path parameters.
    static let router: Router = {
        var router = Router()
        let echo: HTTPHandler = { request in .json(["parameters": .object(request.pathParameters.mapValues(JSON.string))]) }
        router.get("/healthz", echo)
        router.put("/v1/records/{key}", accepts: ["application/json"], echo)
        router.get("/v1/records/{key}", echo)
        router.post("/v1/batch/store", accepts: ["application/json"], echo)
        router.post("/v1/experts/{uid}/forward", accepts: ["application/octet-stream"], echo)
        router.get("/v1/experts/{uid}/info", echo)
        router.post("/v1/groups/{group_id}/parts/{part}", accepts: ["application/octet-stream"], echo)
        router.delete("/v1/runs/{run}/trainers/{trainer}", echo)
        router.get("/v1/runs/{run}", { _ in throw HTTPError.badRequest("refused by the handler") })
        router.get("/v1/fields", { request in _ = try request.jsonObject().string("name"); return .json([:]) })
        return router
    }()

    static let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
    static let paths = ["/healthz", "/v1/records/a", "/v1/experts/ffn.0.1/forward", "/v1/groups/g/parts/3", "/v1/runs/r/trainers/t",
                        "/v1/runs/r", "/v1/fields", "/v1/moe/forward", "/"]
    static let queryNames = ["prefix", "grid", "k_best", "k_min", "backward_k_min", "forward_timeout", "timeout_after_k_min",
                             "backward_timeout", "detect_anomalies", "codec", "jitter", "utilization_alpha", "seed", "run",
                             "group_bits", "weight", "timeout", "latest"]
    static let contentTypes = ["application/json", "application/octet-stream", "application/json; charset=utf-8", "text/plain"]

    /// A request: method, path (one of the routes' or arbitrary text), content type, query and body.
    /// Everything but the body arrives from libmicrohttpd as C strings, so without NUL bytes.
    static func request(_ input: inout FuzzInput) -> HTTPRequest {
        let method = input.bool() ? input.pick(methods) : input.cString(maxBytes: 8)
        var path = input.bool() ? input.pick(paths) : input.cString(maxBytes: 120)
        if input.bool() { path += input.cString(maxBytes: 40) }
        var headers: [String: String] = [:]
        if input.bool() { headers["Content-Type"] = input.bool() ? input.pick(contentTypes) : input.cString(maxBytes: 40) }
        var query: [String: String] = [:]
        for _ in 0..<input.int(in: 0...6) {
            query[input.bool() ? input.pick(queryNames) : input.cString(maxBytes: 16)] = input.cString(maxBytes: 24)
        }
        return HTTPRequest(method: method, path: path, query: query, headers: headers, body: input.rest())
    }

    static var requests: [(name: String, bytes: [UInt8])] {
        // method (choice, index), path (choice, index), suffix flag, content-type (flag, choice, index), query count, pairs..., body
        let mixture: [UInt8] = [1, 1, 1, 7, 0, 1, 1, 0, 4,
                                1, 0, 4] + Array("ffn.".utf8) + [1, 1, 3] + Array("4,4".utf8)
            + [1, 2, 1] + Array("4".utf8) + [1, 9, 7] + Array("float16".utf8) + Array(#"{"x": 1}"#.utf8)
        let average: [UInt8] = [1, 1, 1, 8, 0, 1, 1, 1, 5,
                                1, 0, 6] + Array("digits".utf8) + [1, 15, 3] + Array("0.5".utf8) + [1, 16, 1] + Array("5".utf8)
            + (try! Safetensors.encode([("w", try! WireTensor(WireSeeds.floats([2, 2])))]))
        let record: [UInt8] = [1, 2, 1, 1, 0, 1, 1, 0, 0] + Array(#"{"value": 1, "expiration_time": 2e9}"#.utf8)
        return [("moe-query", mixture), ("average", average), ("put-record", record)]
    }
}

/// Runs async work from the fuzzer's thread on one long-lived task and waits for it. libFuzzer runs
/// LeakSanitizer's full scan (milliseconds) after every input whose mallocs and frees differ in
/// number; a task per input is freed only after the waiting thread wakes, so every input would
/// differ. One task, and the work's closure freed here, keep an input's allocations balanced.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    nonisolated(unsafe) var result: T?
    AsyncRunner.shared.run { result = await body() }
    return result!
}

/// The task behind `blocking`.
/// `@unchecked Sendable`: `work` is written by the fuzzer's thread only while the task waits for
/// `start`, and read by the task only between `start` and `finished`.
final class AsyncRunner: @unchecked Sendable {
    static let shared = AsyncRunner()
    private let start = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var work: (@Sendable () async -> Void)?

    private init() {
        Task.detached { [self] in
            while true {
                start.wait()
                await work!()
                finished.signal()
            }
        }
    }

    func run(_ body: @escaping @Sendable () async -> Void) {
        work = body
        start.signal()
        finished.wait()
        work = nil
    }
}
