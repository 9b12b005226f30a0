import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct NodeAddressTests {
        @Test(arguments: ["http://127.0.0.1:31337", "https://dht-1.example.org:443", "http://[::1]:8000", "http://[fd00::1]:1", "http://a:65535",
                           "https://\(String(repeating: "ab", count: 32))@127.0.0.1:1"])
        func accepted(_ address: String) {
            #expect(NodeAddress.problem(address) == nil)
        }

        @Test(arguments: [
            ("file:///etc/passwd", "http:// or https://"), ("gopher://127.0.0.1:70", "http:// or https://"),
            ("http://127.0.0.1", "no port"), ("http://127.0.0.1:31337/", "port"), ("http://127.0.0.1:31337/v1/x", "port"),
            ("http://127.0.0.1:31337?x=1", "port"), ("http://127.0.0.1:31337#f", "port"), ("http://user@127.0.0.1:31337", "host"),
            ("http://user:pw@127.0.0.1:31337", "host"), ("http://\(String(repeating: "ab", count: 31))@127.0.0.1:1", "host"), ("http://127.0.0.1:0", "port"), ("http://127.0.0.1:65536", "port"),
            ("http://a b:80", "host"), ("http://%41:80", "host"), ("http://:80", "no port"), ("http://[::1:80", "IPv6"),
            ("HTTP://127.0.0.1:80", "http:// or https://"), ("http://" + String(repeating: "a", count: 250) + ":80", "256"),
        ])
        func refused(_ address: String, _ mentions: String) {
            let problem = NodeAddress.problem(address)
            #expect(problem?.contains(mentions) == true, "\(address): \(String(describing: problem))")
        }

        @Test func findAnswersLeaveOutPeersWithOtherAddresses() throws {
            let good = DHTID.random(), bad = DHTID.random()
            let json: JSON = ["entry": .null, "nearest": [
                ["node_id": .string(good.hex), "address": "http://127.0.0.1:1"],
                ["node_id": .string(bad.hex), "address": "http://169.254.169.254:80/latest/meta-data"],
                ["node_id": "nothex", "address": "http://127.0.0.1:2"],
            ]]
            let result = try FindResult(fields: JSONObjectReader(json))
            #expect(result.nearest.map(\.id) == [good])
            // In a request, the sender's address must be right: the whole request is refused.
            #expect(throws: JSONFieldError.self) {
                _ = try PingRequest(fields: JSONObjectReader(["peer": ["node_id": .string(bad.hex), "address": "http://127.0.0.1:1/x"]]))
            }
        }

        /// Checks are remembered per (node_id, address) pair, so a pair that passed
        /// once never vouches for the same address under another id, nor the reverse.
        @Test func aPeerAddressMustHashToItsNodeIDEveryTime() throws {
            let owner = Identity(), other = Identity()
            let address = "https://\(owner.peerID)@127.0.0.1:4433"
            func peer(_ id: DHTID, _ address: String) throws -> DHTPeer {
                try DHTPeer(fields: JSONObjectReader(["node_id": .string(id.hex), "address": .string(address)]))
            }
            let id = DHTID(publicKey: owner.publicKey)
            for filled in [false, true] {
                #expect(try peer(id, address).id == id)
                #expect(try peer(id, address).id == id, "remembered")
                #expect(throws: JSONFieldError.self) { _ = try peer(DHTID(publicKey: other.publicKey), address) }
                #expect(throws: JSONFieldError.self) { _ = try peer(id, "https://\(other.peerID)@127.0.0.1:4433") }
                #expect(throws: JSONFieldError.self) { _ = try peer(id, address + "/v1") }
                // More pairs than the memo holds: it starts over.
                if !filled { for port in 1...DHTPeer.maxChecked { _ = try peer(DHTID.random(), "http://127.0.0.1:\(port)") } }
            }
        }
    }
}
