import Foundation
import Shared
import Testing
import TestSupport

/// Attacks on a service's capacity: connections, stores.
@Suite struct ExhaustionAttackTests {
    /// 1,100 idle connections from 127.0.0.3 (more than the 1,024 a service
    /// takes); a client on 127.0.0.2 is still served, in under a second.
    @Test func oneAddressCannotLockOutOthers() async throws {
        let mesh = try await SecurityMesh.start()
        for service in [mesh.gateway, mesh.dht] {
            let port = Int(service.url.split(separator: ":").last!)!
            var hog: [RawConnection] = []
            for _ in 0..<1100 { if let connection = try? RawConnection(port: port, from: "127.0.0.3") { hog.append(connection) } }
            try await Task.sleep(for: .milliseconds(300))
            let open = hog.filter { !$0.isClosed }.count
            let started = Clock.now
            let other = try RawConnection(port: port, from: "127.0.0.2")
            other.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let answer = String(decoding: await other.receive(for: 5).bytes, as: UTF8.self)
            let seconds = Clock.now - started
            print("\(service.url): \(open) of 1100 connections from 127.0.0.3 kept open; 127.0.0.2 served in \(String(format: "%.3f", seconds)) s")
            #expect(open <= 128, "one address kept \(open) connections")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(80))")
            #expect(seconds < 1)
        }
        #expect(await mesh.allHealthy())
    }

    @Test func averagerStoresAreBoundedAndRunsNeedTheToken() async throws {
        let mesh = try await SecurityMesh.start(averagerFlags: ["--max-states", "2", "--max-runs", "1", "--max-rounds", "1", "--run-token", "run-secret"])
        let state = try TensorBundle([("w", Tensor(repeating: 1, shape: [4]))]).encode()
        func put(_ prefix: String, token: String?) async -> Int {
            let headers: [(name: String, value: String)] = [("Content-Type", "application/octet-stream")] + (token.map { [("Authorization", "Bearer \($0)")] } ?? [])
            do {
                return try await HTTPClient.shared.send(HTTPClientRequest(method: "PUT", url: "\(mesh.averager.url)/v1/state?prefix=\(prefix)&priority=1e300",
                                                                          headers: headers, body: state, timeout: 10)).status
            } catch { return error.status ?? 0 }
        }
        #expect(await put("a", token: nil) == 401)
        #expect(await put("a", token: "wrong") == 401)
        #expect(await put("a", token: "run-secret") == 200)
        #expect(await put("b", token: "run-secret") == 200)
        #expect(await put("c", token: "run-secret") == 507, "a third prefix past --max-states 2")
        #expect(await put("a", token: "run-secret") == 200, "replacing a state is always possible")
        func configure(_ run: String) async -> Int {
            do {
                return try await HTTPClient.shared.send(HTTPClientRequest(method: "PUT", url: "\(mesh.averager.url)/v1/runs/\(run)",
                                                                          headers: [("Content-Type", "application/json"), ("Authorization", "Bearer run-secret")],
                                                                          body: Array(#"{"target_batch_size": 8}"#.utf8), timeout: 10)).status
            } catch { return error.status ?? 0 }
        }
        #expect(await configure("one") == 201)
        #expect(await configure("two") == 429, "a second run past --max-runs 1")
        #expect(await mesh.allHealthy())
    }
}
