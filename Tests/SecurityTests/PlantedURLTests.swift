import Foundation
import Shared
import Testing
import TestSupport

/// URLs an attacker plants where a service will call them: expert and donor
/// records anyone can write, a routing record a client sends, a ping's sender.
/// None may reach a file, another protocol, a metadata address, or come back
/// to the caller as the upstream's bytes.
@Suite struct PlantedURLTests {
    static let planted = ["file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "http://169.254.169.254/latest/meta-data/",
                          "http://[fd00:ec2::254]/", "dict://127.0.0.1:11211/stat"]

    @Test func expertRecordsPointingAnywhereAreNeverCalled() async throws {
        let mesh = try await SecurityMesh.start()
        // ffn.1.0 .. ffn.1.4: one planted URL each, on a grid whose only honest expert is ffn.0.0.
        for (index, url) in Self.planted.enumerated() { try await mesh.plantExpert("ffn.1.\(index)", at: url) }
        for index in Self.planted.indices {
            let proxied = await proxyForward(mesh.gateway.url, uid: "ffn.1.\(index)")
            #expect(proxied.status == 502 && proxied.message.contains("not called"), "\(Self.planted[index]): \(proxied)")
            #expect(!proxied.message.contains("root:"), "the file came back: \(proxied.message)")
        }
        // Every expert of the grid: the honest one answers, the planted ones fail without being called.
        let all = await moeForward(mesh.gateway.url, grid: "2,\(Self.planted.count)", k: 2 * Self.planted.count)
        #expect(all.status == 200, "\(all.message)")
        #expect(await mesh.allHealthy())
        _ = mesh.memory.report("planted expert URLs")
    }

    @Test func donorRecordsPointingAnywhereAreNeverCalled() async throws {
        let mesh = try await SecurityMesh.start()
        let attacker = Identity()
        for url in Self.planted {
            _ = try await mesh.dhtClient.store("run_state.all_averagers", subkey: attacker.ownerMarker + url, value: 100,
                                               expirationTime: Clock.epoch + 60, signedBy: attacker)
        }
        do {
            _ = try await HTTPClient.shared.send(HTTPClientRequest(method: "POST", url: "\(mesh.averager.url)/v1/state/load?prefix=run_state&timeout=5",
                                                                   timeout: 15))
            Issue.record("a state came from a planted donor")
        } catch {
            #expect(error.status == 503, "\(error)")
            #expect(error.serverMessage.contains("not called") && !error.serverMessage.contains("root:"), "\(error.serverMessage)")
        }
        #expect(await mesh.allHealthy())
    }

    @Test func pingsNamingAnythingButAPeerAreRefused() async throws {
        let mesh = try await SecurityMesh.start()
        for address in Self.planted + ["http://127.0.0.1:1/v1/dht/store?x=1", "http://user@127.0.0.1:1"] {
            let body: JSON = ["peer": ["node_id": .string(String(repeating: "a", count: 40)), "address": .string(address)], "validate": true]
            do {
                _ = try await HTTPClient.shared.send("POST", "\(mesh.dht.url)/v1/dht/ping", json: body, timeout: 10)
                Issue.record("ping from \(address) was taken")
            } catch {
                #expect(error.status == 400, "\(address): \(error)")
            }
        }
        #expect(await mesh.allHealthy())
    }
}

/// The gateway's expert proxy, as a client calls it.
func proxyForward(_ gateway: String, uid: String, headers: [(name: String, value: String)] = []) async -> (status: Int, message: String, body: [UInt8]) {
    let x = Tensor(repeating: 0.5, shape: [1, SecurityMesh.hidden])
    do {
        let response = try await HTTPClient.shared.post("\(gateway)/v1/experts/\(uid)/forward", bytes: try TensorBundle([("input.0", x)]).encode(),
                                                        headers: headers, timeout: 20)
        return (200, "", response.body)
    } catch let error as HTTPClientError {
        return (error.status ?? 0, error.serverMessage, [])
    } catch {
        return (0, "\(error)", [])
    }
}
