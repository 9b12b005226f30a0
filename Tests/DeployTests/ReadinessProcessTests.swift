import Foundation
import Shared
import Testing
import TestSupport

/// `GET /readyz` of each service as a process: 503 with the reason while
/// what it needs is missing, 200 once it is there.
@Suite struct ReadinessProcessTests {
    /// The status and, on 503, the error message of `/readyz`.
    func readiness(_ url: String) async throws -> (status: Int, message: String) {
        let result: Result<HTTPClientResponse, HTTPClientError>
        do {
            result = .success(try await HTTPClient.shared.get("\(url)/readyz", timeout: 5))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let response):
            return (response.status, "")
        case .failure(let error):
            guard error.kind == .httpStatus else { throw error }
            #expect(error.code == "not_ready")
            return (error.status ?? 0, error.serverMessage)
        }
    }

    /// Polls until `/readyz` answers `status` (or 10 s pass) and returns the last answer.
    func waitFor(_ status: Int, _ url: String) async throws -> (status: Int, message: String) {
        var answer = try await readiness(url)
        let deadline = Clock.now + 10
        while answer.status != status && Clock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            answer = try await readiness(url)
        }
        return answer
    }

    @Test func servicesAreNotReadyWithoutADHTAndReadyWithOne() async throws {
        // A DHT URL where nothing listens: the first node of a DHT, stopped.
        let gone = try await ServiceProcess.start("hivemind-dht", ["--port", "0", "--log-level", "error"])
        let deadDHT = gone.url
        gone.signal(SIGKILL)
        _ = await gone.exitStatus(timeout: 5)

        let quiet = ["--port", "0", "--log-level", "error"]
        let gateway = try await ServiceProcess.start("hivemind-gateway", quiet + ["--dht", deadDHT])
        let averager = try await ServiceProcess.start("hivemind-averager", quiet + ["--dht", deadDHT])
        let host = try await ServiceProcess.start("hivemind-expert-host", quiet + [
            "--dht", deadDHT, "--expert-uids", "ffn.0.0", "--hidden-dim", "16", "--update-period", "1"])
        for (name, service, reason) in [("gateway", gateway, "dht: no DHT node answers"), ("averager", averager, "dht: no DHT node answers"),
                                        ("expert host", host, "declared: ")] {
            let answer = try await readiness(service.url)
            #expect(answer.status == 503, "\(name)")
            #expect(answer.message.contains(reason), "\(name): \(answer.message)")
            // Alive all the same.
            #expect(try await HTTPClient.shared.get("\(service.url)/healthz").status == 200)
        }

        // A DHT node started alone (its initial peer is gone) is ready; services that use it become ready.
        let dht = try await ServiceProcess.start("hivemind-dht", quiet + ["--initial-peers", deadDHT, "--allow-unreachable-peers"])
        #expect(try await waitFor(200, dht.url).status == 200)
        let gateway2 = try await ServiceProcess.start("hivemind-gateway", quiet + ["--dht", dht.url])
        let averager2 = try await ServiceProcess.start("hivemind-averager", quiet + ["--dht", dht.url])
        let host2 = try await ServiceProcess.start("hivemind-expert-host", quiet + [
            "--dht", dht.url, "--expert-uids", "ffn.0.1", "--hidden-dim", "16", "--update-period", "1"])
        for service in [gateway2, averager2, host2] {
            let answer = try await waitFor(200, service.url)
            #expect(answer.status == 200, "\(service.url): \(answer.message)")
        }

        // An expert host whose DHT goes away is no longer ready after its next declaration.
        dht.signal(SIGKILL)
        _ = await dht.exitStatus(timeout: 5)
        let after = try await waitFor(503, host2.url)
        #expect(after.status == 503 && after.message.contains("declared: the last declaration in the DHT failed"), "\(after.message)")
    }
}
