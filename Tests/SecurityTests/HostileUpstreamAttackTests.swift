import Foundation
import Shared
import Testing
import TestSupport

/// Peers that answer too much, forever, or wrongly: every call ends at its
/// byte cap or its deadline, the caller gets an answer, and memory stays put.
@Suite struct HostileUpstreamAttackTests {
    @Test func endlessAndHugeExpertAnswersCostNoMemory() async throws {
        let mesh = try await SecurityMesh.start()
        let huge = try await ServiceProcess.hostilePeer("huge")
        let endless = try await ServiceProcess.hostilePeer("endless")
        let zero = try await ServiceProcess.hostilePeer("status0")
        try await mesh.plantExpert("ffn.1.0", at: huge.url)
        try await mesh.plantExpert("ffn.1.1", at: endless.url)
        try await mesh.plantExpert("ffn.1.2", at: zero.url)
        for uid in ["ffn.1.0", "ffn.1.1", "ffn.1.2"] {
            let started = Clock.now
            let proxied = await proxyForward(mesh.gateway.url, uid: uid)
            #expect(proxied.status == 502, "\(uid): \(proxied)")
            #expect(Clock.now - started < 15, "\(uid) answered after \(Clock.now - started) s")
        }
        // Through the mixture: the honest expert answers, the hostile ones count as failed.
        let all = await moeForward(mesh.gateway.url, grid: "2,3", k: 4)
        #expect(all.status == 200, "\(all.message)")
        let report = mesh.memory.report("1 GiB, endless and status-0 expert answers")
        #expect(mesh.memory.peak.values.allSatisfy { $0 < MemoryWatch.limit }, "\(report)")
        #expect(await mesh.allHealthy())
    }

    @Test func endlessAndEnormousStateDonorsCostNoMemory() async throws {
        let mesh = try await SecurityMesh.start()
        let attacker = Identity()
        for mode in ["endless", "range", "huge"] {
            let donor = try await ServiceProcess.hostilePeer(mode)
            _ = try await mesh.dhtClient.store("\(mode)_state.all_averagers", subkey: attacker.ownerMarker + donor.url, value: 100,
                                               expirationTime: Clock.epoch + 60, signedBy: attacker)
            let started = Clock.now
            do {
                _ = try await HTTPClient.shared.send(HTTPClientRequest(method: "POST", url: "\(mesh.averager.url)/v1/state/load?prefix=\(mode)_state&timeout=5",
                                                                       timeout: 20))
                Issue.record("a state came from the \(mode) donor")
            } catch {
                #expect(error.status == 503, "\(mode): \(error)")
            }
            #expect(Clock.now - started < 8, "\(mode): answered after \(Clock.now - started) s")
        }
        let report = mesh.memory.report("endless, 1 TB and 1 GiB state donors")
        #expect(mesh.memory.peak.values.allSatisfy { $0 < MemoryWatch.limit }, "\(report)")
        #expect(await mesh.allHealthy())
    }

    @Test func callersCredentialsStayWithTheGateway() async throws {
        let mesh = try await SecurityMesh.start(gatewayFlags: ["--expert-token", "gateway-own-token"])
        let spy = try await ServiceProcess.hostilePeer("headers")
        try await mesh.plantExpert("ffn.1.0", at: spy.url)
        let answer = await proxyForward(mesh.gateway.url, uid: "ffn.1.0", headers: [("Authorization", "Bearer callers-secret")])
        #expect(answer.status == 200, "\(answer)")
        let seen = try JSON.parse(answer.body)["authorization"]
        #expect(seen == "Bearer gateway-own-token", "the expert saw \(String(describing: seen))")
    }
}
