import Foundation
import Shared
import Testing
import TestSupport

/// A moderated swarm for a test: its key and root in a temporary folder, a
/// revocation list every service watches, and members the test admits.
final class TestSwarm: Sendable {
    let folder: URL
    let swarm = Identity()
    let root: String
    let revoked: String

    /// One member's files.
    struct Member {
        let identity: Identity
        let identityPath: String
        let certificatePath: String
    }

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("swarm-tests-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        root = folder.appendingPathComponent("swarm.crt").path
        revoked = folder.appendingPathComponent("revoked.txt").path
        try Certificate.swarmAuthority(swarm, now: Clock.epoch, lifetime: 86_400).pem.write(toFile: root, atomically: true, encoding: .utf8)
        try "# revoked peers\n".write(toFile: revoked, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// A member valid from `from` to `until` seconds from now.
    func admit(_ name: String, from: Double = 0, until: Double = 3_600) throws -> Member {
        let identity = Identity(), now = Clock.epoch
        let identityPath = folder.appendingPathComponent("\(name).key").path, certificatePath = folder.appendingPathComponent("\(name).crt").path
        try identity.privateKeyPEM.write(toFile: identityPath, atomically: true, encoding: .utf8)
        try Certificate.membership(of: identity.publicKey, swarm: swarm, now: now + from, notAfter: now + until).pem
            .write(toFile: certificatePath, atomically: true, encoding: .utf8)
        return Member(identity: identity, identityPath: identityPath, certificatePath: certificatePath)
    }

    /// A new member's flags as a service.
    func serviceFlags(_ name: String) throws -> [String] {
        let member = try admit(name)
        return ["--identity", member.identityPath, "--swarm-ca", root, "--swarm-cert", member.certificatePath, "--swarm-revoked", revoked]
    }

    /// A client that trusts the swarm's root and presents `member`'s membership (none: an outsider).
    func client(_ member: Member?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.tls = TLSClientSettings(certificatePEM: member.flatMap { try? String(contentsOfFile: $0.certificatePath, encoding: .utf8) },
                                              privateKeyPEM: member?.identity.privateKeyPEM,
                                              authoritiesPEM: try? String(contentsOfFile: root, encoding: .utf8))
        return HTTPClient(configuration: configuration)
    }

    /// Adds a peer to the revocation list.
    func revoke(_ peer: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: revoked))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\(peer)\n".utf8))
        try handle.close()
    }
}

/// Identities, TLS and membership across real processes.
@Suite struct SwarmTests {
    static let quiet = SecurityMesh.quiet

    /// Waits until `uid` is declared, asking the DHT through `client`.
    static func waitForExpert(_ uid: String, dht: String, client: HTTPClient) async throws {
        let reader = DHTClient(nodes: [dht], timeout: 5, http: client)
        let deadline = Clock.now + 15
        while try await reader.get(uid, latest: true) == nil {
            guard Clock.now < deadline else { throw ServiceProcessError("\(uid) was not declared in time") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func onlyMembersAreServedAndExpiredOrRevokedOnesAreRefusedWithTheReason() async throws {
        let swarm = try TestSwarm()
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet + swarm.serviceFlags("dht"))
        #expect(dht.url.hasPrefix("https://"))
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + swarm.serviceFlags("host") + [
            "--dht", dht.url, "--expert-uids", "ffn.0.0", "--hidden-dim", "\(SecurityMesh.hidden)", "--update-period", "1"])
        let gateway = try await ServiceProcess.start("hivemind-gateway", Self.quiet + swarm.serviceFlags("gateway") + ["--dht", dht.url])
        let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + swarm.serviceFlags("averager") + ["--dht", dht.url])
        let trainer = try swarm.admit("trainer")
        let member = swarm.client(trainer), outsider = swarm.client(nil)
        let expired = swarm.client(try swarm.admit("late", from: -7_200, until: -60))
        let revoked = try swarm.admit("revoked")
        let soonRevoked = swarm.client(revoked)
        defer { [member, outsider, expired, soonRevoked].forEach { $0.shutdown() } }
        try await Self.waitForExpert("ffn.0.0", dht: dht.url, client: member)

        let routes = [("DHT node", "\(dht.url)/v1/node"), ("expert host", "\(host.url)/v1/experts"),
                      ("averager", "\(averager.url)/v1/info"), ("gateway", "\(gateway.url)/v1/experts?prefix=ffn.")]
        for (service, url) in routes {
            #expect(try await member.get(url).status == 200, "\(service): a member is served")
            #expect(try await soonRevoked.get(url).status == 200, "\(service): not revoked yet")
            for (caller, status, code) in [(outsider, 401, "membership_required"), (expired, 403, "membership_expired")] {
                do throws(HTTPClientError) {
                    _ = try await caller.get(url)
                    Issue.record("\(service) served \(code)")
                } catch {
                    #expect(error.status == status && error.code == code, "\(service): \(error.detailedDescription)")
                    if code == "membership_expired" { #expect(error.upstreamMessage?.contains("expired at") == true) }
                }
            }
            for open in ["/healthz", "/metrics"] {
                let base = url.components(separatedBy: "/v1/")[0]
                #expect(try await outsider.get(base + open).status == 200, "\(service)\(open) stays open to probes")
            }
        }
        // A write needs membership too, refused before its body is read.
        do throws(HTTPClientError) {
            _ = try await outsider.send("PUT", "\(dht.url)/v1/records/planted", json: ["value": 1, "expiration_time": .double(Clock.epoch + 60)])
            Issue.record("an outsider wrote to the DHT")
        } catch {
            #expect(error.status == 401)
        }
        // Through the gateway, members train as usual (gateway -> DHT and -> host over mutual TLS).
        let forward = try await member.post("\(gateway.url)/v1/experts/ffn.0.0/forward",
                                            bytes: try TensorBundle([("input.0", Tensor(repeating: 0.5, shape: [1, SecurityMesh.hidden]))]).encode())
        #expect(forward.status == 200)

        // Revoked: every service reads its list again within a second or two, without a restart.
        try swarm.revoke(revoked.identity.peerID)
        try await Task.sleep(for: .milliseconds(2_200))
        for (service, url) in routes {
            do throws(HTTPClientError) {
                _ = try await soonRevoked.get(url)
                Issue.record("\(service) served a revoked member")
            } catch {
                #expect(error.status == 403 && error.code == "membership_revoked", "\(service): \(error.detailedDescription)")
            }
        }
        // A revoked service is neither served nor called: the gateway no longer calls the revoked host
        // (502 "revoked"), and once the host's last declaration expires, the DHT, which refuses its
        // new ones, no longer names it at all (404).
        try swarm.revoke(host.peerID!)
        try await Task.sleep(for: .milliseconds(1_200))
        do throws(HTTPClientError) {
            _ = try await member.post("\(gateway.url)/v1/experts/ffn.0.0/forward",
                                      bytes: try! TensorBundle([("input.0", Tensor(repeating: 0.5, shape: [1, SecurityMesh.hidden]))]).encode())
            Issue.record("the gateway called a revoked host")
        } catch {
            #expect((error.status == 502 && error.upstreamMessage?.contains("revoked") == true) || error.status == 404, "\(error.detailedDescription)")
        }
    }

    @Test func aServiceWithAnExpiredOrForeignMembershipDoesNotStart() async throws {
        let swarm = try TestSwarm(), other = try TestSwarm()
        let late = try swarm.admit("late", from: -7_200, until: -60)
        let expired = try await ServiceProcess.runToExit("hivemind-dht", Self.quiet + [
            "--identity", late.identityPath, "--swarm-ca", swarm.root, "--swarm-cert", late.certificatePath])
        #expect(expired.status == 2 && expired.stdout.contains("expired at"), "\(expired.stdout)")
        let foreign = try other.admit("foreign")
        let stranger = try await ServiceProcess.runToExit("hivemind-gateway", Self.quiet + [
            "--dht", "https://127.0.0.1:1", "--identity", foreign.identityPath, "--swarm-ca", swarm.root, "--swarm-cert", foreign.certificatePath])
        #expect(stranger.status == 2 && stranger.stdout.contains("not signed by swarm"), "\(stranger.stdout)")
        let mismatched = try await ServiceProcess.runToExit("hivemind-dht", Self.quiet + [
            "--identity", foreign.identityPath, "--swarm-ca", swarm.root, "--swarm-cert", late.certificatePath])
        #expect(mismatched.status == 2 && mismatched.stdout.contains("--swarm-cert is a membership of peer"), "\(mismatched.stdout)")
    }

    /// An open TLS swarm: a DHT node, an honest host serving ffn.1.0, a gateway, all pinned by peer id.
    struct OpenSwarm {
        let dht: ServiceProcess
        let host: ServiceProcess
        let gateway: ServiceProcess

        static func start() async throws -> OpenSwarm {
            let tls = SwarmTests.quiet + ["--tls"]
            let dht = try await ServiceProcess.start("hivemind-dht", tls)
            let host = try await ServiceProcess.start("hivemind-expert-host", tls + [
                "--dht", dht.peerAddress, "--expert-uids", "ffn.1.0", "--hidden-dim", "\(SecurityMesh.hidden)", "--update-period", "1"])
            let gateway = try await ServiceProcess.start("hivemind-gateway", tls + [
                "--dht", dht.peerAddress, "--cache-seconds", "0.2", "--negative-cache-seconds", "0.2"])
            try await SwarmTests.waitForExpert("ffn.1.0", dht: dht.peerAddress, client: .shared)
            return OpenSwarm(dht: dht, host: host, gateway: gateway)
        }

        /// The gateway's expert proxy for `uid`: the status and the gateway's message.
        func proxy(_ uid: String) async -> (status: Int, message: String) {
            let body = try! TensorBundle([("input.0", Tensor(repeating: 0.5, shape: [1, SecurityMesh.hidden]))]).encode()
            do throws(HTTPClientError) {
                _ = try await HTTPClient.shared.post("\(gateway.peerAddress)/v1/experts/\(uid)/forward", bytes: body, timeout: 20)
                return (200, "")
            } catch {
                return (error.status ?? 0, error.serverMessage)
            }
        }

        /// Forward calls a host's server answered, from its metrics.
        func forwardsServed(by host: ServiceProcess) async throws -> Double { try await forwardsServed(at: host.peerAddress) }

        /// Forward calls the host at `address` answered, from its metrics.
        func forwardsServed(at address: String) async throws -> Double {
            let text = String(decoding: try await HTTPClient.shared.get("\(address)/metrics").body, as: UTF8.self)
            return text.split(separator: "\n").filter { $0.contains("http_requests_total") && $0.contains("/forward") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        }
    }

    @Test func aRecordSignedByANeverLeadsToTheServerOfB() async throws {
        let swarm = try await OpenSwarm.start()
        #expect(await swarm.proxy("ffn.1.0").status == 200, "the honest host answers over pinned TLS")
        let before = try await swarm.forwardsServed(by: swarm.host)
        // Identity A declares ffn.0.0 at the honest host's address (B's server).
        let attacker = Identity()
        let records = ExpertDeclaration.records(for: [ExpertUID("ffn.0.0")!], hostURL: swarm.host.url, expirationTime: Clock.epoch + 60,
                                                identity: attacker)
        _ = try await DHTClient(nodes: [swarm.dht.peerAddress], timeout: 5).storeMany(records)
        let planted = await swarm.proxy("ffn.0.0")
        #expect(planted.status == 502 && planted.message.contains("does not present the key of peer \(attacker.peerID)"), "\(planted)")
        #expect(try await swarm.forwardsServed(by: swarm.host) == before, "B's server never got A's request")
        // ... and, in a mixture, the failed call is reported.
        _ = await moeForward(swarm.gateway.peerAddress, grid: "1,1")
        let metrics = String(decoding: try await HTTPClient.shared.get("\(swarm.gateway.peerAddress)/metrics").body, as: UTF8.self)
        #expect(metrics.contains("expert_failures_total{expert=\"ffn.0.0\""), "the gateway counts the failed call")
        // A record claiming B's key in its URL while signed by A is not even read.
        let forged = ExpertDeclaration.records(for: [ExpertUID("ffn.0.1")!], hostURL: swarm.host.peerAddress, expirationTime: Clock.epoch + 60,
                                               identity: attacker)
        _ = try await DHTClient(nodes: [swarm.dht.peerAddress], timeout: 5).storeMany(forged)
        #expect(await swarm.proxy("ffn.0.1").status == 404)
    }

    @Test func plainHTTPToATLSListenerAndTLSToAPlainOneGetClearErrors() async throws {
        let swarm = try await OpenSwarm.start()
        for service in [swarm.dht, swarm.host, swarm.gateway] {
            let plain = service.url.replacingOccurrences(of: "https://", with: "http://")
            do throws(HTTPClientError) {
                _ = try await HTTPClient.shared.get("\(plain)/v1/node")
                Issue.record("plain HTTP was served")
            } catch {
                #expect(error.status == 400 && error.code == "https_required", "\(error.detailedDescription)")
                #expect(error.upstreamMessage?.contains("call https:// instead of http://") == true)
            }
        }
        let plainService = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        do throws(HTTPClientError) {
            _ = try await HTTPClient.shared.get(plainService.url.replacingOccurrences(of: "http://", with: "https://\(Identity().peerID)@") + "/v1/node")
            Issue.record("TLS to a plain port succeeded")
        } catch {
            #expect(error.message.contains("does not speak TLS"), "\(error.detailedDescription)")
            #expect(error.message.contains("call http://"), "\(error.detailedDescription)")
        }
        // A service that serves TLS calls only TLS peers.
        let refusing = try await ServiceProcess.runToExit("hivemind-dht", Self.quiet + ["--tls", "--initial-peers", plainService.url])
        #expect(refusing.status == 1, "\(refusing.stderr)")
    }

    @Test func aManInTheMiddleFailsClosedWhileARelayPassesTLSThrough() async throws {
        let swarm = try await OpenSwarm.start()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mitm-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let proxyKey = Identity()
        let certificate = folder.appendingPathComponent("proxy.crt").path, key = folder.appendingPathComponent("proxy.key").path
        try Certificate.selfSigned(proxyKey, now: Clock.epoch).pem.write(toFile: certificate, atomically: true, encoding: .utf8)
        try proxyKey.privateKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
        let stats = folder.appendingPathComponent("requests-seen").path

        // Each host announces the relay in front of it; its declarations are signed by its own identity.
        func hostBehind(_ mode: String, uid: String) async throws -> (relay: ServiceProcess, host: ServiceProcess, direct: String) {
            let port = try freePort()
            let relay = try await ServiceProcess.start("/usr/bin/env", ["python3", Repository.path("Tests/Support/tls_proxy.py"),
                "--target", "127.0.0.1:\(port)", "--mode", mode, "--cert", certificate, "--key", key] + (mode == "tls" ? ["--stats", stats] : []))
            // Behind the man in the middle the start-up reachability check already finds someone else's key
            // at the announced address and refuses to start; it is off so that the callers' pin is what is tested.
            let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + ["--tls", "--port", "\(port)",
                "--announce-address", relay.url, "--dht", swarm.dht.peerAddress, "--expert-uids", uid,
                "--hidden-dim", "\(SecurityMesh.hidden)", "--update-period", "1", "--check-reachability", mode == "tls" ? "false" : "true"])
            try await Self.waitForExpert(uid, dht: swarm.dht.peerAddress, client: .shared)
            return (relay, host, "https://\(host.peerID!)@127.0.0.1:\(port)")
        }
        let (mitm, intercepted, interceptedDirect) = try await hostBehind("tls", uid: "ffn.2.0")
        let attempt = await swarm.proxy("ffn.2.0")
        #expect(attempt.status == 502 && attempt.message.contains("does not present the key of peer \(intercepted.peerID!)"), "\(attempt)")
        // All it got to read was the caller asking the host, through it, whether the host vouches for its key (it does not).
        let seen = try String(contentsOfFile: stats, encoding: .utf8).split(separator: "\n")
        #expect(seen.allSatisfy { $0.hasPrefix("GET /v1/identity ") }, "the man in the middle read: \(seen)")
        #expect(try await swarm.forwardsServed(at: interceptedDirect) == 0)
        _ = mitm  // alive until here

        let (tcp, relayed, relayedDirect) = try await hostBehind("tcp", uid: "ffn.3.0")
        #expect(await swarm.proxy("ffn.3.0").status == 200, "TLS passes end to end through a plain relay")
        #expect(try await swarm.forwardsServed(at: relayedDirect) == 1)
        _ = (tcp, relayed)  // alive until here
    }
}
