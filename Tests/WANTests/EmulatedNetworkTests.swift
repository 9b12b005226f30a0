import Foundation
import Shared
import Testing
import TestSupport

extension WAN {
    /// The emulated internet itself: hosts in namespaces reach each other only
    /// through the link emulator, and a host behind NAT can call out but cannot be called.
    @Suite struct EmulatedNetworkTests {
        @Test func servicesAreReachedThroughTheirLinksAndNATBlocksCallsIn() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let first = try network.addHost("a", profile: .datacenterWAN)
            let second = try network.addHost("b", profile: .datacenterWAN)
            let hidden = try network.addHost("c", profile: .datacenterWAN, behindNAT: true)
            let (_, url) = try await network.start("hivemind-dht", on: first, ["--log-level", "warning"])
            let dht = try #require(url)
            // A node on b joins through a's proxy: its calls cross both emulated links.
            let (_, joined) = try await network.start("hivemind-dht", on: second, ["--log-level", "warning", "--initial-peers", dht])
            #expect(joined?.hasPrefix("http://\(EmulatedNetwork.hubAddress):") == true)
            let delivered = network.emulator.deliveredBytes
            #expect(delivered > 0)

            // From behind NAT, calls out work ...
            let put = try await network.run(on: hidden, "hivemind", ["dht", "--dht", dht, "put", "wan", "{\"v\":1}", "60"], timeout: 20)
            #expect(put.status == 0, "\(put)")
            let got = try await network.run(on: hidden, "hivemind", ["dht", "--dht", dht, "get", "wan"], timeout: 20)
            #expect(got.status == 0 && got.stdout.contains("\"v\""), "\(got)")
            // ... but nothing can call in: a service there is unreachable from a public host.
            let (_, behind) = try await network.start("hivemind-dht", on: hidden, ["--log-level", "warning", "--client-mode", "--initial-peers", dht])
            #expect(behind == nil)
            let probe = try await network.run(on: first, "hivemind", ["dht", "--dht", "http://\(hidden.address):8000", "get", "x"], timeout: 20)
            #expect(probe.status != 0, "\(probe)")
        }
    }
}

/// The WAN tests, one at a time: each emulates its links in this process, so
/// their timing holds only with the machine's cores to itself.
@Suite(.serialized) enum WAN {
    /// A new emulated network, or a skip that says why there cannot be one here.
    static func network() throws -> EmulatedNetwork {
        do { return try EmulatedNetwork() } catch let error as EmulatedNetwork.NetworkUnavailable {
            try Test.cancel("\(error.reason)")
        }
    }
}
