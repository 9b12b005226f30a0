import Foundation
import Shared
import TestSupport
@testable import Gateway

/// A DHT node and expert hosts as real processes, each host serving part of a grid.
struct TestMesh {
    static let quiet = ["--port", "0", "--log-level", "error"]
    let dht: ServiceProcess
    var hosts: [ServiceProcess]

    /// - Parameter hostFlags: per host, its expert flags (uids, class, hidden size...).
    static func start(_ hostFlags: [[String]]) async throws -> TestMesh {
        let dht = try await ServiceProcess.start("hivemind-dht", quiet)
        var hosts: [ServiceProcess] = []
        for flags in hostFlags {
            hosts.append(try await ServiceProcess.start("hivemind-expert-host", quiet + ["--dht", dht.url, "--update-period", "1", "--optimizer", "none"] + flags))
        }
        let mesh = TestMesh(dht: dht, hosts: hosts)
        let uids = hosts.flatMap { $0.readyLine["experts"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let client = DHTClient(nodes: [dht.url], timeout: 5)
        let deadline = Clock.now + 10
        while try await client.getMany(uids, latest: true).count < uids.count {
            guard Clock.now < deadline else { throw ServiceProcessError("experts were not declared in time") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return mesh
    }

    /// A gateway over this mesh's DHT, in this process, without caches (tests watch the DHT change).
    func gateway() -> Gateway {
        Gateway(directory: DHTExpertDirectory(dht: DHTClient(nodes: [dht.url], timeout: 5), positiveCacheSeconds: 0, negativeCacheSeconds: 0),
                metrics: Metrics(namespace: "test_gateway"), seal: testSeal)
    }
}

/// Serves `gateway` on a port chosen by the OS while `body` runs.
func withGatewayServer<T>(_ gateway: Gateway, _ body: (String) async throws -> T) async throws -> T {
    let server = try HTTPServer(configuration: HTTPServerConfiguration(), router: gateway.makeRouter(),
                                metrics: gateway.metrics, logger: Logger(service: "test-gateway", level: .error))
    do {
        let result = try await body("http://127.0.0.1:\(server.port)")
        await server.stop(timeout: 10)
        return result
    } catch {
        await server.stop(timeout: 10)
        throw error
    }
}

/// The routing secret of the tests' in-process gateways and gateway processes, so
/// that a test can seal a record of its own making (as a replica would).
let testRoutingSecret = "gateway-tests-routing-secret"
let testSeal = RoutingSeal(secret: testRoutingSecret)

/// What forward returns for backward: the routing record and its seal.
struct IssuedRouting {
    let text: String
    let seal: String
    /// A record of the test's own, sealed as a gateway with the tests' secret would for `x`.
    static func sealed(_ text: String, x: Tensor) -> IssuedRouting { IssuedRouting(text: text, seal: testSeal.seal(routing: text, x: x)) }
    func contains(_ part: String) -> Bool { text.contains(part) }
    var metadata: [String: String] { ["routing": text, "routing_seal": seal] }
}

/// Calls the gateway's forward; returns the output and the routing metadata.
func moeForward(_ url: String, x: Tensor, scores: Tensor, query: String) async throws -> (Tensor, IssuedRouting) {
    let response = try await HTTPClient.shared.post("\(url)/v1/moe/forward?\(query)", bytes: try TensorBundle([("x", x), ("scores", scores)]).encode(), timeout: 30)
    let bundle = try TensorBundle.decode(response.body)
    return (bundle["output"]!, IssuedRouting(text: bundle.metadata["routing"]!, seal: bundle.metadata["routing_seal"]!))
}

/// Calls the gateway's backward; returns the gradients of x and of the scores.
func moeBackward(_ url: String, x: Tensor, gradOutput: Tensor, routing: IssuedRouting, query: String) async throws -> (Tensor, Tensor) {
    let body = try TensorBundle([("x", x), ("grad_output", gradOutput)], metadata: routing.metadata).encode()
    let response = try await HTTPClient.shared.post("\(url)/v1/moe/backward?\(query)", bytes: body, timeout: 30)
    let bundle = try TensorBundle.decode(response.body)
    return (bundle["grad_x"]!, bundle["grad_scores"]!)
}
